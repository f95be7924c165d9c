import {PLUGIN_ID} from '../client';
import type {HostState} from '../mattermost';
import type {LiveApproval, LiveState, SessionLive} from './reducer';

/** Where registerReducer mounts the plugin's reducer in the host state. */
export const STATE_KEY = `plugins-${PLUGIN_ID}`;

/** The plugin's slice of the host state. */
export function liveState(state: HostState): LiveState {
    return (state[STATE_KEY] as LiveState | undefined) ?? {};
}

export function sessionLive(state: HostState, sessionId: string | undefined): SessionLive | undefined {
    return sessionId ? liveState(state)[sessionId] : undefined;
}

export function liveApproval(state: HostState, sessionId: string, approvalId: string): LiveApproval | undefined {
    return liveState(state)[sessionId]?.approvals[approvalId];
}

/** A user's name for display: the username the host has loaded, else what was given (an id). */
export function displayName(state: HostState, userId: string): string {
    return state.entities.users?.profiles?.[userId]?.username ?? userId;
}
