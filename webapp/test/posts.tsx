import {render} from '@testing-library/react';
import * as React from 'react';
import {Provider} from 'react-redux';

import type {Approval, ChannelInfo, PermissionAction} from '../src/api_types';
import {ClaudeCodePost} from '../src/components/post_type';
import type {HostPost} from '../src/mattermost';
import {fakeClient, hostStore} from './host_store';

// Card posts of the plugin's bot as the host renders them, and the API's answers about them.

/** A card post of request `approvalId`; `text` is its attachment's (where the server writes the outcome). */
export const cardPost = (approvalId = 'a1', userId = 'u-bot', text?: string): HostPost => ({
    id: `card-${approvalId}`,
    channel_id: 'c1',
    user_id: userId,
    type: 'custom_claude_code',
    message: '**Claude wants to run** `ls`',
    props: {claude_code_session: 's1', claude_code_request: approvalId, attachments: [{actions: [{name: 'Approve'}], ...(text === undefined ? {} : {text})}]},
});

export const stored = (fields: Partial<Approval> = {}): Approval => ({
    approval_id: 'a1',
    tool: 'Bash',
    input: {command: 'make deploy'},
    requested_at: 1_700_000_000_000,
    state: 'pending',
    ...fields,
});

const allowed = {allowed: true, reason: null};
export function channelInfo(refused: Partial<Record<PermissionAction, string>> = {}, sessionId = 's1'): ChannelInfo {
    const actions: PermissionAction[] = ['start', 'prompt', 'interrupt', 'stop', 'context', 'files', 'history', 'mode', 'model', 'approve', 'approve_for_session', 'deny', 'edit_file'];
    const permissions = Object.fromEntries(actions.map((a) => [a, refused[a] ? {allowed: false, reason: refused[a]} : allowed])) as ChannelInfo['permissions'];
    const session = {id: sessionId, channel_id: 'c1', owner_id: 'u-bob', project_path: '/p', state: 'awaiting_approval', created_at: 1, updated_at: 1, queued_prompts: 0, pending_approvals: 1, last_seq: 3} as const;
    return {channel_id: 'c1', session, allowed_roots: [], permissions, bot_user_id: 'u-bot'};
}

export type Answer = {status: number; body: unknown};
export const ok = (body: unknown): Answer => ({status: 200, body});

/** Posts as the host renders them: inside `.post`, the attachments after the body. */
export function mountPosts(posts: HostPost[], ...answers: Answer[]) {
    const host = hostStore();
    const fake = fakeClient(...answers);
    const view = render(
        <Provider store={host.store}>
            {posts.map((p) => (
                <div key={p.id} className='post'>
                    <ClaudeCodePost post={p} client={fake.client} />
                    <div className='attachment'>{'mobile buttons'}</div>
                </div>
            ))}
        </Provider>,
    );
    return {...host, ...fake, view};
}
