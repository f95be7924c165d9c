import * as React from 'react';

import type {PermissionAction, Permissions} from '../../api_types';

/**
 * The last request's error, shown instead of thrown (an ApiError says what the server refused),
 * and whether any request is in flight.
 */
export function useRequest() {
    const [busy, setBusy] = React.useState(false);
    const [error, setError] = React.useState<string>();
    // A panel switched to another channel must not be updated by the old channel's answers.
    const mounted = React.useRef(true);
    /** Requests in flight: an old one ending does not mean the newer one has. */
    const inFlight = React.useRef(0);
    React.useEffect(() => {
        mounted.current = true;
        return () => {
            mounted.current = false;
        };
    }, []);

    /**
     * Runs `request`; `current()` says whether its answer still matters (the channel or the
     * search it was made for is still shown): the error of a stale one is not shown.
     */
    const run = React.useCallback(async (request: () => Promise<void>, current: () => boolean = () => true): Promise<boolean> => {
        inFlight.current += 1;
        setBusy(true);
        setError(undefined);
        try {
            await request();
            return true;
        } catch (e) {
            if (mounted.current && current()) {
                setError(e instanceof Error ? e.message : String(e));
            }
            return false;
        } finally {
            inFlight.current -= 1;
            if (mounted.current) {
                setBusy(inFlight.current > 0);
            }
        }
    }, []);
    return {busy, error, run};
}

export function ErrorAlert({error}: {error: string | undefined}) {
    if (!error) {
        return null;
    }
    return (
        <p role='alert' style={{color: 'var(--error-text, #d24b4e)', margin: '4px 0'}}>
            {error}
        </p>
    );
}

/** The props that disable a control the server would refuse, described by the refusal. */
export interface Guard {
    disabled: boolean;
    'aria-describedby'?: string;
}

/**
 * The controls of `actions` the user may not use: each gets `disabled` and the id of its reason,
 * and `notes` shows each distinct reason once (several buttons often share "only the owner").
 */
export function useRefusals(permissions: Permissions, actions: readonly PermissionAction[]) {
    const base = React.useId();
    const reasons: string[] = [];
    const guards = {} as Record<PermissionAction, Guard>;
    for (const action of actions) {
        const permission = permissions[action];
        if (permission.allowed) {
            guards[action] = {disabled: false};
            continue;
        }
        const reason = permission.reason ?? 'Not allowed.';
        if (!reasons.includes(reason)) {
            reasons.push(reason);
        }
        guards[action] = {disabled: true, 'aria-describedby': `${base}-${reasons.indexOf(reason)}`};
    }
    const notes = reasons.map((reason, i) => (
        <p key={reason} id={`${base}-${i}`} className='claude-code-refusal' style={{margin: '4px 0', fontSize: 12, opacity: 0.75}}>
            {reason}
        </p>
    ));
    /** `also`: another reason to disable it for now (a request in flight, an empty field). */
    const guard = (action: PermissionAction, also = false): Guard => ({...guards[action], disabled: guards[action].disabled || also});
    return {guard, notes};
}

export const LABEL_STYLE: React.CSSProperties = {display: 'block', fontWeight: 600, margin: '8px 0 4px'};

export interface SelectFieldProps {
    label: string;
    value: string;
    options: readonly string[];
    onChange(value: string): void;
    /** The refusal (or a request in flight): disabled, and described by its reason. */
    guard: Guard;
    /** Shown, and not choosable, when `value` is none of the options (e.g. the CLI's default model). */
    unset?: string;
}

/** A labelled select of plain string options. */
export function SelectField({label, value, options, onChange, guard, unset}: SelectFieldProps) {
    const id = React.useId();
    return (
        <>
            <label htmlFor={id} style={LABEL_STYLE}>
                {label}
            </label>
            <select id={id} className='form-control' value={value} onChange={(e) => onChange(e.target.value)} {...guard}>
                {unset !== undefined && !options.includes(value) && (
                    <option value={value} disabled>
                        {unset}
                    </option>
                )}
                {options.map((o) => (
                    <option key={o} value={o}>
                        {o}
                    </option>
                ))}
            </select>
        </>
    );
}
