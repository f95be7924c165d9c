import * as React from 'react';
import {useSelector} from 'react-redux';

import type {Approval, ChannelInfo, PermissionAction} from '../api_types';
import {ApiError, type Client} from '../client';
import type {LiveApproval} from '../live/reducer';
import {displayName, liveApproval} from '../live/selectors';
import {approvalOf, channelInfo} from '../live/shared';
import type {HostState} from '../mattermost';
import {ErrorAlert, useRequest} from './panel/common';
import {hasCutString, parseInput, type ToolInput} from './tool_input';
import {useLoaded} from './use_loaded';

// What every card of an approval request shares, whichever tool it asks about (a permission, a
// question, a plan): the request from the live state or the API, how it ended, who may decide,
// the answer in flight and its error, and the frame that keeps the keyboard focus and announces
// the outcome.

export type ApprovalClient = Pick<Client, 'answerApproval' | 'listApprovals' | 'channel'>;

/** Tools that ask a person (a question, a plan) rather than for permission. */
const ASKS_A_PERSON = new Set(['AskUserQuestion', 'ExitPlanMode']);

/** How a request ended, from the live state or from the API's answer to this user. */
export interface Outcome {
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

export function apiOutcome(a: Approval): Outcome | undefined {
    if (a.state === 'pending') {
        return undefined;
    }
    return {kind: a.state, decision: a.decision ?? undefined, by: a.decided_by ?? undefined, reason: a.reason ?? undefined, at: a.decided_at ?? undefined};
}

/** The deny reason itself: the session tells Claude "Denied by @name: <reason>". */
export function shownReason(reason: string | undefined): string | undefined {
    if (!reason || /^Denied from Mattermost by @\S+$/.test(reason)) {
        return undefined;
    }
    return reason.match(/^Denied by @\S+: ([\s\S]*)$/)?.[1] ?? reason;
}

/** How a card words an approval and a denial; `who` is ` by @name` or empty. */
export interface Wording {
    approved(who: string, o: Outcome): string;
    denied(who: string, reason: string | undefined, o: Outcome): string;
}

export function outcomeText(o: Outcome, name: string | undefined, wording: Wording): string {
    const who = name ? ` by @${name}` : '';
    switch (o.kind) {
    case 'approved':
        return wording.approved(who, o);
    case 'denied':
        return wording.denied(who, shownReason(o.reason), o);
    case 'expired':
        return 'Expired — denied automatically';
    case 'withdrawn':
        return 'Withdrawn — Claude Code stopped waiting for this decision';
    }
}

const ICON = {approved: '✅', denied: '⛔', expired: '⌛', withdrawn: '⏹'};

/** The decisions' permissions: answering a question or starting a plan is an approve. */
export type DecisionAction = Extract<PermissionAction, 'approve' | 'approve_for_session' | 'deny'>;
const DECISION_ACTIONS: DecisionAction[] = ['approve', 'approve_for_session', 'deny'];

export interface Refusal {
    reason: string;
    actions: DecisionAction[];
}

/** The refused decisions grouped by the server's sentence (one line however many buttons it disables). */
function refusalsOf(info: ChannelInfo | undefined, sessionId: string): Refusal[] {
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

export interface RequestProps {
    sessionId: string;
    approvalId: string;
    client: ApprovalClient;
    /** The channel whose permissions say, before any click, whether this user may decide. */
    channelId?: string;
}

/**
 * One approval request, live: the live state first; the API for a request the live state has
 * not seen (a reload, an old post), and for a question or plan whose live input was shortened
 * (its question texts are the answers' keys, its plan is read whole).
 */
export function useApprovalRequest({sessionId, approvalId, client, channelId}: RequestProps) {
    const approval = useSelector((s: HostState) => liveApproval(s, sessionId, approvalId));
    const liveInput = React.useMemo(() => (approval?.input !== undefined ? parseInput(approval.input) : undefined), [approval?.input]);
    const needsWhole = approval?.tool === undefined || (ASKS_A_PERSON.has(approval.tool) && hasCutString(liveInput));
    const fromApi = useLoaded(needsWhole ? `${sessionId}/${approvalId}` : undefined, () => approvalOf(client, sessionId, approvalId));
    const stored = fromApi.value;
    const [answered, setAnswered] = React.useState<Outcome>();
    const outcome = (approval && liveOutcome(approval)) ?? answered ?? (stored && apiOutcome(stored));
    // Permissions matter to a request known to be pending only (decided ones have no buttons).
    const pending = (approval?.tool !== undefined || stored !== undefined) && !outcome;
    const channel = useLoaded(channelId !== undefined && pending ? `${channelId}/${sessionId}` : undefined, () => channelInfo(client, channelId!, sessionId));
    const deciderName = useSelector((s: HostState) => (outcome?.by ? displayName(s, outcome.by) : undefined));

    const request = useRequest();
    /** Whether asking again cannot help: the last answer was refused for good (403, 404, 409). */
    const [final, setFinal] = React.useState(false);
    const error = request.error === undefined ? undefined : {message: request.error, final};

    /** Runs a request, its error shown; whether it succeeded. */
    const run = (send: () => Promise<void>): Promise<boolean> =>
        request.run(async () => {
            try {
                await send();
            } catch (e) {
                setFinal(e instanceof ApiError && [403, 404, 409].includes(e.status));
                throw e;
            }
        });
    const busy = request.busy;

    const answer = (body: Parameters<ApprovalClient['answerApproval']>[2]) =>
        run(async () => {
            setAnswered(apiOutcome(await client.answerApproval(sessionId, approvalId, body)));
        });

    const refusals = refusalsOf(channel.value, sessionId);
    const disabled = busy || error?.final === true;
    const headingId = React.useId();
    /** A decision control: disabled while busy or when refused, then described by the refusal. */
    const guard = (action: DecisionAction) => {
        const at = refusals.findIndex((r) => r.actions.includes(action));
        return {disabled: disabled || at >= 0, 'aria-describedby': at >= 0 ? `${headingId}-refused-${at}` : undefined};
    };

    const wholeInput = stored !== undefined && (liveInput === undefined || hasCutString(liveInput));
    return {
        approval,
        stored,
        /** Whether the API answered (or failed): a request unknown to both is not there. */
        loaded: fromApi.done,
        tool: approval?.tool ?? stored?.tool ?? '',
        input: wholeInput ? toInput(stored.input) : (liveInput ?? {}),
        outcome,
        deciderName,
        busy,
        error,
        disabled,
        refusals,
        headingId,
        guard,
        run,
        answer,
    };
}

export type ApprovalRequest = ReturnType<typeof useApprovalRequest>;

export interface CardFrameProps {
    request: ApprovalRequest;
    heading: React.ReactNode;
    wording: Wording;
    /** What the outcome adds below its line (a question's answers). */
    outcomeDetail?: React.ReactNode;
    /** The request as the card shows it. */
    children: React.ReactNode;
    /** The ways to decide, shown while the request waits. */
    controls: React.ReactNode;
}

/**
 * The card around a request: its heading, the outcome in a live region (which takes the focus
 * when the buttons that had it go), the error of the last answer and who may not decide.
 */
export function CardFrame({request, heading, wording, outcomeDetail, children, controls}: CardFrameProps) {
    const {outcome, deciderName, error, refusals, headingId} = request;
    const cardRef = React.useRef<HTMLDivElement>(null);
    const outcomeRef = React.useRef<HTMLDivElement>(null);
    /** Whether the keyboard focus was in the card (it stays when the focused button goes away). */
    const hadFocus = React.useRef(false);

    React.useEffect(() => {
        if (outcome && hadFocus.current) {
            outcomeRef.current?.focus({preventScroll: true});
        }
    }, [outcome !== undefined]); // eslint-disable-line react-hooks/exhaustive-deps

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
            <div id={headingId}>{heading}</div>
            {children}
            <div ref={outcomeRef} tabIndex={-1} aria-live='polite' aria-atomic='true' style={{outline: 'none'}}>
                {outcome && (
                    <div className='claude-code-approval-outcome' style={{margin: '4px 0'}}>
                        <p style={{margin: 0}}>
                            {`${ICON[outcome.kind]} ${outcomeText(outcome, deciderName, wording)}`}
                            {outcome.at !== undefined && (
                                <>
                                    {' at '}
                                    <time dateTime={new Date(outcome.at).toISOString()}>{new Date(outcome.at).toLocaleTimeString()}</time>
                                </>
                            )}
                        </p>
                        {outcomeDetail}
                    </div>
                )}
            </div>

            {!outcome && <ErrorAlert error={error?.message} />}

            {!outcome &&
                refusals.map((r, i) => (
                    <p key={r.reason} id={`${headingId}-refused-${i}`} className='claude-code-approval-refusal' style={{margin: '4px 0', opacity: 0.75}}>
                        {r.reason}
                    </p>
                ))}
            {!outcome && controls}
        </div>
    );
}

/**
 * An inline form for a text sent with a denial (a reason, a plan's feedback): it takes the focus
 * when it opens, Escape and Cancel close it and give the focus back to the button that opened it.
 */
export function ReasonForm({
    id,
    label,
    submitLabel,
    required,
    multiline,
    submitClass = 'btn-danger',
    request,
    onSend,
    onClose,
}: {
    id: string;
    label: string;
    submitLabel: string;
    required: boolean;
    multiline?: boolean;
    /** The submit button's look: a denial is a danger button, feedback need not be. */
    submitClass?: string;
    request: ApprovalRequest;
    onSend: (text: string) => void;
    onClose: () => void;
}) {
    const [text, setText] = React.useState('');
    const field = React.useRef<HTMLInputElement & HTMLTextAreaElement>(null);
    // On opening, and again after an answer that failed (the disabled field lost the focus).
    React.useEffect(() => {
        if (!request.busy) {
            field.current?.focus();
        }
    }, [request.busy]);
    const fieldProps = {
        id,
        className: 'form-control',
        value: text,
        required,
        ref: field,
        disabled: request.disabled,
        onChange: (e: React.ChangeEvent<HTMLInputElement | HTMLTextAreaElement>) => setText(e.target.value),
        onKeyDown: (e: React.KeyboardEvent) => e.key === 'Escape' && onClose(),
    };
    return (
        <form
            onSubmit={(e) => {
                e.preventDefault();
                onSend(text.trim());
            }}
            style={multiline ? undefined : {display: 'flex', gap: 4, alignItems: 'center'}}
        >
            <label htmlFor={id} style={multiline ? {display: 'block'} : undefined}>
                {label}
            </label>
            {multiline ? <textarea {...fieldProps} rows={4} style={{width: '100%'}} /> : <input {...fieldProps} />}
            <div style={{display: 'flex', gap: 4}}>
                <button type='submit' className={`btn btn-sm ${submitClass}`} disabled={request.disabled || (required && text.trim() === '')}>
                    {submitLabel}
                </button>
                <button type='button' className='btn btn-sm btn-tertiary' disabled={request.busy} onClick={onClose}>
                    {'Cancel'}
                </button>
            </div>
        </form>
    );
}
