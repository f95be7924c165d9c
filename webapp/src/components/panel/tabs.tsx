import * as React from 'react';

export interface Tab {
    name: string;
    render(): React.ReactNode;
}

/**
 * WAI-ARIA tabs with automatic activation: one tab stop, the arrow keys (and Home, End) move
 * between the tabs and show the one they land on. A panel is drawn when its tab is first shown
 * and then only hidden, so what was typed there (an unsaved edit, a search) is still there when
 * the user comes back.
 */
export function Tabs({label, tabs}: {label: string; tabs: Tab[]}) {
    const [active, setActive] = React.useState(0);
    const [opened, setOpened] = React.useState<ReadonlySet<string>>(() => new Set());
    const refs = React.useRef<Array<HTMLButtonElement | null>>([]);
    const ids = React.useId();
    const current = Math.min(active, tabs.length - 1);
    const currentName = tabs[current].name;
    if (!opened.has(currentName)) {
        // Set while rendering (React re-renders at once): the first look at a tab draws it.
        setOpened(new Set(opened).add(currentName));
    }

    const select = (index: number) => {
        setActive(index);
        refs.current[index]?.focus();
    };
    const onKeyDown = (e: React.KeyboardEvent) => {
        const last = tabs.length - 1;
        const keys: Record<string, number | undefined> = {ArrowRight: current === last ? 0 : current + 1, ArrowLeft: current === 0 ? last : current - 1, Home: 0, End: last};
        const to = keys[e.key];
        if (to !== undefined) {
            e.preventDefault();
            select(to);
        }
    };

    return (
        <>
            <div role='tablist' aria-label={label} onKeyDown={onKeyDown} style={{display: 'flex', gap: 4, borderBottom: '1px solid rgba(var(--center-channel-color-rgb, 0, 0, 0), 0.16)', marginBottom: 8}}>
                {tabs.map((tab, i) => (
                    <button
                        key={tab.name}
                        ref={(el) => {
                            refs.current[i] = el;
                        }}
                        type='button'
                        role='tab'
                        id={`${ids}-tab-${i}`}
                        aria-selected={i === current}
                        aria-controls={`${ids}-panel-${i}`}
                        tabIndex={i === current ? 0 : -1}
                        className='btn btn-tertiary btn-sm'
                        style={i === current ? {borderBottom: '2px solid var(--button-bg, #1c58d9)', borderRadius: 0} : {borderRadius: 0}}
                        onClick={() => select(i)}
                    >
                        {tab.name}
                    </button>
                ))}
            </div>
            {tabs.map(
                (tab, i) =>
                    (i === current || opened.has(tab.name)) && (
                        <div key={tab.name} role='tabpanel' id={`${ids}-panel-${i}`} aria-labelledby={`${ids}-tab-${i}`} tabIndex={0} hidden={i !== current}>
                            {tab.render()}
                        </div>
                    ),
            )}
        </>
    );
}
