import {afterEach, describe, expect, it, vi} from 'vitest';

import type {EventsPage, LiveEvent} from '../src/api_types';
import {LiveController, RETRY_FIRST_MS} from '../src/live/controller';
import {reducer, type EventsReceived, type LiveState} from '../src/live/reducer';
import {ev} from './events';

/** A store with the real reducer, a fake `events?after=` answered from `server`, 2 events a page. */
function setup(server: LiveEvent[], opts: {pageSize?: number; onError?: (id: string, e: unknown) => void} = {}) {
    let state: LiveState = {};
    const dispatched: EventsReceived[] = [];
    const pageSize = opts.pageSize ?? 2;
    const fetchEvents = vi.fn(async (sessionId: string, after: number): Promise<EventsPage> => {
        const mine = server.filter((e) => e.session_id === sessionId);
        return {events: mine.filter((e) => e.seq > after).slice(0, pageSize), last_seq: mine.at(-1)?.seq ?? 0};
    });
    const controller = new LiveController({
        getState: () => state,
        dispatch: (action) => {
            dispatched.push(action);
            state = reducer(state, action);
        },
        fetchEvents,
        onError: opts.onError,
    });
    return {controller, fetchEvents, dispatched, state: () => state};
}

const text = (n: number, session = 's1') => ev(n, 'message', {text: `${n} `, session_id: session});

afterEach(() => {
    vi.useRealTimers();
});

describe('LiveController', () => {
    it('applies the next event at once, without asking the server', () => {
        const t = setup([]);
        t.controller.receive(text(1));
        t.controller.receive(text(2));
        t.controller.receive(text(2));
        expect(t.state().s1.turn?.text).toBe('1 2 ');
        expect(t.dispatched).toHaveLength(2);
        expect(t.fetchEvents).not.toHaveBeenCalled();
    });

    it('replays a gap from the last applied seq, page after page until an empty one', async () => {
        const server = [1, 2, 3, 4, 5, 6, 7].map((n) => text(n));
        const t = setup(server);
        t.controller.receive(server[0]);
        t.controller.receive(server[1]);

        t.controller.receive(server[6]); // 3..6 missed

        await vi.waitFor(() => expect(t.fetchEvents).toHaveBeenCalledTimes(4));
        expect(t.fetchEvents.mock.calls.map(([, after]) => after)).toEqual([2, 4, 6, 7]);
        expect(t.state().s1.turn?.text).toBe('1 2 3 4 5 6 7 ');
        expect(t.state().s1.lastSeq).toBe(7);
    });

    it('catches up a session it never had an event of, from seq 0', async () => {
        const server = [1, 2, 3].map((n) => text(n, 's9'));
        const t = setup(server);
        await t.controller.catchUp('s9');
        expect(t.fetchEvents.mock.calls.map(([id, after]) => [id, after])).toEqual([
            ['s9', 0],
            ['s9', 2],
            ['s9', 3],
        ]);
        expect(t.state().s9.turn?.text).toBe('1 2 3 ');
    });

    it('a session first seen mid-way is replayed from the start', async () => {
        const server = [1, 2, 3].map((n) => text(n));
        const t = setup(server);
        t.controller.receive(server[2]);
        await vi.waitFor(() => expect(t.state().s1?.lastSeq).toBe(3));
        expect(t.fetchEvents.mock.calls[0]).toEqual(['s1', 0]);
        expect(t.state().s1.turn?.text).toBe('1 2 3 ');
    });

    it('applies each event once when websocket events arrive during the replay (held, then fed again)', async () => {
        const t = setup([]);
        let release!: () => void;
        const gate = new Promise<void>((resolve) => (release = resolve));
        // The server had 1..5 when the replay asked; 6 is published after its last (empty) page.
        t.fetchEvents
            .mockImplementationOnce(async () => {
                await gate;
                return {events: [1, 2, 3, 4, 5].map((n) => text(n)), last_seq: 5};
            })
            .mockImplementationOnce(async () => ({events: [], last_seq: 5}));

        t.controller.receive(text(3)); // a gap: replay after 0
        t.controller.receive(text(4)); // in the replay's answer as well
        t.controller.receive(text(6)); // in no answer: only the websocket has it
        expect(t.dispatched).toEqual([]);
        release();

        await vi.waitFor(() => expect(t.state().s1?.lastSeq).toBe(6));
        expect(t.state().s1.turn?.text).toBe('1 2 3 4 5 6 ');
        expect(t.fetchEvents.mock.calls.map(([, after]) => after)).toEqual([0, 5]);
        // Each seq reached the store once: 1..5 in the page, then 6 alone.
        expect(t.dispatched.map((a) => a.events.map((e) => e.seq))).toEqual([[1, 2, 3, 4, 5], [6]]);
    });

    it('on reconnect replays every known session from its own last seq', async () => {
        const server = [text(1), text(2), text(3), text(1, 's2'), text(2, 's2')];
        const t = setup(server);
        t.controller.receive(server[0]);
        t.controller.receive(server[3]);

        await t.controller.replayAll();

        expect(t.fetchEvents.mock.calls.filter(([id]) => id === 's1')[0]).toEqual(['s1', 1]);
        expect(t.fetchEvents.mock.calls.filter(([id]) => id === 's2')[0]).toEqual(['s2', 1]);
        expect(t.state().s1.turn?.text).toBe('1 2 3 ');
        expect(t.state().s2.turn?.text).toBe('1 2 ');
    });

    it('learns of an approval decided elsewhere while the websocket was down', async () => {
        const server = [
            ev(1, 'approval', {phase: 'requested', approval_id: 'a1', tool: 'Bash', input: '{"command":"make"}'}),
            ev(2, 'approval', {phase: 'decided', approval_id: 'a1', decision: 'approve', by: 'bob'}),
        ];
        const t = setup(server);
        t.controller.receive(server[0]);
        expect(t.state().s1.approvals.a1.phase).toBe('requested');

        await t.controller.replayAll();

        expect(t.state().s1.approvals.a1).toMatchObject({phase: 'decided', decision: 'approve', by: 'bob'});
    });

    it("a replayed gap names the new turn by its running status's prompt_id, the websocket copy ignored", async () => {
        const server = [
            ev(1, 'prompt', {prompt_id: 'p1', author: 'a', text: 'x'}),
            ev(2, 'prompt', {prompt_id: 'p2', author: 'a', text: 'y'}),
            ev(3, 'status', {state: 'running', previous: 'idle', prompt_id: 'p2'}),
            ev(4, 'message', {text: 'for y'}),
        ];
        const t = setup(server, {pageSize: 10});
        t.controller.receive(server[0]);
        t.controller.receive(server[3]); // 2 and 3 missed

        await vi.waitFor(() => expect(t.state().s1.lastSeq).toBe(4));
        t.controller.receive(server[2]);

        expect(t.state().s1.turn).toMatchObject({promptId: 'p2', startSeq: 3, text: 'for y'});
        expect(t.dispatched.flatMap((a) => a.events.map((e) => e.seq))).toEqual([1, 2, 3, 4]);
    });

    it('retries a failed replay after a delay, holding what arrives meanwhile', async () => {
        vi.useFakeTimers();
        const server = [1, 2, 3, 4].map((n) => text(n));
        const onError = vi.fn();
        const t = setup(server, {pageSize: 10, onError});
        const controller = t.controller;
        t.fetchEvents.mockRejectedValueOnce(new TypeError('Failed to fetch'));

        controller.receive(server[2]);
        await vi.advanceTimersByTimeAsync(0);
        expect(onError).toHaveBeenCalledWith('s1', expect.any(TypeError));
        controller.receive(server[3]); // held for the retry, not a second request
        expect(t.fetchEvents).toHaveBeenCalledTimes(1);

        await vi.advanceTimersByTimeAsync(RETRY_FIRST_MS);

        expect(t.state().s1.turn?.text).toBe('1 2 3 4 ');
        expect(t.fetchEvents.mock.calls.map(([, after]) => after)).toEqual([0, 0, 4]);
    });

    it('stop() clears the retry timer and dispatches nothing more', async () => {
        vi.useFakeTimers();
        const t = setup([text(1), text(2)]);
        t.fetchEvents.mockRejectedValueOnce(new TypeError('Failed to fetch'));
        t.controller.receive(text(2));
        await vi.advanceTimersByTimeAsync(0);
        expect(vi.getTimerCount()).toBe(1);

        t.controller.stop();

        expect(vi.getTimerCount()).toBe(0);
        t.controller.receive(text(1));
        await t.controller.replayAll();
        expect(t.dispatched).toEqual([]);
        expect(t.fetchEvents).toHaveBeenCalledTimes(1);
    });
});
