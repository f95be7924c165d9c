//! The chat layer driven through the hooks, in process: a fake plugin API that records posts
//! (and answers membership, users, permissions and KV from its state), and a harness that
//! activates the plugin against it and plays the server's part (commands, thread replies,
//! clicks, dialogs). Sessions run the CLI the configuration names: the real one against the
//! scripted fake Messages API by default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use claude_code::app::App;
use claude_code::mattermost::http::Headers;
use claude_code::mattermost::model::*;
use claude_code::mattermost::rpc_types::*;
use claude_code::rpc::netrpc::{Client, Empty, Server};
use fake_anthropic::FakeServer;
use serde_json::{json, Value};

use super::cli::{cli_path, fake_server, model_requests};
use super::host::{
    activate, connect_hooks, fake_writer, http_request, serve_http, single_server, Endpoint,
    FakeBroker, Recorded, StreamIds,
};

pub const BOT: &str = "bot-user-id";
pub const CHANNEL: &str = "chan-1";
pub const WAIT: Duration = Duration::from_secs(90);
pub const GET_CLI: &str = "run `make claude-cli` (or set CLAUDE_CLI).";

// --- the fake plugin API ---------------------------------------------------------------------

#[derive(Default)]
pub struct ApiState {
    pub config: Vec<u8>,
    pub kv: BTreeMap<String, Vec<u8>>,
    pub members: Vec<String>,
    /// Users with the `manage_system` permission (system admins).
    pub admins: Vec<String>,
    pub next_post: u32,
    pub posts: BTreeMap<String, Post>,
    /// ("create" | "update" | "ephemeral", post) in call order.
    pub post_log: Vec<(String, Post)>,
    pub dialogs: Vec<OpenDialogRequest>,
    /// Channels GetChannel answers as they are; any other is an open channel of team-1. The
    /// members of a direct channel are the two users its name holds (`<id>__<id>`), as on the
    /// server; `members` are those of every other channel.
    pub channels: BTreeMap<String, Channel>,
    /// Uploaded files by id (see [`Harness::upload`]).
    pub files: BTreeMap<String, (FileInfo, Vec<u8>)>,
    /// The file ids whose bytes were fetched (GetFile), in call order.
    pub fetched: Vec<String>,
    /// How long GetFile takes (a large file on slow storage).
    pub file_delay: Duration,
    /// GetChannel answers with an error (the server's database is failing).
    pub fail_get_channel: bool,
}

impl ApiState {
    fn is_member(&self, channel_id: &str, user_id: &str) -> bool {
        match self.channels.get(channel_id) {
            Some(c) if c.r#type == "D" => c.name.split("__").any(|id| id == user_id),
            _ => self.members.iter().any(|m| m == user_id),
        }
    }
}

pub type Shared = Arc<Mutex<ApiState>>;

pub fn no_error() -> Option<AppError> {
    None
}

pub fn not_found() -> Option<AppError> {
    Some(AppError {
        id: "not_found".into(),
        message: "not found".into(),
        status_code: 404,
        ..Default::default()
    })
}

pub fn fake_api(st: Shared) -> Server {
    let c = |st: &Shared| st.clone();
    let (s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15, s16) = (
        c(&st),
        c(&st),
        c(&st),
        c(&st),
        c(&st),
        c(&st),
        c(&st),
        c(&st),
        c(&st),
        c(&st),
        c(&st),
        c(&st),
        c(&st),
        c(&st),
        c(&st),
        c(&st),
    );
    single_server(Server::new())
        .method("Plugin.LoadPluginConfiguration", move |_: Empty| {
            let cfg = s1.lock().unwrap().config.clone();
            async move { Ok::<_, String>(LoadPluginConfigurationReturns { a: cfg }) }
        })
        .method("Plugin.EnsureBotUser", move |_: EnsureBotUserArgs| async {
            Ok::<_, String>(EnsureBotUserReturns {
                a: BOT.into(),
                b: Any::Nil,
            })
        })
        .method(
            "Plugin.RegisterCommand",
            move |_: RegisterCommandArgs| async { Ok::<_, String>(ErrorReturn { a: Any::Nil }) },
        )
        .method("Plugin.KVGet", move |a: StringArgs| {
            let v = s2.lock().unwrap().kv.get(&a.a).cloned().unwrap_or_default();
            async move { Ok::<_, String>(KvGetReturns { a: v, b: None }) }
        })
        .method("Plugin.KVCompareAndSet", move |a: KvCompareAndSetArgs| {
            let mut st = s3.lock().unwrap();
            let ok = st.kv.get(&a.a).cloned().unwrap_or_default() == a.b;
            if ok {
                st.kv.insert(a.a.clone(), a.c);
            }
            async move { Ok::<_, String>(BoolAppErrorReturns { a: ok, b: None }) }
        })
        .method("Plugin.GetChannelMember", move |a: TwoStringArgs| {
            let member = s4.lock().unwrap().is_member(&a.a, &a.b);
            let r = if member {
                GetChannelMemberReturns {
                    a: Some(ChannelMember {
                        channel_id: a.a,
                        user_id: a.b,
                        ..Default::default()
                    }),
                    b: no_error(),
                }
            } else {
                GetChannelMemberReturns {
                    a: None,
                    b: not_found(),
                }
            };
            async move { Ok::<_, String>(r) }
        })
        .method("Plugin.CreatePost", move |a: PostArgs| {
            let mut st = s5.lock().unwrap();
            let mut post = a.a.unwrap_or_default();
            st.next_post += 1;
            post.id = format!("post{:04}", st.next_post);
            st.posts.insert(post.id.clone(), post.clone());
            st.post_log.push(("create".into(), post.clone()));
            async move {
                Ok::<_, String>(PostReturns {
                    a: Some(post),
                    b: None,
                })
            }
        })
        .method("Plugin.UpdatePost", move |a: PostArgs| {
            let mut st = s6.lock().unwrap();
            let post = a.a.unwrap_or_default();
            st.posts.insert(post.id.clone(), post.clone());
            st.post_log.push(("update".into(), post.clone()));
            async move {
                Ok::<_, String>(PostReturns {
                    a: Some(post),
                    b: None,
                })
            }
        })
        .method("Plugin.SendEphemeralPost", move |a: EphemeralPostArgs| {
            let post = a.b.unwrap_or_default();
            s7.lock()
                .unwrap()
                .post_log
                .push(("ephemeral".into(), post.clone()));
            async move { Ok::<_, String>(EphemeralPostReturns { a: Some(post) }) }
        })
        .method("Plugin.GetUser", move |a: StringArgs| async move {
            Ok::<_, String>(GetUserReturns {
                a: Some(User {
                    id: a.a.clone(),
                    username: format!("name-{}", a.a),
                    ..Default::default()
                }),
                b: None,
            })
        })
        .method(
            "Plugin.OpenInteractiveDialog",
            move |a: OpenInteractiveDialogArgs| {
                s8.lock().unwrap().dialogs.push(a.a);
                async { Ok::<_, String>(AppErrorReturn { a: None }) }
            },
        )
        .method("Plugin.GetPostThread", move |a: StringArgs| {
            let st = s9.lock().unwrap();
            let r = match st.posts.get(&a.a) {
                Some(root) => {
                    let posts: BTreeMap<String, Post> = st
                        .posts
                        .values()
                        .filter(|p| p.id == root.id || p.root_id == root.id)
                        .map(|p| (p.id.clone(), p.clone()))
                        .collect();
                    GetPostThreadReturns {
                        a: Some(PostList {
                            order: posts.keys().cloned().collect(),
                            posts: Some(posts),
                            ..Default::default()
                        }),
                        b: None,
                    }
                }
                None => GetPostThreadReturns {
                    a: None,
                    b: not_found(),
                },
            };
            async move { Ok::<_, String>(r) }
        })
        .method(
            "Plugin.HasPermissionToChannel",
            move |a: HasPermissionToChannelArgs| {
                let ok = s10.lock().unwrap().is_member(&a.b, &a.a)
                    && a.c.map(|p| p.id) == Some("read_channel".into());
                async move { Ok::<_, String>(BoolReturns { a: ok }) }
            },
        )
        .method("Plugin.HasPermissionTo", move |a: HasPermissionToArgs| {
            let ok = s13.lock().unwrap().admins.contains(&a.a)
                && a.b.map(|p| p.id) == Some("manage_system".into());
            async move { Ok::<_, String>(BoolReturns { a: ok }) }
        })
        // The bot joins the channel before its first post there.
        .method("Plugin.GetChannel", move |a: StringArgs| {
            let (known, fail) = {
                let st = s14.lock().unwrap();
                (st.channels.get(&a.a).cloned(), st.fail_get_channel)
            };
            let channel = known.unwrap_or_else(|| Channel {
                id: a.a,
                team_id: "team-1".into(),
                r#type: "O".into(),
                ..Default::default()
            });
            async move {
                Ok::<_, String>(if fail {
                    GetChannelReturns {
                        a: None,
                        b: Some(AppError {
                            message: "database unavailable".into(),
                            status_code: 500,
                            ..Default::default()
                        }),
                    }
                } else {
                    GetChannelReturns {
                        a: Some(channel),
                        b: None,
                    }
                })
            }
        })
        .method("Plugin.AddChannelMember", move |a: TwoStringArgs| {
            s12.lock().unwrap().members.push(a.b.clone());
            async move {
                Ok::<_, String>(GetChannelMemberReturns {
                    a: Some(ChannelMember {
                        channel_id: a.a,
                        user_id: a.b,
                        ..Default::default()
                    }),
                    b: None,
                })
            }
        })
        // As the server: an unknown id is an AppError with status 404.
        .method("Plugin.GetFileInfo", move |a: StringArgs| {
            let info = s15.lock().unwrap().files.get(&a.a).map(|f| f.0.clone());
            async move {
                Ok::<_, String>(GetFileInfoReturns {
                    b: if info.is_none() { not_found() } else { None },
                    a: info,
                })
            }
        })
        .method("Plugin.GetFile", move |a: StringArgs| {
            let mut st = s16.lock().unwrap();
            st.fetched.push(a.a.clone());
            let bytes = st.files.get(&a.a).map(|f| f.1.clone());
            let delay = st.file_delay;
            async move {
                tokio::time::sleep(delay).await;
                Ok::<_, String>(GetFileReturns {
                    b: if bytes.is_none() { not_found() } else { None },
                    a: bytes.unwrap_or_default(),
                })
            }
        })
        .method("Plugin.GetPost", move |a: StringArgs| {
            let p = s11.lock().unwrap().posts.get(&a.a).cloned();
            async move {
                Ok::<_, String>(PostReturns {
                    b: if p.is_none() { not_found() } else { None },
                    a: p,
                })
            }
        })
}

// --- the harness ---------------------------------------------------------------------------

pub struct Harness {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub project: PathBuf,
    pub server: FakeServer,
    pub hooks: Client,
    pub broker: FakeBroker,
    pub api: Shared,
    pub ids: StreamIds,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Harness {
    /// `script` gets the project dir; `extra` settings are merged into the configuration.
    pub async fn new(name: &str, script: impl FnOnce(&Path) -> Value, extra: Value) -> Harness {
        let dir =
            std::env::temp_dir().join(format!("cc-chat-{name}-{}", uuid::Uuid::new_v4().simple()));
        let root = dir.join("root");
        let project = root.join("proj");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(root.join("file.txt"), "x").unwrap();
        std::fs::write(project.join("README.md"), "# Demo\nhello\n").unwrap();
        let server = fake_server(&dir, &project, script).await;
        // The real CLI unless the test brings its own (it must then exist).
        let cli = match extra.get("ClaudeCliPath") {
            Some(path) => path.clone(),
            None => json!(cli_path(GET_CLI).display().to_string()),
        };
        let mut config = json!({
            "AllowedProjectRoots": root.display().to_string(),
            "ClaudeCliPath": cli,
            "AnthropicApiKey": "sk-test",
            "AnthropicBaseUrl": server.base_url(),
            "DataDirectory": dir.join("data").display().to_string(),
            "WhoCanApprove": "owner",
        });
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        let api = Shared::default();
        {
            let mut st = api.lock().unwrap();
            st.config = config.to_string().into_bytes();
            st.members = vec!["u1".into(), "u2".into()];
        }
        let broker = FakeBroker::default();
        let hooks = connect_hooks(App::new(false), &broker);
        let h = Harness {
            dir,
            root,
            project,
            server,
            hooks,
            broker,
            api,
            ids: StreamIds::default(),
        };
        h.activate().await;
        h
    }

    pub fn id(&self) -> u32 {
        self.ids.next()
    }

    pub async fn activate(&self) {
        let (api_id, driver_id) = (self.id(), self.id());
        let api = fake_api(self.api.clone());
        let r = activate(&self.hooks, &self.broker, api, api_id, driver_id).await;
        assert_eq!(r, Any::Nil, "activation");
    }

    /// An admin saves `changes` (merged into the settings); the host calls
    /// OnConfigurationChange.
    pub async fn reconfigure(&self, changes: Value) {
        {
            let mut st = self.api.lock().unwrap();
            let mut config: Value = serde_json::from_slice(&st.config).unwrap();
            for (k, v) in changes.as_object().unwrap() {
                config[k] = v.clone();
            }
            st.config = config.to_string().into_bytes();
        }
        let r: ErrorReturn = self
            .hooks
            .call("Plugin.OnConfigurationChange", &Empty {})
            .await
            .unwrap();
        assert_eq!(r.a, Any::Nil, "the configuration change");
    }

    pub async fn deactivate(&self) {
        let r: ErrorReturn = self
            .hooks
            .call("Plugin.OnDeactivate", &Empty {})
            .await
            .unwrap();
        assert_eq!(r.a, Any::Nil);
    }

    pub async fn command_as(&self, user: &str, line: &str) -> CommandResponse {
        self.command_in(CHANNEL, user, line).await
    }

    /// `user` types `line` in `channel`.
    pub async fn command_in(&self, channel: &str, user: &str, line: &str) -> CommandResponse {
        let r: ExecuteCommandReturns = self
            .hooks
            .call(
                "Plugin.ExecuteCommand",
                &Args2 {
                    a: Some(Context::default()),
                    b: Some(CommandArgs {
                        command: line.into(),
                        user_id: user.into(),
                        channel_id: channel.into(),
                        team_id: "team-1".into(),
                        ..Default::default()
                    }),
                },
            )
            .await
            .unwrap();
        assert_eq!(r.b, None);
        r.a.unwrap()
    }

    pub async fn command(&self, line: &str) -> String {
        let r = self.command_as("u1", line).await;
        assert_eq!(r.response_type, "ephemeral");
        r.text
    }

    pub async fn post(&self, post: Post) {
        let _: Empty = self
            .hooks
            .call(
                "Plugin.MessageHasBeenPosted",
                &Args2 {
                    a: Some(Context::default()),
                    b: Some(post),
                },
            )
            .await
            .unwrap();
    }

    pub async fn http(&self, url: &str, user: &str, body: Value) -> (Option<i64>, Value) {
        self.http_method("POST", url, user, body).await
    }

    pub async fn http_method(
        &self,
        method: &str,
        url: &str,
        user: &str,
        body: Value,
    ) -> (Option<i64>, Value) {
        let headers = [("Mattermost-User-Id", user)];
        self.http_raw(method, url, &headers, body.to_string().into_bytes())
            .await
    }

    /// A request with exactly these headers (none names the user unless one is
    /// `Mattermost-User-Id`) and body bytes, as the server forwards it: the status and the JSON
    /// answer (`Null` when the answer is not JSON).
    pub async fn http_raw(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (Option<i64>, Value) {
        let (status, bytes) = self.http_bytes(method, url, headers, body).await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// As [`Harness::http_raw`], with the answer's bytes as they came (text such as metrics).
    pub async fn http_bytes(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (Option<i64>, Vec<u8>) {
        let rec = Arc::new(Mutex::new(Recorded::default()));
        let (w, body_id) = (self.id(), self.id());
        self.broker
            .add(w, Endpoint::Serve(fake_writer(rec.clone())));
        self.broker.add(body_id, Endpoint::Body(body));
        let mut header = Headers::new();
        for (k, v) in headers {
            header.insert((*k).into(), vec![(*v).into()]);
        }
        let args = ServeHttpArgs {
            response_writer_stream: w,
            request: http_request(method, url, header),
            context: Some(Context::default()),
            request_body_stream: body_id,
        };
        serve_http(&self.hooks, &args, WAIT).await;
        let r = rec.lock().unwrap();
        (r.status, r.body.clone())
    }

    /// `user` uploads `bytes` as `name` (as `/api/v4/files` does); answers the file id to put
    /// in a post's `file_ids`. Its MIME type says PNG whatever it holds: the plugin must not
    /// believe a client's claim.
    pub fn upload(&self, user: &str, name: &str, bytes: &[u8]) -> String {
        let mut st = self.api.lock().unwrap();
        let id = format!("file{:04}", st.files.len() + 1);
        let info = FileInfo {
            id: id.clone(),
            creator_id: user.into(),
            channel_id: CHANNEL.into(),
            name: name.into(),
            extension: name.rsplit('.').next().unwrap_or("").into(),
            size: bytes.len() as i64,
            mime_type: "image/png".into(),
            ..Default::default()
        };
        st.files.insert(id.clone(), (info, bytes.to_vec()));
        id
    }

    pub fn log(&self) -> Vec<(String, Post)> {
        self.api.lock().unwrap().post_log.clone()
    }

    /// Waits until `f` holds for the post log.
    pub async fn wait_for(&self, what: &str, f: impl Fn(&[(String, Post)]) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if f(&self.log()) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                let log: Vec<String> = self
                    .log()
                    .iter()
                    .map(|(k, p)| {
                        let atts = claude_code::mattermost::attachments::of_props(&p.props)
                            .unwrap_or_default();
                        let shown: Vec<String> = atts
                            .iter()
                            .map(|a| format!("{} {} buttons={}", a.text, a.footer, a.actions.len()))
                            .collect();
                        format!("{k} {} root={} {:?} {shown:?}", p.id, p.root_id, p.message)
                    })
                    .collect();
                panic!("timed out waiting for {what}; posts: {log:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn root_post(&self) -> Post {
        self.log()
            .into_iter()
            .find(|(k, p)| k == "create" && p.message.contains("Claude Code session started"))
            .map(|(_, p)| p)
            .expect("root post")
    }

    /// The newest version of each post in the session thread, by id, in creation order.
    pub fn thread(&self) -> Vec<Post> {
        let root = self.root_post().id;
        let st = self.api.lock().unwrap();
        let mut out: Vec<Post> = st
            .posts
            .values()
            .filter(|p| p.root_id == root)
            .cloned()
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    pub fn card(&self) -> Option<(Post, Vec<PostAction>)> {
        self.thread().into_iter().rev().find_map(|p| {
            let atts = match p.props.as_ref()?.get("attachments")? {
                Any::Attachments(a) => a.clone(),
                _ => return None,
            };
            let actions = atts.first()?.actions.clone();
            Some((p, actions))
        })
    }

    pub fn model_requests(&self) -> Vec<String> {
        model_requests(&self.server)
    }

    pub async fn start(&self) -> Post {
        let text = self
            .command(&format!("/claude start {}", self.project.display()))
            .await;
        assert!(!text.contains("not") || text.is_empty(), "{text}");
        self.wait_for("root post", |l| {
            l.iter()
                .any(|(k, p)| k == "create" && p.message.contains("Claude Code session started"))
        })
        .await;
        self.root_post()
    }

    pub async fn click(&self, user: &str, card_id: &str, context: Value) -> (Option<i64>, Value) {
        self.http(ACTION_URL, user, click_body(user, card_id, context))
            .await
    }

    /// Starts a session, asks for a write of `file` and returns its approval card.
    pub async fn start_and_wait_for_card(&self, file: &str) -> (Post, Vec<PostAction>) {
        self.start().await;
        self.command(&format!("/claude write {file}")).await;
        self.wait_for("the card", |_| {
            self.card().is_some_and(|(_, a)| !a.is_empty())
        })
        .await;
        self.card().unwrap()
    }

    pub async fn wait_for_done(&self) {
        self.wait_for("the closing line", |l| {
            l.iter().any(|(_, p)| p.message.contains("✓ Done"))
        })
        .await;
    }

    /// How often the post `card_id` was updated.
    pub fn card_updates(&self, card_id: &str) -> usize {
        self.log()
            .iter()
            .filter(|(k, p)| k == "update" && p.id == card_id)
            .count()
    }

    /// The dialog the plugin opened last.
    pub fn dialog(&self) -> OpenDialogRequest {
        self.api.lock().unwrap().dialogs.pop().expect("a dialog")
    }
}

pub fn context_json(action: &PostAction) -> Value {
    let ctx = action
        .integration
        .as_ref()
        .unwrap()
        .context
        .as_ref()
        .unwrap();
    let mut m = serde_json::Map::new();
    for (k, v) in ctx {
        if let Any::String(s) = v {
            m.insert(k.clone(), Value::String(s.clone()));
        }
    }
    Value::Object(m)
}

pub fn click_body(user: &str, post_id: &str, context: Value) -> Value {
    json!({
        "user_id": user, "user_name": format!("name-{user}"), "channel_id": CHANNEL,
        "channel_name": "town", "team_id": "team-1", "team_domain": "t", "post_id": post_id,
        "trigger_id": "trigger-1", "type": "button", "data_source": "", "context": context,
    })
}

/// u1 submits `dialog` with `submission`.
pub fn dialog_submission(dialog: &OpenDialogRequest, submission: Value) -> Value {
    json!({
        "type": "dialog_submission", "callback_id": dialog.dialog.callback_id,
        "state": dialog.dialog.state, "user_id": "u1", "channel_id": CHANNEL,
        "team_id": "team-1", "submission": submission, "cancelled": false,
    })
}

pub const ACTION_URL: &str = "/api/v1/actions/approval";
pub const DIALOG_URL: &str = "/api/v1/actions/approval/dialog";

pub fn action<'a>(actions: &'a [PostAction], id: &str) -> &'a PostAction {
    actions
        .iter()
        .find(|a| a.id == id)
        .unwrap_or_else(|| panic!("no {id} action"))
}

pub fn write_script(file: &Path, reply: &str) -> Value {
    json!([
        {"kind": "message", "blocks": [{"type": "tool_use", "name": "Write",
            "input": {"file_path": file.display().to_string(), "content": "hi there\n"}}]},
        {"kind": "message", "blocks": [{"type": "text", "text": reply}]}
    ])
}

/// A stand-in for the Claude Code CLI, for tests about who may do what rather than about the
/// CLI: a shell script that answers every control request with success, asks to Write a file
/// (an approval card) for every prompt, and ends the turn when that request is answered or
/// the turn is interrupted. Each process appends its pid to `launched` next to the script, and
/// every line it reads to `stdin`.
/// Request ids carry the pid, as the real CLI's are unique: cards and approvals are keyed by
/// them.
pub struct StandIn {
    pub dir: PathBuf,
}

impl StandIn {
    pub fn new() -> StandIn {
        use std::os::unix::fs::PermissionsExt;
        let dir =
            std::env::temp_dir().join(format!("cc-standin-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let result = r#"{"type":"result","subtype":"success","is_error":false,"result":"done","num_turns":1,"duration_ms":5,"total_cost_usd":0,"usage":{"input_tokens":1,"output_tokens":1},"session_id":"00000000-0000-4000-8000-000000000000"}"#;
        let script = format!(
            r#"#!/bin/sh
echo $$ >> "$(dirname "$0")/launched"
n=0
while IFS= read -r line; do
  printf '%s\n' "$line" >> "$(dirname "$0")/stdin"
  id=$(printf '%s\n' "$line" | sed -n 's/.*"request_id":"\([^"]*\)".*/\1/p')
  case "$line" in
    *'"type":"control_request"'*)
      printf '{{"type":"control_response","response":{{"subtype":"success","request_id":"%s","response":{{}}}}}}\n' "$id"
      case "$line" in *'"subtype":"interrupt"'*) printf '%s\n' '{result}';; esac ;;
    *'"type":"user"'*)
      n=$((n+1))
      printf '{{"type":"system","subtype":"init","session_id":"00000000-0000-4000-8000-000000000000"}}\n'
      printf '{{"type":"control_request","request_id":"ask-%s-%s","request":{{"subtype":"can_use_tool","tool_name":"Write","input":{{"file_path":"/nonexistent/standin.txt","content":"x"}},"permission_suggestions":[],"tool_use_id":"toolu_%s_%s"}}}}\n' "$$" "$n" "$$" "$n" ;;
    *'"type":"control_response"'*)
      printf '%s\n' '{result}' ;;
  esac
done
"#
        );
        std::fs::write(dir.join("claude"), script).unwrap();
        std::fs::set_permissions(dir.join("claude"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        StandIn { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("claude")
    }

    /// How many processes were started.
    pub fn launched(&self) -> usize {
        std::fs::read_to_string(self.dir.join("launched"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// Every line the processes read on stdin (prompts, control requests, answers), in order.
    pub fn stdin(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("stdin"))
            .map(|s| s.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// Waits (up to 10 s) until `n` processes have started, then a little longer for any
    /// extra one; returns how many started.
    pub async fn wait_launched(&self, n: usize) -> usize {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.launched() < n && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.launched()
    }

    /// Makes the next starts fail to spawn (`false`) or succeed again (`true`).
    pub fn set_executable(&self, yes: bool) {
        use std::os::unix::fs::PermissionsExt;
        let mode = if yes { 0o755 } else { 0o644 };
        std::fs::set_permissions(self.path(), std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
