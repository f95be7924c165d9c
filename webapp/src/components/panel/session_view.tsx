import * as React from 'react';
import {useSelector} from 'react-redux';

import {PERMISSION_MODES, type PermissionMode, type Permissions, type Session} from '../../api_types';
import type {Client} from '../../client';
import {sessionLive} from '../../live/selectors';
import type {HostState} from '../../mattermost';
import {ApprovalCard} from '../approval_card';
import {ErrorAlert, LABEL_STYLE, SelectField, useRefusals, useRequest} from './common';

export type SessionClient = Pick<Client, 'prompt' | 'interrupt' | 'stopSession' | 'setMode' | 'setModel' | 'answerApproval' | 'listApprovals' | 'channel'>;

export interface SessionViewProps {
    session: Session;
    permissions: Permissions;
    client: SessionClient;
    /** The session as an action answered it (mode, model), or undefined when the panel must reload. */
    onChanged(session?: Session): void;
}

/** The CLI's aliases; a session started with a full model id keeps it as an option too. */
const MODELS = ['sonnet', 'opus', 'haiku'];

/** As the turn post's closing line prints costs. */
export function usd(amount: number): string {
    return amount >= 1 ? `$${amount.toFixed(2)}` : `$${amount.toFixed(4)}`;
}

/** The channel's session: its state, the prompt box, its controls and its pending approvals. */
export function SessionView({session, permissions, client, onChanged}: SessionViewProps) {
    const live = useSelector((s: HostState) => sessionLive(s, session.id));
    const {busy, error, run} = useRequest();
    const {guard, notes} = useRefusals(permissions, ['prompt', 'interrupt', 'stop', 'mode', 'model']);
    const [text, setText] = React.useState('');
    const [confirmStop, setConfirmStop] = React.useState(false);
    const ids = React.useId();
    const stopButton = React.useRef<HTMLButtonElement>(null);
    const confirmButton = React.useRef<HTMLButtonElement>(null);

    React.useEffect(() => {
        if (confirmStop) {
            confirmButton.current?.focus();
        }
    }, [confirmStop]);

    // The live status is newer than the loaded session until the panel reloads it.
    const state = live?.status ?? session.state;
    const model = session.model ?? '';
    const mode = session.permission_mode ?? 'default';
    const models = model === '' || MODELS.includes(model) ? MODELS : [model, ...MODELS];
    const pending = Object.values(live?.approvals ?? {}).filter((a) => a.phase === 'requested');

    const send = (e: React.FormEvent) => {
        e.preventDefault();
        const prompt = text.trim();
        void run(async () => {
            await client.prompt(session.id, prompt);
            setText('');
        });
    };
    const stop = () =>
        void run(async () => {
            await client.stopSession(session.id);
            setConfirmStop(false);
            onChanged();
        });
    const interrupt = () =>
        void run(async () => {
            await client.interrupt(session.id);
        });
    const cancelStop = () => {
        setConfirmStop(false);
        setTimeout(() => stopButton.current?.focus(), 0);
    };

    return (
        <div>
            <dl style={{display: 'grid', gridTemplateColumns: 'auto 1fr', gap: '2px 8px', margin: '0 0 8px'}}>
                <dt>{'State'}</dt>
                <dd style={{margin: 0}} aria-live='polite'>
                    {state}
                </dd>
                <dt>{'Project'}</dt>
                <dd style={{margin: 0, wordBreak: 'break-all'}}>
                    <code>{session.project_path}</code>
                </dd>
                <dt>{'Model'}</dt>
                <dd style={{margin: 0}}>{session.model ?? 'default'}</dd>
                <dt>{'Mode'}</dt>
                <dd style={{margin: 0}}>{mode}</dd>
            </dl>
            <p style={{margin: '0 0 8px'}}>{`Cost so far: ${live?.costUsd === undefined ? '—' : usd(live.costUsd)}`}</p>

            <form onSubmit={send}>
                <label htmlFor={`${ids}-prompt`} style={LABEL_STYLE}>
                    {'Prompt Claude'}
                </label>
                <textarea
                    id={`${ids}-prompt`}
                    className='form-control'
                    rows={3}
                    value={text}
                    onChange={(e) => setText(e.target.value)}
                    // Ctrl/⌘+Enter sends, as in Mattermost's own message box with that setting.
                    onKeyDown={(e) => e.key === 'Enter' && (e.ctrlKey || e.metaKey) && send(e)}
                    {...guard('prompt')}
                />
                <div style={{display: 'flex', flexWrap: 'wrap', gap: 4, marginTop: 4}}>
                    <button type='submit' className='btn btn-primary btn-sm' {...guard('prompt', busy || text.trim() === '')}>
                        {'Send'}
                    </button>
                    <button type='button' className='btn btn-tertiary btn-sm' {...guard('interrupt', busy)} onClick={interrupt}>
                        {'Interrupt'}
                    </button>
                    {!confirmStop && (
                        <button ref={stopButton} type='button' className='btn btn-danger btn-sm' {...guard('stop', busy)} onClick={() => setConfirmStop(true)}>
                            {'Stop session'}
                        </button>
                    )}
                </div>
            </form>
            {confirmStop && (
                <div role='group' aria-labelledby={`${ids}-stop`} style={{marginTop: 4}} onKeyDown={(e) => e.key === 'Escape' && cancelStop()}>
                    <p id={`${ids}-stop`} style={{margin: '4px 0'}}>
                        {"Stop the session? Claude Code's process ends; the transcript stays."}
                    </p>
                    <button ref={confirmButton} type='button' className='btn btn-danger btn-sm' disabled={busy} onClick={stop}>
                        {'Yes, stop it'}
                    </button>{' '}
                    <button type='button' className='btn btn-tertiary btn-sm' disabled={busy} onClick={cancelStop}>
                        {'Cancel'}
                    </button>
                </div>
            )}

            <SelectField
                label='Permission mode'
                value={mode}
                options={PERMISSION_MODES}
                guard={guard('mode', busy)}
                onChange={(m) => void run(async () => onChanged(await client.setMode(session.id, m as PermissionMode)))}
            />
            <SelectField
                label='Model'
                value={model}
                options={models}
                unset='default'
                guard={guard('model', busy)}
                onChange={(m) => void run(async () => onChanged(await client.setModel(session.id, m)))}
            />
            {notes}
            <ErrorAlert error={error} />

            {pending.length > 0 && (
                <section aria-label='Pending approvals' style={{marginTop: 12}}>
                    <h4 style={{margin: '0 0 4px', fontSize: 14}}>{'Pending approvals'}</h4>
                    {pending.map((a) => (
                        <ApprovalCard key={a.approvalId} sessionId={session.id} approvalId={a.approvalId} client={client} channelId={session.channel_id} />
                    ))}
                </section>
            )}
        </div>
    );
}
