import type {
    Approval,
    ChannelInfo,
    Decision,
    EventsPage,
    FileListing,
    HistoryPage,
    PermissionMode,
    ProjectFile,
    Session,
    Written,
} from './api_types';

export const PLUGIN_ID = 'claude-code';

/** An answer other than 2xx: the plugin's `{error, status}`, or what the proxy in front said. */
export class ApiError extends Error {
    override readonly name = 'ApiError';

    constructor(
        readonly status: number,
        message: string,
        /** Seconds, from `Retry-After` on a 429. */
        readonly retryAfter?: number,
    ) {
        super(message);
    }
}

/**
 * The API's base path. Only the path of the site URL is used: the page is served from that
 * origin already, and a server on a sub-path (https://example.com/chat) needs the prefix.
 */
export function apiBase(siteURL: string | undefined): string {
    let path = '';
    if (siteURL) {
        try {
            path = new URL(siteURL).pathname.replace(/\/+$/, '');
        } catch {
            // Not an absolute URL: the server is at the root of this origin.
        }
    }
    return `${path}/plugins/${PLUGIN_ID}/api/v1`;
}

/** The session's CSRF token, as Client4.getCSRFFromCookie reads it. */
export function csrfFromCookie(cookie: string): string {
    for (const part of cookie.split(';')) {
        const [name, ...value] = part.trim().split('=');
        if (name === 'MMCSRF') {
            return value.join('=');
        }
    }
    return '';
}

type Query = Record<string, string | number | undefined>;

interface RequestOptions {
    query?: Query;
    body?: unknown;
    headers?: Record<string, string>;
}

/** A file path inside the project as a URL path: each segment escaped, the slashes kept. */
function filePath(path: string): string {
    return path.split('/').map(encodeURIComponent).join('/');
}

const s = encodeURIComponent;

/**
 * The REST API of src/http/v1/openapi.json, as the logged-in user: the browser's session cookie,
 * with the headers Mattermost's own Client4.getOptions adds, so strict CSRF enforcement passes.
 * `cardAction` and `dialogSubmit` are left out: the Mattermost server calls them for buttons and
 * dialogs, never the webapp.
 */
export class Client {
    constructor(
        /** Read per request: the site URL can change under a running webapp (config_changed). */
        private readonly base: () => string,
        private readonly fetchFn: typeof fetch = (...args) => fetch(...args),
        private readonly cookie: () => string = () => document.cookie,
    ) {}

    private async send(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
        let url = this.base() + path;
        const query = Object.entries(opts.query ?? {}).filter(
            (entry): entry is [string, string | number] => entry[1] !== undefined,
        );
        if (query.length > 0) {
            url += '?' + new URLSearchParams(query.map(([k, v]) => [k, String(v)])).toString();
        }
        const headers: Record<string, string> = {'X-Requested-With': 'XMLHttpRequest', ...opts.headers};
        if (method !== 'GET') {
            const token = csrfFromCookie(this.cookie());
            if (token) {
                headers['X-CSRF-Token'] = token;
            }
        }
        const init: RequestInit = {method, headers, credentials: 'include'};
        if (opts.body !== undefined) {
            headers['Content-Type'] = 'application/json';
            init.body = JSON.stringify(opts.body);
        }
        const res = await this.fetchFn(url, init);
        if (!res.ok) {
            throw await toApiError(res);
        }
        return res;
    }

    private async json<T>(method: string, path: string, opts?: RequestOptions): Promise<T> {
        return (await this.send(method, path, opts)).json() as Promise<T>;
    }

    health() {
        return this.json<{status: string; version: string}>('GET', '/health');
    }

    listSessions() {
        return this.json<{sessions: Session[]}>('GET', '/sessions');
    }

    /** The channel's session and the caller's permissions there (404 unless a member). */
    channel(channelId: string) {
        return this.json<ChannelInfo>('GET', `/channels/${s(channelId)}`);
    }

    createSession(body: {channel_id: string; project_path: string; model?: string; mode?: PermissionMode}) {
        return this.json<Session>('POST', '/sessions', {body});
    }

    getSession(id: string) {
        return this.json<Session>('GET', `/sessions/${s(id)}`);
    }

    stopSession(id: string) {
        return this.json<Session>('DELETE', `/sessions/${s(id)}`);
    }

    prompt(id: string, text: string) {
        return this.json<{prompt_id: string}>('POST', `/sessions/${s(id)}/prompt`, {body: {text}});
    }

    interrupt(id: string) {
        return this.json<Record<string, never>>('POST', `/sessions/${s(id)}/interrupt`);
    }

    setMode(id: string, mode: PermissionMode) {
        return this.json<Session>('PUT', `/sessions/${s(id)}/mode`, {body: {mode}});
    }

    setModel(id: string, model: string) {
        return this.json<Session>('PUT', `/sessions/${s(id)}/model`, {body: {model}});
    }

    /** A thread (permalink or post id) or a project file as context for the next prompt. */
    addContext(id: string, context: {thread: string} | {file: string}) {
        return this.json<{message: string}>('POST', `/sessions/${s(id)}/context`, {body: context});
    }

    history(id: string, query: {before?: number; limit?: number; q?: string} = {}) {
        return this.json<HistoryPage>('GET', `/sessions/${s(id)}/history`, {query});
    }

    events(id: string, query: {after?: number; limit?: number} = {}) {
        return this.json<EventsPage>('GET', `/sessions/${s(id)}/events`, {query});
    }

    listApprovals(id: string) {
        return this.json<{approvals: Approval[]}>('GET', `/sessions/${s(id)}/approvals`);
    }

    answerApproval(
        id: string,
        approvalId: string,
        /** `answers` (question text → answer) answer an AskUserQuestion request, with `approve`. */
        body: {decision: Decision; reason?: string; updated_input?: Record<string, unknown>; answers?: Record<string, string>},
    ) {
        return this.json<Approval>('POST', `/sessions/${s(id)}/approvals/${s(approvalId)}`, {body});
    }

    listFiles(id: string, dir?: string) {
        return this.json<FileListing>('GET', `/sessions/${s(id)}/files`, {query: {dir}});
    }

    readFile(id: string, path: string) {
        return this.json<ProjectFile>('GET', `/sessions/${s(id)}/files/${filePath(path)}`);
    }

    createFile(id: string, path: string, content: string) {
        return this.json<Written>('POST', `/sessions/${s(id)}/files/${filePath(path)}`, {body: {content}});
    }

    /** `sha256` is the version the edit was made on: the server answers 409 when the file changed since. */
    updateFile(id: string, path: string, content: string, sha256: string) {
        return this.json<Written>('PUT', `/sessions/${s(id)}/files/${filePath(path)}`, {
            body: {content},
            headers: {'If-Match': sha256},
        });
    }

    deleteFile(id: string, path: string, sha256: string) {
        return this.json<Record<string, never>>('DELETE', `/sessions/${s(id)}/files/${filePath(path)}`, {
            headers: {'If-Match': sha256},
        });
    }

    /** Prometheus text; system admins only. */
    async metrics(): Promise<string> {
        return (await this.send('GET', '/metrics')).text();
    }
}

async function toApiError(res: Response): Promise<ApiError> {
    const retry = Number(res.headers.get('Retry-After'));
    const retryAfter = Number.isFinite(retry) && retry > 0 ? retry : undefined;
    const text = await res.text();
    try {
        const body: unknown = JSON.parse(text);
        if (body && typeof body === 'object' && typeof (body as {error?: unknown}).error === 'string') {
            return new ApiError(res.status, (body as {error: string}).error, retryAfter);
        }
    } catch {
        // Not JSON: an answer from a proxy or from Mattermost itself, not from the plugin.
    }
    return new ApiError(res.status, text.trim() || res.statusText || `HTTP ${res.status}`, retryAfter);
}
