// @vitest-environment node
// (vite's build runs in node; happy-dom's globals would stand in for node's URL and fetch.)
import {mkdtempSync, readFileSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';

import * as React from 'react';
import {renderToStaticMarkup} from 'react-dom/server';
import * as ReactRedux from 'react-redux';
import {legacy_createStore as createStore} from 'redux';
import {build} from 'vite';
import {afterAll, describe, expect, it, vi} from 'vitest';

import {BUDGET_BYTES} from '../vite.config';

const root = fileURLToPath(new URL('..', import.meta.url));
const outDirs: string[] = [];

/** Builds `entry` with the project's vite.config.ts (command "build") and returns main.js. */
async function bundle(entry?: string): Promise<string> {
    const outDir = mkdtempSync(join(tmpdir(), 'claude-code-bundle-'));
    outDirs.push(outDir);
    await build({
        root,
        configFile: join(root, 'vite.config.ts'),
        logLevel: 'silent',
        build: {outDir, ...(entry ? {lib: {entry: join(root, entry), formats: ['iife'], name: 'Fixture', fileName: () => 'main.js'}} : {})},
    });
    return readFileSync(join(outDir, 'main.js'), 'utf8');
}

afterAll(() => {
    for (const dir of outDirs) {
        rmSync(dir, {recursive: true, force: true});
    }
});

describe('the built bundle', () => {
    it('is one classic script that registers claude-code synchronously, within the budget', async () => {
        const code = await bundle();
        // A classic <script>: no module syntax, no require, no Node globals left.
        expect(code).not.toMatch(/^\s*(import|export)\b|\brequire\(|process\.env/m);
        expect(Buffer.byteLength(code)).toBeLessThan(BUDGET_BYTES);

        // Loaded as the host loads it: React and ReactRedux are the page's globals, and the page's
        // document takes the plugin's stylesheet (node has none: the part used, recorded).
        const registerPlugin = vi.fn();
        const head: Array<{id: string; textContent: string}> = [];
        const document = {
            getElementById: (id: string) => head.find((el) => el.id === id) ?? null,
            createElement: () => {
                const el = {id: '', textContent: '', remove: () => void head.splice(head.indexOf(el), 1)};
                return el;
            },
            head: {appendChild: (el: (typeof head)[number]) => head.push(el)},
        };
        new Function('window', 'document', 'React', 'ReactRedux', code)({registerPlugin}, document, React, ReactRedux);

        expect(registerPlugin).toHaveBeenCalledTimes(1);
        expect(registerPlugin.mock.calls[0][0]).toBe('claude-code');
        const plugin = registerPlugin.mock.calls[0][1];
        expect(plugin).toMatchObject({initialize: expect.any(Function), uninitialize: expect.any(Function)});

        // Its turn post component renders with the global React, from a post without live state.
        const postTypes: Record<string, React.ComponentType<{post: unknown}>> = {};
        let panel: React.ComponentType | undefined;
        const store = createStore(() => ({entities: {general: {config: {}}}}));
        plugin.initialize(
            {
                registerReducer: () => undefined,
                registerWebSocketEventHandler: () => undefined,
                registerReconnectHandler: () => undefined,
                registerPostTypeComponent: (type: string, c: React.ComponentType<{post: unknown}>) => (postTypes[type] = c, 'id'),
                registerRightHandSidebarComponent: (c: React.ComponentType) => {
                    panel = c;
                    return {id: 'rhs', toggleRHSPlugin: {type: 'toggle'}};
                },
                registerChannelHeaderButtonAction: () => 'header',
            },
            store,
        );
        const element = React.createElement(postTypes.custom_claude_code, {post: {id: 'p', message: 'as mobile sees it', props: {}}});
        expect(renderToStaticMarkup(React.createElement(ReactRedux.Provider, {store, children: element}))).toContain('as mobile sees it');
        expect(head.map((el) => el.id)).toEqual(['claude-code-style']);
        // And so does the panel (no channel open in this store).
        const sidebar = renderToStaticMarkup(React.createElement(ReactRedux.Provider, {store, children: React.createElement(panel!)}));
        expect(sidebar).toContain('aria-label="Claude Code session"');
        expect(sidebar).toContain('Open a channel to see its Claude Code session.');
        plugin.uninitialize();
        expect(head).toEqual([]);
    }, 30_000);

    it('compiles JSX to the global React.createElement and takes react-redux from the global', async () => {
        const code = await bundle('test/fixtures/jsx_entry.tsx');
        expect(code).not.toMatch(/jsx-runtime|jsxDEV|\bjsxs?\(|\brequire\(/);
        // Not bundled: React alone would be ~10 KB minified.
        expect(Buffer.byteLength(code)).toBeLessThan(2048);

        const registerFixture = vi.fn();
        new Function('window', 'React', 'ReactRedux', code)({registerFixture}, React, ReactRedux);

        const {element, Hello} = registerFixture.mock.calls[0][0];
        expect(React.isValidElement(element)).toBe(true);
        const store = createStore(() => ({name: 'Claude'}));
        const children = React.createElement(React.Fragment, null, element, React.createElement(Hello));
        expect(renderToStaticMarkup(React.createElement(ReactRedux.Provider, {store, children}))).toBe('<i>hi</i><b>Claude</b>');
    }, 30_000);
});
