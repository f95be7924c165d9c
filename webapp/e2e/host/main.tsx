// The harness page's script: logs in through Mattermost's real login route (the browser then
// holds the MMAUTHTOKEN and MMCSRF cookies, as in the real webapp), fills the store, loads the
// plugin's bundle as Mattermost does (the server's webapp manifest, a classic <script>, then
// initialize with the registry and the store), renders the page and connects the websocket.
// window.__harness tells the runner where the page is.
import * as React from 'react';
import * as ReactDOM from 'react-dom/client';
import {Provider} from 'react-redux';

import {App} from './app';
import {channelPosts, type PluginManifest, type Post, type User, v4} from './api';
import {HostRegistry, type WsMessage} from './registry';
import {HostSocket} from './socket';
import {makeStore} from './store';

interface HarnessConfig {
    login: string;
    password: string;
    channelId: string;
    pluginId: string;
}

interface Plugin {
    initialize(registry: unknown, store: unknown): unknown;
    uninitialize?(): void;
}

interface HarnessStatus {
    ready: boolean;
    error: string;
    bundleUrl: string;
    socket?: HostSocket;
    /** Websocket events received, by name (what a failing step's report shows). */
    events: Record<string, number>;
    /** The last posts as the store holds them: type and props (for a failing step's report). */
    lastPosts(n: number): string;
}

declare global {
    interface Window {
        __harnessConfig: HarnessConfig;
        __harness: HarnessStatus;
        plugins: Record<string, Plugin>;
    }
}

const status: HarnessStatus = {ready: false, error: '', bundleUrl: '', events: {}, lastPosts: () => ''};
window.__harness = status;

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// Mattermost's markdown renderer stands behind these two; plain paragraphs are enough here.
Object.assign(window, {
    PostUtils: {
        formatText: (text: string) => escape(text).replace(/\n/g, '<br>'),
        messageHtmlToComponent: (html: string) => React.createElement('div', {className: 'post-message__text', dangerouslySetInnerHTML: {__html: html}}),
    },
});

function loadScript(src: string): Promise<void> {
    return new Promise((resolve, reject) => {
        const s = document.createElement('script');
        s.src = src;
        s.defer = true;
        s.onload = () => resolve();
        s.onerror = () => reject(new Error(`the plugin bundle ${src} did not load`));
        document.head.appendChild(s);
    });
}

async function main(cfg: HarnessConfig) {
    await v4('POST', '/users/login', {login_id: cfg.login, password: cfg.password});
    const {store, addPluginReducer} = makeStore();
    const [me, config, channel, members, posts] = await Promise.all([
        v4<User>('GET', '/users/me'),
        v4<{SiteURL?: string}>('GET', '/config/client?format=old'),
        v4<{id: string; name: string; display_name: string; team_id: string}>('GET', `/channels/${cfg.channelId}`),
        v4<User[]>('GET', `/users?in_channel=${cfg.channelId}&per_page=200`),
        channelPosts(cfg.channelId),
    ]);
    store.dispatch({
        type: 'HARNESS_ENTITIES',
        entities: {
            general: {config: {SiteURL: config.SiteURL}},
            users: {currentUserId: me.id, profiles: Object.fromEntries([me, ...members].map((u) => [u.id, u]))},
            channels: {currentChannelId: channel.id, channels: {[channel.id]: channel}},
            teams: {currentTeamId: channel.team_id},
        },
    });
    store.dispatch({type: 'HARNESS_POSTS', posts});
    status.lastPosts = (n) => JSON.stringify(Object.values(store.getState().entities.posts.posts)
        .sort((a, b) => a.create_at - b.create_at).slice(-n).map((p) => ({type: p.type, props: p.props, message: p.message.slice(0, 80)})));

    const registry = new HostRegistry(store, addPluginReducer);
    const root = document.getElementById('root');
    if (!root) {
        throw new Error('host.html has no #root');
    }
    ReactDOM.createRoot(root).render(
        <Provider store={store}>
            <App registry={registry} />
        </Provider>,
    );

    // As plugins/index.ts: registerPlugin only stores the object (replacing an older one).
    window.plugins = {};
    Object.assign(window, {
        registerPlugin: (id: string, plugin: Plugin) => {
            window.plugins[id]?.uninitialize?.();
            window.plugins[id] = plugin;
        },
    });
    const manifests = await v4<PluginManifest[]>('GET', '/plugins/webapp');
    const manifest = manifests.find((m) => m.id === cfg.pluginId);
    if (!manifest?.webapp?.bundle_path) {
        throw new Error(`the server lists no webapp bundle for ${cfg.pluginId}: ${JSON.stringify(manifests)}`);
    }
    // The server names /static/<id>/…; the webapp serves plugins' bundles under /static/plugins/.
    const sitePath = new URL(config.SiteURL ?? location.origin).pathname.replace(/\/$/, '');
    status.bundleUrl = sitePath + manifest.webapp.bundle_path.replace(/^\/static\/(?!plugins\/)/, '/static/plugins/');
    await loadScript(status.bundleUrl);
    const plugin = window.plugins[cfg.pluginId];
    if (!plugin) {
        throw new Error(`${status.bundleUrl} loaded but did not call registerPlugin('${cfg.pluginId}', …)`);
    }
    await plugin.initialize(registry.forPlugin(cfg.pluginId), store);

    // Posters the page has not met yet (the bot joins after the page loaded), as the host fetches them.
    const meet = (post: Post) => {
        const {profiles} = store.getState().entities.users;
        if (!profiles[post.user_id]) {
            void v4<User[]>('POST', '/users/ids', [post.user_id]).then((users) =>
                store.dispatch({type: 'HARNESS_ENTITIES', entities: {users: {...store.getState().entities.users, profiles: {...store.getState().entities.users.profiles, ...Object.fromEntries(users.map((u) => [u.id, u]))}}}}));
        }
    };
    const onEvent = (msg: WsMessage) => {
        status.events[msg.event] = (status.events[msg.event] ?? 0) + 1;
        if ((msg.event === 'posted' || msg.event === 'post_edited' || msg.event === 'post_deleted') && typeof msg.data.post === 'string') {
            const post = JSON.parse(msg.data.post) as Post;
            meet(post);
            store.dispatch({type: 'HARNESS_POSTS', posts: [post]});
        }
        registry.wsHandlers[msg.event]?.(msg);
    };
    // After a reconnect the host reloads what it shows, then each plugin's handler runs.
    const onReconnect = () => {
        void channelPosts(cfg.channelId).then((fresh) => store.dispatch({type: 'HARNESS_POSTS', posts: fresh}));
        for (const handler of Object.values(registry.reconnectHandlers)) {
            handler();
        }
    };
    status.socket = new HostSocket(onEvent, onReconnect);
    status.socket.start();
    status.ready = true;
}

main(window.__harnessConfig).catch((e: unknown) => {
    status.error = e instanceof Error ? e.message : String(e);
    console.error(`harness: ${status.error}`);
});
