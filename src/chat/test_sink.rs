//! Test doubles for the bot's posts: a [`FakeSink`] server that can be down for a while or
//! lose the answers of creates, and a [`Rig`] with a store, an outbox delivering to the fake,
//! and a session `s1` whose thread root exists.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::outbox::{self, Outbox, PostSink, KEY_PROP};
use crate::mattermost::api::ApiError;
use crate::mattermost::model::{Any, Post};
use crate::store::{OwedKind, OwedPost, SessionRecord, Store};

/// `(channel, filename, bytes, file id)`.
pub type Upload = (String, String, Vec<u8>, String);

#[derive(Default)]
pub struct FakeSink {
    /// Every create and update the server applied, with when.
    pub log: Mutex<Vec<(&'static str, Post, Instant)>>,
    next: AtomicU32,
    /// Creates, updates and lookups fail until then (the server is down).
    pub down_until: Mutex<Option<Instant>>,
    /// This many creates are applied but answered with an error (the answer is lost).
    pub lose_answers: AtomicU32,
    /// This many creates fail.
    pub fail_creates: AtomicU32,
    /// Creates, updates and lookups asked for since the root was made, answered or not.
    pub calls: AtomicU32,
    pub uploads: Mutex<Vec<Upload>>,
    pub fail_uploads: AtomicU32,
    /// Users who have left the channel.
    pub left: Mutex<Vec<String>>,
    /// Membership lookups never answer (a server that hangs).
    pub hang_membership: std::sync::atomic::AtomicBool,
}

fn busy() -> ApiError {
    ApiError::Error("server busy".into())
}

fn take(n: &AtomicU32) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
        .is_ok()
}

impl FakeSink {
    fn down(&self) -> bool {
        self.down_until
            .lock()
            .unwrap()
            .is_some_and(|until| Instant::now() < until)
    }

    /// The server is down for `for_` from now.
    pub fn go_down(&self, for_: std::time::Duration) {
        *self.down_until.lock().unwrap() = Some(Instant::now() + for_);
    }

    /// The last text of each post, in the order the posts were created.
    pub fn posts(&self) -> Vec<(String, Post)> {
        let log = self.log.lock().unwrap();
        let mut order: Vec<(String, Post)> = Vec::new();
        for (_, p, _) in log.iter() {
            match order.iter_mut().find(|(id, _)| *id == p.id) {
                Some(slot) => slot.1 = p.clone(),
                None => order.push((p.id.clone(), p.clone())),
            }
        }
        order
    }

    pub fn creates(&self) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, ..)| *k == "create")
            .count()
    }
}

impl PostSink for FakeSink {
    async fn create_post(&self, mut post: Post) -> Result<Post, ApiError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down() || take(&self.fail_creates) {
            return Err(busy());
        }
        post.id = format!("p{}", self.next.fetch_add(1, Ordering::SeqCst));
        self.log
            .lock()
            .unwrap()
            .push(("create", post.clone(), Instant::now()));
        if take(&self.lose_answers) {
            return Err(busy());
        }
        Ok(post)
    }

    async fn update_post(&self, post: Post) -> Result<Post, ApiError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down() {
            return Err(busy());
        }
        self.log
            .lock()
            .unwrap()
            .push(("update", post.clone(), Instant::now()));
        Ok(post)
    }

    async fn upload_file(
        &self,
        data: Vec<u8>,
        channel_id: &str,
        filename: &str,
    ) -> Result<String, ApiError> {
        if take(&self.fail_uploads) {
            return Err(ApiError::Error("storage full".into()));
        }
        let mut uploads = self.uploads.lock().unwrap();
        let id = format!("f{}", uploads.len());
        uploads.push((channel_id.into(), filename.into(), data, id.clone()));
        Ok(id)
    }

    async fn find_post(
        &self,
        channel_id: &str,
        root_id: &str,
        _since_ms: i64,
        key: &str,
    ) -> Result<Option<String>, ApiError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down() {
            return Err(busy());
        }
        Ok(self
            .posts()
            .into_iter()
            .find(|(_, p)| {
                p.channel_id == channel_id
                    && p.root_id == root_id
                    && p.props
                        .as_ref()
                        .and_then(|m| m.get(KEY_PROP))
                        .and_then(Any::as_str)
                        == Some(key)
            })
            .map(|(id, _)| id))
    }

    async fn direct_channel(&self, user_id: &str) -> Result<String, ApiError> {
        if self.down() {
            return Err(busy());
        }
        Ok(format!("dm:{user_id}"))
    }

    async fn is_channel_member(&self, _channel_id: &str, user_id: &str) -> Result<bool, ApiError> {
        if self.hang_membership.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.down() {
            return Err(busy());
        }
        Ok(!self.left.lock().unwrap().iter().any(|u| u == user_id))
    }

    async fn site_url(&self) -> Option<String> {
        Some("https://mm.test".into())
    }
}

/// A temp directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct Rig {
    pub sink: Arc<FakeSink>,
    pub outbox: Arc<Outbox<FakeSink>>,
    pub store: Store,
    pub worker: JoinHandle<()>,
    /// The id of the thread root of session `s1`.
    pub root_id: String,
    pub dir: TempDir,
}

/// A store in a temp dir with session `s1` (channel `c1`), an outbox delivering to a fake
/// server, and the session's thread root created.
pub async fn rig() -> Rig {
    let dir =
        TempDir(std::env::temp_dir().join(format!("cc-chat-{}", uuid::Uuid::new_v4().simple())));
    std::fs::create_dir_all(&dir.0).unwrap();
    // Inline: the tests run on the paused clock, which must not jump while the store works.
    let store = Store::open_inline(&dir.0.join("db")).unwrap();
    open_rig(store, Arc::new(FakeSink::default()), dir).await
}

/// [`rig`] on an existing store and server (a restart).
pub async fn open_rig(store: Store, sink: Arc<FakeSink>, dir: TempDir) -> Rig {
    if store.session("s1").await.unwrap().is_none() {
        store
            .insert_session(SessionRecord {
                id: "s1".into(),
                channel_id: "c1".into(),
                owner_id: "alice".into(),
                project_path: "/p".into(),
                cli_session_id: None,
                model: None,
                permission_mode: None,
                status: "idle".into(),
                created_at: 1,
                updated_at: 1,
            })
            .await
            .unwrap();
    }
    let outbox = Outbox::new(store.clone(), sink.clone());
    let worker = tokio::spawn(outbox.clone().run());
    let key = outbox::root_key("s1");
    let root = Post {
        user_id: "bot".into(),
        channel_id: "c1".into(),
        message: "session started".into(),
        ..Default::default()
    };
    if store.outbox_post_id(&key).await.unwrap().is_none() {
        outbox
            .put(OwedPost {
                closed: true,
                ..outbox::owed(key.clone(), OwedKind::Root, "s1", &root)
            })
            .await
            .unwrap();
    }
    let root_id = outbox.created(&key).await;
    sink.calls.store(0, Ordering::SeqCst);
    Rig {
        sink,
        outbox,
        store,
        worker,
        root_id,
        dir,
    }
}
