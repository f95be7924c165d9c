// The host's Redux store: the slices of Mattermost's state plugins read (entities.general.config,
// users, channels, posts), the right-hand sidebar's state, and the plugins' reducers mounted
// under `plugins-<id>` as registerReducer does. Thunks are dispatched as the host's
// redux-thunk middleware does (some of the RHS actions are thunks).
import {applyMiddleware, combineReducers, legacy_createStore as createStore, type Reducer, type UnknownAction} from 'redux';

import type {Post, User} from './api';

export interface Entities {
    general: {config: {SiteURL?: string}};
    users: {currentUserId: string; profiles: Record<string, User>};
    channels: {currentChannelId: string; channels: Record<string, {id: string; name: string; display_name: string}>};
    teams: {currentTeamId: string};
    posts: {posts: Record<string, Post>};
}

export type HarnessAction =
    | {type: 'HARNESS_ENTITIES'; entities: Partial<Entities>}
    | {type: 'HARNESS_POSTS'; posts: Post[]}
    | {type: 'HARNESS_RHS'; pluginId: string | null};

const EMPTY: Entities = {
    general: {config: {}},
    users: {currentUserId: '', profiles: {}},
    channels: {currentChannelId: '', channels: {}},
    teams: {currentTeamId: ''},
    posts: {posts: {}},
};

function entities(state: Entities = EMPTY, action: UnknownAction): Entities {
    const a = action as HarnessAction;
    switch (a.type) {
    case 'HARNESS_ENTITIES':
        return {...state, ...a.entities};
    case 'HARNESS_POSTS': {
        const posts = {...state.posts.posts};
        for (const p of a.posts) {
            // An edit of a post we already hold newer is late news.
            const held = posts[p.id];
            if (!held || held.update_at <= p.update_at) {
                posts[p.id] = p;
            }
        }
        return {...state, posts: {posts}};
    }
    default:
        return state;
    }
}

/** The plugin whose right-hand sidebar component is open, or null. */
function rhs(state: {pluginId: string | null} = {pluginId: null}, action: UnknownAction) {
    const a = action as HarnessAction;
    return a.type === 'HARNESS_RHS' ? {pluginId: a.pluginId} : state;
}

export type Thunk = (dispatch: (a: unknown) => unknown, getState: () => HarnessState) => unknown;

const thunk = ({dispatch, getState}: {dispatch: (a: unknown) => unknown; getState: () => HarnessState}) =>
    (next: (a: unknown) => unknown) => (action: unknown) => (typeof action === 'function' ? (action as Thunk)(dispatch, getState) : next(action));

export interface HarnessState {
    entities: Entities;
    views: {rhs: {pluginId: string | null}};
    [plugin: string]: unknown;
}

const hostReducers = {entities, views: combineReducers({rhs})};

export function makeStore() {
    const plugins: Record<string, Reducer> = {};
    const store = createStore(combineReducers(hostReducers) as unknown as Reducer<HarnessState>, applyMiddleware(thunk as never));
    return {
        store,
        /** registerReducer: mounted at `plugins-<id>`, as Mattermost's reducer registry does. */
        addPluginReducer(pluginId: string, reducer: Reducer) {
            plugins[`plugins-${pluginId}`] = reducer;
            store.replaceReducer(combineReducers({...hostReducers, ...plugins}) as unknown as Reducer<HarnessState>);
        },
    };
}

export type HarnessStore = ReturnType<typeof makeStore>['store'];
