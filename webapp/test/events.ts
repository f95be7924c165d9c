import type {EventName, LiveEvent} from '../src/api_types';

/** A live event of session s1 (or `fields.session_id`) as the server publishes it. */
export function ev(seq: number, event: EventName, fields: Record<string, string | number | boolean> = {}): LiveEvent {
    return {session_id: 's1', at: 1_700_000_000_000 + seq, ...fields, seq, event};
}
