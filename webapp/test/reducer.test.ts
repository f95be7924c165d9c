import {describe, expect, it} from 'vitest';

import type {LiveEvent} from '../src/api_types';
import {classify, EVENTS_RECEIVED, FILE_CHANGES_KEPT, reducer, type LiveState} from '../src/live/reducer';
import {ev} from './events';

const apply = (events: LiveEvent[], state: LiveState = {}) => reducer(state, {type: EVENTS_RECEIVED, events} as {type: string});

describe('classify', () => {
    it('says duplicate, next or gap', () => {
        expect(classify(0, 1)).toBe('next');
        expect(classify(4, 5)).toBe('next');
        expect(classify(4, 4)).toBe('duplicate');
        expect(classify(4, 2)).toBe('duplicate');
        expect(classify(4, 6)).toBe('gap');
        expect(classify(0, 3)).toBe('gap');
    });
});

describe('reducer', () => {
    const turn = [
        ev(1, 'prompt', {prompt_id: 'p1', author: 'alice', text: 'list files'}),
        ev(2, 'status', {state: 'running', previous: 'idle'}),
        ev(3, 'message', {text: 'Let me '}),
        ev(4, 'tool', {phase: 'use', tool_use_id: 't1', tool: 'Bash', input: '{"command":"ls"}'}),
        ev(5, 'tool', {phase: 'result', tool_use_id: 't1', tool: 'Bash', is_error: false, output: 'a.rs\n'}),
        ev(6, 'message', {text: 'look.'}),
        ev(7, 'turn', {prompt_id: 'p1', is_error: false, subtype: 'success', duration_ms: 1200, num_turns: 2, total_cost_usd: '0.0123'}),
        ev(8, 'status', {state: 'idle', previous: 'running'}),
    ];

    it('applies a turn in order: status, text, tools, result', () => {
        const s = apply(turn).s1;
        expect(s.lastSeq).toBe(8);
        expect(s.status).toBe('idle');
        expect(s.pendingPrompts).toEqual([]);
        expect(s.turn).toEqual({
            promptId: 'p1',
            startSeq: 2,
            text: 'Let me look.',
            tools: [{toolUseId: 't1', tool: 'Bash', input: '{"command":"ls"}', filePath: undefined, phase: 'result', isError: false, output: 'a.rs\n'}],
            finished: true,
            result: {isError: false, subtype: 'success', durationMs: 1200, numTurns: 2, totalCostUsd: '0.0123', turnCostUsd: 0.0123, inputTokens: undefined, outputTokens: undefined},
        });
    });

    it("counts a turn's cost as the process total less the previous turn's, from 0 again after a restart", () => {
        const end = (seq: number, total: string) => ev(seq, 'turn', {is_error: false, subtype: 'success', total_cost_usd: total});
        const costs = (events: LiveEvent[]) => {
            let state: LiveState = {};
            return events.map((e) => (state = apply([e], state)).s1.turn?.result?.turnCostUsd);
        };
        expect(costs([end(1, '0.5'), end(2, '0.75'), end(3, '0.25')])).toEqual([0.5, 0.25, 0.25]);
    });

    it('sums the cost of every turn applied, across a process restart, and leaves it unset before any', () => {
        const end = (seq: number, total: string) => ev(seq, 'turn', {is_error: false, subtype: 'success', total_cost_usd: total});
        expect(apply([ev(1, 'message', {text: 'x'})]).s1.costUsd).toBeUndefined();
        expect(apply([end(1, '0.5'), end(2, '0.75'), end(3, '0.25'), ev(4, 'turn', {is_error: true, subtype: 'error'})]).s1.costUsd).toBe(1);
    });

    it('ignores an event whose seq is already applied, in the same batch or a later one', () => {
        const once = apply(turn);
        const again = apply([turn[2], turn[5]], once);
        expect(again).toBe(once);
        const doubled = apply([ev(1, 'message', {text: 'a'}), ev(1, 'message', {text: 'a'}), ev(2, 'message', {text: 'b'})]);
        expect(doubled.s1.turn?.text).toBe('ab');
    });

    it('never goes backwards: an older event after a newer one is dropped', () => {
        const s = apply([ev(5, 'message', {text: 'new'}), ev(4, 'message', {text: 'old'})]);
        expect(s.s1.turn?.text).toBe('new');
        expect(s.s1.lastSeq).toBe(5);
    });

    it('keeps sessions apart', () => {
        const s = apply([ev(1, 'message', {text: 'one'}), ev(1, 'message', {session_id: 's2', text: 'two'})]);
        expect(s.s1.turn?.text).toBe('one');
        expect(s.s2.turn?.text).toBe('two');
    });

    it('starts a new turn after a finished one, for the next queued prompt', () => {
        const s = apply([
            ...turn,
            ev(9, 'prompt', {prompt_id: 'p2', author: 'bob', text: 'and now?'}),
            ev(10, 'status', {state: 'running', previous: 'idle'}),
            ev(11, 'message', {text: 'Next.'}),
        ]).s1;
        expect(s.turn).toMatchObject({promptId: 'p2', text: 'Next.', tools: [], finished: false});
        expect(s.pendingPrompts).toEqual(['p2']);
    });

    it("names the turn by the running status's prompt_id, not by the oldest pending prompt", () => {
        // p1 was dropped without this client seeing its end: the fallback would say p1.
        const s = apply([
            ev(1, 'prompt', {prompt_id: 'p1', author: 'a', text: 'x'}),
            ev(2, 'prompt', {prompt_id: 'p2', author: 'a', text: 'y'}),
            ev(3, 'status', {state: 'running', previous: 'idle', prompt_id: 'p2'}),
            ev(4, 'message', {text: 'for y'}),
        ]).s1;
        expect(s.turn).toMatchObject({promptId: 'p2', startSeq: 3, text: 'for y', finished: false});
        expect(s.pendingPrompts).toEqual(['p2']);
    });

    it('keeps the turn when the session runs again after an approval, and starts a new one for another prompt', () => {
        const first = apply([
            ev(1, 'prompt', {prompt_id: 'p1', author: 'a', text: 'x'}),
            ev(2, 'status', {state: 'running', previous: 'idle', prompt_id: 'p1'}),
            ev(3, 'message', {text: 'half'}),
            ev(4, 'status', {state: 'awaiting_approval', previous: 'running'}),
            ev(5, 'status', {state: 'running', previous: 'awaiting_approval', prompt_id: 'p1'}),
        ]);
        expect(first.s1.turn).toMatchObject({promptId: 'p1', startSeq: 2, text: 'half'});

        // p1's turn end never came (the server no longer had it): p2's running status begins p2's turn.
        const second = apply([ev(6, 'prompt', {prompt_id: 'p2', author: 'a', text: 'y'}), ev(7, 'status', {state: 'running', previous: 'idle', prompt_id: 'p2'})], first);
        expect(second.s1.turn).toEqual({promptId: 'p2', startSeq: 7, text: '', tools: [], finished: false});
        expect(second.s1.pendingPrompts).toEqual(['p2']);
    });

    it('names a turn first seen mid-way (its prompt unknown) by the running status', () => {
        const s = apply([ev(1, 'message', {text: 'mid-way '}), ev(2, 'status', {state: 'running', previous: 'awaiting_approval', prompt_id: 'p9'})]).s1;
        expect(s.turn).toMatchObject({promptId: 'p9', startSeq: 1, text: 'mid-way '});
    });

    it('applies a running status with prompt_id once, a replayed copy changing nothing', () => {
        const events = [ev(1, 'prompt', {prompt_id: 'p1', author: 'a', text: 'x'}), ev(2, 'status', {state: 'running', previous: 'idle', prompt_id: 'p1'})];
        const once = apply(events);
        expect(apply(events, once)).toBe(once);
    });

    it('follows an approval from requested to decided by someone else', () => {
        const requested = apply([
            ev(1, 'approval', {phase: 'requested', approval_id: 'a1', tool_use_id: 't1', tool: 'Bash', input: '{"command":"rm -rf target"}', description: 'clean'}),
        ]);
        expect(requested.s1.approvals.a1).toEqual({
            approvalId: 'a1',
            phase: 'requested',
            tool: 'Bash',
            toolUseId: 't1',
            input: '{"command":"rm -rf target"}',
            description: 'clean',
            requestedAt: 1_700_000_000_001,
        });
        const decided = apply([ev(2, 'approval', {phase: 'decided', approval_id: 'a1', decision: 'deny', by: 'bob', reason: 'not on main'})], requested);
        expect(decided.s1.approvals.a1).toMatchObject({phase: 'decided', decision: 'deny', by: 'bob', reason: 'not on main', tool: 'Bash', endedAt: 1_700_000_000_002});
        // The earlier state is not mutated (selectors compare by reference).
        expect(requested.s1.approvals.a1.phase).toBe('requested');
    });

    it('marks approvals withdrawn and expired', () => {
        const s = apply([
            ev(1, 'approval', {phase: 'requested', approval_id: 'a1', tool: 'Bash', input: '{}'}),
            ev(2, 'approval', {phase: 'requested', approval_id: 'a2', tool: 'Edit', input: '{}'}),
            ev(3, 'approval', {phase: 'withdrawn', approval_id: 'a1'}),
            ev(4, 'approval', {phase: 'expired', approval_id: 'a2', reason: 'no decision in 10 minutes'}),
        ]).s1;
        expect(s.approvals.a1.phase).toBe('withdrawn');
        expect(s.approvals.a2).toMatchObject({phase: 'expired', reason: 'no decision in 10 minutes', tool: 'Edit'});
    });

    it('records file changes, the latest FILE_CHANGES_KEPT', () => {
        const events = Array.from({length: FILE_CHANGES_KEPT + 5}, (_, i) => ev(i + 1, 'file_change', {path: `f${i + 1}.rs`, action: 'updated', by: 'claude'}));
        const s = apply(events).s1;
        expect(s.fileChanges).toHaveLength(FILE_CHANGES_KEPT);
        expect(s.fileChanges[0].path).toBe('f6.rs');
        expect(s.fileChanges.at(-1)).toEqual({seq: FILE_CHANGES_KEPT + 5, path: `f${FILE_CHANGES_KEPT + 5}.rs`, action: 'updated', by: 'claude', at: 1_700_000_000_000 + FILE_CHANGES_KEPT + 5});
    });

    it('ends the turn and drops the queued prompts when the CLI crashed', () => {
        const s = apply([
            ev(1, 'prompt', {prompt_id: 'p1', author: 'a', text: 'x'}),
            ev(2, 'prompt', {prompt_id: 'p2', author: 'a', text: 'y'}),
            ev(3, 'message', {text: 'half'}),
            ev(4, 'error', {kind: 'crashed', message: 'Claude Code exited with code 1 unexpectedly; the next prompt resumes', exit_code: 1, dropped_prompts: 1}),
        ]).s1;
        expect(s.turn).toMatchObject({promptId: 'p1', text: 'half', finished: true});
        expect(s.pendingPrompts).toEqual([]);
        expect(s.lastError?.kind).toBe('crashed');
    });

    it('ends a turn the session stopped before its result, drops the queued prompts, and keeps a result that still comes', () => {
        const running = [
            ev(1, 'prompt', {prompt_id: 'p1', author: 'a', text: 'x'}),
            ev(2, 'prompt', {prompt_id: 'p2', author: 'a', text: 'y'}),
            ev(3, 'status', {state: 'running', prompt_id: 'p1'}),
            ev(4, 'message', {text: 'half'}),
        ];
        for (const state of ['stopping', 'stopped', 'crashed']) {
            const s = apply([...running, ev(5, 'status', {state})]).s1;
            expect(s.turn).toMatchObject({promptId: 'p1', text: 'half', finished: true});
            expect(s.turn?.stopped).toBe(state === 'crashed' ? undefined : true);
            expect(s.pendingPrompts).toEqual([]);
        }
        const late = apply([...running, ev(5, 'status', {state: 'stopping'}), ev(6, 'turn', {prompt_id: 'p1', is_error: false, subtype: 'error_during_execution', total_cost_usd: '0.01'})]).s1;
        expect(late.turn).toMatchObject({promptId: 'p1', startSeq: 3, text: 'half', finished: true, result: {subtype: 'error_during_execution'}});
    });

    it('counts the cost of a resumed process from 0: 0.05, stop, resume, 0.08 is 0.13', () => {
        const s = apply([
            ev(1, 'status', {state: 'starting'}),
            ev(2, 'turn', {is_error: false, subtype: 'success', total_cost_usd: '0.05'}),
            ev(3, 'status', {state: 'stopping'}),
            ev(4, 'status', {state: 'stopped'}),
            ev(5, 'status', {state: 'starting'}),
            ev(6, 'turn', {is_error: false, subtype: 'success', total_cost_usd: '0.08'}),
        ]).s1;
        expect(s.turn?.result?.turnCostUsd).toBe(0.08);
        expect(s.costUsd).toBeCloseTo(0.13, 10);
    });

    it('counts an unknown event name as applied without changing anything else', () => {
        const before = apply([ev(1, 'message', {text: 'a'})]);
        const after = apply([{...ev(2, 'message'), event: 'from_the_future' as 'message'}], before);
        expect(after.s1.lastSeq).toBe(2);
        expect(after.s1.turn).toBe(before.s1.turn);
    });

    it('ignores actions of others', () => {
        const state = apply(turn);
        expect(reducer(state, {type: 'RECEIVED_POSTS'})).toBe(state);
    });
});
