import {combineReducers, legacy_createStore as createStore} from 'redux';
import {vi} from 'vitest';

import type {LiveEvent} from '../src/api_types';
import {Client} from '../src/client';
import {EVENTS_RECEIVED, reducer} from '../src/live/reducer';

const SELECT_CHANNEL = 'test/select_channel';

/** A host store as Mattermost builds it around the plugin's reducer, with a few users loaded and a current channel. */
export function hostStore(channelId = 'c1') {
    const users = {currentUserId: 'u-me', profiles: {'u-alice': {username: 'alice'}, 'u-me': {username: 'me'}}};
    const entities = (state = {general: {config: {SiteURL: 'https://chat.example.com'}}, users, channels: {currentChannelId: channelId}}, action: {type: string; channelId?: string}) =>
        action.type === SELECT_CHANNEL ? {...state, channels: {currentChannelId: action.channelId}} : state;
    const store = createStore(combineReducers({entities, 'plugins-claude-code': reducer}));
    const feed = (...events: LiveEvent[]) => store.dispatch({type: EVENTS_RECEIVED, events} as {type: string});
    /** The user switches to another channel. */
    const selectChannel = (id: string) => store.dispatch({type: SELECT_CHANNEL, channelId: id} as {type: string});
    return {store, feed, selectChannel};
}

type Answer = {status: number; body: unknown};

/** The real Client over a fetch that answers from `answers` in order and records each request. */
export function fakeClient(...answers: Answer[]) {
    const queue = [...answers];
    const fetchMock = vi.fn(async (_url: string | URL | Request, _init?: RequestInit) => {
        const a = queue.shift() ?? {status: 500, body: {error: 'no answer scripted', status: 500}};
        return new Response(JSON.stringify(a.body), {status: a.status, headers: {'Content-Type': 'application/json'}});
    });
    const client = new Client(() => '/plugins/claude-code/api/v1', fetchMock, () => 'MMCSRF=tok');
    /** The requests: method, path and JSON body. */
    const requests = () =>
        fetchMock.mock.calls.map(([url, init]) => ({
            method: init?.method,
            url: String(url),
            body: init?.body ? (JSON.parse(String(init.body)) as unknown) : undefined,
        }));
    return {client, fetchMock, requests};
}
