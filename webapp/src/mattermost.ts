import type * as React from 'react';

// The parts of Mattermost's plugin API this plugin uses (webapp/channels/src/plugins/registry.ts,
// plugins/index.ts); Mattermost ships no types for them.

/** What the host's websocket handler gets: `data` is the payload the plugin published. */
export interface WebSocketMessage<T = Record<string, unknown>> {
    event: string;
    data: T;
    broadcast: Record<string, unknown>;
    seq: number;
}

/**
 * An action for the host's dispatch: a plain action, or one of the host's thunks (the RHS
 * actions registerRightHandSidebarComponent returns are of either kind, depending on the version).
 */
export type HostAction = {type: string} | ((dispatch: unknown, getState: unknown) => unknown);

/** What registerRightHandSidebarComponent returns: an id and actions to dispatch. */
export interface RhsRegistration {
    id: string;
    showRHSPlugin: HostAction;
    hideRHSPlugin: HostAction;
    toggleRHSPlugin: HostAction;
}

export interface PluginRegistry {
    /** `type` must start with `custom_`; the host renders `<C post compactDisplay isRHS theme/>` as the message body. Returns an id. */
    registerPostTypeComponent(type: string, component: unknown): string;
    unregisterPostTypeComponent?(id: string): void;
    registerReducer(reducer: (state: unknown, action: {type: string}) => unknown): void;
    /** `event` is the full name: `custom_<plugin id>_<event>`. One handler per event; a second replaces it. */
    registerWebSocketEventHandler(event: string, handler: (msg: WebSocketMessage) => void): void;
    registerReconnectHandler(handler: () => void): void;
    /** `title` shows in the sidebar's header. */
    registerRightHandSidebarComponent(component: React.ComponentType, title: string): RhsRegistration;
    /** `icon`: an element, or a component the host instantiates. `action(channel, channelMember)`. Returns an id. */
    registerChannelHeaderButtonAction(
        icon: React.ReactElement | React.ComponentType,
        action: (channel: unknown, channelMember: unknown) => void,
        dropdownText: string,
        tooltipText: string,
    ): string;
    /** The App Bar (Mattermost 7+; absent in older hosts). `iconUrl` may be a data: URL. Returns an id. */
    registerAppBarComponent?(iconUrl: string, action: (channel: unknown, channelMember: unknown) => void, tooltipText: string): string;
    /** Removes a component registered by any register*Component / header button call. */
    unregisterComponent?(id: string): void;
}

/** The host's own Redux store. */
export interface HostStore {
    getState(): HostState;
    dispatch(action: HostAction): unknown;
}

export interface HostState {
    entities: {
        general: {config: {SiteURL?: string}};
        /** Absent in a bare test store. */
        users?: {currentUserId?: string; profiles?: Record<string, {username?: string} | undefined>};
        /** The channel the user is in (absent in a bare test store, or before one is open). */
        channels?: {currentChannelId?: string};
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
    /** The author: the plugin's own posts are the bot's (any user can post a custom_ type). */
    user_id: string;
    message: string;
    type?: string;
    props?: Record<string, unknown> | null;
}
