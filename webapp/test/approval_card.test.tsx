import {act, cleanup, fireEvent, render, screen, waitFor} from '@testing-library/react';
import * as React from 'react';
import {Provider} from 'react-redux';
import {afterEach, describe, expect, it} from 'vitest';

import type {LiveEvent} from '../src/api_types';
import {ApprovalCard, type ApprovalClient} from '../src/components/approval_card';
import {ev} from './events';
import {fakeClient, hostStore} from './host_store';

afterEach(cleanup);

const requested = (seq: number, tool: string, input: unknown, fields: Record<string, string> = {}) =>
    ev(seq, 'approval', {phase: 'requested', approval_id: 'a1', tool, tool_use_id: 't1', input: JSON.stringify(input), ...fields});

/** The card in the host's Provider, after `events` (the live state the card finds first). */
function mount(client: ApprovalClient, ...events: LiveEvent[]) {
    const host = hostStore();
    host.feed(...events);
    const view = render(
        <Provider store={host.store}>
            <ApprovalCard sessionId='s1' approvalId='a1' client={client} />
        </Provider>,
    );
    return {...host, view};
}

const buttons = () => screen.queryAllByRole('button');
const approvalAnswer = (state: string, fields: Record<string, unknown> = {}) => ({
    status: 200,
    body: {approval_id: 'a1', tool: 'Bash', input: {}, requested_at: 1, state, decided_by: 'u-me', decided_at: 1_700_000_000_500, ...fields},
});

describe('ApprovalCard', () => {
    it('shows a Bash request with the command in full and the five decisions as buttons', () => {
        const {client} = fakeClient();
        const command = 'cargo build --release &&\n  ./target/release/app --flag';
        mount(client, requested(1, 'Bash', {command, description: 'Build it'}));

        expect(screen.getByLabelText('Command').textContent).toBe(command);
        expect(buttons().map((b) => b.textContent)).toEqual(['Approve', 'Approve for this session', 'Deny', 'Deny with a reason…', 'Edit and approve…']);
        expect(buttons().every((b) => !(b as HTMLButtonElement).disabled)).toBe(true);
    });

    it('shows a Write as added lines and an Edit as removed and added lines', () => {
        const {client} = fakeClient();
        mount(client, requested(1, 'Edit', {file_path: '/p/src/lib.rs', old_string: 'let a = 1;\nlet b = 2;', new_string: 'let a = 10;'}));
        const diff = screen.getByLabelText('Proposed change to /p/src/lib.rs');
        expect([...diff.querySelectorAll('[data-sign]')].map((l) => l.textContent)).toEqual(['-let a = 1;', '-let b = 2;', '+let a = 10;']);
        cleanup();

        mount(client, requested(1, 'Write', {file_path: '/p/new.txt', content: 'one\ntwo\n'}));
        const lines = [...screen.getByLabelText('Proposed change to /p/new.txt').querySelectorAll('[data-sign]')];
        expect(lines.map((l) => [l.getAttribute('data-sign'), l.textContent])).toEqual([
            ['+', '+one'],
            ['+', '+two'],
        ]);
    });

    it('approves through the approvals route, the buttons disabled while the request is in flight', async () => {
        const {client, requests} = fakeClient(approvalAnswer('approved', {decision: 'allow'}));
        mount(client, requested(1, 'Bash', {command: 'ls'}));

        fireEvent.click(screen.getByRole('button', {name: 'Approve'}));
        expect(buttons().every((b) => (b as HTMLButtonElement).disabled)).toBe(true);

        await waitFor(() => expect(screen.getByText(/Approved by @me/)).toBeTruthy());
        expect(requests()).toEqual([{method: 'POST', url: '/plugins/claude-code/api/v1/sessions/s1/approvals/a1', body: {decision: 'approve'}}]);
        expect(buttons()).toEqual([]);
    });

    it('an approval decided elsewhere removes the buttons and says who decided, in a live region', () => {
        const {client, fetchMock} = fakeClient();
        const {feed} = mount(client, requested(1, 'Bash', {command: 'rm -rf target'}));
        expect(buttons()).toHaveLength(5);

        act(() => void feed(ev(2, 'approval', {phase: 'decided', approval_id: 'a1', decision: 'allow_for_session', by: 'u-alice'})));

        expect(buttons()).toEqual([]);
        const outcome = screen.getByText(/Approved by @alice for the rest of this session/);
        expect(outcome.closest('[aria-live="polite"]')).not.toBeNull();
        expect(outcome.querySelector('time')?.getAttribute('dateTime')).toBe(new Date(1_700_000_000_002).toISOString());
        // The request stays readable.
        expect(screen.getByLabelText('Command').textContent).toBe('rm -rf target');
        expect(fetchMock).not.toHaveBeenCalled();
    });

    it('shows a deny reason, an expiry and a withdrawal as the outcome', () => {
        const {client} = fakeClient();
        const {feed} = mount(client, requested(1, 'Bash', {command: 'ls'}));
        act(() => void feed(ev(2, 'approval', {phase: 'decided', approval_id: 'a1', decision: 'deny', by: 'u-alice', reason: 'Denied by @alice: use the staging box'})));
        expect(screen.getByText(/Denied by @alice: use the staging box/)).toBeTruthy();
        cleanup();

        for (const [phase, text] of [
            ['expired', /Expired — denied automatically/],
            ['withdrawn', /Withdrawn — Claude Code stopped waiting/],
        ] as const) {
            mount(client, requested(1, 'Bash', {command: 'ls'}), ev(2, 'approval', {phase, approval_id: 'a1'}));
            expect(screen.getByText(text)).toBeTruthy();
            expect(buttons()).toEqual([]);
            cleanup();
        }
    });

    it('Deny with a reason: the reason is typed inline and sent with the deny', async () => {
        const {client, requests} = fakeClient(approvalAnswer('denied', {decision: 'deny', reason: 'Denied by @me: not on main'}));
        mount(client, requested(1, 'Bash', {command: 'git push --force'}));

        fireEvent.click(screen.getByRole('button', {name: 'Deny with a reason…'}));
        const field = screen.getByLabelText('Reason');
        expect(document.activeElement).toBe(field);
        const send = screen.getByRole('button', {name: 'Send and deny'}) as HTMLButtonElement;
        expect(send.disabled).toBe(true);
        fireEvent.change(field, {target: {value: '  not on main '}});
        fireEvent.click(send);

        await waitFor(() => expect(screen.getByText(/Denied by @me: not on main/)).toBeTruthy());
        expect(requests().map((r) => r.body)).toEqual([{decision: 'deny', reason: 'not on main'}]);
    });

    it('Deny with a reason can be cancelled, the focus back on its button', async () => {
        const {client} = fakeClient();
        mount(client, requested(1, 'Bash', {command: 'ls'}));
        fireEvent.click(screen.getByRole('button', {name: 'Deny with a reason…'}));
        fireEvent.click(screen.getByRole('button', {name: 'Cancel'}));
        await waitFor(() => expect(document.activeElement).toBe(screen.getByRole('button', {name: 'Deny with a reason…'})));
    });

    it('Edit and approve sends the input with the edited command', async () => {
        const {client, requests} = fakeClient(approvalAnswer('approved', {decision: 'allow_with_input'}));
        mount(client, requested(1, 'Bash', {command: 'rm -rf /tmp/x', description: 'Clean up', timeout: 1000}));

        fireEvent.click(screen.getByRole('button', {name: 'Edit and approve…'}));
        const field = (await screen.findByLabelText('Command', {selector: 'textarea'})) as HTMLTextAreaElement;
        expect(field.value).toBe('rm -rf /tmp/x');
        expect(document.activeElement).toBe(field);
        fireEvent.change(field, {target: {value: 'rm -rf /tmp/x/cache'}});
        fireEvent.click(screen.getByRole('button', {name: 'Approve with this edit'}));

        await waitFor(() => expect(screen.getByText(/Approved by @me with edited input/)).toBeTruthy());
        expect(requests().map((r) => r.body)).toEqual([
            {decision: 'approve', updated_input: {command: 'rm -rf /tmp/x/cache', description: 'Clean up', timeout: 1000}},
        ]);
    });

    it('Edit and approve of a Write edits the content, and of an Edit the new_string', async () => {
        const {client, requests} = fakeClient(approvalAnswer('approved'));
        mount(client, requested(1, 'Edit', {file_path: '/p/a.rs', old_string: 'a', new_string: 'b', replace_all: false}));
        fireEvent.click(screen.getByRole('button', {name: 'Edit and approve…'}));
        fireEvent.change(await screen.findByLabelText('Replacement text'), {target: {value: 'c'}});
        fireEvent.click(screen.getByRole('button', {name: 'Approve with this edit'}));
        await waitFor(() => expect(requests()).toHaveLength(1));
        expect(requests()[0].body).toEqual({decision: 'approve', updated_input: {file_path: '/p/a.rs', old_string: 'a', new_string: 'c', replace_all: false}});
        cleanup();

        const w = fakeClient(approvalAnswer('approved'));
        mount(w.client, requested(1, 'Write', {file_path: '/p/n.txt', content: 'x\n'}));
        fireEvent.click(screen.getByRole('button', {name: 'Edit and approve…'}));
        fireEvent.change(await screen.findByLabelText('File content'), {target: {value: 'y\n'}});
        fireEvent.click(screen.getByRole('button', {name: 'Approve with this edit'}));
        await waitFor(() => expect(w.requests()).toHaveLength(1));
        expect(w.requests()[0].body).toEqual({decision: 'approve', updated_input: {file_path: '/p/n.txt', content: 'y\n'}});
    });

    it('edits the whole input, fetched, when the live event carried it shortened', async () => {
        const whole = 'line\n'.repeat(2000);
        const shortened = `${whole.slice(0, 4096)}…`;
        const {client, requests} = fakeClient(
            {status: 200, body: {approvals: [{approval_id: 'a1', tool: 'Write', input: {file_path: '/p/big.txt', content: whole}, requested_at: 1, state: 'pending'}]}},
            approvalAnswer('approved'),
        );
        mount(client, requested(1, 'Write', {file_path: '/p/big.txt', content: shortened}));
        expect(screen.getByText('Long values are shown shortened.')).toBeTruthy();

        fireEvent.click(screen.getByRole('button', {name: 'Edit and approve…'}));
        const field = (await screen.findByLabelText('File content')) as HTMLTextAreaElement;
        expect(field.value).toBe(whole);
        fireEvent.change(field, {target: {value: `${whole}end\n`}});
        fireEvent.click(screen.getByRole('button', {name: 'Approve with this edit'}));

        await waitFor(() => expect(requests()).toHaveLength(2));
        expect(requests()[0]).toMatchObject({method: 'GET', url: '/plugins/claude-code/api/v1/sessions/s1/approvals'});
        expect(requests()[1].body).toEqual({decision: 'approve', updated_input: {file_path: '/p/big.txt', content: `${whole}end\n`}});
    });

    it('a 403 shows the error, which names who may, and disables the buttons', async () => {
        const refusal = 'Only the session owner (@bob) or a channel admin may approve tool use here';
        const {client} = fakeClient({status: 403, body: {error: refusal, status: 403}});
        mount(client, requested(1, 'Bash', {command: 'ls'}));

        fireEvent.click(screen.getByRole('button', {name: 'Approve'}));

        expect((await screen.findByRole('alert')).textContent).toBe(refusal);
        expect(buttons()).toHaveLength(5);
        expect(buttons().every((b) => (b as HTMLButtonElement).disabled)).toBe(true);
    });

    it('a server error shows its text but leaves the buttons usable to try again', async () => {
        const {client} = fakeClient({status: 503, body: {error: 'The plugin is not activated', status: 503}});
        mount(client, requested(1, 'Bash', {command: 'ls'}));
        fireEvent.click(screen.getByRole('button', {name: 'Deny'}));
        expect((await screen.findByRole('alert')).textContent).toBe('The plugin is not activated');
        expect(buttons().every((b) => !(b as HTMLButtonElement).disabled)).toBe(true);
    });

    it('the same request drawn twice (its post, the panel) has ids of its own in each card', () => {
        const {client} = fakeClient();
        const host = hostStore();
        host.feed(requested(1, 'Bash', {command: 'ls'}));
        const view = render(
            <Provider store={host.store}>
                <ApprovalCard sessionId='s1' approvalId='a1' client={client} />
                <ApprovalCard sessionId='s1' approvalId='a1' client={client} />
            </Provider>,
        );
        const ids = [...view.container.querySelectorAll('[id]')].map((el) => el.id);
        expect(new Set(ids).size).toBe(ids.length);
        for (const card of screen.getAllByRole('group')) {
            expect(card.contains(document.getElementById(card.getAttribute('aria-labelledby')!))).toBe(true);
        }
        // Each card's Reason field is labelled by its own label.
        for (const deny of screen.getAllByRole('button', {name: 'Deny with a reason…'})) {
            fireEvent.click(deny);
        }
        const [first, second] = screen.getAllByLabelText('Reason');
        expect(first).not.toBe(second);
    });

    it('moves the focus to the outcome when the focused button goes away', () => {
        const {client} = fakeClient();
        const {feed} = mount(client, requested(1, 'Bash', {command: 'ls'}));
        const approve = screen.getByRole('button', {name: 'Approve'});
        act(() => approve.focus());
        act(() => void feed(ev(2, 'approval', {phase: 'decided', approval_id: 'a1', decision: 'allow', by: 'u-alice'})));
        expect(document.activeElement?.getAttribute('aria-live')).toBe('polite');
        expect(document.activeElement?.textContent).toMatch(/Approved by @alice/);
    });
});
