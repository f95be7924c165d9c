// The page: a channel header with the plugins' header buttons, an App Bar, the channel's posts
// (a registered post type component in place of the message, the attachments beneath in
// `.attachment`, as Mattermost's PostBodyAdditionalContent), the open right-hand sidebar
// component, and the root components.
import * as React from 'react';
import {useSelector} from 'react-redux';

import {type Post, v4} from './api';
import type {HostRegistry, Registered} from './registry';
import type {HarnessState} from './store';

/** What a plugin component throws is shown in place and logged: the runner fails on console errors. */
class Boundary extends React.Component<{what: string; children: React.ReactNode}, {error?: Error}> {
    override state: {error?: Error} = {};
    static getDerivedStateFromError(error: Error) {
        return {error};
    }
    override componentDidCatch(error: Error) {
        console.error(`plugin component ${this.props.what} threw: ${error.message}`);
    }
    override render() {
        return this.state.error ? <p role='alert'>{`${this.props.what} failed: ${this.state.error.message}`}</p> : this.props.children;
    }
}

function element(c: unknown, props: Record<string, unknown> = {}): React.ReactNode {
    if (React.isValidElement(c)) {
        return c;
    }
    return React.createElement(c as React.ComponentType<Record<string, unknown>>, props);
}

interface Attachment {
    pretext?: string;
    title?: string;
    text?: string;
    fields?: Array<{title?: string; value?: string}>;
    actions?: Array<{id: string; name: string}>;
}

function Attachments({post}: {post: Post}) {
    const list = (post.props?.attachments as Attachment[] | undefined) ?? [];
    if (list.length === 0) {
        return null;
    }
    return (
        <div className='attachment'>
            {list.map((a, i) => (
                <div key={i} className='attachment__content'>
                    {a.pretext && <p>{a.pretext}</p>}
                    {a.title && <h4>{a.title}</h4>}
                    {a.text && <p style={{whiteSpace: 'pre-wrap'}}>{a.text}</p>}
                    {a.fields?.map((f, j) => <p key={j}>{`${f.title ?? ''}: ${f.value ?? ''}`}</p>)}
                    {a.actions?.map((act) => (
                        <button key={act.id} className='btn btn-tertiary' onClick={() => void v4('POST', `/posts/${post.id}/actions/${act.id}`, {})}>
                            {act.name}
                        </button>
                    ))}
                </div>
            ))}
        </div>
    );
}

function PostView({post, registered}: {post: Post; registered: Registered}) {
    const user = useSelector((s: HarnessState) => s.entities.users.profiles[post.user_id]);
    const type = (post.props?.type as string | undefined) ?? post.type;
    const custom = type.startsWith('custom_') ? registered.postTypes[type] : undefined;
    return (
        <article className='post' data-post-id={post.id} aria-label={`Post by ${user?.username ?? 'someone'}`}>
            <div className='post__header'>
                <strong>{user?.username ?? post.user_id}</strong>
                {post.root_id && <span className='post__reply'>{' replied in a thread'}</span>}
            </div>
            <div className='post__body'>
                {custom ? (
                    <Boundary what={`post type ${type}`}>{element(custom.component, {post, compactDisplay: false, isRHS: false, theme: {}})}</Boundary>
                ) : (
                    <div className='post-message' style={{whiteSpace: 'pre-wrap'}}>{post.message}</div>
                )}
                <Attachments post={post} />
            </div>
        </article>
    );
}

export function App({registry}: {registry: HostRegistry}) {
    const registered = React.useSyncExternalStore(registry.subscribe, registry.snapshot);
    const posts = useSelector((s: HarnessState) => s.entities.posts.posts);
    const channelId = useSelector((s: HarnessState) => s.entities.channels.currentChannelId);
    const channel = useSelector((s: HarnessState) => s.entities.channels.channels[channelId]);
    const rhsId = useSelector((s: HarnessState) => s.views.rhs.pluginId);
    const rhs = rhsId ? registered.rhs[rhsId] : undefined;
    const shown = Object.values(posts)
        .filter((p) => p.channel_id === channelId && p.delete_at === 0)
        .sort((a, b) => a.create_at - b.create_at);
    return (
        <div className='harness'>
            <nav className='app-bar' aria-label='App Bar'>
                {registered.appBar.map((b) => (
                    <button key={b.id} className='app-bar__icon' aria-label={b.tooltipText} title={b.tooltipText} onClick={() => b.action(channel, {})}>
                        <img src={b.iconUrl} alt='' width={24} height={24} />
                    </button>
                ))}
            </nav>
            <main className='center'>
                <header className='channel-header'>
                    <h1>{channel?.display_name ?? ''}</h1>
                    <div className='channel-header__icons'>
                        {registered.headerButtons.map((b) => (
                            <button key={b.id} className='channel-header__icon' aria-label={b.tooltipText} title={b.tooltipText} onClick={() => b.action(channel, {})}>
                                {element(b.icon)}
                            </button>
                        ))}
                    </div>
                </header>
                <section className='post-list' aria-label='Channel posts'>
                    {shown.map((p) => (
                        <PostView key={p.id} post={p} registered={registered} />
                    ))}
                </section>
            </main>
            {rhs && (
                <aside className='sidebar--right' aria-label={rhs.title}>
                    <h2 className='sidebar--right__title'>{rhs.title}</h2>
                    <Boundary what='right-hand sidebar'>{element(rhs.component)}</Boundary>
                </aside>
            )}
            {registered.roots.map((r) => (
                <Boundary key={r.id} what='root component'>
                    {element(r.component)}
                </Boundary>
            ))}
        </div>
    );
}
