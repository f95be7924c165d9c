import * as React from 'react';

/**
 * The answer of `load()`, asked when `key` is set and again when it changes; `done` once it
 * answered or failed. The last answer stays when `key` is unset (nothing more to ask).
 */
export function useLoaded<T>(key: string | undefined, load: () => Promise<T>): {value?: T; done: boolean} {
    const [state, setState] = React.useState<{key?: string; value?: T}>({});
    React.useEffect(() => {
        if (key === undefined) {
            return undefined;
        }
        let mounted = true;
        load().then(
            (value) => mounted && setState({key, value}),
            // Without the answer the caller shows what it has (the server still decides every request).
            () => mounted && setState({key}),
        );
        return () => {
            mounted = false;
        };
    }, [key]); // eslint-disable-line react-hooks/exhaustive-deps
    const current = key === undefined || state.key === key;
    return {value: current ? state.value : undefined, done: key !== undefined && state.key === key};
}
