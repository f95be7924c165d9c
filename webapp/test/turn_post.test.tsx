import {act, cleanup, render, screen} from '@testing-library/react';
import * as React from 'react';
import {Provider} from 'react-redux';
import {afterEach, describe, expect, it} from 'vitest';

import {TurnPost} from '../src/components/turn_post';
import type {HostPost, HostStore, PluginRegistry} from '../src/mattermost';
import {Plugin} from '../src/plugin';
import {ev} from './events';
import {fakeClient, hostStore} from './host_store';

afterEach(() => {
    cleanup();
    delete window.PostUtils;
});

const post = (props: Record<string, unknown> | null, message = 'Hello from the post (as mobile sees it)'): HostPost => ({
    id: 'post1',
    type: 'custom_claude_code',
    message,
    props,
});

function mount(p: HostPost) {
    const host = hostStore();
    const {client} = fakeClient();
    const view = render(
        <Provider store={host.store}>
            <TurnPost post={p} client={client} />
        </Provider>,
    );
    return {...host, view};
}

const start = [ev(1, 'prompt', {prompt_id: 'p1', author: 'u-alice', text: 'list files'}), ev(2, 'status', {state: 'running', previous: 'idle'})];

describe('TurnPost', () => {
    it('shows the text as message events stream in, the tool rows, then the closing line', () => {
        const {feed, view} = mount(post({claude_code_session: 's1', claude_code_turn: 'p1'}));
        act(() => void feed(...start, ev(3, 'message', {text: 'Let me '})));
        const turn = view.container.querySelector('.claude-code-turn')!;
        expect(turn.textContent).toContain('Let me ');
        expect(turn.getAttribute('aria-busy')).toBe('true');
        expect(screen.getByRole('status').textContent).toBe('⏳ Working…');
        expect(turn.textContent).not.toContain('Hello from the post');

        act(() => void feed(ev(4, 'message', {text: 'look.'})));
        expect(turn.textContent).toContain('Let me look.');

        act(() => void feed(ev(5, 'tool', {phase: 'use', tool_use_id: 't1', tool: 'Bash', input: '{"command":"ls -la"}'})));
        const row = view.container.querySelector('details.claude-code-tool')!;
        expect(row.querySelector('summary')!.getAttribute('aria-label')).toBe('Bash ls -la: running');
        expect(row.hasAttribute('open')).toBe(false);

        act(() => void feed(ev(6, 'tool', {phase: 'result', tool_use_id: 't1', tool: 'Bash', is_error: false, output: 'a.rs\nb.rs\n'})));
        expect(row.querySelector('summary')!.getAttribute('aria-label')).toBe('Bash ls -la: done');
        expect(screen.getByLabelText('Output of Bash').textContent).toBe('a.rs\nb.rs\n');

        act(() => void feed(ev(7, 'turn', {prompt_id: 'p1', is_error: false, subtype: 'success', duration_ms: 1234, num_turns: 2, total_cost_usd: '0.0123'})));
        expect(screen.getByRole('status').textContent).toBe('✓ Done in 1.2 s · 2 turns · $0.0123');
        expect(turn.getAttribute('aria-busy')).toBe('false');
        expect(turn.textContent).toContain('Let me look.');
    });

    it('finds its turn by the seq that opened it, too', () => {
        const {feed, view} = mount(post({claude_code_session: 's1', claude_code_turn: 2}));
        act(() => void feed(...start, ev(3, 'message', {text: 'streamed'})));
        expect(view.container.textContent).toContain('streamed');
    });

    it('shows an edit as a diff in its row and the approval card asked for it, live', () => {
        const {feed, view} = mount(post({claude_code_session: 's1', claude_code_turn: 'p1'}));
        const input = JSON.stringify({file_path: '/p/a.txt', old_string: 'old', new_string: 'new'});
        act(
            () =>
                void feed(
                    ...start,
                    ev(3, 'tool', {phase: 'use', tool_use_id: 't1', tool: 'Edit', input, file_path: '/p/a.txt'}),
                    ev(4, 'approval', {phase: 'requested', approval_id: 'a1', tool_use_id: 't1', tool: 'Edit', input}),
                ),
        );
        expect(view.container.querySelector('summary')!.getAttribute('aria-label')).toBe('Edit /p/a.txt: waiting for approval');
        const diffs = screen.getAllByLabelText('Proposed change to /p/a.txt');
        expect([...diffs[0].querySelectorAll('[data-sign]')].map((l) => l.textContent)).toEqual(['-old', '+new']);
        expect(screen.getByRole('button', {name: 'Approve'})).toBeTruthy();

        act(() => void feed(ev(5, 'approval', {phase: 'decided', approval_id: 'a1', decision: 'allow', by: 'u-alice'})));
        expect(screen.queryByRole('button', {name: 'Approve'})).toBeNull();
        expect(screen.getByText(/Approved by @alice/)).toBeTruthy();
    });

    it("renders the post's own message without live state: an old post, a reload, no props", () => {
        const none = mount(post({claude_code_session: 's1', claude_code_turn: 'p1'}));
        expect(none.view.container.textContent).toBe('Hello from the post (as mobile sees it)');
        cleanup();

        // The session's live turn is a later one than this post's.
        const older = mount(post({claude_code_session: 's1', claude_code_turn: 'p0'}));
        act(() => void older.feed(...start, ev(3, 'message', {text: 'the newer turn'})));
        expect(older.view.container.textContent).toBe('Hello from the post (as mobile sees it)');
        cleanup();

        // A post that names its session but not its turn (the server does not set the props yet).
        const unnamed = mount(post({session_id: 's1'}));
        act(() => void unnamed.feed(...start, ev(3, 'message', {text: 'whose?'})));
        expect(unnamed.view.container.textContent).toBe('Hello from the post (as mobile sees it)');
        cleanup();

        expect(mount(post(null)).view.container.textContent).toBe('Hello from the post (as mobile sees it)');
    });

    it("renders markdown through the host's PostUtils when present", () => {
        window.PostUtils = {
            formatText: (text) => `<b>${text}</b>`,
            messageHtmlToComponent: (html) => <span data-testid='host-md'>{html}</span>,
        };
        mount(post(null, '**bold**'));
        expect(screen.getByTestId('host-md').textContent).toBe('<b>**bold**</b>');
    });

    it('is what the plugin registers for custom_claude_code, rendered with the host props', () => {
        const host = hostStore();
        let component: React.ComponentType<{post: HostPost; compactDisplay?: boolean; isRHS?: boolean}> | undefined;
        const registry = {
            registerReducer: () => undefined,
            registerWebSocketEventHandler: () => undefined,
            registerReconnectHandler: () => undefined,
            registerPostTypeComponent: (type: string, c: unknown) => {
                expect(type).toBe('custom_claude_code');
                component = c as typeof component;
                return 'id1';
            },
            registerRightHandSidebarComponent: () => ({id: 'rhs', showRHSPlugin: {type: 'show'}, hideRHSPlugin: {type: 'hide'}, toggleRHSPlugin: {type: 'toggle'}}),
            registerChannelHeaderButtonAction: () => 'header',
        } as PluginRegistry;
        const plugin = new Plugin();
        plugin.initialize(registry, host.store as unknown as HostStore);
        const Registered = component!;
        render(
            <Provider store={host.store}>
                <Registered post={post({claude_code_session: 's1', claude_code_turn: 'p1'})} compactDisplay={false} isRHS={false} />
            </Provider>,
        );
        act(() => void host.feed(...start, ev(3, 'message', {text: 'from the registry'})));
        expect(screen.getByText('from the registry')).toBeTruthy();
        plugin.uninitialize();
    });
});
