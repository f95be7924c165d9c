export {FilesView, type FilesViewProps} from './view';
export type {FilesClient, FilesPermissions} from './types';
