import * as React from 'react';

import type {HistoryMessage} from '../../api_types';
import type {Client} from '../../client';
import {showHidden} from '../safe_markdown';
import {ErrorAlert, LABEL_STYLE, useRequest} from './common';

export interface HistoryViewProps {
    sessionId: string;
    client: Pick<Client, 'history'>;
}

/** Typing pauses this long before the search asks the server (one request per word, not per key). */
export const SEARCH_DELAY_MS = 300;
const PAGE_SIZE = 50;

const WHO: Record<HistoryMessage['role'], string> = {user: 'You', assistant: 'Claude', system: 'System'};

/** The session's transcript, newest page first, older pages on demand, searched by the server (`q`). */
export function HistoryView({sessionId, client}: HistoryViewProps) {
    const [query, setQuery] = React.useState('');
    const [search, setSearch] = React.useState('');
    const [messages, setMessages] = React.useState<HistoryMessage[]>([]);
    const [hasMore, setHasMore] = React.useState(false);
    const {busy, error, run} = useRequest();
    const ids = React.useId();
    /** Bumped by each new search (or session): an answer to an older one is dropped. */
    const generation = React.useRef(0);
    /** For a request made now: whether its search is still the one shown when it answers. */
    const currentSearch = () => {
        const mine = generation.current;
        return () => generation.current === mine;
    };

    React.useEffect(() => {
        const timer = setTimeout(() => setSearch(query.trim()), SEARCH_DELAY_MS);
        return () => clearTimeout(timer);
    }, [query]);

    // A new search (or session) starts again from the newest page; an answer to an older search is dropped.
    React.useEffect(() => {
        generation.current += 1;
        const current = currentSearch();
        void run(async () => {
            const page = await client.history(sessionId, {limit: PAGE_SIZE, q: search || undefined});
            if (current()) {
                setMessages(page.messages);
                setHasMore(page.has_more);
            }
        }, current);
    }, [client, sessionId, search, run]); // eslint-disable-line react-hooks/exhaustive-deps

    // An older page belongs to the search it was asked for: after another search it is dropped.
    const loadOlder = () => {
        const current = currentSearch();
        void run(async () => {
            const page = await client.history(sessionId, {limit: PAGE_SIZE, before: messages[0]?.seq, q: search || undefined});
            if (current()) {
                setMessages((loaded) => [...page.messages, ...loaded]);
                setHasMore(page.has_more);
            }
        }, current);
    };

    return (
        <div>
            <label htmlFor={`${ids}-q`} style={LABEL_STYLE}>
                {'Search history'}
            </label>
            <input id={`${ids}-q`} type='search' className='form-control' value={query} onChange={(e) => setQuery(e.target.value)} />
            {hasMore && (
                <button type='button' className='btn btn-tertiary btn-sm' style={{marginTop: 8}} disabled={busy} onClick={loadOlder}>
                    {'Load older'}
                </button>
            )}
            <ErrorAlert error={error} />
            {!busy && messages.length === 0 && !error && <p role='status'>{search ? `Nothing matches “${search}”.` : 'No messages yet.'}</p>}
            <ol aria-label='Messages' aria-busy={busy} style={{listStyle: 'none', padding: 0, margin: '8px 0 0'}}>
                {messages.map((m) => (
                    <li key={m.seq} style={{borderTop: '1px solid rgba(var(--center-channel-color-rgb, 0, 0, 0), 0.08)', padding: '4px 0'}}>
                        <div style={{fontSize: 12, opacity: 0.7}}>
                            <strong>{WHO[m.role] ?? m.role}</strong>
                            {` · ${m.kind} · `}
                            <time dateTime={new Date(m.at).toISOString()}>{new Date(m.at).toLocaleString()}</time>
                        </div>
                        <div style={{whiteSpace: 'pre-wrap', wordBreak: 'break-word'}}>{showHidden(m.text)}</div>
                    </li>
                ))}
            </ol>
        </div>
    );
}
