//! `/claude …` and thread replies: parse, pass the gate, run the use case, and word its result
//! as the ephemeral answer.

use std::sync::Arc;

use super::error::ServiceError;
use super::routing::{self, Route, CHANNEL_UNCHECKED, NO_SESSION_HERE};
use super::sessions::{HistoryPage, SessionView, StartRequest, CONVERSATION_KINDS};
use super::{state_word, Asker, ChatService, SessionInfo};
use crate::chat::attachments::{self, Limits};
use crate::chat::authz::Action;
use crate::chat::command::{self, ChatCommand, Cleanup};
use crate::chat::neutralise;
use crate::chat::stream::{excerpt, ordinal};
use crate::config::Config;
use crate::mattermost::model::{CommandArgs, CommandResponse, Post};
use crate::sessions::SessionHandle;
use crate::store::HistoryQuery;

/// Every answer to a command leaves through here: it echoes paths, arguments and errors, so it
/// passes the neutraliser like a post.
pub(super) fn ephemeral(text: impl Into<String>) -> CommandResponse {
    CommandResponse {
        response_type: "ephemeral".into(),
        text: neutralise::text(&text.into()).into_owned(),
        ..Default::default()
    }
}

/// The answer to a successful `/claude start`, for the user who typed it (the channel sees the
/// thread's root post). The server turns it into one ephemeral post (and repeats it in the
/// HTTP answer of `commands/execute`, which the webapp does not show). The thread's link goes
/// through `/_redirect/pl/`, which finds the post's team. In a direct channel with the bot
/// (`direct`) every message is a prompt, which the answer says.
fn started_answer(where_: &str, site_url: &str, root_id: Option<&str>, direct: bool) -> String {
    let site = site_url.trim_end_matches('/');
    let talk = if direct {
        "every message you post here is a prompt; Claude answers in the thread"
    } else {
        "reply there to talk to Claude"
    };
    match root_id {
        None if direct => format!(
            "Claude Code session started in {where_}. Every message you post here is a prompt. The server does not take posts right now: the session's thread, where Claude answers, appears as soon as it does."
        ),
        None => format!(
            "Claude Code session started in {where_}. The server does not take posts right now: the session's thread appears as soon as it does."
        ),
        Some(_) if site.is_empty() && direct => format!(
            "Session started in {where_}. Every message you post here is a prompt; Claude answers in the session's thread."
        ),
        Some(_) if site.is_empty() => {
            format!("Session started in {where_}. Reply in its thread to talk to Claude.")
        }
        Some(root_id) => {
            format!("Session started in {where_}. Its thread: {site}/_redirect/pl/{root_id} ({talk}).")
        }
    }
}

fn status_text(view: &SessionView) -> String {
    let mut text = format!(
        "Claude Code session in `{}`: **{}**",
        view.project_path,
        state_word(view.state)
    );
    if view.queued_prompts > 0 {
        text.push_str(&format!(" · {} queued prompt(s)", view.queued_prompts));
    }
    if view.pending_approvals > 0 {
        text.push_str(&format!(
            " · {} approval(s) pending",
            view.pending_approvals
        ));
    }
    if let Some(w) = &view.worktree {
        text.push_str(&format!(
            "\nGit worktree of `{}` on branch `{}`{}",
            w.repository,
            w.branch,
            if w.removed { " (removed)" } else { "" }
        ));
    }
    for (i, prompt) in view.queued.iter().enumerate() {
        text.push_str(&format!(
            "\n- Queued ({}): {}",
            ordinal(i + 1),
            excerpt(prompt)
        ));
    }
    text
}

/// The last exchanges, one line each, cut at 300 characters.
fn history_text(page: &HistoryPage) -> String {
    if page.messages.is_empty() {
        return "No prompts in this session yet.".into();
    }
    let lines: Vec<String> = page
        .messages
        .iter()
        .map(|m| {
            let who = if m.kind == "prompt" {
                "**You**"
            } else {
                "**Claude**"
            };
            let mut t: String = m.text.chars().take(300).collect();
            if m.text.chars().count() > 300 {
                t.push('…');
            }
            format!("{who}: {}", t.replace('\n', " "))
        })
        .collect();
    lines.join("\n")
}

impl ChatService {
    /// `/claude …`: the gate, then the command.
    pub async fn execute(self: &Arc<Self>, config: &Config, args: &CommandArgs) -> CommandResponse {
        // Usage errors are static text about the command itself: they touch no channel or
        // session, so they need neither a role nor a token.
        let cmd = match command::parse(&args.command) {
            Ok(c) => c,
            Err(e) => return ephemeral(e.to_string()),
        };
        let session = self.session_of_channel(&args.channel_id);
        let asker = Asker {
            user_id: &args.user_id,
            channel_id: &args.channel_id,
            team_id: &args.team_id,
            session: session.as_ref().map(|(_, info)| info),
        };
        if let Err(e) = self
            .gate(config, Action::of_command(&cmd), &asker, Some("commands"))
            .await
        {
            return ephemeral(e.to_string());
        }
        // What the owner or an approver may do acts on the session the check was made for
        // (never on one started in the channel since).
        let checked = session.as_ref().map(|(h, i)| (h, i));
        match self.command(config, args, cmd, checked).await {
            Ok(text) => ephemeral(text),
            Err(e) => ephemeral(e.to_string()),
        }
    }

    async fn command(
        self: &Arc<Self>,
        config: &Config,
        args: &CommandArgs,
        cmd: ChatCommand,
        checked: Option<(&SessionHandle, &SessionInfo)>,
    ) -> Result<String, ServiceError> {
        let session = || checked.ok_or(ServiceError::NoSession);
        let user = args.user_id.as_str();
        Ok(match cmd {
            ChatCommand::Help => command::help_text(),
            ChatCommand::Start {
                path,
                model,
                mode,
                worktree,
            } => {
                let request = StartRequest {
                    channel_id: &args.channel_id,
                    user_id: user,
                    path: &path,
                    model,
                    mode,
                    worktree,
                };
                let started = self.start(config, request).await?;
                started_answer(
                    &started.shown_path,
                    &args.site_url,
                    started.root_id.as_deref(),
                    // Unknown (logged): the answer for an ordinary channel.
                    self.direct_with_bot(&args.channel_id)
                        .await
                        .unwrap_or(false),
                )
            }
            ChatCommand::Status => {
                let (h, info) = session()?;
                status_text(&self.view(h, info).await?)
            }
            ChatCommand::Ask { prompt } => {
                let max = config.max_concurrent_sessions as usize;
                self.prompt(session()?, user, prompt.into(), max).await?;
                String::new()
            }
            ChatCommand::Interrupt => {
                self.interrupt(session()?.0, user).await?;
                "Interrupted: the current turn was stopped.".into()
            }
            ChatCommand::Stop(Cleanup::Keep) => {
                let (h, info) = session()?;
                self.stop(h, user).await?;
                let mut text = String::from(
                    "Claude Code session stopped. A new prompt resumes the conversation.",
                );
                if let Some(w) = info.worktree.as_ref().filter(|w| w.removed_at.is_none()) {
                    text.push_str(&format!(
                        " Its worktree `{}` stays; `/claude stop --clean` removes it.",
                        w.path
                    ));
                }
                text
            }
            ChatCommand::Stop(cleanup) => {
                let force = cleanup == Cleanup::Discard;
                let w = self.stop_and_clean(session()?.0, user, force).await?;
                format!(
                    "Claude Code session stopped and its worktree `{}` removed. Its branch `{}` stays in `{}`.",
                    w.path, w.branch, w.repository
                )
            }
            ChatCommand::Mode(m) => {
                self.set_mode(session()?.0, m, user).await?;
                format!("Permission mode set to `{}`", m.as_str())
            }
            ChatCommand::Model(m) => {
                self.set_model(session()?.0, &m, user).await?;
                format!("Model set to `{m}`")
            }
            ChatCommand::History => {
                let query = HistoryQuery {
                    before: None,
                    limit: 20,
                    text: None,
                    kinds: CONVERSATION_KINDS,
                };
                history_text(&self.history(session()?.0.id(), query).await?)
            }
            ChatCommand::ContextThread { permalink } => {
                let link = permalink.unwrap_or_else(|| args.root_id.clone());
                let limit = config.max_context_bytes;
                self.context_thread(session()?.0, user, &link, limit)
                    .await?
            }
            ChatCommand::ContextFile { path } => {
                self.context_file(session()?, &path, config.max_context_bytes)
                    .await?
            }
            ChatCommand::Files { dir } => self.files_text(session()?.1, dir.as_deref()).await?,
            ChatCommand::File { path } => self.file_text(session()?.1, &path).await?,
        })
    }

    /// MessageHasBeenPosted: a person's reply in a session's thread, or any message of theirs
    /// in a direct channel with the bot that has a session, is a prompt (`routing.rs`).
    pub async fn on_post(&self, post: &Post, config: &Config) {
        if !routing::by_a_person(post, &self.bot_id) {
            return;
        }
        // Held until the prompt is queued (or refused): the channel's next post waits.
        let _in_order = self.post_order.enter(&post.channel_id).await;
        let (session_id, info) = match self.route(post).await {
            Route::Prompt(id, info) => (id, *info),
            Route::Hint => return self.answer_post(post, NO_SESSION_HERE.into()).await,
            Route::Unchecked => return self.answer_post(post, CHANNEL_UNCHECKED.into()).await,
            Route::Ignore => return,
        };
        let Some(handle) = self.engine.get(&session_id) else {
            return;
        };
        // A post with files and no words is a prompt too (a screenshot says it all).
        if post.message.trim().is_empty() && post.file_ids.is_empty() {
            return;
        }
        let asker = Asker {
            user_id: &post.user_id,
            channel_id: &post.channel_id,
            team_id: "",
            session: Some(&info),
        };
        let max = config.max_concurrent_sessions as usize;
        let answer = match self
            .gate(config, Action::Prompt, &asker, Some("prompts"))
            .await
        {
            Ok(()) => {
                let attached = attachments::collect(&self.api, post, Limits::of(config)).await;
                match attached.into_prompt(&post.message) {
                    (Some(content), notice) => self
                        .prompt((&handle, &info), &post.user_id, content, max)
                        .await
                        .map(|_| notice),
                    (None, notice) => Ok(notice),
                }
            }
            Err(e) => Err(e),
        };
        match answer {
            Ok(Some(notice)) => self.answer_post(post, notice).await,
            Ok(None) => {}
            Err(e) => self.answer_post(post, e.to_string()).await,
        }
    }

    /// An ephemeral answer from the bot to the author of `post`, where they posted it.
    pub(crate) async fn answer_post(&self, post: &Post, message: String) {
        let answer = Post {
            user_id: self.bot_id.clone(),
            channel_id: post.channel_id.clone(),
            root_id: post.root_id.clone(),
            message,
            ..Default::default()
        };
        let _ = self.poster.send_ephemeral(&post.user_id, answer).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::SessionState;

    #[test]
    fn status_lists_the_queued_prompts_in_order() {
        let view = SessionView {
            id: "s1".into(),
            channel_id: "c1".into(),
            owner_id: "u1".into(),
            project_path: "/p".into(),
            model: None,
            permission_mode: None,
            state: SessionState::Running,
            created_at: 0,
            updated_at: 0,
            root_post_id: None,
            worktree: None,
            queued_prompts: 2,
            queued: vec!["add tests\nfor the parser".into(), "then run them".into()],
            pending_approvals: 0,
            last_seq: 0,
        };
        let text = status_text(&view);
        assert!(
            text.ends_with(
                "· 2 queued prompt(s)\n- Queued (1st): add tests…\n- Queued (2nd): then run them"
            ),
            "{text}"
        );
    }
}
