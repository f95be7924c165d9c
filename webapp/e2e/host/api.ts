// The host's own calls to Mattermost's REST API (/api/v4), same origin through the harness proxy,
// with the headers Mattermost's Client4 sends: the session is the MMAUTHTOKEN cookie, and a write
// carries the MMCSRF cookie's token.

export interface Post {
    id: string;
    create_at: number;
    update_at: number;
    delete_at: number;
    user_id: string;
    channel_id: string;
    root_id: string;
    message: string;
    type: string;
    props?: Record<string, unknown> | null;
}

export interface User {
    id: string;
    username: string;
}

export interface PluginManifest {
    id: string;
    version: string;
    webapp?: {bundle_path?: string};
}

function csrf(): string {
    const m = document.cookie.match(/(?:^|;\s*)MMCSRF=([^;]*)/);
    return m ? m[1] : '';
}

export async function v4<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {'X-Requested-With': 'XMLHttpRequest'};
    if (method !== 'GET') {
        headers['X-CSRF-Token'] = csrf();
    }
    if (body !== undefined) {
        headers['Content-Type'] = 'application/json';
    }
    const resp = await fetch(`/api/v4${path}`, {method, headers, credentials: 'include', body: body === undefined ? undefined : JSON.stringify(body)});
    const text = await resp.text();
    if (!resp.ok) {
        throw new Error(`${method} /api/v4${path}: ${resp.status} ${text.slice(0, 300)}`);
    }
    return (text === '' ? undefined : JSON.parse(text)) as T;
}

/** The channel's posts, replies included (the session thread is in the channel), oldest first. */
export async function channelPosts(channelId: string): Promise<Post[]> {
    const list = await v4<{order: string[]; posts: Record<string, Post>}>('GET', `/channels/${channelId}/posts?per_page=200`);
    return Object.values(list.posts).sort((a, b) => a.create_at - b.create_at);
}
