import * as React from 'react';
import {useSelector} from 'react-redux';

import type {ChannelInfo, Permissions, Session} from '../../api_types';
import type {Client} from '../../client';
import {liveState, sessionLive} from '../../live/selectors';
import type {HostState} from '../../mattermost';
import {ErrorAlert, useRequest} from './common';
import {HistoryView} from './history_view';
import {SessionView} from './session_view';
import {StartForm} from './start_form';
import {Tabs} from './tabs';

export interface FilesViewProps {
    sessionId: string;
    client: Client;
    permissions: Permissions;
}

export interface PanelProps {
    client: Client;
    /** Fetches the session's events so far into the live state (approvals, status, cost). */
    catchUp(sessionId: string): void;
    filesView?: React.ComponentType<FilesViewProps>;
}

const currentChannelId = (s: HostState) => s.entities.channels?.currentChannelId;

/** The right-hand sidebar: the current channel's session, or a form to start one. */
export function Panel({client, catchUp, filesView: FilesView}: PanelProps) {
    const channelId = useSelector(currentChannelId);
    const [info, setInfo] = React.useState<ChannelInfo>();
    const sessionId = info?.session?.id;
    // A status change (a turn starts or ends, the session stops) can change the session and what
    // the user may do: the panel asks the server again.
    const liveStatus = useSelector((s: HostState) => sessionLive(s, sessionId)?.status);
    const {error, run} = useRequest();
    const [reloads, setReloads] = React.useState(0);
    const reload = React.useCallback(() => setReloads((n) => n + 1), []);

    React.useEffect(() => {
        if (!channelId) {
            return undefined;
        }
        // Answers for a channel the user has left since are dropped.
        let current = true;
        void run(
            async () => {
                const loaded = await client.channel(channelId);
                if (current) {
                    setInfo(loaded);
                }
            },
            () => current,
        );
        return () => {
            current = false;
        };
    }, [client, channelId, reloads, run]);

    // Only a change of the same session's status: switching channel loads once, above.
    const seen = React.useRef({sessionId, liveStatus});
    React.useEffect(() => {
        const before = seen.current;
        seen.current = {sessionId, liveStatus};
        if (liveStatus !== undefined && before.sessionId === sessionId && before.liveStatus !== liveStatus) {
            reload();
        }
    }, [sessionId, liveStatus, reload]);

    // Live events come only for the user's channels, but do not say which: with no session shown,
    // a session this page had not heard of may be this channel's new one (started by someone
    // else, or with /claude start), so the panel asks the server again.
    const sessionsHeard = useSelector((s: HostState) => Object.keys(liveState(s)).length);
    const heard = React.useRef(sessionsHeard);
    React.useEffect(() => {
        const before = heard.current;
        heard.current = sessionsHeard;
        if (!sessionId && sessionsHeard > before) {
            reload();
        }
    }, [sessionId, sessionsHeard, reload]);

    React.useEffect(() => {
        if (sessionId) {
            catchUp(sessionId);
        }
    }, [catchUp, sessionId]);

    const changed = (session?: Session) => {
        if (session) {
            // The answer may come after a switch to another channel: it changes that one only.
            setInfo((prev) => (prev?.channel_id === session.channel_id ? {...prev, session} : prev));
        } else {
            reload();
        }
    };

    // Only the loaded channel's info is shown: a switch shows "Loading…" rather than the old one.
    const shown = info?.channel_id === channelId ? info : undefined;
    const session = shown?.session;
    return (
        <section aria-label='Claude Code session' className='claude-code-panel' style={{padding: 12, color: 'var(--center-channel-color)', overflowY: 'auto', height: '100%'}}>
            <ErrorAlert error={error} />
            {!channelId && <p>{'Open a channel to see its Claude Code session.'}</p>}
            {channelId && !shown && !error && <p role='status'>{'Loading…'}</p>}
            {shown && !shown.session && <StartForm key={shown.channel_id} info={shown} client={client} onStarted={() => reload()} />}
            {shown && session && (
                <Tabs
                    key={session.id}
                    label='Claude Code session'
                    tabs={[
                        {name: 'Session', render: () => <SessionView session={session} permissions={shown.permissions} client={client} onChanged={changed} />},
                        {
                            name: 'Files',
                            render: () => (FilesView ? <FilesView sessionId={session.id} client={client} permissions={shown.permissions} /> : null),
                        },
                        {name: 'History', render: () => <HistoryView sessionId={session.id} client={client} />},
                    ]}
                />
            )}
        </section>
    );
}
