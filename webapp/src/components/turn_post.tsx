import * as React from 'react';
import {useSelector} from 'react-redux';

import type {SessionLive, ToolCall, Turn, TurnResult} from '../live/reducer';
import {sessionLive} from '../live/selectors';
import type {HostPost, HostState} from '../mattermost';
import {SafeMarkdown} from './safe_markdown';
import {InputView, parseInput, PRE_STYLE, toolTarget} from './tool_input';

export const prop = (post: HostPost, key: string): unknown => post.props?.[key];

/** The post's session: `claude_code_session`, or the `session_id` some posts carry. */
export function sessionOf(post: HostPost): string | undefined {
    const id = prop(post, 'claude_code_session') ?? prop(post, 'session_id');
    return typeof id === 'string' && id !== '' ? id : undefined;
}

/**
 * The live turn when it is this post's: `claude_code_turn` names it by its prompt id or by the
 * seq that opened it. The live state holds a session's latest turn only, so an older post (or a
 * post that does not say which turn it is) renders from its own message.
 */
export function liveTurnOf(post: HostPost, session: SessionLive | undefined): Turn | undefined {
    const turn = session?.turn;
    const ref = prop(post, 'claude_code_turn');
    if (!turn || ref === undefined || ref === null || ref === '') {
        return undefined;
    }
    if (typeof ref === 'number' || (typeof ref === 'string' && /^\d+$/.test(ref))) {
        return Number(ref) === turn.startSeq ? turn : undefined;
    }
    return ref === turn.promptId ? turn : undefined;
}

function duration(ms: number): string {
    const secs = ms / 1000;
    return secs < 60 ? `${secs.toFixed(1)} s` : `${Math.floor(secs / 60)} min ${Math.floor(secs % 60)} s`;
}

/** As the server's closing line (render.rs `closing_line`): `✓ Done in 12.3 s · 3 turns · $0.0123`. */
export function closingLine(r: TurnResult): string {
    const head = r.isError ? '✗ Failed' : r.subtype === 'success' ? '✓ Done' : '✗ Stopped';
    const parts = [r.durationMs === undefined ? head : `${head} in ${duration(r.durationMs)}`];
    if (r.numTurns !== undefined) {
        parts.push(`${r.numTurns} turn${r.numTurns === 1 ? '' : 's'}`);
    }
    if (r.turnCostUsd !== undefined) {
        parts.push(r.turnCostUsd >= 1 ? `$${r.turnCostUsd.toFixed(2)}` : `$${r.turnCostUsd.toFixed(4)}`);
    }
    const line = parts.join(' · ');
    return r.subtype === 'error_max_turns' ? `${line} — the turn limit was reached` : line;
}

function ToolRow({call, waiting}: {call: ToolCall; waiting: boolean}) {
    const input = parseInput(call.input);
    const target = toolTarget(call.tool, input, call.filePath);
    let icon = '⏳';
    let state = 'running';
    if (waiting) {
        icon = '✋';
        state = 'waiting for approval';
    } else if (call.phase === 'result') {
        icon = call.isError ? '✗' : '✓';
        state = call.isError ? 'failed' : 'done';
    }
    return (
        <details className='claude-code-tool' style={{margin: '2px 0'}}>
            <summary aria-label={`${call.tool}${target ? ` ${target}` : ''}: ${state}`} style={{cursor: 'pointer'}}>
                <span aria-hidden='true'>{`${icon} `}</span>
                <strong>{call.tool}</strong>
                {target && (
                    <>
                        {' '}
                        <code>{target}</code>
                    </>
                )}
                {(waiting || call.isError) && <span>{` — ${state}`}</span>}
            </summary>
            <InputView tool={call.tool} input={input} filePath={call.filePath} />
            {call.output !== undefined && call.output !== '' && (
                <pre role='region' aria-label={`Output of ${call.tool}`} style={PRE_STYLE}>
                    <code>{call.output}</code>
                </pre>
            )}
        </details>
    );
}

/** The part of a turn's text this post is: 0 for the turn's post, 1.. past Mattermost's post limit. */
function partOf(post: HostPost): number {
    const part = Number(prop(post, 'claude_code_part') ?? 0);
    return Number.isInteger(part) && part > 0 ? part : 0;
}

/**
 * A turn post: the running turn from the live state (text as it streams, tool rows, the closing
 * line), or the post's own message when no live state is this post's. Approvals are their own
 * card posts; a tool row only says it waits for one. Other clients show the message unchanged.
 */
export function TurnPost({post}: {post: HostPost}) {
    const sessionId = sessionOf(post);
    const session = useSelector((s: HostState) => sessionLive(s, sessionId));
    const turn = liveTurnOf(post, session);
    if (!turn || !session) {
        return <SafeMarkdown text={post.message} />;
    }
    if (partOf(post) > 0) {
        // The turn's post shows the whole live text: this continuation would repeat it.
        return (
            <div className='claude-code-turn-continued' style={{opacity: 0.75}}>
                {'(continued in the post above)'}
            </div>
        );
    }
    const approvals = Object.values(session.approvals);
    const waiting = (call: ToolCall) => approvals.some((a) => a.phase === 'requested' && a.toolUseId !== undefined && a.toolUseId === call.toolUseId);
    let footer: string;
    if (turn.result) {
        footer = closingLine(turn.result);
    } else if (turn.stopped) {
        footer = '✗ Stopped';
    } else if (turn.finished) {
        footer = `✗ Ended${session.lastError ? `: ${session.lastError.message}` : ''}`;
    } else {
        footer = '⏳ Working…';
    }
    return (
        <div className='claude-code-turn' aria-busy={!turn.finished}>
            {turn.text !== '' && <SafeMarkdown text={turn.text} />}
            {turn.tools.map((call) => (
                <ToolRow key={call.toolUseId} call={call} waiting={waiting(call)} />
            ))}
            <div className='claude-code-turn-footer' role='status' style={{opacity: 0.75, marginTop: 4}}>
                {footer}
            </div>
        </div>
    );
}
