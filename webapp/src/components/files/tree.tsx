import * as React from 'react';

import type {FileEntry, FileListing} from '../../api_types';
import {ALERT_STYLE, errorMessage, type FilesClient, NOTE_STYLE} from './types';

/** A directory's listing as far as it got. The root directory is ''. */
type DirState = {status: 'loading'} | {status: 'loaded'; listing: FileListing} | {status: 'failed'; message: string};

/** A visible entry with what aria-level, aria-setsize and aria-posinset need. */
interface Row {
    entry: FileEntry;
    level: number;
    /** The directory it is in; '' for the root. */
    parent: string;
    posinset: number;
    setsize: number;
}

/** The entries a person sees: the root's, and those of each expanded directory under its own. */
function visibleRows(dirs: Record<string, DirState>, expanded: ReadonlySet<string>): Row[] {
    const rows: Row[] = [];
    const walk = (dir: string, level: number) => {
        const state = dirs[dir];
        if (state?.status !== 'loaded') {
            return;
        }
        const {entries} = state.listing;
        entries.forEach((entry, i) => {
            rows.push({entry, level, parent: dir, posinset: i + 1, setsize: entries.length});
            if (entry.kind === 'directory' && expanded.has(entry.path)) {
                walk(entry.path, level + 1);
            }
        });
    };
    walk('', 1);
    return rows;
}

export interface FileTreeProps {
    sessionId: string;
    client: FilesClient;
    /** The file shown next to the tree (aria-selected). */
    openPath: string | undefined;
    onOpen: (path: string) => void;
}

/**
 * The project's files as a WAI-ARIA tree: each directory is listed when it is first expanded,
 * once. The items are one flat list with aria-level, aria-setsize and aria-posinset (the
 * pattern allows it), which keeps the keyboard moves simple index arithmetic over the visible
 * rows; one item is in the tab order (roving tabindex).
 */
export function FileTree({sessionId, client, openPath, onOpen}: FileTreeProps) {
    const [dirs, setDirs] = React.useState<Record<string, DirState>>({});
    const [expanded, setExpanded] = React.useState<ReadonlySet<string>>(new Set());
    const [focused, setFocused] = React.useState<string>();
    const items = React.useRef(new Map<string, HTMLLIElement>());
    /** The directories asked for: a re-render or a second expand must not list one again. */
    const requested = React.useRef(new Set<string>());

    const setOpen = (dir: string, open: boolean) =>
        setExpanded((prev) => {
            const next = new Set(prev);
            if (open) {
                next.add(dir);
            } else {
                next.delete(dir);
            }
            return next;
        });

    const load = React.useCallback(
        (dir: string) => {
            if (requested.current.has(dir)) {
                return;
            }
            requested.current.add(dir);
            setDirs((d) => ({...d, [dir]: {status: 'loading'}}));
            client.listFiles(sessionId, dir === '' ? undefined : dir).then(
                (listing) => setDirs((d) => ({...d, [dir]: {status: 'loaded', listing}})),
                (e: unknown) => {
                    // Expanding it again asks again.
                    requested.current.delete(dir);
                    setOpen(dir, false);
                    setDirs((d) => ({...d, [dir]: {status: 'failed', message: errorMessage(e)}}));
                },
            );
        },
        [client, sessionId],
    );

    React.useEffect(() => load(''), [load]);

    const rows = visibleRows(dirs, expanded);
    const tabbable = rows.some((r) => r.entry.path === focused) ? focused : rows[0]?.entry.path;

    const expand = (dir: string) => {
        setOpen(dir, true);
        load(dir);
    };

    const moveTo = (path: string | undefined) => {
        if (path !== undefined) {
            setFocused(path);
            items.current.get(path)?.focus();
        }
    };

    const activate = (entry: FileEntry) => {
        if (entry.kind === 'directory') {
            if (expanded.has(entry.path)) {
                setOpen(entry.path, false);
            } else {
                expand(entry.path);
            }
        } else {
            onOpen(entry.path);
        }
    };

    const onKeyDown = (e: React.KeyboardEvent) => {
        const i = rows.findIndex((r) => r.entry.path === tabbable);
        const row = rows[i];
        if (!row) {
            return;
        }
        const {entry} = row;
        const isOpenDir = entry.kind === 'directory' && expanded.has(entry.path);
        switch (e.key) {
        case 'ArrowDown':
            moveTo(rows[i + 1]?.entry.path);
            break;
        case 'ArrowUp':
            moveTo(rows[i - 1]?.entry.path);
            break;
        case 'Home':
            moveTo(rows[0].entry.path);
            break;
        case 'End':
            moveTo(rows[rows.length - 1].entry.path);
            break;
        case 'ArrowRight':
            if (isOpenDir) {
                // To the first child, when the listing has arrived and is not empty.
                moveTo(rows[i + 1]?.parent === entry.path ? rows[i + 1].entry.path : undefined);
            } else if (entry.kind === 'directory') {
                expand(entry.path);
            }
            break;
        case 'ArrowLeft':
            if (isOpenDir) {
                setOpen(entry.path, false);
            } else {
                moveTo(row.parent === '' ? undefined : row.parent);
            }
            break;
        case 'Enter':
            activate(entry);
            break;
        default:
            return;
        }
        e.preventDefault();
    };

    const root = dirs[''];
    const shown = (dir: string) => (dir === '' ? 'the project' : dir);
    const notes = Object.entries(dirs).flatMap(([dir, d]) => (d.status === 'loaded' && d.listing.truncated ? [{dir, count: d.listing.entries.length}] : []));
    const failures = Object.entries(dirs).flatMap(([dir, d]) => (d.status === 'failed' ? [{dir, message: d.message}] : []));

    return (
        <div>
            {root?.status === 'loading' && <p style={NOTE_STYLE}>{'Loading the project’s files…'}</p>}
            {root?.status === 'loaded' && rows.length === 0 && <p style={NOTE_STYLE}>{'The project has no files.'}</p>}
            {rows.length > 0 && (
                <ul role='tree' aria-label='Project files' onKeyDown={onKeyDown} style={{listStyle: 'none', margin: 0, padding: 0, maxHeight: '35vh', overflow: 'auto'}}>
                    {rows.map(({entry, level, posinset, setsize}) => {
                        const isDir = entry.kind === 'directory';
                        const open = expanded.has(entry.path);
                        const selected = entry.path === openPath;
                        return (
                            <li
                                key={entry.path}
                                ref={(el) => {
                                    if (el) {
                                        items.current.set(entry.path, el);
                                    } else {
                                        items.current.delete(entry.path);
                                    }
                                }}
                                role='treeitem'
                                aria-level={level}
                                aria-setsize={setsize}
                                aria-posinset={posinset}
                                aria-expanded={isDir ? open : undefined}
                                aria-selected={selected}
                                aria-busy={isDir && open && dirs[entry.path]?.status === 'loading'}
                                tabIndex={entry.path === tabbable ? 0 : -1}
                                onClick={() => {
                                    moveTo(entry.path);
                                    activate(entry);
                                }}
                                style={{
                                    cursor: 'pointer',
                                    padding: `1px 4px 1px ${4 + 16 * (level - 1)}px`,
                                    whiteSpace: 'nowrap',
                                    background: selected ? 'rgba(var(--button-bg-rgb, 28, 88, 217), 0.12)' : undefined,
                                }}
                            >
                                <span aria-hidden='true' style={{display: 'inline-block', width: 16}}>
                                    {isDir ? (open ? '▾' : '▸') : ''}
                                </span>
                                {entry.name}
                            </li>
                        );
                    })}
                </ul>
            )}
            {notes.map(({dir, count}) => (
                <p key={dir} style={NOTE_STYLE}>
                    {`Only the first ${count} entries of ${shown(dir)} are shown.`}
                </p>
            ))}
            {failures.map(({dir, message}) => (
                <p key={dir} role='alert' style={ALERT_STYLE}>
                    {`Could not list ${shown(dir)}: ${message}`}
                </p>
            ))}
        </div>
    );
}
