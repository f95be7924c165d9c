import * as React from 'react';

import {type ApprovalRequest, CardFrame, ReasonForm, type Wording} from './approval_request';
import {showHidden} from './safe_markdown';
import type {ToolInput} from './tool_input';

// An AskUserQuestion request answered in the card: the answers go back as the server's own
// dialog sends them (src/chat/question.rs `dialog_answers`), keyed by the model's question text.

export interface Question {
    question: string;
    header: string;
    options: Array<{label: string; description: string}>;
    multiSelect: boolean;
}

const isString = (v: unknown): v is string => typeof v === 'string';

/** The questions of the input as question.rs reads them; undefined for an input of another form. */
export function questionsOf(input: ToolInput): Question[] | undefined {
    const list = input.questions;
    if (!Array.isArray(list) || list.length === 0) {
        return undefined;
    }
    const questions: Question[] = [];
    for (const q of list as unknown[]) {
        const o = (q ?? {}) as Record<string, unknown>;
        if (!isString(o.question) || !Array.isArray(o.options)) {
            return undefined;
        }
        const options = (o.options as unknown[]).map((opt) => (opt ?? {}) as Record<string, unknown>);
        if (!options.every((opt) => isString(opt.label))) {
            return undefined;
        }
        questions.push({
            question: o.question,
            header: isString(o.header) ? o.header : '',
            options: options.map((opt) => ({label: opt.label as string, description: isString(opt.description) ? opt.description : ''})),
            multiSelect: o.multiSelect === true,
        });
    }
    return questions;
}

/** What a person chose for one question: an option (single choice) or several, and a free answer. */
export interface Choice {
    option?: number;
    checked: boolean[];
    other: string;
}

const NO_CHOICE: Choice = {checked: [], other: ''};

/**
 * The answer as the server's dialog makes it: a free answer replaces a single choice and joins a
 * multiple one, whose labels come in the options' order, joined by ", ". Empty: not answered.
 */
export function answerOf(q: Question, c: Choice): string {
    const other = c.other.trim();
    if (!q.multiSelect) {
        return other || (c.option !== undefined ? (q.options[c.option]?.label ?? '') : '');
    }
    const chosen = q.options.filter((_, j) => c.checked[j]).map((o) => o.label);
    return (other ? [...chosen, other] : chosen).join(', ');
}

/** The line question.rs `answered_line` appends to an answered card: `✅ Answered by @…`, then `- question: **answer**` each. */
const ANSWERED = '\n\n✅ Answered by @';

/** The answers the server wrote on the card post (as it shows them: cut, neutralised); undefined when it wrote none. */
export function answersInCard(text: string | undefined): Array<[string, string]> | undefined {
    const at = text?.lastIndexOf(ANSWERED) ?? -1;
    if (!text || at < 0) {
        return undefined;
    }
    return text
        .slice(at + ANSWERED.length)
        .split('\n')
        .slice(1)
        .map((line) => line.match(/^- ([\s\S]*?): \*\*([\s\S]*)\*\*$/))
        .filter((m): m is RegExpMatchArray => m !== null)
        .map((m) => [m[1], m[2]]);
}

const WORDING: Wording = {
    approved: (who) => `Answered${who}`,
    denied: (who, reason) => `Dismissed${who}${reason ? `: ${reason}` : ''}`,
};

const OPTION_STYLE: React.CSSProperties = {display: 'flex', flexDirection: 'column', alignItems: 'flex-start', textAlign: 'left', height: 'auto', whiteSpace: 'normal'};
const DESCRIPTION_STYLE: React.CSSProperties = {fontWeight: 'normal', fontSize: 12, opacity: 0.8};
/** At full colour: a faded description on a tertiary button is under 4.5:1 (3.75 in Chromium). */
const OPTION_DESCRIPTION_STYLE: React.CSSProperties = {fontWeight: 'normal', fontSize: 12};

function QuestionField({q, id, choice, disabled, onChange}: {q: Question; id: string; choice: Choice; disabled: boolean; onChange: (c: Choice) => void}) {
    return (
        <fieldset style={{border: 0, padding: 0, margin: '8px 0', minWidth: 0}}>
            <legend style={{fontSize: 'inherit', fontWeight: 600, border: 0, margin: '0 0 4px', width: 'auto'}}>
                {q.header && (
                    <span className='claude-code-question-header' style={{marginRight: 6, padding: '0 6px', borderRadius: 4, background: 'rgba(var(--center-channel-color-rgb, 63, 67, 80), 0.08)'}}>
                        {showHidden(q.header)}
                    </span>
                )}
                {showHidden(q.question)}
                {q.multiSelect && <span style={{fontWeight: 'normal', opacity: 0.75}}>{' (choose any)'}</span>}
            </legend>
            <div style={{display: 'flex', flexWrap: 'wrap', gap: 4}}>
                {q.options.map((o, j) =>
                    q.multiSelect ? (
                        <label key={j} style={{display: 'flex', gap: 6, alignItems: 'flex-start', fontWeight: 'normal', width: '100%', margin: 0}}>
                            <input
                                type='checkbox'
                                checked={choice.checked[j] === true}
                                disabled={disabled}
                                aria-describedby={o.description ? `${id}-d${j}` : undefined}
                                onChange={(e) => {
                                    const checked = [...choice.checked];
                                    checked[j] = e.target.checked;
                                    onChange({...choice, checked});
                                }}
                            />
                            <span style={OPTION_STYLE}>
                                <span>{showHidden(o.label)}</span>
                                {o.description && <span id={`${id}-d${j}`} style={DESCRIPTION_STYLE}>{showHidden(o.description)}</span>}
                            </span>
                        </label>
                    ) : (
                        <button
                            key={j}
                            type='button'
                            className={`btn btn-sm ${choice.option === j ? 'btn-primary' : 'btn-tertiary'}`}
                            aria-pressed={choice.option === j}
                            disabled={disabled}
                            // Named by all it shows, label then description: a name that left out
                            // visible text would fail WCAG 2.5.3 (axe-core in webapp/e2e says so).
                            onClick={() => onChange({...choice, option: j, other: ''})}
                            style={OPTION_STYLE}
                        >
                            <span>{showHidden(o.label)}</span>
                            {o.description && <span style={OPTION_DESCRIPTION_STYLE}>{showHidden(o.description)}</span>}
                        </button>
                    ),
                )}
            </div>
            <div style={{display: 'flex', gap: 6, alignItems: 'center', marginTop: 4}}>
                <label htmlFor={`${id}-other`} style={{margin: 0, fontWeight: 'normal', whiteSpace: 'nowrap'}}>
                    {q.multiSelect ? 'Other (optional)' : 'Other…'}
                </label>
                <input
                    id={`${id}-other`}
                    type='text'
                    className='form-control'
                    value={choice.other}
                    disabled={disabled}
                    maxLength={300}
                    // A free answer of a single choice stands instead of its option.
                    onChange={(e) => onChange({...choice, other: e.target.value, option: !q.multiSelect && e.target.value.trim() ? undefined : choice.option})}
                />
            </div>
        </fieldset>
    );
}

/** An AskUserQuestion request: the questions to answer, or who answered what. */
export function QuestionCard({request, cardText, fallback}: {request: ApprovalRequest; cardText?: string; fallback?: React.ReactNode}) {
    const {input, outcome, headingId, guard, answer} = request;
    const questions = React.useMemo(() => questionsOf(input), [input]);
    const [choices, setChoices] = React.useState<Choice[]>([]);
    const [dismissing, setDismissing] = React.useState(false);
    /** The answers this user sent, once the server took them. */
    const [sent, setSent] = React.useState<Array<[string, string]>>();
    const dismissButton = React.useRef<HTMLButtonElement>(null);

    if (!questions) {
        // An input of another form: the server's card is an ordinary one, with its own buttons.
        return <>{fallback ?? null}</>;
    }
    const answers = questions.map((q, i) => answerOf(q, choices[i] ?? NO_CHOICE));
    const missing = answers.filter((a) => a === '').length;
    const submit = guard('approve');
    const readOnly = submit.disabled && request.refusals.some((r) => r.actions.includes('approve'));

    const send = () => {
        const pairs = questions.map((q, i): [string, string] => [q.question, answers[i]]);
        void answer({decision: 'approve', answers: Object.fromEntries(pairs)}).then((ok) => ok && setSent(pairs));
    };

    const shownAnswers = outcome?.kind === 'approved' ? (sent ?? answersInCard(cardText)) : undefined;
    const detail = shownAnswers && shownAnswers.length > 0 && (
        <ul aria-label='Answers' style={{margin: '2px 0', paddingLeft: 20}}>
            {shownAnswers.map(([q, a]) => (
                <li key={q}>
                    {`${showHidden(q)}: `}
                    <strong>{showHidden(a)}</strong>
                </li>
            ))}
        </ul>
    );

    const controls = (
        <>
            {!dismissing && (
                <div role='toolbar' aria-label='Answer' style={{display: 'flex', flexWrap: 'wrap', gap: 4, alignItems: 'center'}}>
                    <button type='submit' form={`${headingId}-form`} className='btn btn-sm btn-primary' disabled={submit.disabled || missing > 0} aria-describedby={submit['aria-describedby'] ?? (missing > 0 ? `${headingId}-missing` : undefined)}>
                        {'Submit'}
                    </button>
                    <button ref={dismissButton} type='button' className='btn btn-sm btn-tertiary' {...guard('deny')} onClick={() => setDismissing(true)}>
                        {'Dismiss…'}
                    </button>
                    {missing > 0 && !readOnly && (
                        <span id={`${headingId}-missing`} style={{opacity: 0.75}}>
                            {questions.length === 1 ? 'Choose or write an answer to submit.' : `Answer every question to submit (${missing} left).`}
                        </span>
                    )}
                </div>
            )}
            {dismissing && (
                <ReasonForm
                    id={`${headingId}-reason`}
                    label='Reason (optional)'
                    submitLabel='Dismiss'
                    required={false}
                    request={request}
                    onSend={(reason) => void answer(reason ? {decision: 'deny', reason} : {decision: 'deny'})}
                    onClose={() => {
                        setDismissing(false);
                        // After the re-render that brings the button back.
                        setTimeout(() => dismissButton.current?.focus(), 0);
                    }}
                />
            )}
        </>
    );

    return (
        <CardFrame request={request} heading={<strong>{questions.length === 1 ? 'Claude asks' : `Claude asks ${questions.length} questions`}</strong>} wording={WORDING} outcomeDetail={detail} controls={controls}>
            {outcome ? (
                <ul aria-label='Questions' style={{margin: '2px 0', paddingLeft: 20}}>
                    {questions.map((q, i) => (
                        <li key={i}>
                            {q.header && <strong>{`${showHidden(q.header)} · `}</strong>}
                            {showHidden(q.question)}
                        </li>
                    ))}
                </ul>
            ) : (
                <form
                    id={`${headingId}-form`}
                    onSubmit={(e) => {
                        e.preventDefault();
                        if (missing === 0 && !submit.disabled) {
                            send();
                        }
                    }}
                >
                    {questions.map((q, i) => (
                        <QuestionField
                            key={i}
                            q={q}
                            id={`${headingId}-q${i}`}
                            choice={choices[i] ?? NO_CHOICE}
                            disabled={submit.disabled || dismissing}
                            onChange={(c) => setChoices((all) => Object.assign([...all], {[i]: c}))}
                        />
                    ))}
                </form>
            )}
        </CardFrame>
    );
}
