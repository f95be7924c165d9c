import * as React from 'react';

import type {ProjectFile} from '../../api_types';
import {ApiError} from '../../client';
import {ALERT_STYLE, errorMessage, type FilesClient, NOTE_STYLE} from './types';
import {CODE_STYLE, noTextNote} from './viewer';

/**
 * The text a textarea can edit without changing the file's line endings: a textarea turns every
 * CRLF and CR into LF, so a file of CRLF lines is edited as LF and saved as CRLF again; a file
 * mixing them, or of CR lines, could not be written back as it was (undefined: not editable
 * here, the viewer still shows it).
 */
export function editableText(content: string): string | undefined {
    if (!content.includes('\r')) {
        return content;
    }
    const lf = content.replace(/\r\n/g, '\n');
    const uniform = !lf.includes('\r') && !/(^|[^\r])\n/.test(content);
    return uniform ? lf : undefined;
}

/** Why a file with text has no editor: its line endings. */
export const LINE_ENDINGS_NOTE = 'Its line endings are mixed (or CR only): the editor here would change them all, so it cannot be edited here.';

export interface FileEditorProps {
    sessionId: string;
    client: FilesClient;
    /** The version being edited: its `sha256` is the If-Match of the save. */
    file: ProjectFile;
    text: string;
    onChange: (text: string) => void;
    /** Written: the file as it now is. */
    onSaved: (file: ProjectFile) => void;
    /** The file as the server has it now, after a conflict: the edit goes on from there. */
    onReloaded: (file: ProjectFile) => void;
    onCancel: () => void;
}

/**
 * Edits a file's text and saves it with If-Match: the version it was opened at. When someone
 * (or Claude) changed the file since, the server answers 409 and nothing is written; the editor
 * says so and offers to reload the file, keeping the person's text alongside.
 */
export function FileEditor({sessionId, client, file, text, onChange, onSaved, onReloaded, onCancel}: FileEditorProps) {
    const [busy, setBusy] = React.useState(false);
    const [conflict, setConflict] = React.useState(false);
    const [error, setError] = React.useState<string>();
    /** The person's text when they reloaded after a conflict: theirs, not saved anywhere else. */
    const [yours, setYours] = React.useState<string>();
    const textarea = React.useRef<HTMLTextAreaElement>(null);
    const reloadButton = React.useRef<HTMLButtonElement>(null);
    const id = React.useId();

    React.useEffect(() => {
        if (conflict) {
            // Save is disabled now: the focus would be lost with it.
            reloadButton.current?.focus();
        } else {
            textarea.current?.focus();
        }
    }, [conflict]);

    /** A 409 is the stale If-Match: the file changed under the edit. */
    const failed = (e: unknown) => (e instanceof ApiError && e.status === 409 ? setConflict(true) : setError(errorMessage(e)));
    const run = (request: () => Promise<void>) => {
        setBusy(true);
        setError(undefined);
        return request().catch(failed).finally(() => setBusy(false));
    };

    const save = () =>
        run(async () => {
            // Editable and holding a CR: CRLF throughout (editableText), as it is saved again.
            const content = file.content?.includes('\r') ? text.replace(/\n/g, '\r\n') : text;
            const written = await client.updateFile(sessionId, file.path, content, file.sha256);
            onSaved({...file, content, size: written.size, sha256: written.sha256, binary: false});
        });

    const reload = () =>
        run(async () => {
            const fresh = await client.readFile(sessionId, file.path);
            setYours(text);
            setConflict(false);
            onReloaded(fresh);
        });

    const editable = file.content !== null && editableText(file.content) !== undefined;

    return (
        <form
            onSubmit={(e) => {
                e.preventDefault();
                // Only from the Save button, which a conflict disables; never over a newer version.
                if (!busy && !conflict && editable) {
                    void save();
                }
            }}
        >
            {editable ? (
                <>
                    <label htmlFor={`${id}-text`} style={{display: 'block'}}>{`Edit ${file.path}`}</label>
                    <textarea
                        id={`${id}-text`}
                        ref={textarea}
                        className='form-control'
                        value={text}
                        onChange={(e) => onChange(e.target.value)}
                        disabled={busy}
                        spellCheck={false}
                        rows={Math.min(30, Math.max(6, text.split('\n').length + 1))}
                        style={{...CODE_STYLE, width: '100%', fontFamily: 'monospace', resize: 'vertical'}}
                    />
                </>
            ) : (
                // Only after a reload: the file became binary, too large or mixed while it was edited.
                <p style={NOTE_STYLE}>{file.content === null ? `${noTextNote(file)} It cannot be edited here.` : LINE_ENDINGS_NOTE}</p>
            )}
            {conflict && (
                <div role='alert' style={ALERT_STYLE}>
                    {`${file.path} changed since you opened it: your edit was not saved. Reload it to edit the new version; your text is kept.`}{' '}
                    <button ref={reloadButton} type='button' className='btn btn-sm btn-tertiary' disabled={busy} onClick={() => void reload()}>
                        {'Reload'}
                    </button>
                </div>
            )}
            {error && (
                <p role='alert' style={ALERT_STYLE}>
                    {error}
                </p>
            )}
            {yours !== undefined && (
                <details open style={{margin: '4px 0'}}>
                    <summary>{'Your version (not saved)'}</summary>
                    <pre role='region' aria-label='Your version' tabIndex={0} style={{...CODE_STYLE, padding: 8}}>
                        {yours}
                    </pre>
                </details>
            )}
            <div style={{display: 'flex', gap: 4, marginTop: 4}}>
                <button type='submit' className='btn btn-sm btn-primary' disabled={busy || conflict || !editable}>
                    {'Save'}
                </button>
                <button type='button' className='btn btn-sm btn-tertiary' disabled={busy} onClick={onCancel}>
                    {'Cancel'}
                </button>
            </div>
        </form>
    );
}
