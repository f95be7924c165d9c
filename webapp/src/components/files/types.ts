import type * as React from 'react';

import type {Client} from '../../client';

/** One action of the channel's permissions (`GET /channels/{channel_id}`). */
export interface ActionPermission {
    allowed: boolean;
    /** The sentence the server would refuse with; null when allowed. */
    reason: string | null;
}

/**
 * The actions the Files tab looks at. Declared here (not imported) because the panel adds the
 * full `Permissions` type to api_types.ts in parallel; that type satisfies this one.
 */
export interface FilesPermissions {
    files?: ActionPermission;
    edit_file?: ActionPermission;
}

/** The routes the Files tab uses; the real `Client` is one. */
export type FilesClient = Pick<Client, 'listFiles' | 'readFile' | 'updateFile'>;

/** An error's message for an alert: the server's own sentence for an ApiError. */
export function errorMessage(e: unknown): string {
    return e instanceof Error ? e.message : String(e);
}

/** A byte count as people read it. */
export function formatSize(bytes: number): string {
    if (bytes < 1024) {
        return `${bytes} bytes`;
    }
    const kib = bytes / 1024;
    return kib < 1024 ? `${kib.toFixed(1)} KiB` : `${(kib / 1024).toFixed(1)} MiB`;
}

export const NOTE_STYLE: React.CSSProperties = {margin: '4px 0', opacity: 0.75};

export const ALERT_STYLE: React.CSSProperties = {color: 'var(--error-text, #d24b4e)', margin: '4px 0'};
