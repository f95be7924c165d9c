// The parts of Mattermost's plugin API this plugin uses (webapp/channels/src/plugins/registry.ts,
// plugins/index.ts); Mattermost ships no types for them.

/** What the host's websocket handler gets: `data` is the payload the plugin published. */
export interface WebSocketMessage<T = Record<string, unknown>> {
    event: string;
    data: T;
    broadcast: Record<string, unknown>;
    seq: number;
}

export interface PluginRegistry {
    /** `type` must start with `custom_`; the host renders `<C post compactDisplay isRHS theme/>` as the message body. Returns an id. */
    registerPostTypeComponent(type: string, component: unknown): string;
    unregisterPostTypeComponent?(id: string): void;
    registerReducer(reducer: (state: unknown, action: {type: string}) => unknown): void;
    /** `event` is the full name: `custom_<plugin id>_<event>`. One handler per event; a second replaces it. */
    registerWebSocketEventHandler(event: string, handler: (msg: WebSocketMessage) => void): void;
    registerReconnectHandler(handler: () => void): void;
}

/** The host's own Redux store. */
export interface HostStore {
    getState(): HostState;
    dispatch(action: {type: string}): unknown;
}

export interface HostState {
    entities: {
        general: {config: {SiteURL?: string}};
        /** Absent in a bare test store. */
        users?: {currentUserId?: string; profiles?: Record<string, {username?: string} | undefined>};
    };
    [slice: string]: unknown;
}

export interface MattermostPlugin {
    initialize(registry: PluginRegistry, store: HostStore): void;
    uninitialize(): void;
}

declare global {
    interface Window {
        registerPlugin(id: string, plugin: MattermostPlugin): void;
        /** The host's markdown (MM plugins/export.ts); absent outside Mattermost. */
        PostUtils?: {
            formatText(text: string, options?: Record<string, unknown>): string;
            messageHtmlToComponent(html: string, ...rest: unknown[]): unknown;
        };
    }
}

/** The post a post type component gets (the fields used here). */
export interface HostPost {
    id: string;
    channel_id: string;
    message: string;
    type?: string;
    props?: Record<string, unknown> | null;
}
