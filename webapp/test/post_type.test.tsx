import {act, cleanup, fireEvent, render, screen, waitFor} from '@testing-library/react';
import * as React from 'react';
import {Provider} from 'react-redux';
import {afterEach, describe, expect, it, vi} from 'vitest';

import {CARD_POST_CSS, DANGER_BUTTON_CSS, STYLE_ID} from '../src/components/post_type';
import type {HostPost, HostStore, PluginRegistry} from '../src/mattermost';
import {Plugin} from '../src/plugin';
import {ev} from './events';
import {hostStore} from './host_store';
import {cardPost, channelInfo, mountPosts, ok, stored} from './posts';

afterEach(() => {
    cleanup();
    vi.unstubAllGlobals();
});

const turnPost = (userId = 'u-bot'): HostPost => ({
    id: 'post1',
    channel_id: 'c1',
    user_id: userId,
    type: 'custom_claude_code',
    message: 'The turn as mobile sees it',
    props: {claude_code_session: 's1', claude_code_turn: 'p1', claude_code_part: 0},
});

const decisionButtons = () => screen.queryAllByRole('button');

describe('ClaudeCodePost', () => {
    it('draws a post naming a request as the approval card, any other as the turn post', async () => {
        const {feed, view} = mountPosts([turnPost(), cardPost()], ok(channelInfo()));
        act(() => void feed(ev(1, 'prompt', {prompt_id: 'p1', author: 'u-me', text: 'deploy'}), ev(2, 'status', {state: 'running', prompt_id: 'p1'})));
        act(() => void feed(ev(3, 'approval', {phase: 'requested', approval_id: 'a1', tool: 'Bash', input: '{"command":"make deploy"}'})));

        const [turn, card] = [...view.container.querySelectorAll('.post')];
        await waitFor(() => expect(turn.querySelector('.claude-code-turn')).not.toBeNull());
        expect(turn.querySelector('[data-claude-code-card]')).toBeNull();
        expect(card.querySelector('.claude-code-turn')).toBeNull();
        expect(card.querySelector('[data-claude-code-card]')?.getAttribute('role')).toBe('group');
        expect(card.querySelector('pre[aria-label="Command"]')?.textContent).toBe('make deploy');
    });

    it("draws a post by anyone but the plugin's bot as its message: no card, no live turn, its attachments shown", async () => {
        const {feed, view, requests} = mountPosts([turnPost('u-mallory'), cardPost('a1', 'u-mallory')], ok(channelInfo()));
        act(() => void feed(ev(1, 'prompt', {prompt_id: 'p1', author: 'u-me', text: 'deploy'}), ev(2, 'status', {state: 'running', prompt_id: 'p1'})));
        act(() => void feed(ev(3, 'message', {text: 'the real live text'}), ev(4, 'approval', {phase: 'requested', approval_id: 'a1', tool: 'Bash', input: '{"command":"make deploy"}'})));
        await waitFor(() => expect(requests()).toHaveLength(1));
        await act(async () => {});

        const [turn, card] = [...view.container.querySelectorAll('.post')];
        expect(turn.textContent).toBe('The turn as mobile sees itmobile buttons');
        expect(card.textContent).toBe('**Claude wants to run** `ls`mobile buttons');
        expect(view.container.querySelector('[data-claude-code-card], .claude-code-turn')).toBeNull();
        expect(decisionButtons()).toEqual([]);
        // Only the bot's id was asked: a forged card does not load another session's request.
        expect(requests().map((r) => r.url)).toEqual(['/plugins/claude-code/api/v1/channels/c1']);
    });

    it('draws the message, not the card, while the bot is not known yet', async () => {
        const {feed, view} = mountPosts([cardPost()], ok(channelInfo()));
        act(() => void feed(ev(1, 'approval', {phase: 'requested', approval_id: 'a1', tool: 'Bash', input: '{"command":"make deploy"}'})));
        expect(view.container.querySelector('[data-claude-code-card]')).toBeNull();
        expect(view.container.querySelector('.post')!.textContent).toBe('**Claude wants to run** `ls`mobile buttons');
        expect(await screen.findByRole('button', {name: 'Approve'})).toBeTruthy();
    });

    it('draws a reloaded card post from the approvals route, pending, then decided live by someone else', async () => {
        const {feed, requests} = mountPosts([cardPost()], ok(channelInfo()), ok({approvals: [stored({approval_id: 'a0'}), stored()]}));

        expect(await screen.findByRole('button', {name: 'Approve'})).toBeTruthy();
        expect(screen.getByLabelText('Command').textContent).toBe('make deploy');
        // The channel's answer names the bot and gives the card its permissions: asked once.
        expect(requests().map((r) => r.url)).toEqual(['/plugins/claude-code/api/v1/channels/c1', '/plugins/claude-code/api/v1/sessions/s1/approvals']);

        // The live state learns only the decision: the request stays as loaded, the buttons go.
        act(() => void feed(ev(9, 'approval', {phase: 'decided', approval_id: 'a1', decision: 'deny', by: 'u-alice', reason: 'Denied by @alice: not today'})));
        expect(decisionButtons()).toEqual([]);
        expect(document.querySelector('.claude-code-approval-outcome')?.textContent).toMatch(/^⛔ Denied by @alice: not today/);
        expect(screen.getByLabelText('Command').textContent).toBe('make deploy');
    });

    it('shows the outcome of a request decided before the reload, without buttons or another permissions request', async () => {
        const {requests} = mountPosts(
            [cardPost()],
            ok(channelInfo({}, 's2')),
            ok({approvals: [stored({state: 'approved', decision: 'allow_for_session', decided_by: 'u-alice', decided_at: 1_700_000_000_900})]}),
        );
        await waitFor(() => expect(document.querySelector('.claude-code-approval-outcome')?.textContent).toMatch(/^✅ Approved by @alice for the rest of this session/));
        expect(decisionButtons()).toEqual([]);
        // The channel's answer is about its next session: a decided card does not ask it again.
        expect(requests()).toHaveLength(2);
    });

    it('hides the attachments behind a loading card, and shows the post itself when the request is unknown', async () => {
        const {view} = mountPosts([cardPost('gone')], ok(channelInfo()), ok({approvals: [stored()]}));
        await waitFor(() => expect(view.container.querySelector('[data-claude-code-card]')?.getAttribute('aria-busy')).toBe('true'));

        await waitFor(() => expect(view.container.querySelector('[data-claude-code-card]')).toBeNull());
        expect(view.container.querySelector('.post')!.textContent).toBe('**Claude wants to run** `ls`mobile buttons');
    });

    it('disables every decision with the reason before any click when the user may not approve', async () => {
        const refusal = 'Only the session owner (@bob) may approve tool use here.';
        const {fetchMock} = mountPosts(
            [cardPost()],
            ok(channelInfo({approve: refusal, approve_for_session: refusal, deny: refusal})),
            ok({approvals: [stored({tool: 'Write', input: {file_path: '/p/a.txt', content: 'x\n'}})]}),
        );
        await waitFor(() => expect(decisionButtons()).toHaveLength(5));
        await waitFor(() => expect(decisionButtons().every((b) => (b as HTMLButtonElement).disabled)).toBe(true));

        const reasons = document.querySelectorAll('.claude-code-approval-refusal');
        expect([...reasons].map((r) => r.textContent)).toEqual([refusal]);
        for (const button of decisionButtons()) {
            expect(button.getAttribute('aria-describedby')).toBe(reasons[0].id);
        }
        fireEvent.click(screen.getByRole('button', {name: 'Approve'}));
        expect(fetchMock).toHaveBeenCalledTimes(2);
    });

    it('disables only the refused decisions, each described by its own reason', async () => {
        mountPosts([cardPost()], ok(channelInfo({approve_for_session: 'Approving for the session is turned off here.'})), ok({approvals: [stored()]}));
        const forSession = (await screen.findByRole('button', {name: 'Approve for this session'})) as HTMLButtonElement;
        await waitFor(() => expect(forSession.disabled).toBe(true));
        expect(document.getElementById(forSession.getAttribute('aria-describedby')!)?.textContent).toBe('Approving for the session is turned off here.');
        const approve = screen.getByRole('button', {name: 'Approve'}) as HTMLButtonElement;
        expect(approve.disabled).toBe(false);
        expect(approve.hasAttribute('aria-describedby')).toBe(false);
    });

    it("ignores permissions about the channel's other session, and leaves the buttons to the server when they cannot be read", async () => {
        const refusal = 'Only the session owner (@carol) may approve tool use here.';
        // The answer about another session names the bot; the card asks again, and hears the same.
        const other = mountPosts([cardPost()], ok(channelInfo({approve: refusal}, 's2')), ok({approvals: [stored()]}), ok(channelInfo({approve: refusal}, 's2')));
        await waitFor(() => expect(other.fetchMock).toHaveBeenCalledTimes(3));
        expect(decisionButtons().every((b) => !(b as HTMLButtonElement).disabled)).toBe(true);
        cleanup();

        const failed = mountPosts([cardPost()], ok(channelInfo({}, 's2')), ok({approvals: [stored()]}), {status: 404, body: {error: 'Not found', status: 404}});
        await waitFor(() => expect(failed.fetchMock).toHaveBeenCalledTimes(3));
        expect(await screen.findByRole('button', {name: 'Approve'})).toBeTruthy();
        expect(decisionButtons().every((b) => !(b as HTMLButtonElement).disabled)).toBe(true);
    });

    it('ten card posts of a channel make one approvals request and one permissions request', async () => {
        const ids = Array.from({length: 10}, (_, i) => `a${i}`);
        const {requests} = mountPosts(
            ids.map((id) => cardPost(id)),
            ok(channelInfo({approve: 'No.', approve_for_session: 'No.', deny: 'No.'})),
            ok({approvals: ids.map((id) => stored({approval_id: id}))}),
        );
        await waitFor(() => expect(screen.getAllByRole('button', {name: 'Approve'})).toHaveLength(10));
        await waitFor(() => expect(decisionButtons().every((b) => (b as HTMLButtonElement).disabled)).toBe(true));
        expect(requests().map((r) => r.url)).toEqual(['/plugins/claude-code/api/v1/channels/c1', '/plugins/claude-code/api/v1/sessions/s1/approvals']);
    });
});

describe('the registered post type', () => {
    function registry() {
        const registered: Array<[string, unknown]> = [];
        const r = {
            registerReducer: () => undefined,
            registerWebSocketEventHandler: () => undefined,
            registerReconnectHandler: () => undefined,
            registerPostTypeComponent: (type: string, c: unknown) => {
                registered.push([type, c]);
                return 'id1';
            },
            registerRightHandSidebarComponent: () => ({id: 'rhs', showRHSPlugin: {type: 'show'}, hideRHSPlugin: {type: 'hide'}, toggleRHSPlugin: {type: 'toggle'}}),
            registerChannelHeaderButtonAction: () => 'header',
        } as PluginRegistry;
        return {r, registered};
    }

    it('is the dispatcher, rendered with the host props, asking for the permissions of the post\'s channel', async () => {
        const fetchMock = vi.fn(async (_url: string | URL | Request) => new Response(JSON.stringify(channelInfo({approve: 'No.'})), {status: 200}));
        vi.stubGlobal('fetch', fetchMock);
        const host = hostStore();
        const {r, registered} = registry();
        const plugin = new Plugin();
        plugin.initialize(r, host.store as unknown as HostStore);
        expect(registered.map(([type]) => type)).toEqual(['custom_claude_code']);
        const Registered = registered[0][1] as React.ComponentType<{post: HostPost; compactDisplay?: boolean; isRHS?: boolean}>;
        act(() => void host.feed(ev(1, 'approval', {phase: 'requested', approval_id: 'a1', tool: 'Bash', input: '{"command":"ls"}'})));
        render(
            <Provider store={host.store}>
                <Registered post={turnPost()} compactDisplay={false} isRHS={false} />
                <Registered post={cardPost()} compactDisplay={false} isRHS={false} />
            </Provider>,
        );
        act(() => void host.feed(ev(2, 'prompt', {prompt_id: 'p1', author: 'u-me', text: 'x'}), ev(3, 'status', {state: 'running', prompt_id: 'p1'}), ev(4, 'message', {text: 'from the registry'})));
        expect(await screen.findByText('from the registry')).toBeTruthy();
        const approve = (await screen.findByRole('button', {name: 'Approve'})) as HTMLButtonElement;
        await waitFor(() => expect(approve.disabled).toBe(true));
        // The site URL's path (none here) and the post's channel.
        expect(fetchMock.mock.calls.map(([url]) => String(url))).toEqual(['/plugins/claude-code/api/v1/channels/c1']);
        plugin.uninitialize();
    });

    it('comes with one stylesheet hiding the attachments of a post showing a card, removed at uninitialize', () => {
        const host = hostStore();
        // A stylesheet left by an earlier load of the bundle is replaced, not doubled.
        const leftover = document.createElement('style');
        leftover.id = STYLE_ID;
        document.head.appendChild(leftover);
        const plugin = new Plugin();
        plugin.initialize(registry().r, host.store as unknown as HostStore);

        const styles = document.querySelectorAll(`style#${STYLE_ID}`);
        expect(styles).toHaveLength(1);
        expect(styles[0]).not.toBe(leftover);
        expect(styles[0].textContent).toBe(`${CARD_POST_CSS}\n${DANGER_BUTTON_CSS}`);
        expect(CARD_POST_CSS).toBe('.post:has([data-claude-code-card]) .attachment {display: none}');

        plugin.uninitialize();
        expect(document.getElementById(STYLE_ID)).toBeNull();
    });
});
