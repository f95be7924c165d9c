import * as React from 'react';

import type {Decision} from '../api_types';
import {type ApprovalRequest, CardFrame, ReasonForm, type Wording} from './approval_request';
import {SafeMarkdown} from './safe_markdown';
import {hasCutString, str} from './tool_input';

// An ExitPlanMode request: Claude's plan and the three ways on that the server's card offers
// (src/chat/question.rs `plan_attachment`), sent as the REST decisions the server maps to them.

/** A plan longer than this opens collapsed: the card must not push the thread out of view. */
const LONG_PLAN_CHARS = 1200;
const LONG_PLAN_LINES = 20;
const COLLAPSED_HEIGHT = '16em';

/** How the plan was started, in the words of question.rs `plan_line`. */
const HOW: Partial<Record<Decision, string>> = {approve: 'edits ask for approval', approve_session: 'edits are accepted'};

/** How the server's line on the decided card post says the plan was started, if it does. */
export function startedHowInCard(text: string | undefined): string | undefined {
    const at = text?.lastIndexOf('\n\n✅ Plan approved by @') ?? -1;
    return at < 0 ? undefined : text!.slice(at).match(/: (edits ask for approval|edits are accepted)$/)?.[1];
}

export function PlanCard({request, cardText}: {request: ApprovalRequest; cardText?: string}) {
    const {input, headingId, guard, answer} = request;
    const plan = str(input, 'plan')?.trim() ? str(input, 'plan') : undefined;
    const long = plan !== undefined && (plan.length > LONG_PLAN_CHARS || plan.split('\n').length > LONG_PLAN_LINES);
    const [expanded, setExpanded] = React.useState(false);
    const [keepPlanning, setKeepPlanning] = React.useState(false);
    /** The start this user chose, once the server took it (the API records both as one decision). */
    const [started, setStarted] = React.useState<Decision>();
    const keepButton = React.useRef<HTMLButtonElement>(null);

    const start = (decision: Decision) => void answer({decision}).then((ok) => ok && setStarted(decision));
    const how = (started && HOW[started]) ?? startedHowInCard(cardText);
    const wording: Wording = {
        approved: (who) => `Plan approved${who}${how ? `: ${how}` : ''}`,
        denied: (who, reason) => `Sent back to planning${who}${reason ? `: ${reason}` : ''}`,
    };

    const controls = keepPlanning ? (
        <ReasonForm
            id={`${headingId}-feedback`}
            label='What should Claude change in the plan?'
            submitLabel='Keep planning'
            submitClass='btn-primary'
            required
            multiline
            request={request}
            onSend={(reason) => void answer({decision: 'deny', reason})}
            onClose={() => {
                setKeepPlanning(false);
                // After the re-render that brings the button back.
                setTimeout(() => keepButton.current?.focus(), 0);
            }}
        />
    ) : (
        <div role='toolbar' aria-label='Plan decision' style={{display: 'flex', flexWrap: 'wrap', gap: 4}}>
            <button type='button' className='btn btn-sm btn-primary' {...guard('approve')} onClick={() => start('approve')}>
                {'Start with approvals'}
            </button>
            <button type='button' className='btn btn-sm btn-tertiary' {...guard('approve')} onClick={() => start('approve_session')}>
                {'Start and accept edits'}
            </button>
            <button ref={keepButton} type='button' className='btn btn-sm btn-tertiary' {...guard('deny')} onClick={() => setKeepPlanning(true)}>
                {'Keep planning…'}
            </button>
        </div>
    );

    return (
        <CardFrame request={request} heading={<strong>{"Claude's plan"}</strong>} wording={wording} controls={controls}>
            {plan === undefined ? (
                <p style={{margin: '4px 0', fontStyle: 'italic'}}>{'Claude wrote no plan file.'}</p>
            ) : (
                <>
                    <div
                        id={`${headingId}-plan`}
                        className='claude-code-plan'
                        style={long && !expanded ? {maxHeight: COLLAPSED_HEIGHT, overflow: 'hidden', maskImage: 'linear-gradient(to bottom, #000 75%, transparent)'} : undefined}
                    >
                        <SafeMarkdown text={plan} />
                    </div>
                    {long && (
                        <button type='button' className='btn btn-sm btn-link' aria-expanded={expanded} aria-controls={`${headingId}-plan`} onClick={() => setExpanded(!expanded)} style={{padding: 0}}>
                            {expanded ? 'Show less' : 'Show the whole plan'}
                        </button>
                    )}
                    {hasCutString(input) && <div style={{opacity: 0.7}}>{'The plan is shown shortened.'}</div>}
                </>
            )}
        </CardFrame>
    );
}
