import type {Approval, ChannelInfo} from '../api_types';
import type {Client} from '../client';

// Requests that many posts make at once: a channel opened after a reload mounts ten card posts,
// which must not make ten requests for the same answer.

interface Entry {
    promise: Promise<unknown>;
    /** When the answer came; undefined while the request is in flight. */
    settledAt?: number;
    value?: unknown;
}

/** Per client (one per plugin initialize, one per test), so nothing outlives its client. */
const entries = new WeakMap<object, Map<string, Entry>>();

export interface ShareOptions<T> {
    /** How long an answer is reused. */
    maxAgeMs: number;
    /** An answer that no longer fits the caller, whatever its age. */
    stale?: (value: T) => boolean;
    now?: () => number;
}

/**
 * `load()`, or the request for `key` already in flight, or its answer of less than `maxAgeMs`
 * ago. A failed request is forgotten at once: the next caller asks again.
 */
export function shared<T>(owner: object, key: string, load: () => Promise<T>, opts: ShareOptions<T>): Promise<T> {
    const now = opts.now ?? Date.now;
    let byKey = entries.get(owner);
    if (!byKey) {
        byKey = new Map();
        entries.set(owner, byKey);
    }
    const known = byKey.get(key);
    if (known && (known.settledAt === undefined || (now() - known.settledAt < opts.maxAgeMs && !opts.stale?.(known.value as T)))) {
        return known.promise as Promise<T>;
    }
    const entry: Entry = {promise: load()};
    byKey.set(key, entry);
    entry.promise.then(
        (value) => {
            entry.settledAt = now();
            entry.value = value;
        },
        () => {
            if (byKey.get(key) === entry) {
                byKey.delete(key);
            }
        },
    );
    return entry.promise as Promise<T>;
}

/** A channel's permissions change rarely (roles); a new session there is noticed at once. */
export const CHANNEL_INFO_MAX_AGE_MS = 60_000;
/** Long enough for the posts of one channel load; later, live events say what changed. */
export const APPROVALS_MAX_AGE_MS = 10_000;

/** `GET /channels/{id}` for a card of `sessionId`: an answer about another session is asked again. */
export function channelInfo(client: Pick<Client, 'channel'>, channelId: string, sessionId: string): Promise<ChannelInfo> {
    return shared(client, `channel:${channelId}`, () => client.channel(channelId), {
        maxAgeMs: CHANNEL_INFO_MAX_AGE_MS,
        stale: (info) => info.session?.id !== sessionId,
    });
}

/**
 * The plugin bot's user id (`bot_user_id` of `GET /channels/{id}`): every turn and card post of
 * the channel asks, one request answers them all, and a card's own permissions request too.
 */
export async function botUserIdOf(client: Pick<Client, 'channel'>, channelId: string): Promise<string> {
    const info = await shared(client, `channel:${channelId}`, () => client.channel(channelId), {maxAgeMs: CHANNEL_INFO_MAX_AGE_MS});
    return info.bot_user_id;
}

/** One approval of `GET /sessions/{id}/approvals` (all of them, oldest first), undefined when not there. */
export async function approvalOf(client: Pick<Client, 'listApprovals'>, sessionId: string, approvalId: string): Promise<Approval | undefined> {
    const {approvals} = await shared(client, `approvals:${sessionId}`, () => client.listApprovals(sessionId), {maxAgeMs: APPROVALS_MAX_AGE_MS});
    return approvals.find((a) => a.approval_id === approvalId);
}
