import {combineReducers, legacy_createStore as createStore, type Reducer} from 'redux';
import {afterEach, beforeAll, describe, expect, it, vi} from 'vitest';

import {EVENT_NAMES} from '../src/api_types';
import type {LiveState} from '../src/live/reducer';
import type {HostState, HostStore, MattermostPlugin, PluginRegistry, WebSocketMessage} from '../src/mattermost';
import {ev} from './events';

/** What the host's plugin registry records (registry.ts), with the host's store built around the registered reducer. */
function fakeHost(siteURL: string) {
    const handlers: Record<string, (msg: WebSocketMessage) => void> = {};
    const reconnect: Array<() => void> = [];
    const postTypes: Record<string, unknown> = {};
    const unregistered: string[] = [];
    const rhs: Array<{component: unknown; title: string}> = [];
    const headerButtons: Array<{icon: unknown; action: () => void; dropdownText: string; tooltipText: string}> = [];
    const appBar: Array<{iconUrl: string; action: () => void; tooltipText: string}> = [];
    const dispatched: unknown[] = [];
    let pluginReducer: Reducer | undefined;
    const registry: PluginRegistry = {
        registerReducer: (r) => {
            pluginReducer = r as Reducer;
        },
        registerWebSocketEventHandler: (event, handler) => {
            handlers[event] = handler;
        },
        registerReconnectHandler: (handler) => {
            reconnect.push(handler);
        },
        registerPostTypeComponent: (type, component) => {
            postTypes[type] = component;
            return `pt-${type}`;
        },
        unregisterPostTypeComponent: (id) => {
            unregistered.push(id);
        },
        registerRightHandSidebarComponent: (component, title) => {
            rhs.push({component, title});
            return {id: 'rhs-1', showRHSPlugin: {type: 'show'}, hideRHSPlugin: {type: 'hide'}, toggleRHSPlugin: {type: 'toggle-rhs-1'}};
        },
        registerChannelHeaderButtonAction: (icon, action, dropdownText, tooltipText) => {
            headerButtons.push({icon, action: () => action({}, {}), dropdownText, tooltipText});
            return 'header-1';
        },
        registerAppBarComponent: (iconUrl, action, tooltipText) => {
            appBar.push({iconUrl, action: () => action({}, {}), tooltipText});
            return 'appbar-1';
        },
        unregisterComponent: (id) => {
            unregistered.push(id);
        },
    };
    let store: ReturnType<typeof createStore> | undefined;
    // The host adds plugin reducers to its store after initialize; the store exists before.
    const hostStore: HostStore = {
        getState: () => (store?.getState() ?? {entities: {general: {config: {SiteURL: siteURL}}}}) as HostState,
        dispatch: (action) => {
            dispatched.push(action);
            // The host's store runs thunks; the plugin dispatches none of its own.
            return typeof action === 'function' ? undefined : store?.dispatch(action);
        },
    };
    const mount = () => {
        store = createStore(
            combineReducers({
                entities: () => ({general: {config: {SiteURL: siteURL}}}),
                'plugins-claude-code': pluginReducer!,
            }),
        );
    };
    const live = () => (hostStore.getState() as unknown as Record<string, LiveState>)['plugins-claude-code'];
    const fire = (name: string, data: Record<string, unknown>) =>
        handlers[`custom_claude-code_${name}`]({event: `custom_claude-code_${name}`, data, broadcast: {channel_id: 'c1'}, seq: 7});
    return {registry, hostStore, handlers, reconnect, postTypes, unregistered, rhs, headerButtons, appBar, dispatched, mount, live, fire};
}

let plugin: MattermostPlugin;
const registerPlugin = vi.fn();

beforeAll(async () => {
    window.registerPlugin = registerPlugin;
    await import('../src/index');
    plugin = registerPlugin.mock.calls[0][1] as MattermostPlugin;
});

afterEach(() => {
    plugin.uninitialize();
    vi.unstubAllGlobals();
});

describe('the bundle entry', () => {
    it('registers the plugin as claude-code when loaded, once', () => {
        expect(registerPlugin).toHaveBeenCalledTimes(1);
        expect(registerPlugin.mock.calls[0][0]).toBe('claude-code');
        expect(typeof plugin.initialize).toBe('function');
    });

    it('registers a reducer, a handler for every live event and a reconnect handler', () => {
        const host = fakeHost('https://chat.example.com');
        plugin.initialize(host.registry, host.hostStore);
        expect(Object.keys(host.handlers).sort()).toEqual(EVENT_NAMES.map((n) => `custom_claude-code_${n}`).sort());
        expect(host.reconnect).toHaveLength(1);
        expect(Object.keys(host.postTypes)).toEqual(['custom_claude_code']);
    });

    it('unregisters its post type and the panel, header button and App Bar icon on uninitialize, once', () => {
        const host = fakeHost('https://chat.example.com');
        plugin.initialize(host.registry, host.hostStore);
        plugin.uninitialize();
        plugin.uninitialize();
        expect(host.unregistered).toEqual(['pt-custom_claude_code', 'rhs-1', 'header-1', 'appbar-1']);
    });

    it('registers the panel in the right-hand sidebar, toggled by a channel header button and an App Bar icon', () => {
        const host = fakeHost('https://chat.example.com');
        plugin.initialize(host.registry, host.hostStore);
        host.mount();
        expect(host.rhs.map((r) => r.title)).toEqual(['Claude Code']);
        expect(typeof host.rhs[0].component).toBe('function');
        expect(host.headerButtons.map(({dropdownText, tooltipText}) => [dropdownText, tooltipText])).toEqual([['Claude Code', 'Claude Code']]);
        expect(host.appBar.map((a) => a.tooltipText)).toEqual(['Claude Code']);
        expect(host.appBar[0].iconUrl).toMatch(/^data:image\/svg\+xml,/);

        host.headerButtons[0].action();
        host.appBar[0].action();
        expect(host.dispatched).toEqual([{type: 'toggle-rhs-1'}, {type: 'toggle-rhs-1'}]);
    });

    it('works on a host without an App Bar', () => {
        const host = fakeHost('https://chat.example.com');
        const {registerAppBarComponent: _, ...older} = host.registry;
        plugin.initialize(older, host.hostStore);
        plugin.uninitialize();
        expect(host.headerButtons).toHaveLength(1);
        expect(host.unregistered).toEqual(['pt-custom_claude_code', 'rhs-1', 'header-1']);
    });

    it('puts a websocket event into the state at plugins-claude-code', () => {
        const host = fakeHost('https://chat.example.com');
        plugin.initialize(host.registry, host.hostStore);
        host.mount();

        // As published: the payload carries its own name, session, seq and time.
        host.fire('approval', {...ev(1, 'approval'), phase: 'requested', approval_id: 'a1', tool: 'Bash', input: '{"command":"ls"}'});
        host.fire('status', {...ev(2, 'status'), state: 'awaiting_approval', previous: 'running'});
        host.fire('status', {...ev(2, 'status'), state: 'awaiting_approval', previous: 'running'});

        expect(host.live().s1).toMatchObject({lastSeq: 2, status: 'awaiting_approval', approvals: {a1: {phase: 'requested', tool: 'Bash'}}});
    });

    it('ignores a payload without session or seq instead of throwing in the host websocket loop', () => {
        const host = fakeHost('https://chat.example.com');
        plugin.initialize(host.registry, host.hostStore);
        host.mount();
        expect(() => host.fire('message', {text: 'no session'})).not.toThrow();
        expect(() => host.fire('message', {session_id: 's1', seq: '3', text: 'seq as text'})).not.toThrow();
        expect(host.live()).toEqual({});
    });

    it('replays a gap through the API under the site URL path, with the cookie', async () => {
        const fetchMock = vi.fn(async (url: string | URL | Request, _init?: RequestInit) => {
            const after = Number(new URL(String(url), 'https://chat.example.com').searchParams.get('after'));
            const events = after === 0 ? [ev(1, 'message', {text: 'Hello, '}), ev(2, 'message', {text: 'world'})] : [];
            return new Response(JSON.stringify({events, last_seq: 2}), {status: 200});
        });
        vi.stubGlobal('fetch', fetchMock);
        const host = fakeHost('https://chat.example.com/team-chat/');
        plugin.initialize(host.registry, host.hostStore);
        host.mount();

        host.fire('message', {...ev(2, 'message'), text: 'world'});

        await vi.waitFor(() => expect(host.live().s1?.lastSeq).toBe(2));
        expect(host.live().s1.turn?.text).toBe('Hello, world');
        expect(fetchMock.mock.calls.map(([url]) => String(url))).toEqual([
            '/team-chat/plugins/claude-code/api/v1/sessions/s1/events?after=0',
            '/team-chat/plugins/claude-code/api/v1/sessions/s1/events?after=2',
        ]);
        expect(fetchMock.mock.calls[0][1]).toMatchObject({credentials: 'include', method: 'GET'});
    });

    it('after uninitialize, handlers still held by the host change nothing', () => {
        const host = fakeHost('https://chat.example.com');
        plugin.initialize(host.registry, host.hostStore);
        host.mount();
        plugin.uninitialize();
        host.fire('message', {...ev(1, 'message'), text: 'late'});
        expect(host.live()).toEqual({});
    });
});
