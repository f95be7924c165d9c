// The harness's own scripts, built with vite from node_modules: the globals Mattermost gives
// plugins for one React major (React 19 from e2e/react19, its own package: react-dom 19 needs
// react 19 as its peer) and the host page's script, which takes them from the page as main.js does.
import {dirname, join} from 'node:path';
import {fileURLToPath} from 'node:url';

import {build, type InlineConfig} from 'vite';

import {GLOBALS} from '../vite.config';

export const E2E_DIR = dirname(fileURLToPath(import.meta.url));
export const OUT_DIR = join(E2E_DIR, 'dist');

export type ReactMajor = 18 | 19;

function iife(entry: string, fileName: string, extra: InlineConfig): InlineConfig {
    return {
        configFile: false,
        logLevel: 'warn',
        root: E2E_DIR,
        esbuild: {jsx: 'transform', jsxFactory: 'React.createElement', jsxFragment: 'React.Fragment'},
        define: {'process.env.NODE_ENV': '"production"'},
        ...extra,
        build: {
            outDir: OUT_DIR,
            emptyOutDir: false,
            target: 'es2020',
            lib: {entry: join(E2E_DIR, entry), formats: ['iife'], name: fileName.replace(/\W/g, '_'), fileName: () => fileName},
            ...extra.build,
        },
    };
}

/** React 19's packages in place of the webapp's React 18 wherever `react` or `react-dom` is imported. */
function react19Aliases() {
    const modules = join(E2E_DIR, 'react19', 'node_modules');
    return [
        {find: /^react(\/.*)?$/, replacement: `${modules}/react$1`},
        {find: /^react-dom(\/.*)?$/, replacement: `${modules}/react-dom$1`},
    ];
}

/** Builds dist/globals-react<major>.js and dist/host.js. */
export async function buildHarness(react: ReactMajor): Promise<void> {
    await build(iife('globals.ts', `globals-react${react}.js`, {resolve: {alias: react === 19 ? react19Aliases() : []}}));
    const globals = {...GLOBALS, 'react-dom/client': 'ReactDOM'};
    await build(iife('host/main.tsx', 'host.js', {build: {rollupOptions: {external: Object.keys(globals), output: {globals}}}}));
}
