import * as React from 'react';

import {approvalOf} from '../live/shared';
import {
    type ApprovalRequest,
    CardFrame,
    ReasonForm,
    type RequestProps,
    useApprovalRequest,
    type Wording,
} from './approval_request';
import {PlanCard} from './plan_card';
import {QuestionCard} from './question_card';
import {EDITABLE_FIELD, hasCutString, InputView, str, toolTarget, type ToolInput} from './tool_input';

export type {ApprovalClient} from './approval_request';

export interface ApprovalCardProps extends RequestProps {
    /** What to show when neither the live state nor the API knows the request (a pruned one). */
    fallback?: React.ReactNode;
    /** The text of the card post's attachment, where the server writes how a question was answered. */
    cardText?: string;
}

const PERMISSION_WORDING: Wording = {
    approved: (who, o) => {
        const how = o.decision === 'allow_with_input' ? ' with edited input' : o.decision === 'allow_for_session' || o.decision === 'approve_session' ? ' for the rest of this session' : '';
        return `Approved${who}${how}`;
    },
    denied: (who, reason, o) => `Denied${who}${o.decision === 'deny_and_interrupt' ? ' (and interrupted)' : ''}${reason ? `: ${reason}` : ''}`,
};

/**
 * An approval request of a session, live: the request in full and the decisions, or how it
 * ended; a question (AskUserQuestion) or a plan (ExitPlanMode) as a card that answers it.
 * Rendered inside the host's Provider (it selects from the plugin's live state). A request the
 * live state has not seen (a reload, an old post) comes from `GET /sessions/{id}/approvals`;
 * its live events, when they come, win.
 */
export function ApprovalCard({fallback, cardText, ...props}: ApprovalCardProps) {
    const request = useApprovalRequest(props);

    if (request.approval?.tool === undefined && !request.stored) {
        if (!request.loaded) {
            // Marked already: the post's attachment buttons stay hidden instead of flashing.
            return (
                <div data-claude-code-card='' className='claude-code-approval' aria-busy='true' style={{opacity: 0.7}}>
                    {'Loading the approval request…'}
                </div>
            );
        }
        if (!request.approval) {
            return <>{fallback ?? null}</>;
        }
    }
    switch (request.tool) {
    case 'AskUserQuestion':
        return <QuestionCard request={request} cardText={cardText} fallback={fallback} />;
    case 'ExitPlanMode':
        return <PlanCard request={request} cardText={cardText} />;
    default:
        return <PermissionCard request={request} {...props} />;
    }
}

type Mode = 'choose' | 'reason' | 'edit';

/** A request for permission to use a tool: Approve, for the session, Deny, with a reason, edited. */
function PermissionCard({request, sessionId, approvalId, client}: {request: ApprovalRequest} & RequestProps) {
    const {approval, tool, input, busy, disabled, headingId, guard, run, answer} = request;
    const [mode, setMode] = React.useState<Mode>('choose');
    const [edited, setEdited] = React.useState('');
    /** The whole input, fetched when the live one had strings cut (editing those would lose the rest). */
    const [fullInput, setFullInput] = React.useState<ToolInput>();
    const reasonButton = React.useRef<HTMLButtonElement>(null);
    const field = React.useRef<HTMLTextAreaElement>(null);
    const editButton = React.useRef<HTMLButtonElement>(null);
    const editable = EDITABLE_FIELD[tool];

    // The edit field takes the focus once it is usable (after the full input was fetched).
    React.useEffect(() => {
        if (mode === 'edit' && !busy) {
            field.current?.focus();
        }
    }, [mode, busy]);

    const startEdit = () => {
        const edit = (whole: ToolInput) => {
            setEdited(str(whole, editable!.field) ?? '');
            setMode('edit');
        };
        if (!hasCutString(input)) {
            edit(input);
            return;
        }
        void run(async () => {
            const found = await approvalOf(client, sessionId, approvalId);
            if (!found || !found.input || typeof found.input !== 'object') {
                throw new Error('The full request could not be loaded; approve or deny it as shown.');
            }
            setFullInput(found.input as ToolInput);
            edit(found.input as ToolInput);
        });
    };

    const back = (to: React.RefObject<HTMLButtonElement | null>) => {
        setMode('choose');
        // After the re-render that brings the button back.
        setTimeout(() => to.current?.focus(), 0);
    };

    const target = toolTarget(tool, input) ?? approval?.description;
    const heading = (
        <>
            {'Claude wants to use '}
            <strong>{tool}</strong>
            {target && (
                <>
                    {' on '}
                    <code>{target}</code>
                </>
            )}
        </>
    );

    const controls = (
        <>
            {mode === 'choose' && (
                <div role='toolbar' aria-label='Decision' style={{display: 'flex', flexWrap: 'wrap', gap: 4}}>
                    <button type='button' className='btn btn-sm btn-primary' {...guard('approve')} onClick={() => void answer({decision: 'approve'})}>
                        {'Approve'}
                    </button>
                    <button type='button' className='btn btn-sm btn-tertiary' {...guard('approve_for_session')} onClick={() => void answer({decision: 'approve_session'})}>
                        {'Approve for this session'}
                    </button>
                    <button type='button' className='btn btn-sm btn-danger' {...guard('deny')} onClick={() => void answer({decision: 'deny'})}>
                        {'Deny'}
                    </button>
                    <button ref={reasonButton} type='button' className='btn btn-sm btn-tertiary' {...guard('deny')} onClick={() => setMode('reason')}>
                        {'Deny with a reason…'}
                    </button>
                    {editable && (
                        <button ref={editButton} type='button' className='btn btn-sm btn-tertiary' {...guard('approve')} onClick={startEdit}>
                            {'Edit and approve…'}
                        </button>
                    )}
                </div>
            )}

            {mode === 'reason' && (
                <ReasonForm
                    id={`${headingId}-reason`}
                    label='Reason'
                    submitLabel='Send and deny'
                    required
                    request={request}
                    onSend={(reason) => void answer({decision: 'deny', reason})}
                    onClose={() => back(reasonButton)}
                />
            )}

            {mode === 'edit' && editable && (
                <form
                    onSubmit={(e) => {
                        e.preventDefault();
                        void answer({decision: 'approve', updated_input: {...(fullInput ?? input), [editable.field]: edited}});
                    }}
                >
                    <label htmlFor={`${headingId}-edit`} style={{display: 'block'}}>
                        {editable.label}
                    </label>
                    <textarea
                        id={`${headingId}-edit`}
                        className='form-control'
                        value={edited}
                        onChange={(e) => setEdited(e.target.value)}
                        onKeyDown={(e) => e.key === 'Escape' && back(editButton)}
                        rows={Math.min(20, Math.max(3, edited.split('\n').length + 1))}
                        style={{width: '100%', fontFamily: 'monospace'}}
                        ref={field}
                        disabled={disabled}
                    />
                    <div style={{display: 'flex', gap: 4}}>
                        <button type='submit' className='btn btn-sm btn-primary' disabled={disabled}>
                            {'Approve with this edit'}
                        </button>
                        <button type='button' className='btn btn-sm btn-tertiary' disabled={busy} onClick={() => back(editButton)}>
                            {'Cancel'}
                        </button>
                    </div>
                </form>
            )}
        </>
    );

    return (
        <CardFrame request={request} heading={heading} wording={PERMISSION_WORDING} controls={controls}>
            {approval?.description && approval.description !== target && <div>{approval.description}</div>}
            <InputView tool={tool} input={input} />
            {hasCutString(input) && !fullInput && <div style={{opacity: 0.7}}>{'Long values are shown shortened.'}</div>}
        </CardFrame>
    );
}
