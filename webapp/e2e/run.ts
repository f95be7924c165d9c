// The browser scenario of issue 11: headless Chromium (Debian's, through playwright-core) on the
// harness page, against the real plugin in the real Mattermost server. Started by the Go step
// (tests/conformance/realserver/browser_test.go) with a JSON config; it asks that step to script
// the fake model, to act as the second user and to check the disk and the model's requests over
// the step's control server. Prints progress lines, then `E2E-RESULT <json>`; exits 1 on failure.
//
//   vite-node e2e/run.ts <config.json>
import {readFileSync} from 'node:fs';
import {join} from 'node:path';

import type {Locator, Page} from 'playwright-core';

import {BUDGET_BYTES} from '../vite.config';
import {axe, type AxeViolation, launch, occurrences, screenshot, type Shot, textOf, until, watchErrors} from './browser';
import {buildHarness, type ReactMajor} from './build';
import {startHarnessServer} from './server';

interface Config {
    server: string; // the real Mattermost server
    control: string; // the Go step's control server
    react: ReactMajor;
    login: string;
    password: string;
    channelId: string;
    pluginId: string;
    projectRoot: string;
    shotsDir: string;
}

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8')) as Config;
const started = Date.now();
const log = (s: string) => console.log(`e2e-browser react${cfg.react}: ${s}`);
const TURN_MS = 120_000;
const UI_MS = 30_000;

/** One request to the Go step; it answers what it scripted or checked, or why it could not. */
async function go<T = Record<string, unknown>>(action: string, body: Record<string, unknown>): Promise<T> {
    const resp = await fetch(`${cfg.control}/${action}`, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
    const text = await resp.text();
    if (!resp.ok) {
        throw new Error(`the Go step refused ${action} ${JSON.stringify(body)}: ${text}`);
    }
    return JSON.parse(text) as T;
}

interface Result {
    react: ReactMajor;
    passed: string[];
    failed: Array<{step: string; error: string}>;
    pageErrors: string[];
    shots: Shot[];
    axe: Record<string, AxeViolation[]>;
    bench?: Record<string, unknown>;
    mainJs?: {url: string; bytes: number; budget: number};
    seconds?: number;
}

const result: Result = {react: cfg.react, passed: [], failed: [], pageErrors: [], shots: [], axe: {}};

/** Console errors a step provokes on purpose (a 409 it asks for, a websocket it cuts), with why. */
const expectedErrors: Array<{re: RegExp; why: string}> = [];

/** The page, for a picture of it when a step fails. */
let current: Page | undefined;

async function step(name: string, fn: () => Promise<void>): Promise<boolean> {
    const t0 = Date.now();
    try {
        await fn();
        result.passed.push(name);
        log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
        return true;
    } catch (e) {
        const error = e instanceof Error ? e.message : String(e);
        const picture = join(cfg.shotsDir, `failed-${name}.png`);
        const taken = await current?.screenshot({path: picture, fullPage: true}).then(() => true, () => false);
        const seen = await current?.evaluate(() => `${JSON.stringify(window.__harness.events)}; its last posts: ${window.__harness.lastPosts(3)}`).catch(() => '?');
        result.failed.push({step: name, error: `${error}${taken ? ` (the page then: ${picture}; websocket events it received: ${seen})` : ''}`});
        log(`FAIL ${name}: ${error}`);
        return false;
    }
}

/**
 * axe-core on one of the plugin's elements: its serious and critical violations fail a check of
 * their own (`accessibility_<name>`), so that the step goes on and decides what it showed.
 */
async function checkAxe(page: Page, l: Locator, name: string) {
    const violations = await axe(page, l, name);
    result.axe[name] = violations;
    const check = `accessibility_${name.replace(/\W+/g, '_')}`;
    if (violations.length > 0) {
        result.failed.push({step: check, error: `axe-core: serious/critical violations in the ${name}: ${JSON.stringify(violations, null, 1)}`});
        log(`FAIL ${check}`);
    } else {
        result.passed.push(check);
    }
}

async function scenario(page: Page, harnessUrl: string) {
    const panel = page.locator('section[aria-label="Claude Code session"]');
    const postList = page.locator('section[aria-label="Channel posts"]');
    /** The turn post showing `text` (the turn posts are replies in the session's thread). */
    const turnPost = (text: string) => postList.locator('.post').filter({has: page.locator('.claude-code-turn'), hasText: text}).last();
    const turnDone = (post: Locator) => until('the turn post to end (aria-busy false, a closing line)', TURN_MS, async () => {
        const turn = post.locator('.claude-code-turn');
        return (await turn.getAttribute('aria-busy')) === 'false' && (await textOf(turn.getByRole('status'))).includes('✓');
    });
    /** The approval card posted for `file` in the channel (the panel lists the same request too). */
    const cardFor = (file: string) => postList.locator('[data-claude-code-card]').filter({hasText: file}).last();
    const prompt = async (text: string) => {
        await panel.getByRole('tab', {name: 'Session'}).click();
        await panel.getByRole('textbox', {name: 'Prompt Claude'}).fill(text);
        await panel.getByRole('button', {name: 'Send', exact: true}).click();
    };
    const outcome = (card: Locator, want: string[]) => until(`the card's outcome to say ${JSON.stringify(want)}`, TURN_MS, async () => {
        const o = card.locator('.claude-code-approval-outcome');
        const text = (await o.count()) > 0 ? await textOf(o.first()) : '';
        return want.every((w) => text.includes(w)) && text;
    });

    if (!(await step('panel_opens_from_the_channel_header', async () => {
        await page.locator('.channel-header').getByRole('button', {name: 'Claude Code'}).click();
        await panel.waitFor({timeout: UI_MS});
        if ((await page.getByRole('navigation', {name: 'App Bar'}).getByRole('button', {name: 'Claude Code'}).count()) !== 1) {
            throw new Error('no Claude Code icon in the App Bar');
        }
    }))) {
        return;
    }

    if (!(await step('start_session_from_the_panel', async () => {
        await go('script', {phase: 'start'});
        const form = panel.getByRole('form', {name: 'Start a session'});
        await form.getByLabel('Project path').selectOption(cfg.projectRoot);
        await form.getByRole('button', {name: 'Start session'}).click();
        await panel.getByRole('textbox', {name: 'Prompt Claude'}).waitFor({timeout: TURN_MS});
    }))) {
        return;
    }

    await step('streamed_text_before_the_turn_ends', async () => {
        const s = await go<{text: string; words: string[]}>('script', {phase: 'stream'});
        // The benchmark's clock in the page: when each word is first in a turn post's DOM, and
        // whether the turn was still running then.
        await page.evaluate((words) => {
            const seen: Record<string, number> = {};
            let busyAtFirst: boolean | undefined;
            const observer = new MutationObserver(() => {
                const turns = document.querySelectorAll('.post .claude-code-turn');
                const text = Array.from(turns, (t) => t.textContent ?? '').join('\n');
                const now = performance.timeOrigin + performance.now();
                for (const w of words) {
                    if (seen[w] === undefined && text.includes(w)) {
                        seen[w] = now;
                        if (busyAtFirst === undefined) {
                            const turn = Array.from(turns).find((t) => t.textContent?.includes(w));
                            busyAtFirst = turn?.getAttribute('aria-busy') === 'true';
                        }
                    }
                }
            });
            observer.observe(document.body, {subtree: true, childList: true, characterData: true});
            Object.assign(window, {__bench: {seen, busyAtFirst: () => busyAtFirst, stop: () => observer.disconnect()}});
        }, s.words);
        await prompt('Please write the browser report PROMPT-BROWSER');
        const post = turnPost(s.words[0]);
        await turnDone(post);
        const bench = await page.evaluate(() => {
            const b = (window as unknown as {__bench: {seen: Record<string, number>; busyAtFirst(): boolean | undefined; stop(): void}}).__bench;
            b.stop();
            return {seen: b.seen, busyAtFirst: b.busyAtFirst()};
        });
        if (bench.busyAtFirst !== true) {
            throw new Error(`the first streamed word appeared in a turn post that was not running (aria-busy ${String(bench.busyAtFirst)}): text must stream, not arrive with the closing post`);
        }
        const text = await textOf(post.locator('.claude-code-turn'));
        if (occurrences(text, s.text) !== 1) {
            throw new Error(`the turn post shows the streamed text ${occurrences(text, s.text)} times, want once: ${JSON.stringify(text.slice(0, 400))}`);
        }
        result.bench = await go('bench', {phase: 'stream', seen: bench.seen});
        result.shots.push(await screenshot(post, cfg.shotsDir, 'turn-post', [s.words[0], s.words[s.words.length - 1], '✓ Done']));
        await checkAxe(page, post, 'turn post');
    });

    let edited = '';
    await step('edit_and_approve_changes_what_the_cli_writes', async () => {
        const s = await go<{file: string; original: string; edited: string}>('script', {phase: 'edit'});
        await prompt(`Please write ${s.file}`);
        const card = cardFor(s.file);
        await card.getByRole('button', {name: 'Approve', exact: true}).waitFor({timeout: TURN_MS});
        const cardText = await textOf(card);
        if (!cardText.includes(s.original.trim())) {
            throw new Error(`the card does not show the content to write (${JSON.stringify(s.original)}): ${JSON.stringify(cardText.slice(0, 400))}`);
        }
        const attachment = page.locator('.post').filter({has: card}).locator('.attachment');
        if ((await attachment.count()) > 0 && (await attachment.first().isVisible())) {
            throw new Error('the card post still shows its attachment buttons beside the card (the plugin hides them on desktop)');
        }
        result.shots.push(await screenshot(card, cfg.shotsDir, 'approval-card', [s.file, s.original.trim(), 'Approve']));
        // What a desktop user sees (the README's picture): the thread with the card, the panel.
        result.shots.push(await screenshot(page.locator('.harness'), cfg.shotsDir, 'desktop', [s.file, 'Approve', 'Cost so far']));
        await checkAxe(page, card, 'approval card');
        await card.getByRole('button', {name: /^Edit and approve/}).click();
        await card.getByRole('textbox', {name: 'File content'}).fill(s.edited);
        await card.getByRole('button', {name: 'Approve with this edit'}).click();
        await outcome(card, ['Approved']);
        await turnDone(turnPost(s.file));
        await go('check', {phase: 'edit'});
        edited = s.file;
    });

    await step('deny_with_a_reason_reaches_the_model', async () => {
        const s = await go<{file: string; reason: string}>('script', {phase: 'deny'});
        await prompt(`Please write ${s.file}`);
        const card = cardFor(s.file);
        await card.getByRole('button', {name: /^Deny with a reason/}).click({timeout: TURN_MS});
        await card.getByRole('textbox', {name: 'Reason'}).fill(s.reason);
        await card.getByRole('button', {name: 'Send and deny'}).click();
        await outcome(card, ['Denied', s.reason]);
        await go('check', {phase: 'deny'});
    });

    await step('card_decided_by_another_user_changes_live', async () => {
        const s = await go<{file: string; by: string}>('script', {phase: 'elsewhere'});
        await prompt(`Please write ${s.file}`);
        const card = cardFor(s.file);
        const approve = card.getByRole('button', {name: 'Approve', exact: true});
        await approve.waitFor({timeout: TURN_MS});
        await go('decide', {phase: 'elsewhere'});
        await outcome(card, ['Approved', `@${s.by}`]);
        await until('the Approve button of a decided card to be gone or disabled', UI_MS, async () => (await approve.count()) === 0 || (await approve.isDisabled()));
        await go('check', {phase: 'elsewhere'});
    });

    await step('files_tab_opens_a_file_and_a_stale_edit_shows_the_conflict', async () => {
        if (!edited) {
            throw new Error('no file from the edit step to open');
        }
        await panel.getByRole('tab', {name: 'Files'}).click();
        await panel.getByRole('tree').getByRole('treeitem', {name: edited}).click({timeout: UI_MS});
        const contents = panel.locator(`pre[aria-label^="Contents of"][aria-label$="${edited}"]`);
        await until(`the contents of ${edited} shown`, UI_MS, async () => (await textOf(contents)).includes('edited in the browser'));
        await panel.getByRole('button', {name: 'Edit', exact: true}).click();
        const editor = panel.getByRole('textbox', {name: new RegExp(`^Edit .*${edited.replace(/\./g, '\\.')}$`)});
        await editor.waitFor({timeout: UI_MS});
        await go('touch', {phase: 'files', file: edited});
        await editor.fill('overwritten from the browser\n');
        expectedErrors.push({re: /status of 409/, why: 'the stale If-Match PUT answers 409 (Chromium logs every failed fetch)'});
        await panel.getByRole('button', {name: 'Save'}).click();
        const alert = panel.getByRole('alert').filter({hasText: 'changed since you opened it'});
        await alert.waitFor({timeout: UI_MS});
        await go('check', {phase: 'files'});
        await panel.getByRole('button', {name: 'Reload'}).click();
        await until('the reloaded file to show what changed on disk', UI_MS, async () =>
            panel.evaluate((el) => el.textContent?.includes('changed on disk') || Array.from(el.querySelectorAll('textarea')).some((t) => t.value.includes('changed on disk'))));
    });

    await step('websocket_dropped_mid_turn_post_ends_complete_without_duplicates', async () => {
        const s = await go<{text: string; words: string[]}>('script', {phase: 'reconnect'});
        await prompt('Please report PROMPT-RECONNECT');
        const post = turnPost(s.words[0]);
        const turn = post.locator('.claude-code-turn');
        await until('five words streamed before the drop', TURN_MS, async () => (await textOf(turn)).includes(s.words[4]));
        expectedErrors.push({re: /WebSocket connection to .* failed|websocket/i, why: 'the proxy refuses the websocket while it is down'});
        const dropped = await (await fetch(`${harnessUrl}/__e2e/websockets?state=down`, {method: 'POST'})).json() as {dropped: number};
        if (dropped.dropped === 0) {
            throw new Error('the proxy had no websocket to drop');
        }
        await until('the page to notice its websocket closed', UI_MS, () => page.evaluate(() => !window.__harness.socket?.open));
        await new Promise((r) => setTimeout(r, 1500));
        const whileDown = await textOf(turn);
        await fetch(`${harnessUrl}/__e2e/websockets?state=up`, {method: 'POST'});
        await until('the page to reconnect', UI_MS, () => page.evaluate(() => (window.__harness.socket?.reconnects ?? 0) >= 1 && window.__harness.socket?.open));
        await turnDone(post);
        const text = await textOf(turn);
        if (whileDown.includes(s.words[s.words.length - 1])) {
            throw new Error('the whole turn had arrived before the websocket came back: the gap this step is about did not happen');
        }
        const twice = s.words.filter((w) => occurrences(text, w) !== 1);
        if (twice.length > 0 || occurrences(text, s.text) !== 1) {
            throw new Error(`after the reconnect the post shows words ${JSON.stringify(twice)} other than once (full text ${occurrences(text, s.text)}×): ${JSON.stringify(text)}`);
        }
    });

    await step('question_answered_in_the_card_reaches_the_model', async () => {
        const s = await go<{single: {question: string; pick: string}; multi: {question: string; picks: string[]}; done: string}>('script', {phase: 'question'});
        await prompt('Please ask me PROMPT-QUESTION');
        const card = postList.locator('[data-claude-code-card]').filter({hasText: s.single.question}).last();
        const submit = card.getByRole('button', {name: 'Submit', exact: true});
        await submit.waitFor({timeout: TURN_MS});
        if (!(await submit.isDisabled())) {
            throw new Error('Submit is enabled before any question is answered');
        }
        // An option's name is its label, then its description.
        const option = (role: 'button' | 'checkbox', label: string) => card.getByRole(role, {name: new RegExp(`^${label}\\b`)});
        await option('button', s.single.pick).click();
        for (const label of s.multi.picks) {
            await option('checkbox', label).check();
        }
        result.shots.push(await screenshot(card, cfg.shotsDir, 'question-card', [s.single.question, s.multi.question, s.single.pick, 'Submit']));
        await checkAxe(page, card, 'question card');
        await submit.click();
        await outcome(card, ['Answered by @', `${s.single.question}: ${s.single.pick}`, `${s.multi.question}: ${s.multi.picks.join(', ')}`]);
        await go('check', {phase: 'question'});
        await turnDone(turnPost(s.done));
    });

    await step('plan_sent_back_with_feedback_reaches_the_model', async () => {
        await panel.getByRole('tab', {name: 'Session'}).click();
        const shownMode = panel.locator('dt', {hasText: /^Mode$/}).locator('xpath=following-sibling::dd[1]');
        const setMode = async (m: string) => {
            await panel.getByLabel('Permission mode').selectOption(m);
            await until(`the panel to show the session in mode ${m}`, UI_MS, async () => (await textOf(shownMode)) === m);
        };
        await setMode('plan');
        const s = await go<{feedback: string; done: string}>('script', {phase: 'plan'});
        await prompt('Please plan the greeting PROMPT-PLAN');
        const card = postList.locator('[data-claude-code-card]').filter({hasText: "Claude's plan"}).last();
        await card.getByRole('button', {name: 'Keep planning…'}).click({timeout: TURN_MS});
        await card.getByRole('textbox', {name: 'What should Claude change in the plan?'}).fill(s.feedback);
        await card.getByRole('button', {name: 'Keep planning', exact: true}).click();
        await outcome(card, ['Sent back to planning by @', s.feedback]);
        await go('check', {phase: 'plan'});
        await turnDone(turnPost(s.done));
        // The later steps as before: edits ask again.
        await setMode('default');
    });

    await step('panel_screenshot_and_accessibility', async () => {
        await panel.getByRole('tab', {name: 'Session'}).click();
        result.shots.push(await screenshot(panel, cfg.shotsDir, 'panel', ['Cost so far', '$']));
        await checkAxe(page, panel, 'panel');
    });
}

async function main() {
    log('building the harness');
    await buildHarness(cfg.react);
    const harness = await startHarnessServer(cfg.server);
    const browser = await launch();
    try {
        const page = await (await browser.newContext({viewport: {width: 1200, height: 760}})).newPage();
        current = page;
        const errors = watchErrors(page);
        await page.addInitScript((c) => Object.assign(window, {__harnessConfig: c}), {login: cfg.login, password: cfg.password, channelId: cfg.channelId, pluginId: cfg.pluginId});
        await page.goto(`${harness.url}/e2e/react${cfg.react}`);
        const loaded = await step('harness_loads_the_plugin_from_the_server', async () => {
            await until('the harness page to log in, load the plugin and connect the websocket', UI_MS, () =>
                page.evaluate(() => {
                    if (window.__harness.error) {
                        throw new Error(window.__harness.error);
                    }
                    return window.__harness.ready && window.__harness.socket?.open;
                }));
            const url = await page.evaluate(() => window.__harness.bundleUrl);
            const bytes = (await (await fetch(harness.url + url)).arrayBuffer()).byteLength;
            result.mainJs = {url, bytes, budget: BUDGET_BYTES};
            if (bytes > BUDGET_BYTES) {
                throw new Error(`the served bundle is ${bytes} bytes, over its budget of ${BUDGET_BYTES}`);
            }
        });
        if (loaded) {
            await scenario(page, harness.url);
        }
        result.pageErrors = errors.filter((e) => !expectedErrors.some((x) => x.re.test(e)));
        if (result.pageErrors.length > 0) {
            result.failed.push({step: 'no_console_errors', error: result.pageErrors.join('\n')});
        } else {
            result.passed.push('no_console_errors');
        }
    } finally {
        await browser.close();
        await harness.close();
    }
}

main()
    .catch((e: unknown) => result.failed.push({step: 'runner', error: e instanceof Error ? e.stack ?? e.message : String(e)}))
    .finally(() => {
        result.seconds = (Date.now() - started) / 1000;
        console.log(`E2E-RESULT ${JSON.stringify(result)}`);
        process.exit(result.failed.length === 0 ? 0 : 1);
    });
