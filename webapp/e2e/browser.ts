// The page under test and the checks the scenario makes on it: the launch flags Chromium needs
// on this machine, console errors and page errors collected, polling with clear messages,
// screenshots checked for their text, axe-core scoped to one element.
import {createRequire} from 'node:module';
import {join} from 'node:path';

import {type Browser, chromium, type Locator, type Page} from 'playwright-core';

const require = createRequire(import.meta.url);

// Without the background-networking flags Chromium keeps dialling Google's hosts, which this
// machine's closed network refuses (.library/env/machines/polyglot.md).
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export async function launch(): Promise<Browser> {
    return chromium.launch({executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: FLAGS});
}

/** Polls `check` every 50 ms until it returns a value other than undefined/false, or fails with `what`. */
export async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined | false>): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
        try {
            const v = await check();
            if (v !== undefined && v !== false) {
                return v;
            }
        } catch (e) {
            last = e;
        }
        if (Date.now() > deadline) {
            throw new Error(`${what}: not within ${timeoutMs / 1000} s${last ? ` (last error: ${String(last)})` : ''}`);
        }
        await new Promise((r) => setTimeout(r, 50));
    }
}

/** The element's rendered text (innerText: what a reader sees, hidden parts left out). */
export const textOf = (l: Locator) => l.evaluate((el) => (el as HTMLElement).innerText);

/** How many times `needle` occurs in `hay`. */
export function occurrences(hay: string, needle: string): number {
    return needle === '' ? 0 : hay.split(needle).length - 1;
}

export interface Shot {
    name: string;
    path: string;
    text: string;
}

/** A screenshot of one element, refused unless the element shows every expected text at that moment. */
export async function screenshot(l: Locator, dir: string, name: string, expected: string[]): Promise<Shot> {
    const path = join(dir, `${name}.png`);
    await l.scrollIntoViewIfNeeded();
    await l.screenshot({path});
    const text = await textOf(l);
    const missing = expected.filter((e) => !text.includes(e));
    if (missing.length > 0) {
        throw new Error(`the ${name} screenshot shows no ${JSON.stringify(missing)}; its text: ${JSON.stringify(text.slice(0, 600))}`);
    }
    return {name, path, text};
}

export interface AxeViolation {
    id: string;
    impact: string;
    help: string;
    nodes: string[];
}

/** axe-core's serious and critical violations inside one element (the plugin's, not the harness's). */
export async function axe(page: Page, l: Locator, name: string): Promise<AxeViolation[]> {
    if (!(await page.evaluate(() => 'axe' in window))) {
        await page.addScriptTag({path: require.resolve('axe-core/axe.min.js')});
    }
    await l.evaluate((el, n) => el.setAttribute('data-e2e-axe', n), name);
    return page.evaluate(async (n) => {
        const axeCore = (window as unknown as {axe: {run(ctx: unknown, opts: unknown): Promise<{violations: Array<{id: string; impact?: string; help: string; nodes: Array<{target: unknown[]; failureSummary?: string}>}>}>}}).axe;
        const r = await axeCore.run({include: [`[data-e2e-axe="${n}"]`]}, {resultTypes: ['violations']});
        return r.violations
            .filter((v) => v.impact === 'serious' || v.impact === 'critical')
            .map((v) => ({id: v.id, impact: v.impact ?? '', help: v.help, nodes: v.nodes.map((x) => `${x.target.join(' ')}: ${x.failureSummary ?? ''}`)}));
    }, name);
}

/** Console errors and uncaught exceptions of the page, as they happen. */
export function watchErrors(page: Page): string[] {
    const errors: string[] = [];
    page.on('console', (m) => {
        if (m.type() === 'error') {
            // Chromium's text for a failed request names no URL; its location does.
            const at = m.location().url;
            errors.push(`console.error: ${m.text()}${at ? ` (${at})` : ''}`);
        }
    });
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    return errors;
}
