import {describe, expect, it, vi} from 'vitest';

import type {ChannelInfo} from '../src/api_types';
import {approvalOf, channelInfo, shared} from '../src/live/shared';
import {fakeClient} from './host_store';

describe('shared', () => {
    it('joins a request in flight and reuses its answer until maxAgeMs', async () => {
        let clock = 0;
        const owner = {};
        const load = vi.fn(async () => `answer ${load.mock.calls.length}`);
        const ask = () => shared(owner, 'k', load, {maxAgeMs: 100, now: () => clock});

        const [a, b] = await Promise.all([ask(), ask()]);
        expect([a, b]).toEqual(['answer 1', 'answer 1']);
        clock = 99;
        expect(await ask()).toBe('answer 1');
        clock = 100;
        expect(await ask()).toBe('answer 2');
        expect(load).toHaveBeenCalledTimes(2);
    });

    it('keeps owners and keys apart', async () => {
        const load = vi.fn(async () => 1);
        const owner = {};
        await Promise.all([shared(owner, 'a', load, {maxAgeMs: 1e9}), shared(owner, 'b', load, {maxAgeMs: 1e9}), shared({}, 'a', load, {maxAgeMs: 1e9})]);
        expect(load).toHaveBeenCalledTimes(3);
    });

    it('asks again at once after a failure, and for an answer the caller calls stale', async () => {
        const owner = {};
        const load = vi.fn().mockRejectedValueOnce(new TypeError('Failed to fetch')).mockResolvedValue('fine');
        await expect(shared(owner, 'k', load, {maxAgeMs: 1e9})).rejects.toThrow('Failed to fetch');
        expect(await shared(owner, 'k', load, {maxAgeMs: 1e9})).toBe('fine');
        expect(await shared(owner, 'k', load, {maxAgeMs: 1e9, stale: (v) => v === 'fine'})).toBe('fine');
        expect(load).toHaveBeenCalledTimes(3);
    });
});

describe('channelInfo and approvalOf', () => {
    const info = (sessionId: string) => ({status: 200, body: {channel_id: 'c 1', session: {id: sessionId}, allowed_roots: [], permissions: {}} as unknown as ChannelInfo});

    it("asks GET /channels/{id} once per channel, and again when the answer is about another session", async () => {
        const {client, requests} = fakeClient(info('s1'), info('s2'));
        await Promise.all([channelInfo(client, 'c 1', 's1'), channelInfo(client, 'c 1', 's1')]);
        expect((await channelInfo(client, 'c 1', 's1')).session?.id).toBe('s1');
        // A card of the channel's next session: the cached permissions were about s1.
        expect((await channelInfo(client, 'c 1', 's2')).session?.id).toBe('s2');
        expect(requests()).toEqual([
            {method: 'GET', url: '/plugins/claude-code/api/v1/channels/c%201', body: undefined},
            {method: 'GET', url: '/plugins/claude-code/api/v1/channels/c%201', body: undefined},
        ]);
    });

    it('finds one approval in the session list, undefined when it is not there', async () => {
        const {client, requests} = fakeClient({status: 200, body: {approvals: [{approval_id: 'a1', tool: 'Bash', input: {}, requested_at: 1, state: 'pending'}]}});
        expect((await approvalOf(client, 's1', 'a1'))?.tool).toBe('Bash');
        expect(await approvalOf(client, 's1', 'a2')).toBeUndefined();
        expect(requests()).toHaveLength(1);
    });
});
