import * as React from 'react';

import type {ProjectFile} from '../../api_types';
import {HIGHLIGHT_MAX_CHARS, highlightedHtml, languageOf} from './highlight';
import {formatSize, NOTE_STYLE} from './types';

export const CODE_STYLE: React.CSSProperties = {
    margin: 0,
    maxHeight: '60vh',
    overflow: 'auto',
    fontSize: 12,
    whiteSpace: 'pre',
    background: 'rgba(var(--center-channel-color-rgb, 63, 67, 80), 0.04)',
    border: '1px solid rgba(var(--center-channel-color-rgb, 63, 67, 80), 0.16)',
    borderRadius: 4,
};

/** Why a file whose `content` is null has no text: binary, or over the API's size limit. */
export function noTextNote(file: ProjectFile): string {
    return file.binary
        ? `A binary file (${formatSize(file.size)}): its contents are not shown.`
        : `Too large to show here (${formatSize(file.size)}).`;
}

/** A project file's text, syntax highlighted when its language is one the bundle knows. */
export function FileViewer({file}: {file: ProjectFile}) {
    const language = languageOf(file.language, file.path);
    const html = React.useMemo(
        () => (file.content === null ? undefined : highlightedHtml(file.content, language)),
        [file.content, language],
    );
    if (file.content === null) {
        return <p style={NOTE_STYLE}>{noTextNote(file)}</p>;
    }
    return (
        <>
            {file.content.length > HIGHLIGHT_MAX_CHARS && language && (
                <p style={NOTE_STYLE}>{'Shown without highlighting: the file is long.'}</p>
            )}
            {/* tabIndex: a scrollable region must be reachable by keyboard to be scrolled; the role
                makes its name allowed (a plain <pre> may not have one), even when the file is empty. */}
            <pre role='region' aria-label={`Contents of ${file.path}`} tabIndex={0} style={CODE_STYLE}>
                {html === undefined ? (
                    <code style={{display: 'block', padding: 8}}>{file.content}</code>
                ) : (
                    // `hljs` and the `hljs-*` spans take their colours from the code theme
                    // stylesheet Mattermost loads for the user's theme (the one code blocks use).
                    <code className={`hljs language-${language}`} style={{display: 'block', padding: 8}} dangerouslySetInnerHTML={{__html: html}} />
                )}
            </pre>
        </>
    );
}
