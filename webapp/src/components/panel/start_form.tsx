import * as React from 'react';

import type {ChannelInfo, Session} from '../../api_types';
import type {Client} from '../../client';
import {ErrorAlert, LABEL_STYLE, SelectField, useRefusals, useRequest} from './common';

export interface StartFormProps {
    info: ChannelInfo;
    client: Pick<Client, 'createSession'>;
    onStarted(session: Session): void;
}

/** The project path: the root, or a folder under it (the server checks it stays inside). */
export function projectPath(root: string, sub: string): string {
    const rest = sub.trim().replace(/^\/+|\/+$/g, '');
    return rest === '' ? root : `${root.replace(/\/+$/, '')}/${rest}`;
}

/** No session in the channel: a form to start one in one of the allowed roots. */
export function StartForm({info, client, onStarted}: StartFormProps) {
    const roots = info.allowed_roots;
    const [root, setRoot] = React.useState(roots[0] ?? '');
    const [sub, setSub] = React.useState('');
    const {busy, error, run} = useRequest();
    const {guard, notes} = useRefusals(info.permissions, ['start']);
    const ids = React.useId();
    const start = guard('start');
    const noRoots = !start.disabled && roots.length === 0;

    const submit = (e: React.FormEvent) => {
        e.preventDefault();
        void run(async () => {
            onStarted(await client.createSession({channel_id: info.channel_id, project_path: projectPath(root, sub)}));
        });
    };

    return (
        <form aria-label='Start a session' onSubmit={submit}>
            <p style={{margin: '0 0 8px'}}>{'No Claude Code session in this channel.'}</p>
            <SelectField label='Project path' value={root} options={roots} onChange={setRoot} guard={start} />
            <label htmlFor={`${ids}-sub`} style={LABEL_STYLE}>
                {'Folder under it (optional)'}
            </label>
            <input
                id={`${ids}-sub`}
                className='form-control'
                value={sub}
                placeholder='my-app'
                onChange={(e) => setSub(e.target.value)}
                {...start}
            />
            <div style={{marginTop: 8}}>
                <button type='submit' className='btn btn-primary' {...guard('start', noRoots || busy)}>
                    {'Start session'}
                </button>
            </div>
            {notes}
            {noRoots && <p>{'No project roots are configured (AllowedProjectRoots in the plugin settings).'}</p>}
            <ErrorAlert error={error} />
        </form>
    );
}
