// The shapes of src/http/v1/openapi.json (components.schemas and the inline bodies), by hand:
// client.test.ts checks that every route there has its method in client.ts.

export const PERMISSION_MODES = ['default', 'acceptEdits', 'plan', 'dontAsk', 'auto'] as const;
export type PermissionMode = (typeof PERMISSION_MODES)[number];

export type SessionState =
    | 'starting'
    | 'idle'
    | 'running'
    | 'awaiting_approval'
    | 'stopping'
    | 'stopped'
    | 'crashed';

export interface Session {
    id: string;
    channel_id: string;
    owner_id: string;
    project_path: string;
    model?: string | null;
    permission_mode?: string | null;
    state: SessionState;
    created_at: number;
    updated_at: number;
    root_post_id?: string | null;
    queued_prompts: number;
    pending_approvals: number;
    last_seq: number;
}

/** What `GET /channels/{channel_id}` says the caller may do in the channel. */
export type PermissionAction =
    | 'start'
    | 'prompt'
    | 'interrupt'
    | 'stop'
    | 'context'
    | 'files'
    | 'history'
    | 'mode'
    | 'model'
    | 'approve'
    | 'approve_for_session'
    | 'deny'
    | 'edit_file';

export interface Permission {
    allowed: boolean;
    /** The sentence the server would refuse with; null when allowed. */
    reason: string | null;
}

export type Permissions = Record<PermissionAction, Permission>;

/** `GET /channels/{channel_id}`: the channel's live session and what the caller may do there. */
export interface ChannelInfo {
    channel_id: string;
    session: Session | null;
    /** Empty unless `permissions.start.allowed`. */
    allowed_roots: string[];
    permissions: Permissions;
    /** The plugin bot's user id: turn and card posts are real only when it wrote them. */
    bot_user_id: string;
}

export interface Approval {
    approval_id: string;
    tool: string;
    input: unknown;
    requested_at: number;
    state: 'pending' | 'approved' | 'denied' | 'expired' | 'withdrawn';
    decision?: string | null;
    decided_by?: string | null;
    reason?: string | null;
    decided_at?: number | null;
}

export type Decision = 'approve' | 'approve_session' | 'deny';

export interface HistoryMessage {
    seq: number;
    kind: string;
    role: 'user' | 'assistant' | 'system';
    text: string;
    at: number;
}

export interface HistoryPage {
    messages: HistoryMessage[];
    has_more: boolean;
}

export interface FileEntry {
    name: string;
    path: string;
    kind: 'file' | 'directory';
    size: number | null;
}

export interface FileListing {
    dir: string;
    entries: FileEntry[];
    truncated: boolean;
}

export interface ProjectFile {
    path: string;
    size: number;
    sha256: string;
    binary: boolean;
    content: string | null;
    language?: string | null;
}

export interface Written {
    path: string;
    size: number;
    sha256: string;
}

// The live event names of the contract (README "Live events", src/chat/live/map.rs).
export const EVENT_NAMES = ['status', 'prompt', 'message', 'tool', 'approval', 'file_change', 'turn', 'error'] as const;
export type EventName = (typeof EVENT_NAMES)[number];

/** A live event, as published on the websocket and replayed by `events?after=`: flat values. */
export interface LiveEvent {
    event: EventName;
    session_id: string;
    seq: number;
    at: number;
    [field: string]: string | number | boolean;
}

export interface EventsPage {
    events: LiveEvent[];
    last_seq: number;
}
