import {act, cleanup, fireEvent, screen, waitFor} from '@testing-library/react';
import {afterEach, describe, expect, it} from 'vitest';

import type {LiveEvent} from '../src/api_types';
import {answerOf, answersInCard, type Question} from '../src/components/question_card';
import {ev} from './events';
import {type Answer, cardPost, channelInfo, mountPosts, ok, stored} from './posts';

afterEach(cleanup);

/** A question of the model: each option a label, or a label and its description. */
const question = (text: string, header: string, options: Array<string | [string, string]>, multiSelect = false): Question => ({
    question: text,
    header,
    options: options.map((o) => (typeof o === 'string' ? {label: o, description: ''} : {label: o[0], description: o[1]})),
    multiSelect,
});
const DB = question('Which database?', 'Storage', [['Postgres', 'Relational, the team knows it'], 'SQLite']);
const FEATURES = question('Which features?', 'Scope', [['Login', 'Password and SSO'], 'Search', 'Export'], true);

const asked = (input: unknown, tool = 'AskUserQuestion', seq = 1): LiveEvent =>
    ev(seq, 'approval', {phase: 'requested', approval_id: 'a1', tool, tool_use_id: 't1', input: JSON.stringify(input)});

const decidedAnswer = (tool: string, fields: Record<string, unknown>): Answer =>
    ok({approval_id: 'a1', tool, input: {}, requested_at: 1, state: 'approved', decided_by: 'u-me', decided_at: 1_700_000_000_500, ...fields});

/** A card post of the bot, its request live; the channel's permissions first. */
function mountAsked(input: unknown, tool: string, refused: Parameters<typeof channelInfo>[0] = {}, ...answers: Answer[]) {
    const mounted = mountPosts([cardPost()], ok(channelInfo(refused)), ...answers);
    act(() => void mounted.feed(asked(input, tool)));
    return mounted;
}

const button = (name: string | RegExp) => screen.getByRole('button', {name}) as HTMLButtonElement;
const postBodies = (requests: () => Array<{method?: string; body: unknown}>) => requests().filter((r) => r.method === 'POST').map((r) => r.body);

describe('QuestionCard', () => {
    it('answers a single choice with its option button: pressed, then sent as the question → label', async () => {
        const {requests} = mountAsked({questions: [DB]}, 'AskUserQuestion', {}, decidedAnswer('AskUserQuestion', {decision: 'allow_with_input'}));
        const group = await screen.findByRole('group', {name: 'Claude asks'});
        expect(group.querySelector('legend')?.textContent).toBe('StorageWhich database?');
        // Named by all it shows (WCAG 2.5.3), the description after the label, read once.
        const postgres = button('Postgres Relational, the team knows it');
        expect(postgres.getAttribute('aria-describedby')).toBeNull();
        expect(button('Submit').disabled).toBe(true);

        fireEvent.click(postgres);
        expect(postgres.getAttribute('aria-pressed')).toBe('true');
        expect(button('SQLite').getAttribute('aria-pressed')).toBe('false');
        fireEvent.click(button('Submit'));

        await waitFor(() => expect(screen.getByText(/Answered by @me/)).toBeTruthy());
        expect(postBodies(requests)).toEqual([{decision: 'approve', answers: {'Which database?': 'Postgres'}}]);
        expect(screen.getByRole('list', {name: 'Answers'}).textContent).toBe('Which database?: Postgres');
        expect(screen.queryByRole('button', {name: 'Submit'})).toBeNull();
    });

    it('answers a multiple choice with checkboxes: the labels in the options’ order, then the free answer, joined by ", "', async () => {
        const {requests} = mountAsked({questions: [FEATURES]}, 'AskUserQuestion', {}, decidedAnswer('AskUserQuestion', {decision: 'allow_with_input'}));
        fireEvent.click(await screen.findByRole('checkbox', {name: 'Export'}));
        fireEvent.click(screen.getByRole('checkbox', {name: /Login/}));
        fireEvent.change(screen.getByLabelText('Other (optional)'), {target: {value: '  Audit log '}});
        fireEvent.click(button('Submit'));

        await waitFor(() => expect(postBodies(requests)).toHaveLength(1));
        expect(postBodies(requests)[0]).toEqual({decision: 'approve', answers: {'Which features?': 'Login, Export, Audit log'}});
    });

    it('Other… replaces the chosen option, and an option replaces the free answer', async () => {
        mountAsked({questions: [DB]}, 'AskUserQuestion');
        fireEvent.click(await screen.findByRole('button', {name: /^Postgres/}));
        const other = screen.getByLabelText('Other…') as HTMLInputElement;
        fireEvent.change(other, {target: {value: 'DuckDB'}});
        expect(button(/^Postgres/).getAttribute('aria-pressed')).toBe('false');
        expect(answerOf(DB, {checked: [], other: ' DuckDB ', option: 0})).toBe('DuckDB');

        fireEvent.click(button('SQLite'));
        expect(other.value).toBe('');
        expect(button('SQLite').getAttribute('aria-pressed')).toBe('true');
    });

    it('keeps Submit disabled until every question has a non-empty answer', async () => {
        const {requests} = mountAsked({questions: [DB, FEATURES]}, 'AskUserQuestion', {}, decidedAnswer('AskUserQuestion', {decision: 'allow_with_input'}));
        await screen.findByRole('group', {name: 'Claude asks 2 questions'});
        expect(screen.getByText('Answer every question to submit (2 left).')).toBeTruthy();
        fireEvent.click(button('SQLite'));
        expect(button('Submit').disabled).toBe(true);
        // Blank is no answer.
        fireEvent.change(screen.getByLabelText('Other (optional)'), {target: {value: '   '}});
        expect(button('Submit').disabled).toBe(true);
        expect(screen.getByText('Answer every question to submit (1 left).')).toBeTruthy();
        // Enter in a field does not send a partial answer either.
        fireEvent.submit(screen.getByLabelText('Other (optional)').closest('form')!);

        fireEvent.click(screen.getByRole('checkbox', {name: 'Search'}));
        expect(button('Submit').disabled).toBe(false);
        fireEvent.click(button('Submit'));
        await waitFor(() => expect(postBodies(requests)).toHaveLength(1));
        expect(postBodies(requests)[0]).toEqual({decision: 'approve', answers: {'Which database?': 'SQLite', 'Which features?': 'Search'}});
    });

    it("shows the server's refusal of an answer and keeps the choices to try again", async () => {
        const refusal = 'answers must answer every question with a non-empty string';
        mountAsked({questions: [DB]}, 'AskUserQuestion', {}, {status: 400, body: {error: refusal, status: 400}});
        fireEvent.click(await screen.findByRole('button', {name: /^Postgres/}));
        fireEvent.click(button('Submit'));

        expect((await screen.findByRole('alert')).textContent).toBe(refusal);
        expect(button(/^Postgres/).getAttribute('aria-pressed')).toBe('true');
        expect(button('Submit').disabled).toBe(false);
    });

    it('is read-only, with the reason, for a member who may not answer', async () => {
        const refusal = 'Only the session owner (@bob) may answer here.';
        const {requests} = mountAsked({questions: [DB, FEATURES]}, 'AskUserQuestion', {approve: refusal, approve_for_session: refusal, deny: refusal});
        const reason = await screen.findByText(refusal);
        expect(button(/^Postgres/).disabled).toBe(true);
        expect((screen.getByRole('checkbox', {name: 'Search'}) as HTMLInputElement).disabled).toBe(true);
        expect((screen.getByLabelText('Other…') as HTMLInputElement).disabled).toBe(true);
        expect(button('Submit').disabled).toBe(true);
        expect(button('Submit').getAttribute('aria-describedby')).toBe(reason.id);
        expect(button('Dismiss…').disabled).toBe(true);
        expect(postBodies(requests)).toEqual([]);
    });

    it('Dismiss… denies with the optional reason typed inline', async () => {
        const {requests} = mountAsked({questions: [DB]}, 'AskUserQuestion', {}, decidedAnswer('AskUserQuestion', {state: 'denied', decision: 'deny', reason: 'Denied by @me: not now'}));
        fireEvent.click(await screen.findByRole('button', {name: 'Dismiss…'}));
        const field = screen.getByLabelText('Reason (optional)');
        await waitFor(() => expect(document.activeElement).toBe(field));
        fireEvent.change(field, {target: {value: ' not now '}});
        fireEvent.click(button('Dismiss'));

        await waitFor(() => expect(screen.getByText(/Dismissed by @me: not now/)).toBeTruthy());
        expect(postBodies(requests)).toEqual([{decision: 'deny', reason: 'not now'}]);
    });

    it('shows a card answered before the reload: who answered, from the API, and what, from the card post', async () => {
        const text = 'Claude asks:\n\n**Which database?**\n- Postgres\n\n✅ Answered by @alice at 12:00 UTC\n- Which database?: **Postgres**\n- Which features?: **Login, Audit log**';
        const answered = stored({tool: 'AskUserQuestion', input: {questions: [DB, FEATURES]}, state: 'approved', decision: 'allow_with_input', decided_by: 'u-alice', decided_at: 1_700_000_000_000});
        mountPosts([cardPost('a1', 'u-bot', text)], ok(channelInfo()), ok({approvals: [answered]}));

        await waitFor(() => expect(screen.getByText(/Answered by @alice/)).toBeTruthy());
        expect([...screen.getByRole('list', {name: 'Answers'}).querySelectorAll('li')].map((li) => li.textContent)).toEqual([
            'Which database?: Postgres',
            'Which features?: Login, Audit log',
        ]);
        expect(screen.getByRole('list', {name: 'Questions'}).textContent).toBe('Storage · Which database?Scope · Which features?');
        expect(screen.queryAllByRole('button')).toEqual([]);
    });

    it('reads the answered line of the card post only', () => {
        expect(answersInCard('Claude asks:\n\n**Q?**\n- a')).toBeUndefined();
        // The first ": **" ends the question: a colon in the question and bold in the answer stay theirs.
        expect(answersInCard('x\n\n✅ Answered by @bob at 09:30 UTC\n- Q: one?: **a: **b****')).toEqual([['Q: one?', 'a: **b**']]);
    });

    it('draws a forged question card post (not by the bot) as its message', async () => {
        const {feed, view, requests} = mountPosts([cardPost('a1', 'u-mallory')], ok(channelInfo()));
        act(() => void feed(asked({questions: [DB]})));
        await waitFor(() => expect(requests()).toHaveLength(1));
        await act(async () => {});
        expect(view.container.querySelector('[data-claude-code-card]')).toBeNull();
        expect(view.container.querySelector('.post')!.textContent).toBe('**Claude wants to run** `ls`mobile buttons');
        expect(screen.queryAllByRole('button')).toEqual([]);
    });

    it('leaves a question of an unknown form to its post and attachment buttons', async () => {
        const {view} = mountAsked({questions: [{question: 'Q?'}]}, 'AskUserQuestion');
        await waitFor(() => expect(view.container.querySelector('.post')!.textContent).toBe('**Claude wants to run** `ls`mobile buttons'));
        expect(view.container.querySelector('[data-claude-code-card]')).toBeNull();
    });
});

const PLAN = '# Plan\n\n1. Add the table\n2. Migrate';

describe('PlanCard', () => {
    for (const [name, body, outcome] of [
        ['Start with approvals', {decision: 'approve'}, 'Plan approved by @me: edits ask for approval'],
        ['Start and accept edits', {decision: 'approve_session'}, 'Plan approved by @me: edits are accepted'],
    ] as const) {
        it(`${name} sends ${JSON.stringify(body)}`, async () => {
            const {requests} = mountAsked({plan: PLAN}, 'ExitPlanMode', {}, decidedAnswer('ExitPlanMode', {decision: 'allow_exit_plan'}));
            expect((await screen.findByRole('group', {name: "Claude's plan"})).textContent).toContain('1. Add the table');
            fireEvent.click(button(name));
            await waitFor(() => expect(screen.getByText(new RegExp(outcome))).toBeTruthy());
            expect(postBodies(requests)).toEqual([body]);
        });
    }

    it('Keep planning… sends the required feedback as the denial reason', async () => {
        const {requests} = mountAsked({plan: PLAN}, 'ExitPlanMode', {}, decidedAnswer('ExitPlanMode', {state: 'denied', decision: 'deny', reason: 'Split step 2'}));
        fireEvent.click(await screen.findByRole('button', {name: 'Keep planning…'}));
        const field = screen.getByLabelText('What should Claude change in the plan?');
        expect(field.tagName).toBe('TEXTAREA');
        await waitFor(() => expect(document.activeElement).toBe(field));
        expect(button('Keep planning').disabled).toBe(true);
        fireEvent.change(field, {target: {value: '  Split step 2\n'}});
        fireEvent.click(button('Keep planning'));

        await waitFor(() => expect(screen.getByText(/Sent back to planning by @me: Split step 2/)).toBeTruthy());
        expect(postBodies(requests)).toEqual([{decision: 'deny', reason: 'Split step 2'}]);
    });

    it('Keep planning… can be cancelled with Escape, the focus back on its button', async () => {
        mountAsked({plan: PLAN}, 'ExitPlanMode');
        fireEvent.click(await screen.findByRole('button', {name: 'Keep planning…'}));
        fireEvent.keyDown(screen.getByLabelText('What should Claude change in the plan?'), {key: 'Escape'});
        await waitFor(() => expect(document.activeElement).toBe(screen.getByRole('button', {name: 'Keep planning…'})));
    });

    it('opens a long plan collapsed, with a button that shows it whole', async () => {
        const long = Array.from({length: 40}, (_, i) => `${i + 1}. step`).join('\n');
        mountAsked({plan: long}, 'ExitPlanMode');
        const toggle = await screen.findByRole('button', {name: 'Show the whole plan'});
        const plan = document.getElementById(toggle.getAttribute('aria-controls')!)!;
        expect(toggle.getAttribute('aria-expanded')).toBe('false');
        expect(plan.style.maxHeight).toBe('16em');
        fireEvent.click(toggle);
        expect(toggle.getAttribute('aria-expanded')).toBe('true');
        expect(toggle.textContent).toBe('Show less');
        expect(plan.style.maxHeight).toBe('');
        // A short plan has no such button.
        cleanup();
        mountAsked({plan: PLAN}, 'ExitPlanMode');
        await screen.findByRole('button', {name: 'Start with approvals'});
        expect(screen.queryByRole('button', {name: 'Show the whole plan'})).toBeNull();
    });

    it('a plan decided elsewhere shows the outcome, and how it started from the card post', async () => {
        const text = `${PLAN}\n\n✅ Plan approved by @alice at 12:00 UTC: edits are accepted`;
        const {feed} = mountPosts([cardPost('a1', 'u-bot', text)], ok(channelInfo()));
        act(() => void feed(asked({plan: PLAN}, 'ExitPlanMode'), ev(2, 'approval', {phase: 'decided', approval_id: 'a1', decision: 'allow_exit_plan', by: 'u-alice'})));
        await waitFor(() => expect(screen.getByText(/Plan approved by @alice: edits are accepted/)).toBeTruthy());
        expect(screen.queryAllByRole('button')).toEqual([]);
    });

    it('is read-only, with the reason, for a member who may not decide', async () => {
        const refusal = 'Only the session owner (@bob) may approve here.';
        mountAsked({plan: PLAN}, 'ExitPlanMode', {approve: refusal, approve_for_session: refusal, deny: refusal});
        await screen.findByText(refusal);
        for (const name of ['Start with approvals', 'Start and accept edits', 'Keep planning…']) {
            expect(button(name).disabled).toBe(true);
        }
    });
});
