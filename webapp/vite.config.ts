import type {Plugin} from 'vite';
import {defineConfig} from 'vitest/config';

// The libraries Mattermost's webapp hands to plugins as globals (webapp/channels/src/plugins/export.ts).
// Bundling our own copy would put two Reacts in one page (hooks break) and weigh ~140 KB.
export const GLOBALS: Record<string, string> = {
    react: 'React',
    'react-dom': 'ReactDOM',
    redux: 'Redux',
    'react-redux': 'ReactRedux',
    'prop-types': 'PropTypes',
};

// The bundle is downloaded by every desktop and web client on every page load.
export const BUDGET_BYTES = 150 * 1024;

function sizeBudget(budget: number): Plugin {
    return {
        name: 'size-budget',
        apply: 'build',
        generateBundle(_options, bundle) {
            for (const file of Object.values(bundle)) {
                if (file.type !== 'chunk') {
                    continue;
                }
                const size = Buffer.byteLength(file.code);
                const line = `${file.fileName}: ${size} bytes, budget ${budget} bytes (${((100 * size) / budget).toFixed(1)}%)`;
                if (size > budget) {
                    this.error(`over the size budget: ${line}`);
                }
                // Printed on every build so the figure shows in make's output.
                console.log(line);
            }
        },
    };
}

export default defineConfig(({command}) => ({
    // Classic JSX (React.createElement on the global React): Mattermost exposes no
    // react/jsx-runtime before 12, and a bundled React 18 runtime crashes under React 19.
    esbuild: {jsx: 'transform', jsxFactory: 'React.createElement', jsxFragment: 'React.Fragment'},
    // Only for the build: under vitest it would load React's production build, where
    // @testing-library's act() is not supported.
    define: command === 'build' ? {'process.env.NODE_ENV': '"production"'} : {},
    plugins: [sizeBudget(BUDGET_BYTES)],
    build: {
        outDir: 'dist',
        target: 'es2020',
        emptyOutDir: true,
        // The host loads main.js as a classic <script defer>: one self-contained IIFE.
        lib: {entry: 'src/index.tsx', formats: ['iife'], name: 'ClaudeCodePlugin', fileName: () => 'main.js'},
        rollupOptions: {external: Object.keys(GLOBALS), output: {globals: GLOBALS}},
    },
    test: {environment: 'happy-dom'},
}));
