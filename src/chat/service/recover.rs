//! Opening and recovery: the data directory, the signing secret, the sessions and threads of
//! the previous run, the cards it left open, and the sessions a saved AllowedProjectRoots no
//! longer allows.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::approvals::ApiDecision;
use super::authorize::under_allowed_root;
use super::{outside_roots_text, ChatService, OpenError, SessionInfo};
use super::{DATA_SUBDIRECTORY, DEFAULT_DATA_DIRECTORY, SIGNING_SECRET_KEY};
use crate::chat::card::{self, ActionSigner};
use crate::chat::outbox;
use crate::chat::post_props;
use crate::chat::stream;
use crate::config::Config;
use crate::mattermost::api::Api;
use crate::mattermost::model::Post;
use crate::mattermost::server_config;
use crate::sessions::SessionState;
use crate::store::{ApprovalRecord, OwedKind, OwedPost, SessionRecord, StoreError, WorktreeRecord};
use crate::worktree;

/// DataDirectory when the setting is empty: `<FileSettings.Directory>/claude-code` if the
/// server tells its file store directory, else [`DEFAULT_DATA_DIRECTORY`].
pub(super) async fn default_data_directory(api: &Api) -> PathBuf {
    match api.get_config_value().await {
        Ok(config) => match server_config::file_settings_directory(&config) {
            Some(dir) => Path::new(&dir).join(DATA_SUBDIRECTORY),
            None => PathBuf::from(DEFAULT_DATA_DIRECTORY),
        },
        Err(e) => {
            tracing::warn!(
                "GetConfig failed, DataDirectory defaults to {DEFAULT_DATA_DIRECTORY}: {e}"
            );
            PathBuf::from(DEFAULT_DATA_DIRECTORY)
        }
    }
}

impl ChatService {
    /// Stops every session whose project is not under an allowed root of `config`, and says
    /// why in its thread. Sessions that have no process are left as they are: commands refuse
    /// to use them (see [`project_refusal`]).
    pub(super) async fn stop_outside_roots(&self, config: &Config) {
        let outside: Vec<(String, SessionInfo)> = self
            .state
            .lock()
            .map(|st| {
                st.sessions
                    .iter()
                    .filter(|(_, info)| !under_allowed_root(config, Path::new(info.rooted_path())))
                    .map(|(id, info)| (id.clone(), info.clone()))
                    .collect()
            })
            .unwrap_or_default();
        for (id, info) in outside {
            let Some(handle) = self.engine.get(&id) else {
                continue;
            };
            if !handle.status().await.is_ok_and(|s| s.state.has_process()) {
                continue;
            }
            if let Err(e) = handle.stop("plugin-settings").await {
                tracing::warn!(
                    session = handle.id(),
                    "stopping a session outside the allowed roots failed: {e}"
                );
                continue;
            }
            tracing::info!(
                session = handle.id(),
                "stopped: its project is no longer under an allowed project root"
            );
            let text = format!("{} It was stopped.", outside_roots_text(info.rooted_path()));
            if let Err(e) = self.reply_in_thread(handle.id(), &info, text).await {
                tracing::warn!("telling a channel its session stopped failed: {e}");
            }
        }
    }

    pub(super) async fn signing_secret(api: &Api) -> Result<String, OpenError> {
        for _ in 0..3 {
            if let Some(v) = api
                .kv_get(SIGNING_SECRET_KEY)
                .await?
                .filter(|v| !v.is_empty())
            {
                return String::from_utf8(v).map_err(|_| OpenError::SecretNotText);
            }
            let fresh = ActionSigner::generate_secret()?;
            // Another node may win the race; then its secret is read back.
            if api
                .kv_compare_and_set(SIGNING_SECRET_KEY, None, Some(fresh.clone().into_bytes()))
                .await?
            {
                return Ok(fresh);
            }
        }
        Err(OpenError::SecretRace)
    }

    pub(super) async fn recover(self: &Arc<Self>) -> Result<(), OpenError> {
        let store = self.engine.store();
        let records = store.sessions().await?;
        let needing: HashSet<String> = match self.clustered() {
            true => self.sessions_needing_a_node(&records).await?,
            // A single server runs them all (its leases cost no renewal).
            false => records.iter().map(|r| r.id.clone()).collect(),
        };
        // In a cluster, the sessions another node runs are left to it.
        let claimed = self.claim_stored(needing.iter().cloned().collect()).await?;
        self.release_own_leftovers(&records, &claimed.iter().cloned().collect())
            .await;
        let mut roots: HashMap<String, String> = store.root_posts().await?.into_iter().collect();
        let settled = self.settle(claimed, &records, &roots).await;
        let mine: HashSet<String> = settled.run.into_iter().collect();
        let ids: Vec<String> = mine.iter().cloned().collect();
        let recovered = self.engine.recover_sessions(&ids).await?;
        let of_mine = |s: &str| mine.contains(s);
        roots.retain(|s, _| of_mine(s));
        // Threads made before the outbox are known to it, so their posts can name their root.
        for (session_id, root_id) in &roots {
            store
                .outbox_adopt(
                    &outbox::root_key(session_id),
                    OwedKind::Root,
                    session_id,
                    root_id,
                )
                .await?;
        }
        self.close_left_over(&of_mine).await;
        if let Err(e) = store.outbox_prune().await {
            tracing::warn!("forgetting old delivered posts failed: {e}");
        }
        let worker = tokio::spawn(self.outbox.clone().run());
        if let Ok(mut w) = self.outbox_worker.lock() {
            *w = Some(worker);
        }
        let mut worktrees: HashMap<String, WorktreeRecord> = store
            .worktrees()
            .await?
            .into_iter()
            .map(|w| (w.session_id.clone(), w))
            .collect();
        // Worktrees a start made but did not live to record. In a cluster another node may be
        // making one now: they are left alone there.
        if !self.ownership.node.clustered {
            let recorded = worktrees
                .values()
                .filter_map(|w| Path::new(&w.path).file_name().map(|n| n.to_os_string()))
                .collect();
            let base = self.data_dir.join(super::worktrees::WORKTREES_DIR);
            for (dir, e) in worktree::remove_unrecorded(&self.repo_locks, &base, &recorded).await {
                tracing::warn!(path = %dir.display(), "removing a worktree no session recorded: {e}");
            }
        }
        for record in store.sessions().await? {
            let Some(root_id) = roots.get(&record.id).cloned() else {
                continue;
            };
            let info = SessionInfo {
                channel_id: record.channel_id.clone(),
                owner_id: record.owner_id.clone(),
                project_path: record.project_path.clone(),
                root_id,
                worktree: worktrees.remove(&record.id),
                cleaning: false,
            };
            if let Some(handle) = self.engine.get(&record.id) {
                let current = !settled.older.contains(&record.id);
                self.track(&handle, info, current);
            }
        }
        if !recovered.withdrawn.is_empty() {
            tracing::info!(
                "{} approval request(s) were left pending by the previous run; their cards are closed",
                recovered.withdrawn.len()
            );
        }
        for (id, entry) in settled.back {
            if let Some((_, info)) = self.session_by_id(&id) {
                self.announce_back(&id, &info, &entry).await;
            }
        }
        // In the background: activation does not wait on posts the server may be slow to serve.
        let svc = Arc::clone(self);
        tokio::spawn(async move { svc.close_open_cards(&|s: &str| mine.contains(s)).await });
        Ok(())
    }

    /// In a cluster, the stored sessions a node takes at opening: those that were live when
    /// their node's run ended (a node that stops cleanly stores its sessions stopped), and those
    /// that still owe Mattermost a post or a card's outcome. The others rest, and the first call
    /// for one takes it (`route_session`): no node renews the lease of every session the cluster
    /// ever ran.
    async fn sessions_needing_a_node(
        &self,
        records: &[SessionRecord],
    ) -> Result<HashSet<String>, StoreError> {
        let store = self.engine.store();
        let mut owing: HashSet<String> = store
            .outbox_pending()
            .await?
            .into_iter()
            .map(|p| p.session_id)
            .collect();
        owing.extend(
            store
                .open_cards_of_decided_approvals()
                .await?
                .into_iter()
                .map(|(_, a)| a.session_id),
        );
        Ok(records
            .iter()
            .filter(|r| {
                owing.contains(&r.id)
                    || SessionState::parse(&r.status).is_some_and(SessionState::has_process)
            })
            .map(|r| r.id.clone())
            .collect())
    }

    /// The turn posts and queue lines of sessions `of_session` left open by the run that ended
    /// (a restart, or the node a session was taken over from) are closed.
    pub(super) async fn close_left_over(&self, of_session: &(dyn Fn(&str) -> bool + Sync)) {
        match stream::close_cut_turns(&self.outbox, &self.bot_id, of_session).await {
            Ok(0) => {}
            Ok(cut) => tracing::info!("{cut} turn(s) were cut by the end of the previous run; their posts are closed with what the transcript holds"),
            Err(e) => tracing::warn!("closing the turns the previous run cut failed: {e}"),
        }
        match stream::close_lost_queue_lines(&self.outbox, of_session).await {
            Ok(0) => {}
            Ok(lost) => tracing::info!("{lost} queued prompt(s) were lost with the previous run; their thread lines say so"),
            Err(e) => tracing::warn!("closing the queue lines the previous run left failed: {e}"),
        }
    }

    /// Cards still showing buttons for requests that are over (the previous run ended before it
    /// closed them, or the requests were left pending and withdrawn at recovery) get their
    /// outcome in place of the buttons. A card that cannot be updated now stays recorded as
    /// open, so the next activation tries again.
    pub(super) async fn close_open_cards(&self, of_session: &(dyn Fn(&str) -> bool + Sync)) {
        let open = match self.engine.store().open_cards_of_decided_approvals().await {
            Ok(open) => open
                .into_iter()
                .filter(|(_, a)| of_session(&a.session_id))
                .collect::<Vec<_>>(),
            Err(e) => {
                tracing::warn!("listing the cards left open failed: {e}");
                return;
            }
        };
        for (post_id, approval) in open {
            // The card as last owed; one posted before the outbox is read from the server.
            let owed = match self
                .engine
                .store()
                .outbox_open_card(&approval.request_id)
                .await
            {
                Ok(owed) => owed,
                Err(e) => {
                    tracing::warn!(request = %approval.request_id, "reading a card left open failed: {e}");
                    continue;
                }
            };
            let post = match (owed, post_id) {
                (Some((_, json)), _) => outbox::post_of_json(&json),
                (None, Some(post_id)) => match self.adopt_card(&approval, &post_id).await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(request = %approval.request_id, "reading a card left open failed: {e}");
                        continue;
                    }
                },
                (None, None) => continue,
            };
            let Some((_, _, att)) = card::pending_card(&post) else {
                // Already without buttons (the server applied a click's update).
                let _ = self
                    .engine
                    .store()
                    .close_approval_card(&approval.request_id)
                    .await;
                continue;
            };
            let outcome = self.stored_outcome(&approval).await;
            let closed = post_props::typed(
                post,
                post_props::card_props(
                    &approval.session_id,
                    &approval.request_id,
                    card::decided_attachment(&att, &outcome),
                ),
            );
            let owed = OwedPost {
                root_key: (closed.id.is_empty()).then(|| outbox::root_key(&approval.session_id)),
                request_id: Some(approval.request_id.clone()),
                closed: true,
                ..outbox::owed(
                    outbox::card_key(&approval.request_id),
                    OwedKind::Card,
                    &approval.session_id,
                    &closed,
                )
            };
            self.put_closed_card(&approval.request_id, owed).await;
        }
    }

    /// A card posted before the outbox, read from the server and made known to the outbox.
    pub(super) async fn adopt_card(
        &self,
        approval: &ApprovalRecord,
        post_id: &str,
    ) -> Result<Post, crate::mattermost::api::ApiError> {
        let post = self.api.get_post(post_id).await?;
        let key = outbox::card_key(&approval.request_id);
        if let Err(e) = self
            .engine
            .store()
            .outbox_adopt(&key, OwedKind::Card, &approval.session_id, post_id)
            .await
        {
            tracing::warn!(request = %approval.request_id, "recording a card in the outbox failed: {e}");
        }
        Ok(post)
    }

    /// How a card shows a stored decision.
    pub(super) async fn stored_outcome(&self, approval: &ApprovalRecord) -> card::Decision {
        let by = match approval.decided_by.as_deref() {
            Some(id) => self
                .api
                .get_user(id)
                .await
                .map(|u| u.username)
                .unwrap_or_else(|_| id.to_owned()),
            None => String::new(),
        };
        stored_decision(approval, &by)
    }
}

/// How a card shows a stored decision by `by` (the decider's username, empty when nobody
/// decided): the same words as the card closed at once (`ApiDecision::outcome`, one function
/// for both), so a question says who answered what and a plan which way it went.
fn stored_decision(approval: &ApprovalRecord, by: &str) -> card::Decision {
    let at = approval.decided_at.unwrap_or_default() / 1000;
    match ApiDecision::stored(approval, by) {
        Some(answer) if !by.is_empty() => answer.outcome(by, at, &approval.input).1,
        _ if approval.decision.as_deref() == Some("expired") => card::Decision::Expired,
        _ => card::Decision::Cancelled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::question::PlanOutcome;
    use crate::store::Allowed;
    use serde_json::json;

    fn record(tool: &str, input: serde_json::Value, decision: &str) -> ApprovalRecord {
        ApprovalRecord {
            request_id: "r1".into(),
            session_id: "s1".into(),
            tool: tool.into(),
            input,
            decided_by: Some("u1".into()),
            decision: Some(decision.into()),
            reason: None,
            requested_at: 1,
            decided_at: Some(1_790_000_000_000),
            allowed: Allowed::default(),
        }
    }

    /// A card closed after a restart reads as the card closed at once by the live answer.
    #[test]
    fn a_card_closed_after_a_restart_says_what_a_click_said() {
        let at = 1_790_000_000;
        let live = |answer: ApiDecision, input: &serde_json::Value| {
            card::decision_line(&answer.outcome("alice", at, input).1)
        };
        let asked = json!({"questions": [
            {"question": "Color?", "header": "", "options": [{"label": "Red"}]},
            {"question": "Size?", "header": "", "options": [{"label": "S"}]}]});
        let answers = vec![
            ("Color?".into(), "Red".into()),
            ("Size?".into(), "XL".into()),
        ];
        let sent = crate::chat::question::answered_input(&asked, &answers);
        let answered = ApprovalRecord {
            allowed: Allowed {
                updated_input: Some(sent),
                mode: None,
            },
            ..record("AskUserQuestion", asked.clone(), "allow_with_input")
        };
        let plan = json!({"plan": "1. Do it"});
        let accepted = ApprovalRecord {
            allowed: Allowed {
                updated_input: None,
                mode: Some("acceptEdits".into()),
            },
            ..record("ExitPlanMode", plan.clone(), "allow_exit_plan")
        };
        let started = ApprovalRecord {
            allowed: Allowed {
                updated_input: None,
                mode: Some("default".into()),
            },
            ..record("ExitPlanMode", plan.clone(), "allow_exit_plan")
        };
        let kept = ApprovalRecord {
            reason: Some("Smaller steps".into()),
            ..record("ExitPlanMode", plan.clone(), "deny")
        };
        let denied = ApprovalRecord {
            reason: Some("Denied by @alice: not now".into()),
            ..record("Bash", json!({"command": "ls"}), "deny")
        };
        for (stored, answer, input) in [
            (answered, ApiDecision::Answer(answers.clone()), &asked),
            (accepted, ApiDecision::Plan(PlanOutcome::AcceptEdits), &plan),
            (started, ApiDecision::Plan(PlanOutcome::Start), &plan),
            (
                kept,
                ApiDecision::Plan(PlanOutcome::KeepPlanning {
                    feedback: "Smaller steps".into(),
                }),
                &plan,
            ),
            (
                denied,
                ApiDecision::Deny {
                    reason: Some("not now".into()),
                },
                &json!({"command": "ls"}),
            ),
        ] {
            let got = card::decision_line(&stored_decision(&stored, "alice"));
            assert_eq!(got, live(answer, input), "{:?}", stored.decision);
        }
    }

    /// An answered question stored by the previous release (store version 6 kept no answers)
    /// still closes as approved by its decider, never as withdrawn.
    #[test]
    fn a_question_answered_before_the_upgrade_closes_as_approved() {
        let asked = json!({"questions": [
            {"question": "Color?", "header": "", "options": [{"label": "Red"}]}]});
        let old = record("AskUserQuestion", asked, "allow_with_input");
        let got = card::decision_line(&stored_decision(&old, "alice"));
        assert!(got.contains("Approved") && got.contains("alice"), "{got}");
    }
}
