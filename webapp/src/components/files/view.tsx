import * as React from 'react';

import type {ProjectFile} from '../../api_types';
import {editableText, FileEditor, LINE_ENDINGS_NOTE} from './editor';
import {FileTree} from './tree';
import {ALERT_STYLE, errorMessage, type FilesClient, type FilesPermissions, formatSize, NOTE_STYLE} from './types';
import {FileViewer} from './viewer';

export interface FilesViewProps {
    sessionId: string;
    client: FilesClient;
    permissions: FilesPermissions;
}

/** The Files tab of the session panel: the project's tree, the open file, its editor. */
export function FilesView(props: FilesViewProps) {
    // Another session is another project: nothing of the previous tree or file carries over.
    return <FilesBrowser key={props.sessionId} {...props} />;
}

function FilesBrowser({sessionId, client, permissions}: FilesViewProps) {
    const [file, setFile] = React.useState<ProjectFile>();
    /** The tree's path of the file shown or being fetched (`file.path` has symlinks resolved). */
    const [chosen, setChosen] = React.useState<string>();
    const [error, setError] = React.useState<string>();
    /** The editor's text; undefined while the file is only viewed. */
    const [draft, setDraft] = React.useState<string>();
    /** Why the tree's choice was not opened (unsaved edits). */
    const [notice, setNotice] = React.useState<string>();
    const [saved, setSaved] = React.useState(false);
    /** The latest open request: an answer to an earlier one (a slow file) is dropped. */
    const ticket = React.useRef(0);
    const editButton = React.useRef<HTMLButtonElement>(null);
    const wasEditing = React.useRef(false);
    const reasonId = React.useId();

    const editing = draft !== undefined;
    // Back from the editor (saved or cancelled), the focus goes where it came from.
    React.useEffect(() => {
        if (!editing && wasEditing.current) {
            editButton.current?.focus();
        }
        wasEditing.current = editing;
    }, [editing]);

    if (permissions.files?.allowed === false) {
        return <p style={NOTE_STYLE}>{permissions.files.reason}</p>;
    }

    const open = (path: string) => {
        if (file && editing && draft !== (file.content === null ? undefined : editableText(file.content))) {
            setNotice(`Save or cancel your edit of ${file.path} first.`);
            return;
        }
        const mine = ++ticket.current;
        setDraft(undefined);
        setNotice(undefined);
        setError(undefined);
        setSaved(false);
        setFile(undefined);
        setChosen(path);
        client.readFile(sessionId, path).then(
            (f) => {
                if (mine === ticket.current) {
                    setFile(f);
                }
            },
            (e: unknown) => {
                if (mine === ticket.current) {
                    setError(`Could not open ${path}: ${errorMessage(e)}`);
                }
            },
        );
    };

    const edit = permissions.edit_file;
    const editable = file && file.content !== null ? editableText(file.content) : undefined;
    /** Why Edit is disabled: the server's refusal, or line endings the editor would change. */
    const refusal = edit?.allowed === false ? (edit.reason ?? 'You may not edit files here.') : editable === undefined ? LINE_ENDINGS_NOTE : undefined;

    return (
        <div className='claude-code-files'>
            <FileTree sessionId={sessionId} client={client} openPath={chosen} onOpen={open} />
            {notice && (
                <p role='alert' style={ALERT_STYLE}>
                    {notice}
                </p>
            )}
            {chosen && !file && !error && <p style={NOTE_STYLE}>{`Opening ${chosen}…`}</p>}
            {error && (
                <p role='alert' style={ALERT_STYLE}>
                    {error}
                </p>
            )}
            {file && (
                <div style={{marginTop: 8}}>
                    <div style={{display: 'flex', alignItems: 'center', flexWrap: 'wrap', gap: 8, marginBottom: 4}}>
                        <strong style={{wordBreak: 'break-all'}}>{file.path}</strong>
                        <span style={{opacity: 0.7}}>{formatSize(file.size)}</span>
                        {!editing && file.content !== null && (
                            <button
                                ref={editButton}
                                type='button'
                                className='btn btn-sm btn-tertiary'
                                disabled={refusal !== undefined}
                                aria-describedby={refusal === undefined ? undefined : reasonId}
                                onClick={() => {
                                    setSaved(false);
                                    setDraft(editable);
                                }}
                            >
                                {'Edit'}
                            </button>
                        )}
                        <span role='status'>{saved ? 'Saved.' : ''}</span>
                    </div>
                    {!editing && refusal !== undefined && file.content !== null && (
                        <p id={reasonId} style={NOTE_STYLE}>
                            {refusal}
                        </p>
                    )}
                    {editing ? (
                        <FileEditor
                            sessionId={sessionId}
                            client={client}
                            file={file}
                            text={draft}
                            onChange={setDraft}
                            onSaved={(f) => {
                                setFile(f);
                                setDraft(undefined);
                                setSaved(true);
                            }}
                            onReloaded={(f) => {
                                setFile(f);
                                setDraft((f.content === null ? undefined : editableText(f.content)) ?? draft);
                            }}
                            onCancel={() => setDraft(undefined)}
                        />
                    ) : (
                        <FileViewer file={file} />
                    )}
                </div>
            )}
        </div>
    );
}
