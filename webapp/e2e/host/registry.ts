// What registerPlugin's `initialize(registry, store)` gets: the registry methods this plugin uses,
// as Mattermost's webapp/channels/src/plugins/registry.ts defines them (each also takes a single
// object of named arguments, its `reArg`). A method Mattermost has and this harness lacks stays
// undefined, so a plugin that calls it fails loudly here instead of silently doing nothing.
import type {Reducer} from 'redux';

import type {HarnessStore, Thunk} from './store';

export interface WsMessage {
    event: string;
    data: Record<string, unknown>;
    broadcast: Record<string, unknown>;
    seq: number;
}

type Action = (channel: unknown, channelMember: unknown) => void;

export interface HeaderButton {
    id: string;
    icon: unknown;
    action: Action;
    dropdownText: string;
    tooltipText: string;
}

export interface AppBarItem {
    id: string;
    iconUrl: string;
    action: Action;
    tooltipText: string;
}

export interface Registered {
    postTypes: Record<string, {id: string; component: unknown}>;
    rhs: Record<string, {component: unknown; title: string}>;
    headerButtons: HeaderButton[];
    appBar: AppBarItem[];
    roots: Array<{id: string; component: unknown}>;
}

/** Mattermost's reArg: positional arguments, or one plain object naming them. */
function reArg(names: string[], args: unknown[]): unknown[] {
    const [first] = args;
    const plain = args.length === 1 && first !== null && typeof first === 'object' &&
        Object.getPrototypeOf(first) === Object.prototype && !('$$typeof' in (first as object));
    return plain ? names.map((n) => (first as Record<string, unknown>)[n]) : args;
}

export class HostRegistry {
    registered: Registered = {postTypes: {}, rhs: {}, headerButtons: [], appBar: [], roots: []};
    wsHandlers: Record<string, (msg: WsMessage) => void> = {};
    reconnectHandlers: Record<string, () => void> = {};
    private listeners = new Set<() => void>();
    private nextId = 0;

    constructor(
        private readonly store: HarnessStore,
        private readonly addPluginReducer: (pluginId: string, reducer: Reducer) => void,
    ) {}

    subscribe = (fn: () => void) => {
        this.listeners.add(fn);
        return () => void this.listeners.delete(fn);
    };

    snapshot = () => this.registered;

    private changed(next: Partial<Registered>) {
        this.registered = {...this.registered, ...next};
        for (const fn of this.listeners) {
            fn();
        }
    }

    private id(): string {
        this.nextId += 1;
        return `harness-${this.nextId}`;
    }

    /** The registry object handed to one plugin's initialize. */
    forPlugin(pluginId: string): Record<string, (...args: unknown[]) => unknown> {
        return {
            registerReducer: (...a) => {
                const [reducer] = reArg(['reducer'], a) as [Reducer];
                this.addPluginReducer(pluginId, reducer);
            },
            registerWebSocketEventHandler: (...a) => {
                const [event, handler] = reArg(['event', 'handler'], a) as [string, (m: WsMessage) => void];
                this.wsHandlers[event] = handler;
            },
            unregisterWebSocketEventHandler: (...a) => {
                const [event] = reArg(['event'], a) as [string];
                delete this.wsHandlers[event];
            },
            registerReconnectHandler: (...a) => {
                const [handler] = reArg(['handler'], a) as [() => void];
                this.reconnectHandlers[pluginId] = handler;
            },
            unregisterReconnectHandler: () => {
                delete this.reconnectHandlers[pluginId];
            },
            registerPostTypeComponent: (...a) => {
                const [type, component] = reArg(['type', 'component'], a) as [string, unknown];
                const id = this.id();
                this.changed({postTypes: {...this.registered.postTypes, [type]: {id, component}}});
                return id;
            },
            unregisterPostTypeComponent: (...a) => {
                const [id] = reArg(['componentId'], a) as [string];
                const postTypes = Object.fromEntries(Object.entries(this.registered.postTypes).filter(([, v]) => v.id !== id));
                this.changed({postTypes});
            },
            registerRightHandSidebarComponent: (...a) => {
                const [component, title] = reArg(['component', 'title'], a) as [unknown, string];
                const id = this.id();
                this.changed({rhs: {...this.registered.rhs, [id]: {component, title}}});
                // As Mattermost: show and hide are plain actions, toggle is a thunk.
                const toggle: Thunk = (dispatch, getState) =>
                    dispatch({type: 'HARNESS_RHS', pluginId: getState().views.rhs.pluginId === id ? null : id});
                return {
                    id,
                    showRHSPlugin: {type: 'HARNESS_RHS', pluginId: id},
                    hideRHSPlugin: {type: 'HARNESS_RHS', pluginId: null},
                    toggleRHSPlugin: toggle,
                };
            },
            registerChannelHeaderButtonAction: (...a) => {
                const [icon, action, dropdownText, tooltipText] = reArg(['icon', 'action', 'dropdownText', 'tooltipText'], a) as [unknown, Action, string, string];
                const id = this.id();
                this.changed({headerButtons: [...this.registered.headerButtons, {id, icon, action, dropdownText, tooltipText}]});
                return id;
            },
            registerAppBarComponent: (...a) => {
                const [iconUrl, action, tooltipText] = reArg(['iconUrl', 'action', 'tooltipText'], a) as [string, Action, string];
                const id = this.id();
                this.changed({appBar: [...this.registered.appBar, {id, iconUrl, action, tooltipText}]});
                return id;
            },
            registerRootComponent: (...a) => {
                const [component] = reArg(['component'], a);
                const id = this.id();
                this.changed({roots: [...this.registered.roots, {id, component}]});
                return id;
            },
            unregisterComponent: (...a) => {
                const [id] = reArg(['componentId'], a) as [string];
                const keep = <T extends {id: string}>(xs: T[]) => xs.filter((x) => x.id !== id);
                const rhs = Object.fromEntries(Object.entries(this.registered.rhs).filter(([k]) => k !== id));
                this.changed({headerButtons: keep(this.registered.headerButtons), appBar: keep(this.registered.appBar), roots: keep(this.registered.roots), rhs});
                if (this.store.getState().views.rhs.pluginId === id) {
                    this.store.dispatch({type: 'HARNESS_RHS', pluginId: null});
                }
            },
        };
    }
}
