import * as React from 'react';

import {EVENT_NAMES, type EventName, type LiveEvent} from './api_types';
import {apiBase, Client, PLUGIN_ID} from './client';
import {FilesView} from './components/files';
import {ICON_URL, PanelIcon} from './components/panel/icon';
import {Panel} from './components/panel/panel';
import {ClaudeCodePost, installStyle, POST_TYPE} from './components/post_type';
import {LiveController} from './live/controller';
import {reducer} from './live/reducer';
import {liveState} from './live/selectors';
import type {HostPost, HostStore, MattermostPlugin, PluginRegistry, WebSocketMessage} from './mattermost';

/**
 * The websocket payload as a live event, or undefined when it lacks what sequencing needs (a
 * malformed event must not throw inside the host's websocket loop).
 */
function toLiveEvent(name: EventName, data: Record<string, unknown>): LiveEvent | undefined {
    const {session_id: sessionId, seq} = data;
    if (typeof sessionId !== 'string' || typeof seq !== 'number' || !Number.isInteger(seq) || seq < 1) {
        return undefined;
    }
    // The name comes from the registration, which is what routed the event here.
    return {...(data as LiveEvent), event: name};
}

export class Plugin implements MattermostPlugin {
    private live?: LiveController;
    private unregister: Array<() => void> = [];

    initialize(registry: PluginRegistry, store: HostStore): void {
        registry.registerReducer(reducer as (state: unknown, action: {type: string}) => unknown);
        const client = new Client(() => apiBase(store.getState().entities.general.config.SiteURL));
        const live = new LiveController({
            getState: () => liveState(store.getState()),
            dispatch: (action) => store.dispatch(action),
            fetchEvents: (sessionId, after) => client.events(sessionId, {after}),
            onError: (sessionId, error) => console.warn(`claude-code: replaying session ${sessionId} failed`, error),
        });
        this.live = live;
        for (const name of EVENT_NAMES) {
            registry.registerWebSocketEventHandler(`custom_${PLUGIN_ID}_${name}`, (msg: WebSocketMessage) => {
                const event = toLiveEvent(name, msg.data);
                if (event) {
                    live.receive(event);
                }
            });
        }
        registry.registerReconnectHandler(() => void live.replayAll());
        // The host renders it with {post, compactDisplay, isRHS, theme}; the client comes from here.
        const PostType = ({post}: {post: HostPost}) => React.createElement(ClaudeCodePost, {post, client});
        const postTypeId = registry.registerPostTypeComponent(POST_TYPE, PostType);
        // The host drops a removed plugin's components itself; an older host may not.
        this.unregister.push(() => registry.unregisterPostTypeComponent?.(postTypeId));
        this.unregister.push(installStyle(document));
        this.registerPanel(registry, store, client, live);
    }

    /** The session panel in the right-hand sidebar, opened from the channel header and the App Bar. */
    private registerPanel(registry: PluginRegistry, store: HostStore, client: Client, live: LiveController): void {
        const catchUp = (sessionId: string) => void live.catchUp(sessionId);
        const PanelType = () => React.createElement(Panel, {client, catchUp, filesView: FilesView});
        const rhs = registry.registerRightHandSidebarComponent(PanelType, 'Claude Code');
        const toggle = () => void store.dispatch(rhs.toggleRHSPlugin);
        const ids = [rhs.id, registry.registerChannelHeaderButtonAction(PanelIcon, toggle, 'Claude Code', 'Claude Code')];
        // Older hosts have no App Bar.
        const appBarId = registry.registerAppBarComponent?.(ICON_URL, toggle, 'Claude Code');
        if (appBarId !== undefined) {
            ids.push(appBarId);
        }
        this.unregister.push(() => ids.forEach((id) => registry.unregisterComponent?.(id)));
    }

    uninitialize(): void {
        this.live?.stop();
        this.live = undefined;
        for (const undo of this.unregister.splice(0)) {
            undo();
        }
    }
}
