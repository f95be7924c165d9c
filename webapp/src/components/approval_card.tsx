import * as React from 'react';
import {useSelector} from 'react-redux';

import type {Approval, ChannelInfo, Decision, PermissionAction} from '../api_types';
import {ApiError, type Client} from '../client';
import type {LiveApproval} from '../live/reducer';
import {displayName, liveApproval} from '../live/selectors';
import {approvalOf, channelInfo} from '../live/shared';
import type {HostState} from '../mattermost';
import {EDITABLE_FIELD, hasCutString, InputView, parseInput, str, toolTarget, type ToolInput} from './tool_input';
import {useLoaded} from './use_loaded';

export type ApprovalClient = Pick<Client, 'answerApproval' | 'listApprovals' | 'channel'>;

export interface ApprovalCardProps {
    sessionId: string;
    approvalId: string;
    client: ApprovalClient;
    /** The channel whose permissions say, before any click, whether this user may decide. */
    channelId?: string;
    /** What to show when neither the live state nor the API knows the request (a pruned one). */
    fallback?: React.ReactNode;
}

/** How a request ended, from the live state or from the API's answer to this user. */
interface Outcome {
    kind: 'approved' | 'denied' | 'expired' | 'withdrawn';
    decision?: string;
    by?: string;
    reason?: string;
    at?: number;
}

function liveOutcome(a: LiveApproval): Outcome | undefined {
    switch (a.phase) {
    case 'requested':
        return undefined;
    case 'decided':
        return {kind: a.decision?.startsWith('deny') ? 'denied' : 'approved', decision: a.decision, by: a.by, reason: a.reason, at: a.endedAt};
    default:
        return {kind: a.phase, reason: a.reason, at: a.endedAt};
    }
}

function apiOutcome(a: Approval): Outcome | undefined {
    if (a.state === 'pending') {
        return undefined;
    }
    return {kind: a.state, decision: a.decision ?? undefined, by: a.decided_by ?? undefined, reason: a.reason ?? undefined, at: a.decided_at ?? undefined};
}

/** The deny reason itself: the session tells Claude "Denied by @name: <reason>". */
function shownReason(reason: string | undefined): string | undefined {
    if (!reason || /^Denied from Mattermost by @\S+$/.test(reason)) {
        return undefined;
    }
    return reason.match(/^Denied by @\S+: ([\s\S]*)$/)?.[1] ?? reason;
}

function outcomeText(o: Outcome, name: string | undefined): string {
    const who = name ? ` by @${name}` : '';
    switch (o.kind) {
    case 'approved': {
        const how = o.decision === 'allow_with_input' ? ' with edited input' : o.decision === 'allow_for_session' || o.decision === 'approve_session' ? ' for the rest of this session' : '';
        return `Approved${who}${how}`;
    }
    case 'denied': {
        const reason = shownReason(o.reason);
        return `Denied${who}${o.decision === 'deny_and_interrupt' ? ' (and interrupted)' : ''}${reason ? `: ${reason}` : ''}`;
    }
    case 'expired':
        return 'Expired — denied automatically';
    case 'withdrawn':
        return 'Withdrawn — Claude Code stopped waiting for this decision';
    }
}

const ICON = {approved: '✅', denied: '⛔', expired: '⌛', withdrawn: '⏹'};

/** The decisions' permissions: Edit and approve is an approve, Deny with a reason a deny. */
type DecisionAction = Extract<PermissionAction, 'approve' | 'approve_for_session' | 'deny'>;
const DECISION_ACTIONS: DecisionAction[] = ['approve', 'approve_for_session', 'deny'];

/** The refused decisions grouped by the server's sentence (one line however many buttons it disables). */
function refusalsOf(info: ChannelInfo | undefined, sessionId: string): Array<{reason: string; actions: DecisionAction[]}> {
    // Permissions about another session (the channel's next one) say nothing about this card.
    if (info?.session?.id !== sessionId) {
        return [];
    }
    const byReason = new Map<string, DecisionAction[]>();
    for (const action of DECISION_ACTIONS) {
        const p = info.permissions[action];
        if (p && !p.allowed) {
            const reason = p.reason ?? 'You may not decide this request.';
            byReason.set(reason, [...(byReason.get(reason) ?? []), action]);
        }
    }
    return [...byReason].map(([reason, actions]) => ({reason, actions}));
}

function toInput(v: unknown): ToolInput {
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as ToolInput) : {};
}

type Mode = 'choose' | 'reason' | 'edit';

/** Tools that ask a person (a question, a plan) rather than for permission. */
const ASKS_A_PERSON = new Set(['AskUserQuestion', 'ExitPlanMode']);

/**
 * An approval request of a session, live: the request in full and the decisions, or how it
 * ended. Rendered inside the host's Provider (it selects from the plugin's live state). A request
 * the live state has not seen (a reload, an old post) comes from `GET /sessions/{id}/approvals`;
 * its live events, when they come, win.
 */
export function ApprovalCard({sessionId, approvalId, client, channelId, fallback}: ApprovalCardProps) {
    const approval = useSelector((s: HostState) => liveApproval(s, sessionId, approvalId));
    // Only the end of a request seen live (a decision after a reload) still needs its request.
    const fromApi = useLoaded(approval?.tool === undefined ? `${sessionId}/${approvalId}` : undefined, () => approvalOf(client, sessionId, approvalId));
    const stored = fromApi.value;
    const [answered, setAnswered] = React.useState<Outcome>();
    const outcome = (approval && liveOutcome(approval)) ?? answered ?? (stored && apiOutcome(stored));
    // Permissions matter to a request known to be pending only (decided ones have no buttons).
    const pending = (approval?.tool !== undefined || stored !== undefined) && !outcome;
    const channel = useLoaded(channelId !== undefined && pending ? `${channelId}/${sessionId}` : undefined, () => channelInfo(client, channelId!, sessionId));
    const deciderName = useSelector((s: HostState) => (outcome?.by ? displayName(s, outcome.by) : undefined));

    const [mode, setMode] = React.useState<Mode>('choose');
    const [busy, setBusy] = React.useState(false);
    /** The error of the last request; `final` when asking again cannot help (403, 404, 409). */
    const [error, setError] = React.useState<{message: string; final: boolean}>();
    const [reason, setReason] = React.useState('');
    const [edited, setEdited] = React.useState('');
    /** The whole input, fetched when the live one had strings cut (editing those would lose the rest). */
    const [fullInput, setFullInput] = React.useState<ToolInput>();

    const cardRef = React.useRef<HTMLDivElement>(null);
    const outcomeRef = React.useRef<HTMLDivElement>(null);
    const reasonButton = React.useRef<HTMLButtonElement>(null);
    /** The reason or the edited input, whichever is open. */
    const field = React.useRef<HTMLInputElement & HTMLTextAreaElement>(null);
    const editButton = React.useRef<HTMLButtonElement>(null);
    /** Whether the keyboard focus was in the card (it stays when the focused button goes away). */
    const hadFocus = React.useRef(false);
    // Per card, not per request: the same request is drawn in its post and in the panel at once.
    const headingId = React.useId();

    const tool = approval?.tool ?? stored?.tool ?? '';
    const input = React.useMemo(() => (approval?.input !== undefined ? parseInput(approval.input) : toInput(stored?.input)), [approval?.input, stored?.input]);
    const editable = EDITABLE_FIELD[tool];

    // The buttons go when the request ends: the focus goes to the outcome instead of the page.
    React.useEffect(() => {
        if (outcome && hadFocus.current) {
            outcomeRef.current?.focus({preventScroll: true});
        }
    }, [outcome !== undefined]); // eslint-disable-line react-hooks/exhaustive-deps

    // An opened field takes the focus once it is usable (after the full input was fetched).
    React.useEffect(() => {
        if (mode !== 'choose' && !busy) {
            field.current?.focus();
        }
    }, [mode, busy]);

    const run = async (request: () => Promise<void>) => {
        setBusy(true);
        setError(undefined);
        try {
            await request();
        } catch (e) {
            const status = e instanceof ApiError ? e.status : 0;
            const message = e instanceof Error ? e.message : String(e);
            setError({message, final: status === 403 || status === 404 || status === 409});
        } finally {
            setBusy(false);
        }
    };

    const answer = (decision: Decision, extra: {reason?: string; updated_input?: ToolInput} = {}) =>
        run(async () => {
            const result = await client.answerApproval(sessionId, approvalId, {decision, ...extra});
            setAnswered(apiOutcome(result));
        });

    const startEdit = () => {
        const edit = (whole: ToolInput) => {
            setEdited(str(whole, editable!.field) ?? '');
            setMode('edit');
        };
        if (!hasCutString(input)) {
            edit(input);
            return;
        }
        void run(async () => {
            const found = await approvalOf(client, sessionId, approvalId);
            if (!found || !found.input || typeof found.input !== 'object') {
                throw new Error('The full request could not be loaded; approve or deny it as shown.');
            }
            setFullInput(found.input as ToolInput);
            edit(found.input as ToolInput);
        });
    };

    const back = (to: React.RefObject<HTMLButtonElement | null>) => {
        setMode('choose');
        // After the re-render that brings the button back.
        setTimeout(() => to.current?.focus(), 0);
    };

    if (approval?.tool === undefined && !stored) {
        if (!fromApi.done) {
            // Marked already: the post's attachment buttons stay hidden instead of flashing.
            return (
                <div data-claude-code-card='' className='claude-code-approval' aria-busy='true' style={{opacity: 0.7}}>
                    {'Loading the approval request…'}
                </div>
            );
        }
        if (!approval) {
            return <>{fallback ?? null}</>;
        }
    }

    // A question or a plan is answered on its post's own card (option buttons, dialogs), which
    // an Approve/Deny card would hide and could not answer.
    if (ASKS_A_PERSON.has(tool)) {
        return <>{fallback ?? <p className='claude-code-asks'>{'Claude asks you something: answer on its card in the session thread.'}</p>}</>;
    }

    const disabled = busy || error?.final === true;
    const refusals = refusalsOf(channel.value, sessionId);
    /** A decision button: disabled while busy or when refused, then described by the refusal. */
    const guard = (action: DecisionAction) => {
        const at = refusals.findIndex((r) => r.actions.includes(action));
        return {disabled: disabled || at >= 0, 'aria-describedby': at >= 0 ? `${headingId}-refused-${at}` : undefined};
    };
    const target = toolTarget(tool, input) ?? approval?.description;

    return (
        <div
            data-claude-code-card=''
            ref={cardRef}
            role='group'
            aria-labelledby={headingId}
            className='claude-code-approval'
            onFocus={() => {
                hadFocus.current = true;
            }}
            onBlur={(e) => {
                // A blur to nowhere is a focused button being removed: the focus is still "ours".
                if (e.relatedTarget && !cardRef.current?.contains(e.relatedTarget as Node)) {
                    hadFocus.current = false;
                }
            }}
            style={{borderLeft: `4px solid ${outcome ? '#999' : '#ffbc1f'}`, padding: '4px 8px', margin: '4px 0'}}
        >
            <div id={headingId}>
                {'Claude wants to use '}
                <strong>{tool}</strong>
                {target && (
                    <>
                        {' on '}
                        <code>{target}</code>
                    </>
                )}
            </div>
            {approval?.description && approval.description !== target && <div>{approval.description}</div>}
            <InputView tool={tool} input={input} />
            {hasCutString(input) && !fullInput && <div style={{opacity: 0.7}}>{'Long values are shown shortened.'}</div>}

            <div ref={outcomeRef} tabIndex={-1} aria-live='polite' aria-atomic='true' style={{outline: 'none'}}>
                {outcome && (
                    <p className='claude-code-approval-outcome' style={{margin: '4px 0'}}>
                        {`${ICON[outcome.kind]} ${outcomeText(outcome, deciderName)}`}
                        {outcome.at !== undefined && (
                            <>
                                {' at '}
                                <time dateTime={new Date(outcome.at).toISOString()}>{new Date(outcome.at).toLocaleTimeString()}</time>
                            </>
                        )}
                    </p>
                )}
            </div>

            {error && !outcome && (
                <p role='alert' style={{color: 'var(--error-text, #d24b4e)', margin: '4px 0'}}>
                    {error.message}
                </p>
            )}

            {!outcome &&
                refusals.map((r, i) => (
                    <p key={r.reason} id={`${headingId}-refused-${i}`} className='claude-code-approval-refusal' style={{margin: '4px 0', opacity: 0.75}}>
                        {r.reason}
                    </p>
                ))}

            {!outcome && mode === 'choose' && (
                <div role='toolbar' aria-label='Decision' style={{display: 'flex', flexWrap: 'wrap', gap: 4}}>
                    <button type='button' className='btn btn-sm btn-primary' {...guard('approve')} onClick={() => void answer('approve')}>
                        {'Approve'}
                    </button>
                    <button type='button' className='btn btn-sm btn-tertiary' {...guard('approve_for_session')} onClick={() => void answer('approve_session')}>
                        {'Approve for this session'}
                    </button>
                    <button type='button' className='btn btn-sm btn-danger' {...guard('deny')} onClick={() => void answer('deny')}>
                        {'Deny'}
                    </button>
                    <button ref={reasonButton} type='button' className='btn btn-sm btn-tertiary' {...guard('deny')} onClick={() => setMode('reason')}>
                        {'Deny with a reason…'}
                    </button>
                    {editable && (
                        <button ref={editButton} type='button' className='btn btn-sm btn-tertiary' {...guard('approve')} onClick={startEdit}>
                            {'Edit and approve…'}
                        </button>
                    )}
                </div>
            )}

            {!outcome && mode === 'reason' && (
                <form
                    onSubmit={(e) => {
                        e.preventDefault();
                        void answer('deny', {reason: reason.trim()});
                    }}
                    style={{display: 'flex', gap: 4, alignItems: 'center'}}
                >
                    <label htmlFor={`${headingId}-reason`}>{'Reason'}</label>
                    <input
                        id={`${headingId}-reason`}
                        className='form-control'
                        value={reason}
                        onChange={(e) => setReason(e.target.value)}
                        onKeyDown={(e) => e.key === 'Escape' && back(reasonButton)}
                        ref={field}
                        disabled={disabled}
                    />
                    <button type='submit' className='btn btn-sm btn-danger' disabled={disabled || reason.trim() === ''}>
                        {'Send and deny'}
                    </button>
                    <button type='button' className='btn btn-sm btn-tertiary' disabled={busy} onClick={() => back(reasonButton)}>
                        {'Cancel'}
                    </button>
                </form>
            )}

            {!outcome && mode === 'edit' && editable && (
                <form
                    onSubmit={(e) => {
                        e.preventDefault();
                        void answer('approve', {updated_input: {...(fullInput ?? input), [editable.field]: edited}});
                    }}
                >
                    <label htmlFor={`${headingId}-edit`} style={{display: 'block'}}>
                        {editable.label}
                    </label>
                    <textarea
                        id={`${headingId}-edit`}
                        className='form-control'
                        value={edited}
                        onChange={(e) => setEdited(e.target.value)}
                        onKeyDown={(e) => e.key === 'Escape' && back(editButton)}
                        rows={Math.min(20, Math.max(3, edited.split('\n').length + 1))}
                        style={{width: '100%', fontFamily: 'monospace'}}
                        ref={field}
                        disabled={disabled}
                    />
                    <div style={{display: 'flex', gap: 4}}>
                        <button type='submit' className='btn btn-sm btn-primary' disabled={disabled}>
                            {'Approve with this edit'}
                        </button>
                        <button type='button' className='btn btn-sm btn-tertiary' disabled={busy} onClick={() => back(editButton)}>
                            {'Cancel'}
                        </button>
                    </div>
                </form>
            )}
        </div>
    );
}
