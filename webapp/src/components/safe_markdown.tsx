import * as React from 'react';

// Text from Claude, tool output and users, rendered in every viewer's browser. The server passes
// what it posts through src/chat/neutralise.rs; the live text (streamed from `message` events)
// and the messages of posts it did not write never went through it, so the same rules apply here
// to the host's markdown: nothing loads (an image would be fetched by every reader, leaking what
// a prompt-injected turn puts in its URL), nothing links (shown words can hide where a link
// leads), and invisible or reordering characters show as what they are.

/**
 * The characters `is_hidden` of neutralise.rs shows escaped: bidi embeddings, overrides,
 * isolates and marks; C0/C1 controls but tab and line breaks; zero-width spaces and word
 * joiners, the BOM, the soft hyphen, interlinear annotations and Unicode tags. Zero width
 * (non-)joiners stay: scripts and emoji need them.
 */
const HIDDEN = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b\u200e\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\u{e0000}-\u{e007f}]/gu;

/** `text` with every hidden character shown as the server shows it: `[U+202E]`. */
export function showHidden(text: string): string {
    return text.replace(HIDDEN, (c) => `[U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}]`);
}

/** Elements that load, run or restyle something: dropped with what they hold. */
const DROPPED = 'iframe, object, embed, script, style, link, meta, base, video, audio, source, picture, svg';

/**
 * The host's HTML with nothing that loads or links: each image becomes `[image: <alt>]`, each
 * link its words, `DROPPED` elements go, hidden characters show. It is parsed in an inert
 * `<template>`, whose images are never fetched.
 */
export function sanitiseHtml(html: string, doc: Document = document): string {
    const template = doc.createElement('template');
    template.innerHTML = html;
    const root = template.content;
    root.querySelectorAll(DROPPED).forEach((el) => el.remove());
    root.querySelectorAll('img').forEach((img) => img.replaceWith(doc.createTextNode(`[image: ${img.getAttribute('alt') ?? ''}]`)));
    root.querySelectorAll('a').forEach((a) => a.replaceWith(...a.childNodes));
    const walker = doc.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const shown = showHidden(node.nodeValue ?? '');
        if (shown !== node.nodeValue) {
            node.nodeValue = shown;
        }
    }
    return template.innerHTML;
}

/**
 * Markdown as the host renders posts, through `sanitiseHtml`; without the host (outside
 * Mattermost, in tests) the plain text, its hidden characters shown.
 */
export function SafeMarkdown({text}: {text: string}) {
    const utils = window.PostUtils;
    if (utils) {
        // `atMentions: false`: a name in Claude's text is not turned into a mention link either.
        const html = sanitiseHtml(utils.formatText(text, {atMentions: false}));
        return <div className='post-message__text'>{utils.messageHtmlToComponent(html, false) as React.ReactNode}</div>;
    }
    return <div style={{whiteSpace: 'pre-wrap', wordBreak: 'break-word'}}>{showHidden(text)}</div>;
}
