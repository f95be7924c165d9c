import * as React from 'react';

// One drawing for both places: the channel header draws it inline (it takes the header's
// colour), the App Bar only takes an image URL.
const VIEW_BOX = '0 0 24 24';
/** A terminal prompt `>_` in a rounded frame. */
const PATH = 'M4 4h16a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2zm0 2v12h16V6H4zm2.3 2.3L10 12l-3.7 3.7-1.4-1.4L7.2 12 4.9 9.7l1.4-1.4zM11 15h6v2h-6v-2z';

export function PanelIcon() {
    return (
        <svg width='16' height='16' viewBox={VIEW_BOX} fill='currentColor' aria-hidden='true'>
            <path d={PATH} />
        </svg>
    );
}

/** The App Bar's icon: a data: URL, so the plugin needs no static file served. */
export const ICON_URL = `data:image/svg+xml,${encodeURIComponent(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="${VIEW_BOX}" fill="#3f4350"><path d="${PATH}"/></svg>`)}`;
