import * as React from 'react';

// A tool's input as the live events carry it (one JSON string, each long string inside cut to
// 4 KiB + "…" by src/chat/live/map.rs) and how a card or a tool row shows it.

export type ToolInput = Record<string, unknown>;

/** The input object of a live event's JSON text; `{}` for anything else. */
export function parseInput(json: string | undefined): ToolInput {
    if (!json) {
        return {};
    }
    try {
        const v: unknown = JSON.parse(json);
        return v && typeof v === 'object' && !Array.isArray(v) ? (v as ToolInput) : {};
    } catch {
        return {};
    }
}

/** INPUT_STRING_MAX_BYTES of map.rs: a string cut there is that prefix (whole characters) and "…". */
const CUT_AT_BYTES = 4 * 1024;

function isCut(s: string): boolean {
    return s.endsWith('…') && new TextEncoder().encode(s).length >= CUT_AT_BYTES;
}

/** Whether a string anywhere in the input was shortened by the server (then it is not the whole input). */
export function hasCutString(v: unknown): boolean {
    if (typeof v === 'string') {
        return isCut(v);
    }
    if (Array.isArray(v)) {
        return v.some(hasCutString);
    }
    if (v && typeof v === 'object') {
        return Object.values(v).some(hasCutString);
    }
    return false;
}

export const str = (input: ToolInput, key: string): string | undefined =>
    typeof input[key] === 'string' ? (input[key] as string) : undefined;

/** The field "Edit and approve" edits in place, per tool (as card.rs `editable_input`). */
export const EDITABLE_FIELD: Record<string, {field: string; label: string} | undefined> = {
    Bash: {field: 'command', label: 'Command'},
    Write: {field: 'content', label: 'File content'},
    Edit: {field: 'new_string', label: 'Replacement text'},
};

/** What a tool works on, in a few words: the file, the command's first line, the pattern. */
export function toolTarget(tool: string, input: ToolInput, filePath?: string): string | undefined {
    let text: string | undefined;
    switch (tool) {
    case 'Bash':
        text = str(input, 'command');
        break;
    case 'Grep':
    case 'Glob':
        text = str(input, 'pattern');
        break;
    case 'WebFetch':
        text = str(input, 'url');
        break;
    case 'WebSearch':
        text = str(input, 'query');
        break;
    case 'Task':
    case 'Agent':
        text = str(input, 'description');
        break;
    default:
        text = filePath ?? str(input, 'file_path') ?? str(input, 'notebook_path') ?? str(input, 'path');
    }
    if (text === undefined) {
        return undefined;
    }
    const lines = text.split('\n');
    const first = lines[0];
    return first.length > 80 || lines.length > 1 ? `${first.slice(0, 80)}…` : first;
}

type DiffLine = {sign: '+' | '-' | ' '; text: string};

const lines = (s: string) => (s === '' ? [] : s.replace(/\n$/, '').split('\n'));

/** The change a Write, Edit or MultiEdit input asks for; undefined for other tools. */
export function diffOf(tool: string, input: ToolInput): DiffLine[][] | undefined {
    const pair = (edit: ToolInput): DiffLine[] => [
        ...lines(str(edit, 'old_string') ?? '').map((text) => ({sign: '-' as const, text})),
        ...lines(str(edit, 'new_string') ?? '').map((text) => ({sign: '+' as const, text})),
    ];
    switch (tool) {
    case 'Write':
        return [lines(str(input, 'content') ?? '').map((text) => ({sign: '+', text}))];
    case 'Edit':
        return [pair(input)];
    case 'MultiEdit':
        return Array.isArray(input.edits) ? input.edits.filter((e) => e && typeof e === 'object').map((e) => pair(e as ToolInput)) : [];
    default:
        return undefined;
    }
}

// Backgrounds that read on Mattermost's light and dark themes alike; the sign stays in the text,
// so the colour is never the only cue.
const LINE_BG = {'+': 'rgba(6, 214, 160, 0.18)', '-': 'rgba(210, 75, 78, 0.18)', ' ': 'transparent'};

// Each named block below is `role='region'`: a name on a plain <pre> (role generic) is an
// ARIA attribute it may not have, and screen readers drop it.
export const PRE_STYLE: React.CSSProperties = {whiteSpace: 'pre-wrap', wordBreak: 'break-word', margin: '4px 0', maxHeight: 400, overflow: 'auto'};

export function Diff({hunks, label}: {hunks: DiffLine[][]; label: string}) {
    return (
        <pre role='region' aria-label={label} style={{...PRE_STYLE, padding: 0}}>
            {hunks.map((hunk, h) => (
                <React.Fragment key={h}>
                    {h > 0 && <span style={{display: 'block', opacity: 0.6}}>{'⋯'}</span>}
                    {hunk.map((line, i) => (
                        <span key={i} data-sign={line.sign} style={{display: 'block', background: LINE_BG[line.sign], padding: '0 6px'}}>
                            {line.sign}
                            {line.text}
                        </span>
                    ))}
                </React.Fragment>
            ))}
        </pre>
    );
}

/** A tool's input in full: the diff of an edit, the command of a Bash call, else the JSON. */
export function InputView({tool, input, filePath}: {tool: string; input: ToolInput; filePath?: string}) {
    const hunks = diffOf(tool, input);
    if (hunks) {
        return <Diff hunks={hunks} label={`Proposed change to ${filePath ?? str(input, 'file_path') ?? 'the file'}`} />;
    }
    const command = tool === 'Bash' ? str(input, 'command') : undefined;
    if (command !== undefined) {
        return (
            <pre role='region' aria-label='Command' style={PRE_STYLE}>
                <code>{command}</code>
            </pre>
        );
    }
    return (
        <pre role='region' aria-label='Tool input' style={PRE_STYLE}>
            <code>{JSON.stringify(input, null, 2)}</code>
        </pre>
    );
}
