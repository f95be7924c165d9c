import type {EventsPage, LiveEvent} from '../api_types';
import {classify, EVENTS_RECEIVED, lastSeqOf, type EventsReceived, type LiveState} from './reducer';

export interface ControllerDeps {
    /** The plugin's slice of the host store. */
    getState(): LiveState;
    dispatch(action: EventsReceived): void;
    /** `GET sessions/{id}/events?after=`. */
    fetchEvents(sessionId: string, after: number): Promise<EventsPage>;
    /** A failed replay, before its retry. */
    onError?(sessionId: string, error: unknown): void;
}

/** A replay that failed (the network is down during a reconnect) is tried again after this, doubling. */
export const RETRY_FIRST_MS = 1000;
export const RETRY_MAX_MS = 30_000;

/**
 * Feeds websocket events to the reducer in sequence. The next event is applied at once; one past
 * a gap starts a replay of the session from the last applied seq instead. Events that arrive
 * while a session is being replayed (or waits for a retry) are held and fed again afterwards, so
 * nothing falls between the replay's last page and the websocket.
 */
export class LiveController {
    /** Sessions with a replay running or due → the websocket events that came meanwhile. */
    private readonly held = new Map<string, LiveEvent[]>();
    private readonly inFlight = new Set<string>();
    private readonly retries = new Map<string, {timer: ReturnType<typeof setTimeout>; delay: number}>();
    private stopped = false;

    constructor(private readonly deps: ControllerDeps) {}

    /** A websocket event. */
    receive(event: LiveEvent): void {
        if (this.stopped) {
            return;
        }
        const held = this.held.get(event.session_id);
        if (held) {
            held.push(event);
            return;
        }
        switch (classify(lastSeqOf(this.deps.getState(), event.session_id), event.seq)) {
        case 'duplicate':
            return;
        case 'next':
            this.deps.dispatch({type: EVENTS_RECEIVED, events: [event]});
            return;
        case 'gap':
            void this.replay(event.session_id, [event]);
        }
    }

    /** After a websocket reconnect: whatever each known session published while it was down. */
    async replayAll(): Promise<void> {
        await Promise.all(Object.keys(this.deps.getState()).map((id) => this.replay(id, [])));
    }

    /** A session the page shows without having followed it (the panel): its events so far. */
    catchUp(sessionId: string): Promise<void> {
        return this.replay(sessionId, []);
    }

    /** Plugin uninitialize: no timer left, and nothing dispatched any more. */
    stop(): void {
        this.stopped = true;
        for (const {timer} of this.retries.values()) {
            clearTimeout(timer);
        }
        this.retries.clear();
        this.held.clear();
    }

    private async replay(sessionId: string, events: LiveEvent[]): Promise<void> {
        if (this.stopped) {
            return;
        }
        const held = this.held.get(sessionId) ?? [];
        held.push(...events);
        this.held.set(sessionId, held);
        if (this.inFlight.has(sessionId)) {
            return;
        }
        // A retry is due; a new reason to replay (a reconnect, a gap) runs it now. Its delay
        // stays, so a failure again waits longer.
        clearTimeout(this.retries.get(sessionId)?.timer);
        this.inFlight.add(sessionId);
        try {
            await this.fetchAll(sessionId);
        } catch (error) {
            if (!this.stopped) {
                this.deps.onError?.(sessionId, error);
                this.scheduleRetry(sessionId);
            }
            return;
        } finally {
            this.inFlight.delete(sessionId);
        }
        if (this.stopped) {
            return;
        }
        this.retries.delete(sessionId);
        this.held.delete(sessionId);
        for (const event of held) {
            this.receive(event);
        }
    }

    /** Pages of `events?after=<last applied>` until one is empty. */
    private async fetchAll(sessionId: string): Promise<void> {
        for (;;) {
            const after = lastSeqOf(this.deps.getState(), sessionId);
            const page = await this.deps.fetchEvents(sessionId, after);
            if (this.stopped || page.events.length === 0) {
                return;
            }
            // The reducer drops what is already applied, as for websocket events.
            this.deps.dispatch({type: EVENTS_RECEIVED, events: page.events});
            if (lastSeqOf(this.deps.getState(), sessionId) <= after) {
                // Nothing new in a non-empty page: asking again would ask forever.
                return;
            }
        }
    }

    private scheduleRetry(sessionId: string): void {
        const previous = this.retries.get(sessionId)?.delay;
        const delay = previous === undefined ? RETRY_FIRST_MS : Math.min(previous * 2, RETRY_MAX_MS);
        const timer = setTimeout(() => void this.replay(sessionId, []), delay);
        this.retries.set(sessionId, {timer, delay});
    }
}
