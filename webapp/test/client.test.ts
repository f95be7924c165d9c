import {describe, expect, it, vi} from 'vitest';

import openapi from '../../src/http/v1/openapi.json';
import {ApiError, apiBase, Client, csrfFromCookie} from '../src/client';

function fakeFetch(status = 200, body: unknown = {}, headers: Record<string, string> = {}) {
    return vi.fn(async (_url: string | URL | Request, _init?: RequestInit) =>
        new Response(typeof body === 'string' ? body : JSON.stringify(body), {status, headers}),
    );
}

function call(fetchFn: ReturnType<typeof fakeFetch>) {
    const [url, init] = fetchFn.mock.calls[0];
    return {url: String(url), init: init!, headers: init!.headers as Record<string, string>};
}

describe('apiBase', () => {
    it('keeps the path of a site URL on a sub-path', () => {
        expect(apiBase('https://example.com/chat/')).toBe('/chat/plugins/claude-code/api/v1');
        expect(apiBase('https://example.com/a/b')).toBe('/a/b/plugins/claude-code/api/v1');
    });

    it('is at the root for a site URL without path, an empty or an invalid one', () => {
        expect(apiBase('https://example.com')).toBe('/plugins/claude-code/api/v1');
        expect(apiBase('')).toBe('/plugins/claude-code/api/v1');
        expect(apiBase(undefined)).toBe('/plugins/claude-code/api/v1');
        expect(apiBase('not a url')).toBe('/plugins/claude-code/api/v1');
    });
});

describe('csrfFromCookie', () => {
    it('reads MMCSRF among other cookies', () => {
        expect(csrfFromCookie('MMUSERID=u1; MMCSRF=tok3n; other=x')).toBe('tok3n');
        expect(csrfFromCookie('MMCSRF=a=b')).toBe('a=b');
        expect(csrfFromCookie('XMMCSRF=no; MMUSERID=u1')).toBe('');
    });
});

describe('Client', () => {
    const cookie = () => 'MMUSERID=u1; MMCSRF=csrf-123';

    it('sends a write with the CSRF token from the cookie, X-Requested-With, JSON and the cookie', async () => {
        const f = fakeFetch(202, {prompt_id: 'p1'});
        const client = new Client(() => apiBase('https://example.com/chat'), f, cookie);

        await expect(client.prompt('s 1', 'add a test')).resolves.toEqual({prompt_id: 'p1'});

        const {url, init, headers} = call(f);
        expect(url).toBe('/chat/plugins/claude-code/api/v1/sessions/s%201/prompt');
        expect(init.method).toBe('POST');
        expect(init.credentials).toBe('include');
        expect(init.body).toBe('{"text":"add a test"}');
        expect(headers['X-CSRF-Token']).toBe('csrf-123');
        expect(headers['X-Requested-With']).toBe('XMLHttpRequest');
        expect(headers['Content-Type']).toBe('application/json');
    });

    it('sends no CSRF token on a read (as Client4), but still X-Requested-With', async () => {
        const f = fakeFetch(200, {events: [], last_seq: 0});
        await new Client(() => '/plugins/claude-code/api/v1', f, cookie).events('s1', {after: 120});

        const {url, init, headers} = call(f);
        expect(url).toBe('/plugins/claude-code/api/v1/sessions/s1/events?after=120');
        expect(init.method).toBe('GET');
        expect(headers['X-CSRF-Token']).toBeUndefined();
        expect(headers['X-Requested-With']).toBe('XMLHttpRequest');
        expect(init.body).toBeUndefined();
    });

    it('reads the base per request (the site URL can change)', async () => {
        let site = 'https://a.example/one';
        const f = fakeFetch(200, {sessions: []});
        const client = new Client(() => apiBase(site), f, cookie);
        await client.listSessions();
        site = 'https://a.example/two';
        await client.listSessions();
        expect(f.mock.calls.map(([u]) => String(u))).toEqual([
            '/one/plugins/claude-code/api/v1/sessions',
            '/two/plugins/claude-code/api/v1/sessions',
        ]);
    });

    it('puts If-Match on an edit and keeps the slashes of a file path', async () => {
        const f = fakeFetch(200, {path: 'src/a b.rs', size: 3, sha256: 'new'});
        await new Client(() => '', f, cookie).updateFile('s1', 'src/a b.rs', 'x', 'old-sha');

        const {url, init, headers} = call(f);
        expect(url).toBe('/sessions/s1/files/src/a%20b.rs');
        expect(init.method).toBe('PUT');
        expect(headers['If-Match']).toBe('old-sha');
        expect(init.body).toBe('{"content":"x"}');
    });

    it("gets a channel's session and permissions by the escaped channel id", async () => {
        const info = {
            channel_id: 'c/1',
            session: null,
            allowed_roots: ['/srv/projects'],
            permissions: {start: {allowed: true, reason: null}, stop: {allowed: false, reason: 'Only the session owner (@alice) may stop it.'}},
        };
        const f = fakeFetch(200, info);
        await expect(new Client(() => '/p', f, cookie).channel('c/1')).resolves.toEqual(info);
        const {url, init} = call(f);
        expect(url).toBe('/p/channels/c%2F1');
        expect(init.method).toBe('GET');
    });

    it('leaves out query parameters that are not given', async () => {
        const f = fakeFetch(200, {messages: [], has_more: false});
        await new Client(() => '', f, cookie).history('s1', {limit: 20, q: 'health check'});
        expect(call(f).url).toBe('/sessions/s1/history?limit=20&q=health+check');
    });

    it("turns the plugin's {error, status} into an ApiError", async () => {
        const f = fakeFetch(409, {error: 'already decided by @bob', status: 409});
        const err = await new Client(() => '', f, cookie)
            .answerApproval('s1', 'a1', {decision: 'approve'})
            .catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ApiError);
        expect(err).toMatchObject({name: 'ApiError', status: 409, message: 'already decided by @bob', retryAfter: undefined});
    });

    it('keeps Retry-After of a 429', async () => {
        const f = fakeFetch(429, {error: 'rate limited', status: 429}, {'Retry-After': '12'});
        const err = await new Client(() => '', f, cookie).prompt('s1', 'x').catch((e: unknown) => e);
        expect(err).toMatchObject({status: 429, retryAfter: 12});
    });

    it('makes an ApiError of an answer that is not the plugin JSON (a proxy, the server)', async () => {
        const f = fakeFetch(502, '<html>Bad Gateway</html>');
        const err = await new Client(() => '', f, cookie).getSession('s1').catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ApiError);
        expect(err).toMatchObject({status: 502, message: '<html>Bad Gateway</html>'});
    });

    it('returns the metrics as text', async () => {
        const f = fakeFetch(200, 'claude_code_sessions_active 2\n');
        await expect(new Client(() => '', f, cookie).metrics()).resolves.toBe('claude_code_sessions_active 2\n');
    });

    it('has a method for every route of openapi.json the browser calls', () => {
        const spec = openapi as {paths: Record<string, Record<string, {operationId?: string}>>};
        // The server calls these for card buttons and dialogs (PostActionIntegrationRequest).
        const serverSide = ['cardAction', 'dialogSubmit'];
        const operations = Object.values(spec.paths)
            .flatMap((methods) => Object.values(methods).map((op) => op.operationId))
            .filter((id): id is string => typeof id === 'string' && !serverSide.includes(id));
        expect(operations.length).toBeGreaterThan(15);
        const missing = operations.filter((id) => typeof (Client.prototype as unknown as Record<string, unknown>)[id] !== 'function');
        expect(missing).toEqual([]);
    });
});
