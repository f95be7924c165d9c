import type {LiveEvent, SessionState} from '../api_types';

// The live state of every session this client has seen an event of, built from the
// `custom_claude-code_*` websocket events and `events?after=` replays. Each event is applied at
// most once: a session's events are numbered 1, 2, 3, … and `lastSeq` only grows.

export interface ToolCall {
    toolUseId: string;
    tool: string;
    /** The tool's input as JSON text (the events are flat). */
    input?: string;
    filePath?: string;
    /** `use` until its result arrives. */
    phase: 'use' | 'result';
    isError?: boolean;
    /** The first 4 KiB of the output. */
    output?: string;
}

export interface TurnResult {
    isError: boolean;
    subtype: string;
    durationMs?: number;
    numTurns?: number;
    /** A decimal string, as the server sends it: the CLI process's total so far. */
    totalCostUsd?: string;
    /** This turn's share of it (the total less the previous turn's, as the turn post's closing line). */
    turnCostUsd?: number;
    inputTokens?: number;
    outputTokens?: number;
}

export interface Turn {
    /** The prompt this turn answers: as the `running` status names it, else the oldest one accepted and not yet finished. */
    promptId?: string;
    /** The seq of the event that opened the turn (a turn post may name its turn by it). */
    startSeq: number;
    /** The text streamed so far (every `message` event appended). */
    text: string;
    tools: ToolCall[];
    finished: boolean;
    /** Ended by the session stopping, before its result (which may still come and is then kept). */
    stopped?: boolean;
    result?: TurnResult;
}

export type ApprovalPhase = 'requested' | 'decided' | 'withdrawn' | 'expired';

export interface LiveApproval {
    approvalId: string;
    phase: ApprovalPhase;
    tool?: string;
    toolUseId?: string;
    input?: string;
    description?: string;
    requestedAt?: number;
    /** allow, allow_with_input, allow_for_session, deny or deny_and_interrupt. */
    decision?: string;
    /** Who decided (a user id). */
    by?: string;
    /** The deny reason, or why it expired. */
    reason?: string;
    endedAt?: number;
}

export interface FileChange {
    seq: number;
    path: string;
    action: 'created' | 'updated' | 'deleted';
    /** `claude` or a user id. */
    by: string;
    at: number;
}

export interface LiveError {
    kind: string;
    message: string;
    at: number;
}

export interface SessionLive {
    lastSeq: number;
    status?: SessionState;
    /** Prompts accepted and not answered yet, oldest first (a turn answers them in order). */
    pendingPrompts: string[];
    turn?: Turn;
    approvals: Record<string, LiveApproval>;
    /** The latest last, at most FILE_CHANGES_KEPT. */
    fileChanges: FileChange[];
    lastError?: LiveError;
    /** The CLI's cumulative cost at the last turn end (a new process starts again at 0). */
    lastTotalCostUsd?: number;
    /** The sum of the cost of every turn applied here (the panel's "cost so far"). */
    costUsd?: number;
}

export type LiveState = Record<string, SessionLive>;

/** The panel shows recent changes; a long session must not grow the store without bound. */
export const FILE_CHANGES_KEPT = 200;

export const EVENTS_RECEIVED = 'claude-code/events_received';

export interface EventsReceived {
    type: typeof EVENTS_RECEIVED;
    /** One session's or several sessions' events, each applied in this order. */
    events: LiveEvent[];
}

/** Where an event stands against what is applied: already applied, the next one, or past a gap. */
export function classify(lastSeq: number, seq: number): 'duplicate' | 'next' | 'gap' {
    if (seq <= lastSeq) {
        return 'duplicate';
    }
    return seq === lastSeq + 1 ? 'next' : 'gap';
}

export function lastSeqOf(state: LiveState, sessionId: string): number {
    return state[sessionId]?.lastSeq ?? 0;
}

const EMPTY_SESSION: SessionLive = {lastSeq: 0, pendingPrompts: [], approvals: {}, fileChanges: []};

export function reducer(state: LiveState = {}, action: {type: string}): LiveState {
    if (action.type !== EVENTS_RECEIVED) {
        return state;
    }
    let next = state;
    for (const event of (action as EventsReceived).events) {
        const session = next[event.session_id] ?? EMPTY_SESSION;
        // Whether the event is the next one or follows a gap is the controller's concern (it
        // replays the gap first; a replay's own holes are events the server no longer has):
        // here only "never twice, never backwards".
        if (classify(session.lastSeq, event.seq) === 'duplicate') {
            continue;
        }
        if (next === state) {
            next = {...state};
        }
        next[event.session_id] = {...applyEvent(session, event), lastSeq: event.seq};
    }
    return next;
}

const str = (e: LiveEvent, key: string): string | undefined => (typeof e[key] === 'string' ? (e[key] as string) : undefined);
const num = (e: LiveEvent, key: string): number | undefined => (typeof e[key] === 'number' ? (e[key] as number) : undefined);

/** The running turn, or a new one when the last has finished (its first text or tool call). */
function runningTurn(s: SessionLive, seq: number): Turn {
    if (s.turn && !s.turn.finished) {
        return s.turn;
    }
    return {promptId: s.pendingPrompts[0], startSeq: seq, text: '', tools: [], finished: false};
}

/**
 * The session as it goes `running`. The server names the prompt whose turn that is
 * (`prompt_id`); an older server does not, and then the oldest pending prompt is taken.
 */
function startRunning(s: SessionLive, seq: number, promptId: string | undefined): SessionLive {
    const current = runningTurn(s, seq);
    if (promptId === undefined || current.promptId === promptId) {
        // Back to running after an approval, or the turn the fallback named.
        return {...s, turn: current};
    }
    // Prompts are answered in order: those queued before the named one are over (dropped, or
    // ended by an event this client never saw), so the fallback must not pick them again.
    const at = s.pendingPrompts.indexOf(promptId);
    const pendingPrompts = at > 0 ? s.pendingPrompts.slice(at) : s.pendingPrompts;
    // A turn whose prompt is unknown (a replay that began mid-turn) is this one; a turn of
    // another prompt is over and this prompt's begins.
    const turn = current.promptId === undefined ? current : {startSeq: seq, text: '', tools: [], finished: false};
    return {...s, pendingPrompts, turn: {...turn, promptId}};
}

function applyEvent(s: SessionLive, e: LiveEvent): SessionLive {
    switch (e.event) {
    case 'status': {
        const state = str(e, 'state') as SessionState | undefined;
        let next = s;
        if (state === 'running') {
            // A turn exists from its start, before any text: the post can say "working".
            next = startRunning(s, e.seq, str(e, 'prompt_id'));
        } else if (state === 'starting') {
            // A new CLI process (a start, a resume): its total cost counts from 0 again.
            next = {...s, lastTotalCostUsd: undefined};
        } else if (state === 'stopping' || state === 'stopped' || state === 'crashed') {
            // No `turn` event may come for the turn it was running.
            next = endProcess(s, state !== 'crashed');
        }
        return {...next, status: state};
    }
    case 'prompt': {
        const promptId = str(e, 'prompt_id');
        return promptId ? {...s, pendingPrompts: [...s.pendingPrompts, promptId]} : s;
    }
    case 'message': {
        const turn = runningTurn(s, e.seq);
        return {...s, turn: {...turn, text: turn.text + (str(e, 'text') ?? '')}};
    }
    case 'tool':
        return applyTool(s, e);
    case 'turn': {
        // The result of a turn the stop ended already still belongs to it (its text, its post).
        const stoppedTurn = s.turn?.stopped && !s.turn.result && [undefined, s.turn.promptId].includes(str(e, 'prompt_id')) ? s.turn : undefined;
        const turn = stoppedTurn ?? runningTurn(s, e.seq);
        const promptId = str(e, 'prompt_id') ?? turn.promptId;
        const parsed = Number(str(e, 'total_cost_usd'));
        const total = str(e, 'total_cost_usd') !== undefined && Number.isFinite(parsed) ? parsed : undefined;
        const before = s.lastTotalCostUsd !== undefined && total !== undefined && total >= s.lastTotalCostUsd ? s.lastTotalCostUsd : 0;
        const result: TurnResult = {
            isError: e.is_error === true,
            subtype: str(e, 'subtype') ?? '',
            durationMs: num(e, 'duration_ms'),
            numTurns: num(e, 'num_turns'),
            totalCostUsd: str(e, 'total_cost_usd'),
            turnCostUsd: total === undefined ? undefined : Math.max(0, total - before),
            inputTokens: num(e, 'input_tokens'),
            outputTokens: num(e, 'output_tokens'),
        };
        return {
            ...s,
            pendingPrompts: s.pendingPrompts.filter((id) => id !== promptId),
            turn: {...turn, promptId, finished: true, result},
            lastTotalCostUsd: total ?? s.lastTotalCostUsd,
            // Summed per turn, not the CLI's total: a restarted process counts from 0 again.
            costUsd: result.turnCostUsd === undefined ? s.costUsd : (s.costUsd ?? 0) + result.turnCostUsd,
        };
    }
    case 'approval':
        return applyApproval(s, e);
    case 'file_change': {
        const change: FileChange = {
            seq: e.seq,
            path: str(e, 'path') ?? '',
            action: (str(e, 'action') ?? 'updated') as FileChange['action'],
            by: str(e, 'by') ?? '',
            at: e.at,
        };
        return {...s, fileChanges: [...s.fileChanges, change].slice(-FILE_CHANGES_KEPT)};
    }
    case 'error': {
        const lastError = {kind: str(e, 'kind') ?? '', message: str(e, 'message') ?? '', at: e.at};
        return lastError.kind === 'crashed' ? {...endProcess(s, false), lastError} : {...s, lastError};
    }
    default:
        // An event name this bundle does not know (a newer server): its seq counts as applied.
        return s;
    }
}

/**
 * The CLI process ends (a stop, a crash): its turn is over and its queued prompts were dropped
 * (the next prompt starts a new process). `stopped`: ended on purpose, not by a failure.
 */
function endProcess(s: SessionLive, stopped: boolean): SessionLive {
    const turn = s.turn && !s.turn.finished ? {...s.turn, finished: true, ...(stopped ? {stopped: true} : {})} : s.turn;
    return {...s, turn, pendingPrompts: []};
}

function applyTool(s: SessionLive, e: LiveEvent): SessionLive {
    const toolUseId = str(e, 'tool_use_id');
    if (!toolUseId) {
        return s;
    }
    const turn = runningTurn(s, e.seq);
    const known = turn.tools.find((t) => t.toolUseId === toolUseId);
    const call: ToolCall =
        str(e, 'phase') === 'result'
            ? {
                toolUseId,
                tool: str(e, 'tool') ?? known?.tool ?? '',
                input: known?.input,
                filePath: str(e, 'file_path') ?? known?.filePath,
                phase: 'result',
                isError: e.is_error === true,
                output: str(e, 'output'),
            }
            : {toolUseId, tool: str(e, 'tool') ?? '', input: str(e, 'input'), filePath: str(e, 'file_path'), phase: 'use'};
    const tools = known ? turn.tools.map((t) => (t === known ? call : t)) : [...turn.tools, call];
    return {...s, turn: {...turn, tools}};
}

function applyApproval(s: SessionLive, e: LiveEvent): SessionLive {
    const approvalId = str(e, 'approval_id');
    const phase = str(e, 'phase') as ApprovalPhase | undefined;
    if (!approvalId || !phase) {
        return s;
    }
    const known: LiveApproval = s.approvals[approvalId] ?? {approvalId, phase};
    let approval: LiveApproval;
    if (phase === 'requested') {
        approval = {
            approvalId,
            phase,
            tool: str(e, 'tool'),
            toolUseId: str(e, 'tool_use_id'),
            input: str(e, 'input'),
            description: str(e, 'description'),
            requestedAt: e.at,
        };
    } else {
        approval = {...known, phase, decision: str(e, 'decision'), by: str(e, 'by'), reason: str(e, 'reason'), endedAt: e.at};
    }
    return {...s, approvals: {...s.approvals, [approvalId]: approval}};
}
