// The core of highlight.js with a handful of languages: the whole library would weigh ~900 KB,
// far over the bundle's budget. Each grammar registers its aliases (tsx, html, toml, yml, sh...),
// which covers most of the names the server's `language_for` gives. CSS is left out: its grammar
// (every property name) alone weighs 13 KB.
import hljs from 'highlight.js/lib/core';
import bash from 'highlight.js/lib/languages/bash';
import go from 'highlight.js/lib/languages/go';
import ini from 'highlight.js/lib/languages/ini';
import json from 'highlight.js/lib/languages/json';
import markdown from 'highlight.js/lib/languages/markdown';
import python from 'highlight.js/lib/languages/python';
import rust from 'highlight.js/lib/languages/rust';
import typescript from 'highlight.js/lib/languages/typescript';
import xml from 'highlight.js/lib/languages/xml';
import yaml from 'highlight.js/lib/languages/yaml';

const LANGUAGES = {bash, go, ini, json, markdown, python, rust, typescript, xml, yaml};
for (const [name, grammar] of Object.entries(LANGUAGES)) {
    hljs.registerLanguage(name, grammar);
}
// The TypeScript grammar carries a whole copy of the JavaScript one and highlights plain
// JavaScript as well: a second copy would add 6 KB for nothing.
hljs.registerAliases(['javascript', 'js', 'jsx', 'mjs', 'cjs'], {languageName: 'typescript'});

/**
 * Longer texts are shown plain: highlighting runs on the main thread while the panel renders,
 * and a megabyte of source takes seconds.
 */
export const HIGHLIGHT_MAX_CHARS = 200_000;

/** The grammar for the API's `language` (a Markdown fence name), else for the file's extension. */
export function languageOf(language: string | null | undefined, path: string): string | undefined {
    const name = path.slice(path.lastIndexOf('/') + 1);
    const dot = name.lastIndexOf('.');
    for (const candidate of [language, dot > 0 ? name.slice(dot + 1) : undefined]) {
        if (candidate && hljs.getLanguage(candidate)) {
            return candidate;
        }
    }
    return undefined;
}

/**
 * The text as HTML with highlight.js's `hljs-*` spans, or undefined when it has no known grammar
 * or is too long. highlight.js escapes every character of the text it emits (`&`, `<`, `>`,
 * quotes), so the result is safe for innerHTML; nothing else may be put there.
 */
export function highlightedHtml(text: string, language: string | undefined): string | undefined {
    if (!language || text.length > HIGHLIGHT_MAX_CHARS) {
        return undefined;
    }
    return hljs.highlight(text, {language, ignoreIllegals: true}).value;
}
