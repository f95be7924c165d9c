import * as React from 'react';

import {botUserIdOf} from '../live/shared';
import type {HostPost} from '../mattermost';
import {ApprovalCard, type ApprovalClient} from './approval_card';
import {SafeMarkdown} from './safe_markdown';
import {prop, sessionOf, TurnPost} from './turn_post';
import {useLoaded} from './use_loaded';

/** The type of the plugin's turn posts and approval card posts (`Posts.Type` is varchar(26)). */
export const POST_TYPE = 'custom_claude_code';

/** The text of the card post's attachment: the server writes there who answered a question what. */
function attachmentText(post: HostPost): string | undefined {
    const attachments = prop(post, 'attachments');
    const text: unknown = Array.isArray(attachments) ? (attachments[0] as {text?: unknown} | undefined)?.text : undefined;
    return typeof text === 'string' ? text : undefined;
}

/**
 * A `custom_claude_code` post: an approval card post (it names its request) or a turn post.
 * The host renders it as the post's body with `{post, compactDisplay, isRHS, theme}`.
 */
export function ClaudeCodePost({post, client}: {post: HostPost; client: ApprovalClient}) {
    const bot = useLoaded(post.channel_id, () => botUserIdOf(client, post.channel_id));
    // Mattermost lets any user post any custom_ type: a forged post must not draw a live card
    // for another session's request, mirror a turn, or hide its own attachments. Until the bot
    // is known (or when it cannot be), a post is its message.
    if (bot.value === undefined || post.user_id !== bot.value) {
        return <SafeMarkdown text={post.message} />;
    }
    const request = prop(post, 'claude_code_request');
    const sessionId = sessionOf(post);
    if (typeof request === 'string' && request !== '' && sessionId) {
        return (
            <ApprovalCard
                sessionId={sessionId}
                approvalId={request}
                client={client}
                channelId={post.channel_id}
                cardText={attachmentText(post)}
                // A request no longer known: the post's own text, its buttons shown (no card marker).
                fallback={<SafeMarkdown text={post.message} />}
            />
        );
    }
    return <TurnPost post={post} />;
}

export const STYLE_ID = 'claude-code-style';

/**
 * The card post keeps its attachment buttons for mobile and other clients; on a desktop the
 * card above them has the same buttons, so they are hidden wherever a card is drawn.
 */
export const CARD_POST_CSS = '.post:has([data-claude-code-card]) .attachment {display: none}';

/**
 * White on the theme's danger colour at a small button's size is 4.3:1 in Mattermost's default
 * theme, under WCAG's 4.5:1: the plugin's own danger buttons (Deny, Stop) are drawn a fifth
 * darker, whatever the theme, and only inside the plugin's components.
 */
export const DANGER_BUTTON_CSS =
    '.claude-code-approval .btn-danger, .claude-code-panel .btn-danger ' +
    '{background: color-mix(in srgb, var(--error-text, #d24b4e) 80%, #000); border-color: transparent; color: #fff}';

/** Adds the plugin's one stylesheet (replacing one a previous load left); returns its removal. */
export function installStyle(doc: Document): () => void {
    doc.getElementById(STYLE_ID)?.remove();
    const style = doc.createElement('style');
    style.id = STYLE_ID;
    style.textContent = `${CARD_POST_CSS}\n${DANGER_BUTTON_CSS}`;
    doc.head.appendChild(style);
    return () => style.remove();
}
