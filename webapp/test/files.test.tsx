import {act, cleanup, fireEvent, render, screen, waitFor, within} from '@testing-library/react';
import * as React from 'react';
import {afterEach, describe, expect, it, vi} from 'vitest';

import type {FileEntry, FileListing, ProjectFile} from '../src/api_types';
import {Client} from '../src/client';
import {FilesView, type FilesPermissions} from '../src/components/files';

afterEach(cleanup);

const BASE = '/plugins/claude-code/api/v1/sessions/s1/files';

const dir = (path: string, name = path.split('/').pop()!): FileEntry => ({name, path, kind: 'directory', size: null});
const file = (path: string, size = 10): FileEntry => ({name: path.split('/').pop()!, path, kind: 'file', size});
const text = (path: string, content: string, sha256: string, language: string | null = null): ProjectFile => ({
    path,
    size: content.length,
    sha256,
    binary: false,
    content,
    language,
});

type Reply = {status: number; body: unknown};

/**
 * The real Client over a fetch that plays the plugin's files routes: listings by directory,
 * files by path (mutable, so a test can change one "on disk"), and a scripted answer per PUT.
 */
function filesServer(opts: {listings?: Record<string, FileListing>; files?: Record<string, ProjectFile>; puts?: Reply[]} = {}) {
    const listings: Record<string, FileListing> = opts.listings ?? {
        '': {dir: '', entries: [dir('src'), dir('docs'), file('README.md')], truncated: false},
        src: {dir: 'src', entries: [file('src/main.rs'), file('src/page.html')], truncated: false},
        docs: {dir: 'docs', entries: [file('docs/guide.md')], truncated: false},
    };
    const files: Record<string, ProjectFile> = opts.files ?? {
        'src/main.rs': text('src/main.rs', 'fn main() {\n    let x = 1;\n}\n', 'sha-1', 'rust'),
        'README.md': text('README.md', '# Hello\n', 'sha-readme', 'markdown'),
    };
    const puts = [...(opts.puts ?? [])];
    const answer = (r: Reply) => new Response(JSON.stringify(r.body), {status: r.status, headers: {'Content-Type': 'application/json'}});
    const fetchMock = vi.fn(async (input: string | URL | Request, init?: RequestInit) => {
        const url = new URL(String(input), 'https://chat.example.com');
        const path = decodeURIComponent(url.pathname.slice(BASE.length + 1));
        if (init?.method === 'PUT') {
            return answer(puts.shift() ?? {status: 500, body: {error: 'no answer scripted', status: 500}});
        }
        if (url.pathname === BASE) {
            const listing = listings[url.searchParams.get('dir') ?? ''];
            return answer(listing ? {status: 200, body: listing} : {status: 404, body: {error: 'no such directory', status: 404}});
        }
        const f = files[path];
        return answer(f ? {status: 200, body: f} : {status: 404, body: {error: `no such file: ${path}`, status: 404}});
    });
    const client = new Client(() => '/plugins/claude-code/api/v1', fetchMock, () => 'MMCSRF=tok');
    const requests = () =>
        fetchMock.mock.calls.map(([input, init]) => {
            const headers = (init?.headers ?? {}) as Record<string, string>;
            return {
                method: init?.method,
                url: String(input),
                ...(headers['If-Match'] ? {ifMatch: headers['If-Match']} : {}),
                ...(init?.body ? {body: JSON.parse(String(init.body)) as unknown} : {}),
            };
        });
    return {client, files, requests};
}

const ALLOWED: FilesPermissions = {files: {allowed: true, reason: null}, edit_file: {allowed: true, reason: null}};

function mount(server: ReturnType<typeof filesServer>, permissions: FilesPermissions = ALLOWED) {
    return render(<FilesView sessionId='s1' client={server.client} permissions={permissions} />);
}

const item = (name: string) => screen.getByRole('treeitem', {name});
/** What an item says, without its aria-hidden expand arrow: its accessible name. */
const spoken = (el: Element | null) =>
    [...(el?.childNodes ?? [])].filter((n) => !(n instanceof Element && n.getAttribute('aria-hidden') === 'true')).map((n) => n.textContent).join('');
const names = () => screen.getAllByRole('treeitem').map(spoken);
const gets = (server: ReturnType<typeof filesServer>) => server.requests().filter((r) => r.method === 'GET').map((r) => r.url);

async function openFile(server: ReturnType<typeof filesServer>, dirName: string | undefined, name: string) {
    mount(server);
    if (dirName) {
        fireEvent.click(await screen.findByRole('treeitem', {name: dirName}));
    }
    fireEvent.click(await screen.findByRole('treeitem', {name}));
}

describe('FilesView tree', () => {
    it('lists the root at once and a directory only when it is first expanded, once', async () => {
        const server = filesServer();
        mount(server);
        await screen.findByRole('tree', {name: 'Project files'});
        expect(names()).toEqual(['src', 'docs', 'README.md']);
        expect(item('src').getAttribute('aria-expanded')).toBe('false');
        expect(item('README.md').hasAttribute('aria-expanded')).toBe(false);
        expect(gets(server)).toEqual([BASE]);

        fireEvent.click(item('src'));
        await screen.findByRole('treeitem', {name: 'main.rs'});
        expect(item('src').getAttribute('aria-expanded')).toBe('true');
        expect(names()).toEqual(['src', 'main.rs', 'page.html', 'docs', 'README.md']);
        expect([item('main.rs').getAttribute('aria-level'), item('main.rs').getAttribute('aria-posinset'), item('main.rs').getAttribute('aria-setsize')]).toEqual(['2', '1', '2']);

        fireEvent.click(item('src'));
        expect(names()).toEqual(['src', 'docs', 'README.md']);
        fireEvent.click(item('src'));
        expect(names()).toEqual(['src', 'main.rs', 'page.html', 'docs', 'README.md']);
        expect(gets(server)).toEqual([BASE, `${BASE}?dir=src`]);
    });

    it('moves with the arrow keys, Home and End, expands and collapses, opens with Enter', async () => {
        const server = filesServer();
        mount(server);
        const tree = await screen.findByRole('tree');
        const focused = () => spoken(document.activeElement);
        expect(screen.getAllByRole('treeitem').map((el) => el.tabIndex)).toEqual([0, -1, -1]);

        act(() => item('src').focus());
        fireEvent.keyDown(tree, {key: 'ArrowDown'});
        expect(focused()).toBe('docs');
        fireEvent.keyDown(tree, {key: 'End'});
        expect(focused()).toBe('README.md');
        fireEvent.keyDown(tree, {key: 'ArrowUp'});
        expect(focused()).toBe('docs');
        fireEvent.keyDown(tree, {key: 'Home'});
        expect(focused()).toBe('src');

        fireEvent.keyDown(tree, {key: 'ArrowRight'});
        await screen.findByRole('treeitem', {name: 'main.rs'});
        expect(item('src').getAttribute('aria-expanded')).toBe('true');
        expect(focused()).toBe('src');
        fireEvent.keyDown(tree, {key: 'ArrowRight'});
        expect(focused()).toBe('main.rs');
        expect(screen.getAllByRole('treeitem').filter((el) => el.tabIndex === 0).map(spoken)).toEqual(['main.rs']);
        fireEvent.keyDown(tree, {key: 'ArrowLeft'});
        expect(focused()).toBe('src');
        fireEvent.keyDown(tree, {key: 'ArrowLeft'});
        expect(item('src').getAttribute('aria-expanded')).toBe('false');
        expect(names()).toEqual(['src', 'docs', 'README.md']);

        fireEvent.keyDown(tree, {key: 'End'});
        fireEvent.keyDown(tree, {key: 'Enter'});
        await screen.findByLabelText('Contents of README.md');
        expect(item('README.md').getAttribute('aria-selected')).toBe('true');
        expect(item('src').getAttribute('aria-selected')).toBe('false');
    });

    it('says when a listing was cut short, and shows a failed listing as an alert', async () => {
        const server = filesServer({
            listings: {'': {dir: '', entries: [dir('big'), dir('gone')], truncated: false}, big: {dir: 'big', entries: [file('big/a')], truncated: true}},
        });
        mount(server);
        fireEvent.click(await screen.findByRole('treeitem', {name: 'big'}));
        expect((await screen.findByText(/^Only the first/)).textContent).toBe('Only the first 1 entries of big are shown.');

        fireEvent.click(item('gone'));
        expect((await screen.findByRole('alert')).textContent).toBe('Could not list gone: no such directory');
        expect(item('gone').getAttribute('aria-expanded')).toBe('false');
    });

    it('shows the reason instead of the tree when the user may not see the files', () => {
        const server = filesServer();
        mount(server, {files: {allowed: false, reason: 'Only members of the channel may see its files.'}});
        expect(screen.getByText('Only members of the channel may see its files.')).toBeTruthy();
        expect(screen.queryByRole('tree')).toBeNull();
        expect(server.requests()).toEqual([]);
    });
});

describe('FilesView viewer', () => {
    it('highlights a file by its language', async () => {
        const server = filesServer();
        await openFile(server, 'src', 'main.rs');
        const pre = await screen.findByLabelText('Contents of src/main.rs');
        expect(pre.tagName).toBe('PRE');
        expect([...pre.querySelectorAll('.hljs-keyword')].map((el) => el.textContent)).toEqual(['fn', 'let']);
        expect(pre.textContent).toBe('fn main() {\n    let x = 1;\n}\n');
        expect(gets(server).at(-1)).toBe(`${BASE}/src/main.rs`);
    });

    it('renders markup in a file as text, highlighted or not', async () => {
        const evil = '<img src=x onerror=alert(1)>\n';
        const server = filesServer({
            files: {'src/page.html': text('src/page.html', evil, 'sha-h', 'html'), 'src/main.rs': text('src/main.rs', evil, 'sha-p', null)},
        });
        await openFile(server, 'src', 'page.html');
        const html = await screen.findByLabelText('Contents of src/page.html');
        expect(html.querySelector('img')).toBeNull();
        expect(html.querySelector('.hljs-tag')).not.toBeNull();
        expect(html.textContent).toBe(evil);

        fireEvent.click(item('main.rs'));
        const plain = await screen.findByLabelText('Contents of src/main.rs');
        expect(plain.querySelector('img')).toBeNull();
        expect(plain.textContent).toBe(evil);
    });

    it('names an empty file\'s contents as a region (a name on a plain pre is not allowed)', async () => {
        const server = filesServer({files: {'README.md': text('README.md', '', 'sha-empty')}});
        await openFile(server, undefined, 'README.md');
        const contents = await screen.findByRole('region', {name: 'Contents of README.md'});
        expect(contents.tagName).toBe('PRE');
        expect(contents.textContent).toBe('');
    });

    it('shows a note instead of a binary file, with no Edit button', async () => {
        const server = filesServer({files: {'README.md': {path: 'README.md', size: 4096, sha256: 'b', binary: true, content: null}}});
        await openFile(server, undefined, 'README.md');
        expect((await screen.findByText(/binary file/)).textContent).toBe('A binary file (4.0 KiB): its contents are not shown.');
        expect(screen.queryByLabelText('Contents of README.md')).toBeNull();
        expect(screen.queryByRole('button', {name: 'Edit'})).toBeNull();
    });
});

describe('FilesView editor', () => {
    const written = (sha256: string) => ({status: 200, body: {path: 'src/main.rs', size: 4, sha256}});

    async function startEdit(server: ReturnType<typeof filesServer>) {
        await openFile(server, 'src', 'main.rs');
        fireEvent.click(await screen.findByRole('button', {name: 'Edit'}));
        return screen.getByLabelText('Edit src/main.rs') as HTMLTextAreaElement;
    }

    const puts = (server: ReturnType<typeof filesServer>) => server.requests().filter((r) => r.method === 'PUT');

    it('disables Edit for a user who may not edit, the reason as its description', async () => {
        const server = filesServer();
        mount(server, {...ALLOWED, edit_file: {allowed: false, reason: 'Only the session owner (@alice) may edit files.'}});
        fireEvent.click(await screen.findByRole('treeitem', {name: 'README.md'}));
        const button = (await screen.findByRole('button', {name: 'Edit'})) as HTMLButtonElement;
        expect(button.disabled).toBe(true);
        expect(document.getElementById(button.getAttribute('aria-describedby') ?? '')?.textContent).toBe('Only the session owner (@alice) may edit files.');
    });

    it('saves with If-Match of the version it loaded, then shows the saved text with its new sha', async () => {
        const server = filesServer({puts: [written('sha-2'), written('sha-3')]});
        const area = await startEdit(server);
        expect(area.value).toBe('fn main() {\n    let x = 1;\n}\n');
        expect(document.activeElement).toBe(area);

        fireEvent.change(area, {target: {value: 'fn main() {}\n'}});
        fireEvent.click(screen.getByRole('button', {name: 'Save'}));
        const pre = await screen.findByLabelText('Contents of src/main.rs');
        expect(pre.textContent).toBe('fn main() {}\n');
        expect(screen.getByRole('status').textContent).toBe('Saved.');
        expect(document.activeElement).toBe(screen.getByRole('button', {name: 'Edit'}));

        fireEvent.click(screen.getByRole('button', {name: 'Edit'}));
        fireEvent.change(screen.getByLabelText('Edit src/main.rs'), {target: {value: 'fn main() { run() }\n'}});
        fireEvent.click(screen.getByRole('button', {name: 'Save'}));
        await screen.findByLabelText('Contents of src/main.rs');
        expect(puts(server)).toEqual([
            {method: 'PUT', url: `${BASE}/src/main.rs`, ifMatch: 'sha-1', body: {content: 'fn main() {}\n'}},
            {method: 'PUT', url: `${BASE}/src/main.rs`, ifMatch: 'sha-2', body: {content: 'fn main() { run() }\n'}},
        ]);
    });

    it('a stale version shows the conflict, never saves again, and Reload keeps the text typed', async () => {
        const server = filesServer({puts: [{status: 409, body: {error: 'src/main.rs changed since it was read', status: 409}}, written('sha-3')]});
        const area = await startEdit(server);
        fireEvent.change(area, {target: {value: 'mine\n'}});
        fireEvent.click(screen.getByRole('button', {name: 'Save'}));

        const alert = await screen.findByRole('alert');
        expect(alert.textContent).toMatch(/changed since you opened it/);
        const reload = within(alert).getByRole('button', {name: 'Reload'});
        expect(document.activeElement).toBe(reload);
        const save = screen.getByRole('button', {name: 'Save'}) as HTMLButtonElement;
        expect(save.disabled).toBe(true);
        fireEvent.click(save);
        fireEvent.submit(area.form!);
        expect(puts(server)).toHaveLength(1);

        // Someone else's version is on disk now.
        server.files['src/main.rs'] = text('src/main.rs', 'theirs\n', 'sha-2', 'rust');
        fireEvent.click(reload);
        await waitFor(() => expect((screen.getByLabelText('Edit src/main.rs') as HTMLTextAreaElement).value).toBe('theirs\n'));
        expect(screen.getByRole('region', {name: 'Your version'}).textContent).toBe('mine\n');
        expect(screen.queryByRole('alert')).toBeNull();

        fireEvent.change(screen.getByLabelText('Edit src/main.rs'), {target: {value: 'theirs\nmine\n'}});
        fireEvent.click(screen.getByRole('button', {name: 'Save'}));
        await screen.findByLabelText('Contents of src/main.rs');
        expect(puts(server).map((r) => [r.ifMatch, r.body])).toEqual([
            ['sha-1', {content: 'mine\n'}],
            ['sha-2', {content: 'theirs\nmine\n'}],
        ]);
    });

    it('shows another refusal as an alert and keeps the editor open', async () => {
        const server = filesServer({puts: [{status: 403, body: {error: 'Only approvers may edit files.', status: 403}}]});
        const area = await startEdit(server);
        fireEvent.change(area, {target: {value: 'x'}});
        fireEvent.click(screen.getByRole('button', {name: 'Save'}));
        expect((await screen.findByRole('alert')).textContent).toBe('Only approvers may edit files.');
        expect((screen.getByLabelText('Edit src/main.rs') as HTMLTextAreaElement).value).toBe('x');
        expect((screen.getByRole('button', {name: 'Save'}) as HTMLButtonElement).disabled).toBe(false);
    });

    it('keeps the CRLF line endings of a Windows file when it is saved', async () => {
        const server = filesServer({files: {'src/main.rs': text('src/main.rs', 'one\r\ntwo\r\n', 'sha-1')}, puts: [written('sha-2')]});
        const area = await startEdit(server);
        // The textarea holds LF (as a browser's would); the file's CRLF comes back on save.
        expect(area.value).toBe('one\ntwo\n');
        fireEvent.change(area, {target: {value: 'one\ntwo\nthree\n'}});
        fireEvent.click(screen.getByRole('button', {name: 'Save'}));
        expect((await screen.findByLabelText('Contents of src/main.rs')).textContent).toBe('one\r\ntwo\r\nthree\r\n');
        expect(puts(server).map((r) => r.body)).toEqual([{content: 'one\r\ntwo\r\nthree\r\n'}]);
    });

    it('refuses to edit a file of mixed or CR line endings, with the reason, and still shows it', async () => {
        for (const content of ['one\r\ntwo\n', 'one\rtwo\r']) {
            const server = filesServer({files: {'src/main.rs': text('src/main.rs', content, 'sha-1')}});
            await openFile(server, 'src', 'main.rs');
            expect((await screen.findByLabelText('Contents of src/main.rs')).textContent).toBe(content);
            const button = screen.getByRole('button', {name: 'Edit'}) as HTMLButtonElement;
            expect(button.disabled).toBe(true);
            expect(document.getElementById(button.getAttribute('aria-describedby') ?? '')?.textContent).toMatch(/line endings are mixed/);
            cleanup();
        }
    });

    it('does not open another file over unsaved edits; Cancel returns to the file as it was', async () => {
        const server = filesServer();
        const area = await startEdit(server);
        fireEvent.change(area, {target: {value: 'changed'}});
        const before = gets(server).length;
        fireEvent.click(item('README.md'));
        expect(screen.getByRole('alert').textContent).toBe('Save or cancel your edit of src/main.rs first.');
        expect(gets(server)).toHaveLength(before);
        expect((screen.getByLabelText('Edit src/main.rs') as HTMLTextAreaElement).value).toBe('changed');

        fireEvent.click(screen.getByRole('button', {name: 'Cancel'}));
        expect(screen.getByLabelText('Contents of src/main.rs').textContent).toBe('fn main() {\n    let x = 1;\n}\n');
        fireEvent.click(item('README.md'));
        await screen.findByLabelText('Contents of README.md');
    });
});
