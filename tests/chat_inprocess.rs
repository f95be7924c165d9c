//! The chat layer end to end, in process: the hooks are driven from the host's side (as in
//! plugin_inprocess.rs) against a fake plugin API that records posts, while sessions run the
//! REAL Claude Code CLI against the scripted fake Messages API (crates/fake-anthropic).
//! A missing CLI fails these tests on purpose (run `make claude-cli`, or set CLAUDE_CLI).

mod support;

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
use support::cli::{cli_path, fake_server, model_requests};
use support::host::{
    activate, connect_hooks, fake_writer, http_request, serve_http, Endpoint, FakeBroker, Recorded,
    StreamIds,
};

const BOT: &str = "bot-user-id";
const CHANNEL: &str = "chan-1";
const WAIT: Duration = Duration::from_secs(90);
const GET_CLI: &str = "run `make claude-cli` (or set CLAUDE_CLI).";

// --- the fake plugin API ---------------------------------------------------------------------

#[derive(Default)]
struct ApiState {
    config: Vec<u8>,
    kv: BTreeMap<String, Vec<u8>>,
    members: Vec<String>,
    next_post: u32,
    posts: BTreeMap<String, Post>,
    /// ("create" | "update" | "ephemeral", post) in call order.
    post_log: Vec<(String, Post)>,
    dialogs: Vec<OpenDialogRequest>,
}

type Shared = Arc<Mutex<ApiState>>;

fn no_error() -> Option<AppError> {
    None
}

fn not_found() -> Option<AppError> {
    Some(AppError {
        id: "not_found".into(),
        message: "not found".into(),
        status_code: 404,
        ..Default::default()
    })
}

fn fake_api(st: Shared) -> Server {
    let c = |st: &Shared| st.clone();
    let (s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12) = (
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
    Server::new()
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
            let member = s4.lock().unwrap().members.contains(&a.b);
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
                let ok = s10.lock().unwrap().members.contains(&a.a)
                    && a.c.map(|p| p.id) == Some("read_channel".into());
                async move { Ok::<_, String>(BoolReturns { a: ok }) }
            },
        )
        // The bot joins the channel before its first post there.
        .method("Plugin.GetChannel", move |a: StringArgs| async move {
            Ok::<_, String>(GetChannelReturns {
                a: Some(Channel {
                    id: a.a,
                    team_id: "team-1".into(),
                    r#type: "O".into(),
                    ..Default::default()
                }),
                b: None,
            })
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

struct Harness {
    dir: PathBuf,
    root: PathBuf,
    project: PathBuf,
    server: FakeServer,
    hooks: Client,
    broker: FakeBroker,
    api: Shared,
    ids: StreamIds,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Harness {
    /// `script` gets the project dir; `extra` settings are merged into the configuration.
    async fn new(name: &str, script: impl FnOnce(&Path) -> Value, extra: Value) -> Harness {
        let dir =
            std::env::temp_dir().join(format!("cc-chat-{name}-{}", uuid::Uuid::new_v4().simple()));
        let root = dir.join("root");
        let project = root.join("proj");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(root.join("file.txt"), "x").unwrap();
        std::fs::write(project.join("README.md"), "# Demo\nhello\n").unwrap();
        let server = fake_server(&dir, &project, script).await;
        let mut config = json!({
            "AllowedProjectRoots": root.display().to_string(),
            "ClaudeCliPath": cli_path(GET_CLI).display().to_string(),
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
        let hooks = connect_hooks(Arc::new(App::new(false)), &broker);
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

    fn id(&self) -> u32 {
        self.ids.next()
    }

    async fn activate(&self) {
        let (api_id, driver_id) = (self.id(), self.id());
        let api = fake_api(self.api.clone());
        let r = activate(&self.hooks, &self.broker, api, api_id, driver_id).await;
        assert_eq!(r, Any::Nil, "activation");
    }

    async fn deactivate(&self) {
        let r: ErrorReturn = self
            .hooks
            .call("Plugin.OnDeactivate", &Empty {})
            .await
            .unwrap();
        assert_eq!(r.a, Any::Nil);
    }

    async fn command_as(&self, user: &str, line: &str) -> CommandResponse {
        let r: ExecuteCommandReturns = self
            .hooks
            .call(
                "Plugin.ExecuteCommand",
                &Args2 {
                    a: Some(Context::default()),
                    b: Some(CommandArgs {
                        command: line.into(),
                        user_id: user.into(),
                        channel_id: CHANNEL.into(),
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

    async fn command(&self, line: &str) -> String {
        let r = self.command_as("u1", line).await;
        assert_eq!(r.response_type, "ephemeral");
        r.text
    }

    async fn post(&self, post: Post) {
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

    async fn http(&self, url: &str, user: &str, body: Value) -> (Option<i64>, Value) {
        let rec = Arc::new(Mutex::new(Recorded::default()));
        let (w, body_id) = (self.id(), self.id());
        self.broker
            .add(w, Endpoint::Serve(fake_writer(rec.clone())));
        self.broker
            .add(body_id, Endpoint::Body(body.to_string().into_bytes()));
        let mut header = Headers::new();
        header.insert("Mattermost-User-Id".into(), vec![user.into()]);
        let args = ServeHttpArgs {
            response_writer_stream: w,
            request: http_request("POST", url, header),
            context: Some(Context::default()),
            request_body_stream: body_id,
        };
        serve_http(&self.hooks, &args, WAIT).await;
        let r = rec.lock().unwrap();
        let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        (r.status, v)
    }

    fn log(&self) -> Vec<(String, Post)> {
        self.api.lock().unwrap().post_log.clone()
    }

    /// Waits until `f` holds for the post log.
    async fn wait_for(&self, what: &str, f: impl Fn(&[(String, Post)]) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if f(&self.log()) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                let log: Vec<String> = self
                    .log()
                    .iter()
                    .map(|(k, p)| format!("{k} {} root={} {:?}", p.id, p.root_id, p.message))
                    .collect();
                panic!("timed out waiting for {what}; posts: {log:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn root_post(&self) -> Post {
        self.log()
            .into_iter()
            .find(|(k, p)| k == "create" && p.message.contains("Claude Code session started"))
            .map(|(_, p)| p)
            .expect("root post")
    }

    /// The newest version of each post in the session thread, by id, in creation order.
    fn thread(&self) -> Vec<Post> {
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

    fn card(&self) -> Option<(Post, Vec<PostAction>)> {
        self.thread().into_iter().rev().find_map(|p| {
            let atts = match p.props.as_ref()?.get("attachments")? {
                Any::Attachments(a) => a.clone(),
                _ => return None,
            };
            let actions = atts.first()?.actions.clone();
            Some((p, actions))
        })
    }

    fn model_requests(&self) -> Vec<String> {
        model_requests(&self.server)
    }

    async fn start(&self) -> Post {
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

    async fn click(&self, user: &str, card_id: &str, context: Value) -> (Option<i64>, Value) {
        self.http(ACTION_URL, user, click_body(user, card_id, context))
            .await
    }

    /// Starts a session, asks for a write of `file` and returns its approval card.
    async fn start_and_wait_for_card(&self, file: &str) -> (Post, Vec<PostAction>) {
        self.start().await;
        self.command(&format!("/claude write {file}")).await;
        self.wait_for("the card", |_| {
            self.card().is_some_and(|(_, a)| !a.is_empty())
        })
        .await;
        self.card().unwrap()
    }

    async fn wait_for_done(&self) {
        self.wait_for("the closing line", |l| {
            l.iter().any(|(_, p)| p.message.contains("✓ Done"))
        })
        .await;
    }

    /// How often the post `card_id` was updated.
    fn card_updates(&self, card_id: &str) -> usize {
        self.log()
            .iter()
            .filter(|(k, p)| k == "update" && p.id == card_id)
            .count()
    }

    /// The dialog the plugin opened last.
    fn dialog(&self) -> OpenDialogRequest {
        self.api.lock().unwrap().dialogs.pop().expect("a dialog")
    }
}

fn context_json(action: &PostAction) -> Value {
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

fn click_body(user: &str, post_id: &str, context: Value) -> Value {
    json!({
        "user_id": user, "user_name": format!("name-{user}"), "channel_id": CHANNEL,
        "channel_name": "town", "team_id": "team-1", "team_domain": "t", "post_id": post_id,
        "trigger_id": "trigger-1", "type": "button", "data_source": "", "context": context,
    })
}

/// u1 submits `dialog` with `submission`.
fn dialog_submission(dialog: &OpenDialogRequest, submission: Value) -> Value {
    json!({
        "type": "dialog_submission", "callback_id": dialog.dialog.callback_id,
        "state": dialog.dialog.state, "user_id": "u1", "channel_id": CHANNEL,
        "team_id": "team-1", "submission": submission, "cancelled": false,
    })
}

const ACTION_URL: &str = "/api/v1/actions/approval";
const DIALOG_URL: &str = "/api/v1/actions/approval/dialog";

fn action<'a>(actions: &'a [PostAction], id: &str) -> &'a PostAction {
    actions
        .iter()
        .find(|a| a.id == id)
        .unwrap_or_else(|| panic!("no {id} action"))
}

fn write_script(file: &Path, reply: &str) -> Value {
    json!([
        {"kind": "message", "blocks": [{"type": "tool_use", "name": "Write",
            "input": {"file_path": file.display().to_string(), "content": "hi there\n"}}]},
        {"kind": "message", "blocks": [{"type": "text", "text": reply}]}
    ])
}

// --- tests ---------------------------------------------------------------------------------

#[tokio::test]
async fn start_errors_status_and_success() {
    let h = Harness::new("start", |_| json!([]), json!({})).await;
    let outside = h.dir.display().to_string();
    let t = h.command(&format!("/claude start {outside}")).await;
    assert!(t.contains("is not under an allowed project root"), "{t}");
    let t = h
        .command(&format!(
            "/claude start {}",
            h.root.join("missing").display()
        ))
        .await;
    assert!(t.contains("does not exist"), "{t}");
    let t = h
        .command(&format!(
            "/claude start {}",
            h.root.join("file.txt").display()
        ))
        .await;
    assert!(t.contains("is not a directory"), "{t}");
    let t = h.command("/claude status").await;
    assert_eq!(t, "No Claude Code session in this channel");
    let t = h.command("/claude hello there").await;
    assert_eq!(t, "No Claude Code session in this channel");
    let r = h.command_as("u9", "/claude status").await;
    assert_eq!(r.text, "You are not a member of this channel");

    let root = h.start().await;
    assert_eq!(root.user_id, BOT);
    assert_eq!(root.channel_id, CHANNEL);
    assert!(root.root_id.is_empty());
    assert!(
        root.message.contains(&h.project.display().to_string()),
        "{}",
        root.message
    );
    let t = h
        .command(&format!("/claude start {}", h.project.display()))
        .await;
    assert!(t.contains("already has a session"), "{t}");
    let t = h.command("/claude status").await;
    assert!(t.contains(&h.project.display().to_string()), "{t}");
    assert!(
        ["idle", "starting", "running"]
            .iter()
            .any(|w| t.contains(w)),
        "{t}"
    );
    let t = h.command("/claude files").await;
    assert!(t.contains("```") && t.contains("README.md"), "{t}");
    let t = h.command("/claude file README.md").await;
    assert!(t.contains("# Demo"), "{t}");
    let t = h.command("/claude file ../file.txt").await;
    assert!(!t.contains('x') || t.contains(".."), "{t}");
    assert!(!t.contains("```"), "{t}");
    let t = h.command("/claude stop").await;
    assert!(t.contains("stopped"), "{t}");
    h.deactivate().await;
}

#[tokio::test]
async fn a_prompt_streams_into_one_post_updated_in_place() {
    let words: String = (0..40).map(|i| format!("word{i} ")).collect();
    let text = words.trim_end().to_owned();
    let t2 = text.clone();
    let h = Harness::new(
        "stream",
        move |_| {
            json!([{"kind": "message", "delay_ms": 80,
                    "blocks": [{"type": "text", "text": t2}]}])
        },
        json!({}),
    )
    .await;
    let root = h.start().await;
    let t = h.command("/claude say many words").await;
    assert!(t.is_empty() || !t.contains("could not"), "{t}");
    h.wait_for_done().await;
    let log = h.log();
    let turn: Vec<&(String, Post)> = log.iter().filter(|(_, p)| p.root_id == root.id).collect();
    let creates: Vec<_> = turn.iter().filter(|(k, _)| k == "create").collect();
    let updates: Vec<_> = turn.iter().filter(|(k, _)| k == "update").collect();
    assert_eq!(creates.len(), 1, "one post per turn");
    assert!(updates.len() >= 2, "{} updates", updates.len());
    let last = &turn.last().unwrap().1;
    assert_eq!(last.id, creates[0].1.id);
    assert_eq!(last.user_id, BOT);
    assert!(last.message.contains(&text), "{}", last.message);
    let done = last.message.lines().last().unwrap();
    assert!(done.starts_with("✓ Done"), "{done}");
    h.deactivate().await;
}

#[tokio::test]
async fn approval_card_approve_once_tamper_and_non_member() {
    let h = Harness::new(
        "approve",
        |p| write_script(&p.join("hello.txt"), "Wrote it."),
        json!({"WhoCanApprove": "members"}),
    )
    .await;
    let (card, actions) = h.start_and_wait_for_card("hello.txt").await;
    let ids: Vec<&str> = actions.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "approve",
            "approvesession",
            "deny",
            "denyreason",
            "editapprove"
        ]
    );
    for a in &actions {
        assert_eq!(
            a.integration.as_ref().unwrap().url,
            "/plugins/claude-code/api/v1/actions/approval"
        );
        let ctx = context_json(a);
        for k in ["session_id", "request_id", "action", "expires_at", "sig"] {
            assert!(ctx.get(k).is_some(), "{k} in {ctx}");
        }
    }
    let Some(Any::Attachments(atts)) = card.props.as_ref().unwrap().get("attachments") else {
        panic!()
    };
    assert!(atts[0].text.contains("Write") && atts[0].text.contains("hello.txt"));
    let approve = context_json(action(&actions, "approve"));

    // Tampered: another action under approve's signature.
    let mut forged = approve.clone();
    forged["action"] = json!("approvesession");
    let updates_before = h.log().iter().filter(|(k, _)| k == "update").count();
    let (status, v) = h.click("u1", &card.id, forged).await;
    assert_eq!(status, Some(200));
    assert!(v["ephemeral_text"].is_string(), "{v}");
    // Non-member.
    let (_, v) = h.click("u9", &card.id, approve.clone()).await;
    assert_eq!(v["ephemeral_text"], "You are not a member of this channel");
    assert!(!h.project.join("hello.txt").exists());

    // Approve (by another member: WhoCanApprove = members).
    let (status, v) = h.click("u2", &card.id, approve.clone()).await;
    assert_eq!(status, Some(200));
    let update = &v["update"];
    let att = &update["props"]["attachments"][0];
    assert!(
        att["text"]
            .as_str()
            .unwrap()
            .contains("✅ Approved by @name-u2"),
        "{v}"
    );
    assert_eq!(att["actions"], json!([]));
    h.wait_for("the file", |_| h.project.join("hello.txt").exists())
        .await;
    h.wait_for_done().await;
    let card_updates = h.card_updates(&card.id);
    assert_eq!(card_updates, 1);
    assert!(h.log().iter().filter(|(k, _)| k == "update").count() > updates_before);

    // The same click again: refused, nothing changes.
    let (_, v) = h.click("u2", &card.id, approve).await;
    assert!(v["ephemeral_text"].is_string(), "{v}");
    let card_updates_after = h.card_updates(&card.id);
    assert_eq!(card_updates_after, 1);
    h.deactivate().await;
}

#[tokio::test]
async fn owner_only_approval_and_deny_with_reason_dialog() {
    const REASON: &str = "Use the existing greeting file instead";
    let h = Harness::new(
        "deny",
        |p| write_script(&p.join("denied.txt"), "Understood."),
        json!({}),
    )
    .await;
    let (card, actions) = h.start_and_wait_for_card("denied.txt").await;
    // u2 is a member but not the owner (WhoCanApprove = owner).
    let (_, v) = h
        .click("u2", &card.id, context_json(action(&actions, "approve")))
        .await;
    assert!(v["ephemeral_text"].is_string(), "{v}");
    let (_, v) = h
        .click("u1", &card.id, context_json(action(&actions, "denyreason")))
        .await;
    assert_eq!(v, json!({}));
    let dialog = h.dialog();
    assert_eq!(dialog.trigger_id, "trigger-1");
    assert_eq!(
        dialog.url,
        "/plugins/claude-code/api/v1/actions/approval/dialog"
    );
    let submit = dialog_submission(&dialog, json!({"reason": REASON}));
    // An empty reason is refused with a field error.
    let mut empty = submit.clone();
    empty["submission"]["reason"] = json!("  ");
    let (_, v) = h.http(DIALOG_URL, "u1", empty).await;
    assert!(v["errors"]["reason"].is_string(), "{v}");
    let (status, v) = h.http(DIALOG_URL, "u1", submit).await;
    assert_eq!((status, v), (Some(200), json!({})));
    h.wait_for_done().await;
    assert!(!h.project.join("denied.txt").exists());
    assert!(
        h.model_requests().iter().any(|r| r.contains(REASON)),
        "the reason reached the model"
    );
    let card_now = h.api.lock().unwrap().posts[&card.id].clone();
    let Some(Any::Attachments(atts)) = card_now.props.as_ref().unwrap().get("attachments") else {
        panic!()
    };
    assert!(
        atts[0].text.contains("⛔ Denied by @name-u1"),
        "{}",
        atts[0].text
    );
    assert!(atts[0].actions.is_empty());
    h.deactivate().await;
}

#[tokio::test]
async fn thread_replies_prompt_context_and_restart_resumes() {
    let h = Harness::new(
        "thread",
        |_| {
            json!([
                {"kind": "message", "blocks": [{"type": "text", "text": "First answer."}]},
                {"kind": "message", "blocks": [{"type": "text", "text": "Second answer."}]},
                {"kind": "message", "blocks": [{"type": "text", "text": "Third answer."}]}
            ])
        },
        json!({}),
    )
    .await;
    let root = h.start().await;
    let t = h
        .command(&format!("/claude context thread {}", root.id))
        .await;
    assert!(t.contains("added as context"), "{t}");
    let t = h.command("/claude context file README.md").await;
    assert!(t.contains("added as context"), "{t}");
    let t = h.command("/claude context file ../file.txt").await;
    assert!(!t.contains("added"), "{t}");
    h.post(Post {
        id: "reply-1".into(),
        user_id: "u1".into(),
        channel_id: CHANNEL.into(),
        root_id: root.id.clone(),
        message: "what is this project?".into(),
        ..Default::default()
    })
    .await;
    h.wait_for("the first answer", |l| {
        l.iter()
            .any(|(_, p)| p.message.contains("First answer.") && p.message.contains("✓ Done"))
    })
    .await;
    let first = h.model_requests().last().cloned().unwrap();
    assert!(first.contains("<mattermost-thread"), "{first}");
    assert!(first.contains("</mattermost-thread>"));
    assert!(
        first.contains("<project-file path=\\\"README.md\\\">"),
        "{first}"
    );
    assert!(first.contains("what is this project?"));
    // The bot's own posts (and flagged ones) never become prompts.
    let calls = h.model_requests().len();
    let bot_post = h
        .thread()
        .into_iter()
        .find(|p| p.message.contains("First answer."))
        .unwrap();
    h.post(bot_post).await;
    let mut flagged = Post {
        id: "reply-2".into(),
        user_id: "u1".into(),
        channel_id: CHANNEL.into(),
        root_id: root.id.clone(),
        message: "from a webhook".into(),
        ..Default::default()
    };
    flagged.props = Some(BTreeMap::from([(
        "from_bot".to_owned(),
        Any::String("true".into()),
    )]));
    h.post(flagged).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(h.model_requests().len(), calls, "no loop");

    // Restart: the session comes back and the next prompt resumes the conversation.
    h.deactivate().await;
    h.activate().await;
    let t = h.command("/claude status").await;
    assert!(t.contains(&h.project.display().to_string()), "{t}");
    assert!(t.contains("stopped"), "{t}");
    h.command("/claude and now?").await;
    h.wait_for("the second answer", |l| {
        l.iter()
            .any(|(_, p)| p.message.contains("Second answer.") && p.message.contains("✓ Done"))
    })
    .await;
    let second = h.model_requests().last().cloned().unwrap();
    assert!(
        second.contains("what is this project?"),
        "resumed: {second}"
    );
    assert!(second.contains("First answer."), "resumed: {second}");
    h.deactivate().await;
}

#[tokio::test]
async fn commands_are_rate_limited_per_user() {
    let h = Harness::new("rate", |_| json!([]), json!({"CommandsPerMinute": 3})).await;
    for _ in 0..3 {
        let t = h.command("/claude status").await;
        assert_eq!(t, "No Claude Code session in this channel");
    }
    let t = h.command("/claude status").await;
    assert!(t.contains("Slow down"), "{t}");
    // Another user has their own budget.
    let r = h.command_as("u2", "/claude status").await;
    assert_eq!(r.text, "No Claude Code session in this channel");
    h.deactivate().await;
}

#[tokio::test]
async fn edit_and_approve_runs_the_edited_input_and_stop_ends_the_session() {
    let h = Harness::new(
        "edit",
        |p| write_script(&p.join("edited.txt"), "Done."),
        json!({}),
    )
    .await;
    let (card, actions) = h.start_and_wait_for_card("edited.txt").await;
    let (_, v) = h
        .click(
            "u1",
            &card.id,
            context_json(action(&actions, "editapprove")),
        )
        .await;
    assert_eq!(v, json!({}));
    let dialog = h.dialog();
    assert_eq!(dialog.dialog.elements[0].default, "hi there\n");
    let submit = dialog_submission(&dialog, json!({"input": "edited by a human\n"}));
    // A forged state is refused.
    let mut forged = submit.clone();
    forged["state"] = json!(dialog.dialog.state.replace("editapprove", "approve"));
    let (_, v) = h.http(DIALOG_URL, "u1", forged).await;
    assert!(v["error"].is_string(), "{v}");
    let (_, v) = h.http(DIALOG_URL, "u1", submit).await;
    assert_eq!(v, json!({}));
    h.wait_for_done().await;
    assert_eq!(
        std::fs::read_to_string(h.project.join("edited.txt")).unwrap(),
        "edited by a human\n"
    );
    let t = h.command("/claude stop").await;
    assert!(t.contains("stopped"), "{t}");
    let t = h.command("/claude status").await;
    assert!(t.contains("stopped"), "{t}");
    h.deactivate().await;
}
