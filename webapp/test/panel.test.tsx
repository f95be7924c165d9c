import {act, cleanup, fireEvent, render, screen, waitFor, within} from '@testing-library/react';
import * as React from 'react';
import {Provider} from 'react-redux';
import {afterEach, describe, expect, it, vi} from 'vitest';

import type {ChannelInfo, PermissionAction, Permissions, Session} from '../src/api_types';
import {Client} from '../src/client';
import {Panel, type FilesViewProps} from '../src/components/panel/panel';
import {projectPath} from '../src/components/panel/start_form';
import {ev} from './events';
import {hostStore} from './host_store';

afterEach(cleanup);

const ACTIONS: PermissionAction[] = ['start', 'prompt', 'interrupt', 'stop', 'context', 'files', 'history', 'mode', 'model', 'approve', 'approve_for_session', 'deny', 'edit_file'];

function permissions(refused: Partial<Record<PermissionAction, string>> = {}): Permissions {
    return Object.fromEntries(
        ACTIONS.map((a) => [a, refused[a] === undefined ? {allowed: true, reason: null} : {allowed: false, reason: refused[a]}]),
    ) as Permissions;
}

const SESSION: Session = {
    id: 's1',
    channel_id: 'c1',
    owner_id: 'u-me',
    project_path: '/srv/projects/app',
    model: 'sonnet',
    permission_mode: 'default',
    state: 'idle',
    created_at: 1,
    updated_at: 1,
    queued_prompts: 0,
    pending_approvals: 0,
    last_seq: 0,
};

const channel = (session: Session | null, refused: Partial<Record<PermissionAction, string>> = {}, roots = ['/srv/projects', '/srv/other']): ChannelInfo => ({
    channel_id: 'c1',
    session,
    allowed_roots: roots,
    permissions: permissions(refused),
    bot_user_id: 'u-bot',
});

type Answer = {status: number; body: unknown};
/** An answer, or a promise of one: a test holds a request in flight until it resolves it. */
type Route = (method: string, path: string, body: unknown) => Answer | undefined | Promise<Answer | undefined>;

/** The real Client over a fetch answered by `route` (method, path with query, body); every request recorded. */
function routedClient(route: Route) {
    const calls: Array<{method: string; path: string; body: unknown}> = [];
    const fetchMock = vi.fn(async (url: string | URL | Request, init?: RequestInit) => {
        const method = init?.method ?? 'GET';
        const path = String(url).replace('/api', '');
        const body = init?.body ? (JSON.parse(String(init.body)) as unknown) : undefined;
        calls.push({method, path, body});
        const a = (await route(method, path, body)) ?? {status: 500, body: {error: `nothing scripted for ${method} ${path}`, status: 500}};
        return new Response(JSON.stringify(a.body), {status: a.status});
    });
    return {client: new Client(() => '/api', fetchMock, () => 'MMCSRF=tok'), calls, writes: () => calls.filter((c) => c.method !== 'GET')};
}

function mount(route: Route, {filesView, channelId = 'c1'}: {filesView?: React.ComponentType<FilesViewProps>; channelId?: string} = {}) {
    const host = hostStore(channelId);
    const api = routedClient(route);
    const catchUp = vi.fn();
    render(
        <Provider store={host.store}>
            <Panel client={api.client} catchUp={catchUp} filesView={filesView} />
        </Provider>,
    );
    return {...host, ...api, catchUp};
}

const ok = (body: unknown) => ({status: 200, body});
/** The text of what describes a control (its aria-describedby). */
const description = (el: HTMLElement) => document.getElementById(el.getAttribute('aria-describedby') ?? '')?.textContent;
const button = (name: string) => screen.getByRole('button', {name}) as HTMLButtonElement;

describe('projectPath', () => {
    it('joins a root and an optional folder under it', () => {
        expect(projectPath('/srv/projects', '')).toBe('/srv/projects');
        expect(projectPath('/srv/projects/', ' /app/ ')).toBe('/srv/projects/app');
        expect(projectPath('/srv/projects', 'a/b')).toBe('/srv/projects/a/b');
    });
});

describe('Panel', () => {
    it('offers the allowed roots and starts a session there, then shows it', async () => {
        let info = channel(null);
        const t = mount((method, path) => {
            if (method === 'GET' && path === '/channels/c1') {
                return ok(info);
            }
            if (method === 'POST' && path === '/sessions') {
                info = channel(SESSION);
                return {status: 201, body: SESSION};
            }
            return undefined;
        });
        const form = await screen.findByRole('form', {name: 'Start a session'});
        const root = within(form).getByLabelText('Project path') as HTMLSelectElement;
        expect([...root.options].map((o) => o.value)).toEqual(['/srv/projects', '/srv/other']);

        fireEvent.change(root, {target: {value: '/srv/other'}});
        fireEvent.change(within(form).getByLabelText('Folder under it (optional)'), {target: {value: 'app'}});
        fireEvent.click(button('Start session'));

        expect(await screen.findByRole('tablist')).toBeTruthy();
        expect(t.writes()).toEqual([{method: 'POST', path: '/sessions', body: {channel_id: 'c1', project_path: '/srv/other/app'}}]);
        expect(screen.getByText('/srv/projects/app')).toBeTruthy();
        // An effect after the render that shows the session: not necessarily run by then.
        await waitFor(() => expect(t.catchUp).toHaveBeenCalledWith('s1'));
    });

    it('disables the start form for a user who may not start, with the reason as its description', async () => {
        const reason = 'Only system admins may start a session (WhoCanStart).';
        mount(() => ok(channel(null, {start: reason}, [])));
        await screen.findByRole('form', {name: 'Start a session'});
        const start = button('Start session');
        expect(start.disabled).toBe(true);
        expect(description(start)).toBe(reason);
        expect(description(screen.getByLabelText('Project path'))).toBe(reason);
        expect(screen.queryByText(/No project roots are configured/)).toBeNull();
    });

    it('shows the start error from the server in an alert', async () => {
        mount((method) => (method === 'GET' ? ok(channel(null)) : {status: 400, body: {error: 'Not under an allowed root: /srv/projects/../etc', status: 400}}));
        fireEvent.click(await screen.findByRole('button', {name: 'Start session'}));
        expect((await screen.findByRole('alert')).textContent).toBe('Not under an allowed root: /srv/projects/../etc');
    });

    it('shows the state, model and mode, and its buttons and selects call the API', async () => {
        const t = mount((method, path, body) => {
            if (method === 'GET') {
                return ok(channel(SESSION));
            }
            if (path === '/sessions/s1/prompt') {
                return {status: 202, body: {prompt_id: 'p1'}};
            }
            if (path === '/sessions/s1/mode') {
                return ok({...SESSION, permission_mode: (body as {mode: string}).mode});
            }
            if (path === '/sessions/s1/model') {
                return ok({...SESSION, model: (body as {model: string}).model});
            }
            return ok(path === '/sessions/s1' ? {...SESSION, state: 'stopped'} : {});
        });
        await screen.findByRole('tab', {name: 'Session'});
        expect(screen.getByText('idle')).toBeTruthy();
        expect(screen.getByText('Cost so far: —')).toBeTruthy();

        const prompt = screen.getByLabelText('Prompt Claude') as HTMLTextAreaElement;
        expect(button('Send').disabled).toBe(true);
        fireEvent.change(prompt, {target: {value: ' add a test '}});
        fireEvent.click(button('Send'));
        await waitFor(() => expect(prompt.value).toBe(''));

        fireEvent.click(button('Interrupt'));
        await waitFor(() => expect(t.writes()).toHaveLength(2));

        fireEvent.change(screen.getByLabelText('Permission mode'), {target: {value: 'plan'}});
        await waitFor(() => expect((screen.getByLabelText('Permission mode') as HTMLSelectElement).value).toBe('plan'));
        fireEvent.change(screen.getByLabelText('Model'), {target: {value: 'opus'}});
        await waitFor(() => expect((screen.getByLabelText('Model') as HTMLSelectElement).value).toBe('opus'));

        // Stop asks first; the confirmation takes the focus.
        fireEvent.click(button('Stop session'));
        expect(t.writes()).toHaveLength(4);
        expect(document.activeElement).toBe(button('Yes, stop it'));
        fireEvent.click(button('Yes, stop it'));
        await waitFor(() => expect(t.writes()).toHaveLength(5));

        expect(t.writes()).toEqual([
            {method: 'POST', path: '/sessions/s1/prompt', body: {text: 'add a test'}},
            {method: 'POST', path: '/sessions/s1/interrupt', body: undefined},
            {method: 'PUT', path: '/sessions/s1/mode', body: {mode: 'plan'}},
            {method: 'PUT', path: '/sessions/s1/model', body: {model: 'opus'}},
            {method: 'DELETE', path: '/sessions/s1', body: undefined},
        ]);
        expect(screen.getByText('plan')).toBeTruthy();
        // After the stop the panel asks for the channel again.
        await waitFor(() => expect(t.calls.filter((c) => c.path === '/channels/c1')).toHaveLength(2));
    });

    it('Stop session can be cancelled with Escape, nothing sent, the focus back on it', async () => {
        const t = mount(() => ok(channel(SESSION)));
        fireEvent.click(await screen.findByRole('button', {name: 'Stop session'}));
        fireEvent.keyDown(button('Yes, stop it'), {key: 'Escape'});
        await waitFor(() => expect(document.activeElement).toBe(button('Stop session')));
        expect(t.writes()).toEqual([]);
    });

    it('disables each refused control with the reason, each reason shown once', async () => {
        const owner = 'Only the session owner (@alice) may change the mode.';
        mount(() => ok(channel(SESSION, {stop: owner, mode: owner, model: owner})));
        await screen.findByRole('tab', {name: 'Session'});
        for (const el of [button('Stop session'), screen.getByLabelText('Permission mode'), screen.getByLabelText('Model')]) {
            expect((el as HTMLButtonElement).disabled).toBe(true);
            expect(description(el)).toBe(owner);
        }
        expect(screen.getAllByText(owner)).toHaveLength(1);
        expect(button('Interrupt').disabled).toBe(false);
        expect(button('Interrupt').getAttribute('aria-describedby')).toBeNull();
    });

    it('shows an API error in an alert instead of throwing', async () => {
        mount((method) => (method === 'GET' ? ok(channel(SESSION)) : {status: 409, body: {error: 'A turn is already running', status: 409}}));
        fireEvent.click(await screen.findByRole('button', {name: 'Interrupt'}));
        expect((await screen.findByRole('alert')).textContent).toBe('A turn is already running');
    });

    it('shows the pending approvals as cards and the cost of the turns seen', async () => {
        const t = mount(() => ok(channel(SESSION)));
        await screen.findByRole('tab', {name: 'Session'});
        act(() => {
            t.feed(
                ev(1, 'approval', {phase: 'requested', approval_id: 'a1', tool: 'Bash', input: '{"command":"ls"}'}),
                ev(2, 'turn', {is_error: false, subtype: 'success', total_cost_usd: '0.0123'}),
            );
        });
        const approvals = screen.getByRole('region', {name: 'Pending approvals'});
        expect(within(approvals).getByRole('button', {name: 'Approve'})).toBeTruthy();
        expect(screen.getByText('Cost so far: $0.0123')).toBeTruthy();

        act(() => void t.feed(ev(3, 'approval', {phase: 'decided', approval_id: 'a1', decision: 'allow', by: 'u-alice'})));
        expect(screen.queryByRole('region', {name: 'Pending approvals'})).toBeNull();
    });

    it('reloads when the session status changes and when the user switches channel', async () => {
        const t = mount((_m, path) => (path === '/channels/c1' ? ok(channel(SESSION)) : ok({...channel(null), channel_id: 'c2'})));
        await screen.findByRole('tab', {name: 'Session'});
        act(() => void t.feed(ev(1, 'status', {state: 'running', previous: 'idle'})));
        await waitFor(() => expect(t.calls.map((c) => c.path)).toEqual(['/channels/c1', '/channels/c1']));
        expect(screen.getByText('running')).toBeTruthy();

        act(() => void t.selectChannel('c2'));
        expect(await screen.findByRole('form', {name: 'Start a session'})).toBeTruthy();
        expect(t.calls.map((c) => c.path)).toEqual(['/channels/c1', '/channels/c1', '/channels/c2']);
    });

    it("a mode answer arriving after a channel switch leaves the new channel's view alone", async () => {
        let answer!: (a: Answer) => void;
        const t = mount((method, path) => {
            if (method === 'PUT') {
                return new Promise<Answer>((resolve) => (answer = resolve));
            }
            return path === '/channels/c1' ? ok(channel(SESSION)) : ok({...channel(null), channel_id: 'c2'});
        });
        fireEvent.change(await screen.findByLabelText('Permission mode'), {target: {value: 'plan'}});
        await waitFor(() => expect(t.writes()).toHaveLength(1));

        act(() => void t.selectChannel('c2'));
        expect(await screen.findByRole('form', {name: 'Start a session'})).toBeTruthy();
        await act(async () => answer(ok({...SESSION, permission_mode: 'plan'})));
        expect(screen.getByRole('form', {name: 'Start a session'})).toBeTruthy();
        expect(screen.queryByText('Loading…')).toBeNull();
    });

    it("an error of the previous channel's load is not shown in the new channel", async () => {
        let fail!: () => void;
        const t = mount((_m, path) =>
            path === '/channels/c1'
                ? new Promise<Answer>((resolve) => (fail = () => resolve({status: 500, body: {error: 'c1 is broken', status: 500}})))
                : ok({...channel(null), channel_id: 'c2'}),
        );
        await waitFor(() => expect(t.calls).toHaveLength(1));
        act(() => void t.selectChannel('c2'));
        expect(await screen.findByRole('form', {name: 'Start a session'})).toBeTruthy();
        await act(async () => fail());
        expect(screen.queryByRole('alert')).toBeNull();
    });

    it('with no session, finds the one started elsewhere when its first live event comes', async () => {
        let started = false;
        const t = mount(() => ok(channel(started ? SESSION : null)));
        expect(await screen.findByRole('form', {name: 'Start a session'})).toBeTruthy();
        started = true;
        act(() => void t.feed(ev(1, 'status', {state: 'starting', previous: 'stopped'})));
        expect(await screen.findByRole('tab', {name: 'Session'})).toBeTruthy();
        expect(t.calls.map((c) => c.path)).toEqual(['/channels/c1', '/channels/c1']);
    });

    it('switches tabs with the arrow keys, Home and End, one tab stop', async () => {
        const Files = ({sessionId, permissions: p}: FilesViewProps) => <p>{`files of ${sessionId}, edit ${p.edit_file.allowed}`}</p>;
        mount((_m, path) => (path === '/channels/c1' ? ok(channel(SESSION)) : ok({messages: [], has_more: false})), {filesView: Files});
        const session = await screen.findByRole('tab', {name: 'Session'});
        const tabs = screen.getAllByRole('tab');
        expect(tabs.map((tab) => tab.getAttribute('tabindex'))).toEqual(['0', '-1', '-1']);

        fireEvent.keyDown(session, {key: 'ArrowRight'});
        const files = screen.getByRole('tab', {name: 'Files'});
        expect(document.activeElement).toBe(files);
        expect(files.getAttribute('aria-selected')).toBe('true');
        expect(screen.getByRole('tabpanel').textContent).toBe('files of s1, edit true');

        fireEvent.keyDown(files, {key: 'End'});
        expect(document.activeElement).toBe(screen.getByRole('tab', {name: 'History'}));
        expect(screen.getByRole('searchbox', {name: 'Search history'})).toBeTruthy();
        fireEvent.keyDown(document.activeElement!, {key: 'ArrowRight'});
        expect(document.activeElement).toBe(session);
        fireEvent.keyDown(session, {key: 'ArrowLeft'});
        expect(screen.getByRole('tab', {name: 'History'}).getAttribute('aria-selected')).toBe('true');
        fireEvent.keyDown(document.activeElement!, {key: 'Home'});
        expect(session.getAttribute('aria-selected')).toBe('true');
        expect(screen.getByLabelText('Prompt Claude')).toBeTruthy();
    });

    it('keeps what was typed in a tab when the user goes to another tab and back', async () => {
        // A stand-in for the Files tab with an edit in progress (state of its own, not saved).
        const Files = () => {
            const [draft, setDraft] = React.useState('');
            return <textarea aria-label='Edit a.txt' value={draft} onChange={(e) => setDraft(e.target.value)} />;
        };
        mount((_m, path) => (path === '/channels/c1' ? ok(channel(SESSION)) : ok({messages: [], has_more: false})), {filesView: Files});
        fireEvent.click(await screen.findByRole('tab', {name: 'Files'}));
        fireEvent.change(screen.getByLabelText('Edit a.txt'), {target: {value: 'unsaved work'}});

        fireEvent.click(screen.getByRole('tab', {name: 'History'}));
        expect(screen.getByRole('tabpanel').textContent).toContain('Search history');
        expect(screen.queryByRole('textbox', {name: 'Edit a.txt'})).toBeNull();
        fireEvent.click(screen.getByRole('tab', {name: 'Files'}));
        expect((screen.getByLabelText('Edit a.txt') as HTMLTextAreaElement).value).toBe('unsaved work');
        expect(screen.getAllByRole('tabpanel')).toHaveLength(1);
    });

    it('History pages back with Load older and searches through the server', async () => {
        const msg = (seq: number, text: string) => ({seq, kind: 'prompt', role: 'user', text, at: 1_700_000_000_000});
        const t = mount((_m, path) => {
            if (path === '/channels/c1') {
                return ok(channel(SESSION));
            }
            if (path === '/sessions/s1/history?limit=50') {
                return ok({messages: [msg(5, 'fix the build'), msg(6, 'add a test')], has_more: true});
            }
            if (path === '/sessions/s1/history?limit=50&before=5') {
                return ok({messages: [msg(2, 'hello\u202Eolleh')], has_more: false});
            }
            return path === '/sessions/s1/history?limit=50&q=build' ? ok({messages: [msg(5, 'fix the build')], has_more: false}) : undefined;
        });
        fireEvent.click(await screen.findByRole('tab', {name: 'History'}));
        const list = () => within(screen.getByRole('list', {name: 'Messages'}));
        const texts = () => list().queryAllByRole('listitem').map((li) => li.lastChild?.textContent);
        await waitFor(() => expect(texts()).toEqual(['fix the build', 'add a test']));

        fireEvent.click(button('Load older'));
        // Bidi controls in Claude's words are shown, as the server shows them in posts.
        await waitFor(() => expect(texts()).toEqual(['hello[U+202E]olleh', 'fix the build', 'add a test']));
        expect(screen.queryByRole('button', {name: 'Load older'})).toBeNull();

        fireEvent.change(screen.getByRole('searchbox', {name: 'Search history'}), {target: {value: 'build'}});
        await waitFor(() => expect(texts()).toEqual(['fix the build']));
        expect(t.calls.map((c) => c.path).filter((p) => p.includes('history'))).toEqual([
            '/sessions/s1/history?limit=50',
            '/sessions/s1/history?limit=50&before=5',
            '/sessions/s1/history?limit=50&q=build',
        ]);
    });

    it('an older page of a previous search is not mixed into the new results', async () => {
        const msg = (seq: number, text: string) => ({seq, kind: 'prompt', role: 'user', text, at: 1_700_000_000_000});
        let older!: () => void;
        mount((_m, path) => {
            if (path === '/channels/c1') {
                return ok(channel(SESSION));
            }
            if (path === '/sessions/s1/history?limit=50') {
                return ok({messages: [msg(5, 'fix the build'), msg(6, 'add a test')], has_more: true});
            }
            if (path === '/sessions/s1/history?limit=50&before=5') {
                return new Promise<Answer>((resolve) => (older = () => resolve(ok({messages: [msg(2, 'hello')], has_more: false}))));
            }
            return path === '/sessions/s1/history?limit=50&q=build' ? ok({messages: [msg(5, 'fix the build')], has_more: false}) : undefined;
        });
        fireEvent.click(await screen.findByRole('tab', {name: 'History'}));
        const texts = () => within(screen.getByRole('list', {name: 'Messages'})).queryAllByRole('listitem').map((li) => li.lastChild?.textContent);
        await waitFor(() => expect(texts()).toEqual(['fix the build', 'add a test']));

        fireEvent.click(button('Load older'));
        fireEvent.change(screen.getByRole('searchbox', {name: 'Search history'}), {target: {value: 'build'}});
        await waitFor(() => expect(texts()).toEqual(['fix the build']));
        await act(async () => older());
        expect(texts()).toEqual(['fix the build']);
        expect(screen.queryByRole('button', {name: 'Load older'})).toBeNull();
    });

    it('says so when no channel is open, and asks nothing', () => {
        const t = mount(() => undefined, {channelId: ''});
        expect(screen.getByText('Open a channel to see its Claude Code session.')).toBeTruthy();
        expect(t.calls).toEqual([]);
    });
});
