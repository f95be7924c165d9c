import {describe, expect, it} from 'vitest';

import {HIGHLIGHT_MAX_CHARS, highlightedHtml, languageOf} from '../src/components/files/highlight';

describe('highlight', () => {
    it("takes the API's language, else the extension, else none", () => {
        expect(languageOf('rust', 'src/lib.rs')).toBe('rust');
        expect(languageOf(null, 'tools/gen.py')).toBe('py');
        expect(languageOf('kotlin', 'app/Main.kt')).toBeUndefined();
        expect(languageOf(null, 'LICENSE')).toBeUndefined();
        expect(languageOf(null, '.bashrc')).toBeUndefined();
    });

    it('highlights JavaScript and JSX with the TypeScript grammar', () => {
        for (const language of ['javascript', 'jsx', 'tsx']) {
            expect(languageOf(language, 'x')).toBe(language);
            expect(highlightedHtml('const a = 1;', language)).toBe('<span class="hljs-keyword">const</span> a = <span class="hljs-number">1</span>;');
        }
    });

    it('escapes the text and leaves a long text to be shown plain', () => {
        expect(highlightedHtml('"<b>&"', 'json')).toBe('<span class="hljs-string">&quot;&lt;b&gt;&amp;&quot;</span>');
        expect(highlightedHtml('x'.repeat(HIGHLIGHT_MAX_CHARS + 1), 'json')).toBeUndefined();
        expect(highlightedHtml('let a', undefined)).toBeUndefined();
    });
});
