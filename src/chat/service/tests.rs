use std::path::{Path, PathBuf};

use super::authorize::team_membership_counts;
use super::clicks::ephemeral_json;
use super::commands::ephemeral;
use super::context::post_id_of;
use super::*;
use crate::config::WhoCanStart;
use crate::mattermost::model::{CommandArgs, Post, Team, TeamMember};

#[test]
fn permalinks_and_ids() {
    assert_eq!(
        post_id_of("https://mm.example.com/team/pl/abcdefghijklmnopqrstuvwxyz").as_deref(),
        Some("abcdefghijklmnopqrstuvwxyz")
    );
    assert_eq!(post_id_of("p1").as_deref(), Some("p1"));
    assert_eq!(post_id_of("  "), None);
}

#[test]
fn start_paths_are_checked_in_order() {
    let base = std::env::temp_dir().join(format!("cc-svc-{}", uuid::Uuid::new_v4().simple()));
    let root = base.join("root");
    std::fs::create_dir_all(root.join("proj")).unwrap();
    std::fs::write(root.join("file.txt"), "x").unwrap();
    std::fs::create_dir_all(base.join("other")).unwrap();
    std::os::unix::fs::symlink(base.join("other"), root.join("escape")).unwrap();
    std::fs::create_dir_all(root.join("proj/.git/hooks")).unwrap();
    std::os::unix::fs::symlink(root.join("proj/.git"), root.join("gitlink")).unwrap();
    for part in ["objects", "refs"] {
        std::fs::create_dir_all(root.join("bare.git").join(part)).unwrap();
    }
    std::fs::write(root.join("bare.git/HEAD"), "ref: refs/heads/main\n").unwrap();
    let config = Config {
        allowed_project_roots: vec![root.clone()],
        ..Config::default()
    };
    let check = |p: &Path| ChatService::check_project_path(&config, p.to_str().unwrap());
    assert!(check(&root.join("proj")).is_ok());
    for (p, want) in [
        (base.join("other"), "is not under an allowed project root"),
        (
            root.join("proj/../../other"),
            "is not under an allowed project root",
        ),
        (root.join("escape"), "is not under an allowed project root"),
        (root.join("missing"), "does not exist"),
        (root.join("file.txt"), "is not a directory"),
        (root.join("proj/.git"), "is git's own data"),
        (root.join("proj/.GIT/hooks"), "is git's own data"),
        (root.join("gitlink"), "is git's own data"),
        (root.join("bare.git"), "is git's own data"),
    ] {
        let e = check(&p).unwrap_err();
        assert!(e.to_string().contains(want), "{p:?}: {e}");
    }
    assert!(ChatService::check_project_path(&config, "relative")
        .unwrap_err()
        .to_string()
        .contains("is not under an allowed project root"));
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn team_membership_quick_path_and_member_records() {
    let team = Team {
        id: "t1".into(),
        name: "platform".into(),
        ..Default::default()
    };
    let member = |team_id: &str, user_id: &str, delete_at: i64| TeamMember {
        team_id: team_id.into(),
        user_id: user_id.into(),
        delete_at,
        scheme_user: true,
        ..Default::default()
    };
    // The command's own team: no lookup needed.
    assert!(team_membership_counts(&team, "t1", "u1", None));
    assert!(!team_membership_counts(&team, "t2", "u1", None));
    // A DM/GM has no team id: it is never the quick path.
    assert!(!team_membership_counts(&team, "", "u1", None));
    assert!(team_membership_counts(
        &team,
        "t2",
        "u1",
        Some(&member("t1", "u1", 0))
    ));
    // Left the team.
    assert!(!team_membership_counts(
        &team,
        "t2",
        "u1",
        Some(&member("t1", "u1", 1_700_000_000_000))
    ));
    // Somebody else's or another team's record.
    assert!(!team_membership_counts(
        &team,
        "t2",
        "u1",
        Some(&member("t1", "u2", 0))
    ));
    assert!(!team_membership_counts(
        &team,
        "t2",
        "u1",
        Some(&member("t9", "u1", 0))
    ));
    // An unresolved team (empty id) matches nobody, even in a teamless channel.
    assert!(!team_membership_counts(
        &Team::default(),
        "",
        "u1",
        Some(&member("", "u1", 0))
    ));
}

#[test]
fn who_can_start_lists_team_names_and_matches_them() {
    let who = WhoCanStart::Only(vec![
        crate::config::Principal::User("alice".into()),
        crate::config::Principal::Team("platform".into()),
        crate::config::Principal::Team("ops".into()),
    ]);
    assert_eq!(who.team_names(), vec!["platform", "ops"]);
    assert!(WhoCanStart::Everyone.team_names().is_empty());
    assert!(who.allows("alice", &[]));
    assert!(!who.allows("bob", &[]));
    assert!(who.allows("bob", &["ops"]));
}

/// What opening the service needs from the server: the KV store of the signing secret.
fn kv_api() -> crate::rpc::netrpc::Server {
    use crate::mattermost::rpc_types::*;
    crate::rpc::netrpc::Server::new()
        .method("Plugin.KVGet", |_: StringArgs| async {
            Ok::<_, String>(KvGetReturns::default())
        })
        .method("Plugin.KVCompareAndSet", |_: KvCompareAndSetArgs| async {
            Ok::<_, String>(BoolAppErrorReturns { a: true, b: None })
        })
}

fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cc-{what}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Settings for a test under `dir`: projects under `dir/root`, data in `dir/data`, and a
/// CLI that reads its input and says nothing; `extra` adds or replaces keys.
fn quiet_cli_config(dir: &Path, extra: serde_json::Value) -> Config {
    use std::os::unix::fs::PermissionsExt;
    let cli = dir.join("claude");
    std::fs::write(&cli, "#!/bin/sh\nexec cat > /dev/null\n").unwrap();
    std::fs::set_permissions(&cli, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut settings = serde_json::json!({
        "AllowedProjectRoots": dir.join("root").display().to_string(),
        "ClaudeCliPath": cli.display().to_string(),
        "DataDirectory": dir.join("data").display().to_string(),
    });
    if let (Some(s), Some(e)) = (settings.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    crate::config::load(settings.to_string().as_bytes()).unwrap()
}

/// Settings saved while the plugin runs reach what starts next; the data directory, which
/// holds the open store, stays until the next enable.
#[tokio::test]
async fn saved_settings_apply_to_what_starts_next() {
    let dir = temp_dir("apply");
    let load = |extra: &str| {
        crate::config::load(
            format!(
                r#"{{"DataDirectory": "{}", {extra}}}"#,
                dir.join("data").display()
            )
            .as_bytes(),
        )
        .unwrap()
    };
    let first = load(r#""ClaudeCliPath": "/opt/old/claude", "CommandsPerMinute": 30"#);
    let chat = ChatService::open(
        crate::mattermost::api::in_process(kv_api()),
        "bot".into(),
        &first,
        crate::cluster::node::NodeId::solo(),
    )
    .await
    .expect("opens");
    assert_eq!(chat.launcher.env().cli_path, Path::new("/opt/old/claude"));
    let saved = crate::config::load(
        format!(
            r#"{{"DataDirectory": "{}", "ClaudeCliPath": "/opt/new/claude",
                    "AnthropicApiKey": "sk-new", "IdleTimeoutMinutes": 5,
                    "ApprovalTimeoutMinutes": 2, "CommandsPerMinute": 1}}"#,
            dir.join("elsewhere").display()
        )
        .as_bytes(),
    )
    .unwrap();
    chat.apply_config(&saved);
    let env = chat.launcher.env();
    assert_eq!(env.cli_path, Path::new("/opt/new/claude"));
    assert!(env
        .anthropic
        .contains(&("ANTHROPIC_API_KEY".into(), "sk-new".into())));
    // The CLI's HOME stays in the directory in use.
    assert_eq!(env.home_dir, dir.join("data/home"));
    let sessions = chat.engine.config();
    assert_eq!(sessions.idle_timeout, Duration::from_secs(300));
    assert_eq!(sessions.approval_timeout, Duration::from_secs(120));
    assert!(chat.admit("u1").is_ok());
    assert!(chat.admit("u1").is_err(), "one command per minute now");
    // Saving again with the same limit keeps the buckets.
    chat.apply_config(&saved);
    assert!(chat.admit("u1").is_err());
    chat.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// `/claude start` for real up to the CLI, which is a stand-in that only waits: the bot
/// joins the channel, posts the thread's root (neutralised), and the user's answer is the
/// command's response only, with a link to the thread; the plugin sends no ephemeral post
/// of its own (the server makes one from the response).
#[tokio::test]
async fn start_answers_once_with_the_thread_and_the_bot_joins_first() {
    use crate::mattermost::model::{Channel, ChannelMember};
    use crate::mattermost::rpc_types::*;

    let dir = temp_dir("start");
    let project = dir.join("root/proj @channel");
    std::fs::create_dir_all(&project).unwrap();
    let config = quiet_cli_config(&dir, serde_json::json!({}));
    let calls = Arc::new(Mutex::new(Vec::<String>::new()));
    let posts = Arc::new(Mutex::new(Vec::<Post>::new()));
    let (c1, c2, c3, c4, c5) = (
        calls.clone(),
        calls.clone(),
        calls.clone(),
        calls.clone(),
        calls.clone(),
    );
    let p1 = posts.clone();
    let server = kv_api()
        .method("Plugin.GetChannelMember", move |a: TwoStringArgs| {
            c1.lock().unwrap().push(format!("GetChannelMember {}", a.b));
            // The user is a member, the bot is not yet.
            let member = a.b == "u1";
            async move {
                Ok::<_, String>(GetChannelMemberReturns {
                    a: member.then(ChannelMember::default),
                    b: (!member).then(|| crate::mattermost::model::AppError {
                        status_code: 404,
                        ..Default::default()
                    }),
                })
            }
        })
        .method("Plugin.GetChannel", move |a: StringArgs| {
            c2.lock().unwrap().push("GetChannel".into());
            async move {
                Ok::<_, String>(GetChannelReturns {
                    a: Some(Channel {
                        id: a.a,
                        team_id: "t1".into(),
                        r#type: "O".into(),
                        ..Default::default()
                    }),
                    b: None,
                })
            }
        })
        .method("Plugin.AddChannelMember", move |a: TwoStringArgs| {
            c3.lock().unwrap().push(format!("AddChannelMember {}", a.b));
            async {
                Ok::<_, String>(GetChannelMemberReturns {
                    a: Some(ChannelMember::default()),
                    b: None,
                })
            }
        })
        .method("Plugin.CreatePost", move |a: PostArgs| {
            c4.lock().unwrap().push("CreatePost".into());
            let mut post = a.a.unwrap_or_default();
            post.id = "root1".into();
            p1.lock().unwrap().push(post.clone());
            async move {
                Ok::<_, String>(PostReturns {
                    a: Some(post),
                    b: None,
                })
            }
        })
        .method("Plugin.SendEphemeralPost", move |a: EphemeralPostArgs| {
            c5.lock().unwrap().push("SendEphemeralPost".into());
            async move { Ok::<_, String>(EphemeralPostReturns { a: a.b }) }
        });
    let chat = ChatService::open(
        crate::mattermost::api::in_process(server),
        "bot".into(),
        &config,
        crate::cluster::node::NodeId::solo(),
    )
    .await
    .expect("opens");
    let answer = chat
        .execute(
            &config,
            &CommandArgs {
                command: format!("/claude start \"{}\"", project.display()),
                channel_id: "c1".into(),
                user_id: "u1".into(),
                team_id: "t1".into(),
                site_url: "https://chat.example.com/".into(),
                ..Default::default()
            },
        )
        .await;
    chat.shutdown().await;
    assert_eq!(answer.response_type, "ephemeral");
    let canonical = std::fs::canonicalize(&project).unwrap();
    // The answer passed the neutraliser: the directory's `@channel` is inert.
    assert_eq!(
            answer.text,
            format!(
                "Session started in `{}`. Its thread: https://chat.example.com/_redirect/pl/root1 (reply there to talk to Claude).",
                canonical.display().to_string().replace("@channel", "@\u{200D}channel")
            )
        );
    assert_eq!(
        calls.lock().unwrap().clone(),
        [
            "GetChannelMember u1",
            "GetChannelMember bot",
            "GetChannel",
            "AddChannelMember bot",
            "CreatePost",
            // Whether the answer is for a direct channel with the bot.
            "GetChannel"
        ]
    );
    // The root post names the path, whose `@channel` is inert.
    let root = posts.lock().unwrap()[0].message.clone();
    assert!(root.contains("proj @\u{200D}channel"), "{root}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_env_always_disables_telemetry() {
    let config = crate::config::load(
        br#"{"AnthropicApiKey": "sk-1", "AnthropicBaseUrl": "http://127.0.0.1:1"}"#,
    )
    .unwrap();
    let env = cli_env(&config, Path::new("/data"));
    assert!(env.disable_telemetry && env.disable_autoupdater && env.disable_nonessential_traffic);
    assert_eq!(env.home_dir, Path::new("/data/home"));
    assert!(env
        .anthropic
        .contains(&("ANTHROPIC_BASE_URL".into(), "http://127.0.0.1:1".into())));
    assert!(env
        .anthropic
        .contains(&("ANTHROPIC_API_KEY".into(), "sk-1".into())));
}

/// An answer that echoes a 100 KB argument, a bidi override and a link stays one post long
/// and shows them inert.
#[test]
fn command_answers_pass_the_neutraliser() {
    let hostile = format!(
        "x\u{202E}[see](http://evil.example) @all {}",
        "y".repeat(100_000)
    );
    let answer = ephemeral(format!("`{hostile}` is not under an allowed project root")).text;
    assert!(answer.chars().count() <= super::super::render::POST_MAX_CHARS);
    assert!(answer.contains("[U+202E]") && !answer.contains('\u{202E}'));
    assert!(answer.contains("]\\(http") && answer.contains("@\u{200D}all"));
    assert!(answer.ends_with("more characters not shown)"));
    let click = ephemeral_json(&hostile);
    assert!(click["ephemeral_text"].as_str().unwrap().chars().count() <= 16_383);
}

/// A 9 MB thread and a 1 MB file become at most MaxContextKB of context each, and the
/// answers say what was left out.
#[tokio::test]
async fn context_is_cut_at_the_setting_with_a_message() {
    use crate::mattermost::model::{Channel, ChannelMember, PostList, User};
    use crate::mattermost::rpc_types::*;

    let dir = temp_dir("context");
    let project = dir.join("root/proj");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("big.txt"), "line of text\n".repeat(80_000)).unwrap();
    let config = quiet_cli_config(&dir, serde_json::json!({"MaxContextKB": 16}));
    // 90 posts of 100 KB: a 9 MB thread.
    let thread: std::collections::BTreeMap<String, Post> = (0..90)
        .map(|i| {
            let post = Post {
                id: format!("t{i:02}"),
                channel_id: "c1".into(),
                user_id: "u1".into(),
                create_at: i,
                message: format!("{i:02}{}", "z".repeat(100_000)),
                ..Default::default()
            };
            (post.id.clone(), post)
        })
        .collect();
    let server = kv_api()
        .method("Plugin.GetChannelMember", |_: TwoStringArgs| async {
            Ok::<_, String>(GetChannelMemberReturns {
                a: Some(ChannelMember::default()),
                b: None,
            })
        })
        .method("Plugin.GetChannel", |a: StringArgs| async move {
            Ok::<_, String>(GetChannelReturns {
                a: Some(Channel {
                    id: a.a,
                    r#type: "O".into(),
                    ..Default::default()
                }),
                b: None,
            })
        })
        .method("Plugin.CreatePost", |a: PostArgs| async move {
            let mut post = a.a.unwrap_or_default();
            post.id = "root1".into();
            Ok::<_, String>(PostReturns {
                a: Some(post),
                b: None,
            })
        })
        .method("Plugin.GetPostThread", move |_: StringArgs| {
            let posts = thread.clone();
            async move {
                Ok::<_, String>(GetPostThreadReturns {
                    a: Some(PostList {
                        posts: Some(posts),
                        ..Default::default()
                    }),
                    b: None,
                })
            }
        })
        .method(
            "Plugin.HasPermissionToChannel",
            |_: HasPermissionToChannelArgs| async { Ok::<_, String>(BoolReturns { a: true }) },
        )
        .method("Plugin.GetUser", |a: StringArgs| async move {
            Ok::<_, String>(GetUserReturns {
                a: Some(User {
                    id: a.a,
                    username: "alice".into(),
                    ..Default::default()
                }),
                b: None,
            })
        });
    let chat = ChatService::open(
        crate::mattermost::api::in_process(server),
        "bot".into(),
        &config,
        crate::cluster::node::NodeId::solo(),
    )
    .await
    .expect("opens");
    let run = |command: String| {
        let (chat, config) = (chat.clone(), config.clone());
        async move {
            chat.execute(
                &config,
                &CommandArgs {
                    command,
                    channel_id: "c1".into(),
                    user_id: "u1".into(),
                    team_id: "t1".into(),
                    ..Default::default()
                },
            )
            .await
            .text
        }
    };
    run(format!("/claude start {}", project.display())).await;
    let thread_answer = run("/claude context thread t00".into()).await;
    let file_answer = run("/claude context file big.txt".into()).await;
    let blocks = chat
        .state
        .lock()
        .unwrap()
        .context
        .values()
        .next()
        .cloned()
        .unwrap();
    chat.shutdown().await;
    assert!(
        thread_answer.contains("90 posts, 8.6 MB")
            && thread_answer.contains("cut at the context limit of 16 KB (MaxContextKB)")
            && thread_answer.contains("89 later post(s) and the end of the last one added"),
        "{thread_answer}"
    );
    assert!(
        file_answer.starts_with("The first 16 KB of `big.txt` (1015 KB) were added"),
        "{file_answer}"
    );
    assert_eq!(blocks.len(), 2);
    for block in &blocks {
        assert!(block.len() <= 16 * 1024 + 200, "{}", block.len());
    }
}

/// openapi.json's `Session` is exactly what a session view serializes to, its worktree
/// included.
#[test]
fn the_session_schema_is_the_view() {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../../http/v1/openapi.json")).unwrap();
    let schema = &doc["components"]["schemas"]["Session"];
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let view = sessions::SessionView {
        id: "s1".into(),
        channel_id: "c1".into(),
        owner_id: "u1".into(),
        project_path: "/data/worktrees/c1-1".into(),
        model: None,
        permission_mode: None,
        state: crate::sessions::SessionState::Idle,
        created_at: 0,
        updated_at: 0,
        root_post_id: None,
        worktree: Some(worktrees::WorktreeView {
            path: "/data/worktrees/c1-1".into(),
            branch: "claude/town-1".into(),
            repository: "/srv/repo".into(),
            removed: false,
        }),
        queued_prompts: 0,
        queued: Vec::new(),
        pending_approvals: 0,
        last_seq: 0,
    };
    let json = serde_json::to_value(&view).unwrap();
    assert_eq!(keys(&json), keys(&schema["properties"]));
    assert_eq!(
        keys(&json["worktree"]),
        keys(&schema["properties"]["worktree"]["properties"])
    );
}

/// A session whose worktree `stop --clean` is removing: nothing that would run it there
/// (prompt, mode, model, context) passes the gate, while status, history and stop do; a
/// removed worktree is refused as such.
#[test]
fn a_worktree_being_cleaned_refuses_what_would_run_the_session() {
    use crate::chat::authz::Action;
    let config = Config {
        allowed_project_roots: vec![PathBuf::from("/")],
        ..Config::default()
    };
    let record = crate::store::WorktreeRecord {
        session_id: "s1".into(),
        repository: "/repo".into(),
        path: "/data/worktrees/c1-1".into(),
        branch: "claude/c1".into(),
        created_at: 1,
        removed_at: None,
    };
    let mut info = SessionInfo {
        channel_id: "c1".into(),
        owner_id: "u1".into(),
        project_path: record.path.clone(),
        root_id: String::new(),
        worktree: Some(record.clone()),
        cleaning: true,
    };
    let refusal = |info: &SessionInfo, action| {
        authorize::session_refusal(&config, action, info).map(|e| e.to_string())
    };
    for action in [
        Action::Prompt,
        Action::Mode,
        Action::Model,
        Action::ContextFile,
    ] {
        let said = refusal(&info, action).unwrap_or_default();
        assert!(said.contains("is being removed"), "{action:?}: {said}");
    }
    for action in [Action::Status, Action::History, Action::Stop] {
        assert_eq!(refusal(&info, action), None, "{action:?}");
    }
    info.cleaning = false;
    assert_eq!(refusal(&info, Action::Prompt), None);
    info.worktree = Some(crate::store::WorktreeRecord {
        removed_at: Some(2),
        ..record
    });
    assert!(refusal(&info, Action::Prompt).is_some_and(|t| t.contains("was removed")));
}

/// A KV store whose lease keys fail (`fail_leases`) or answer like an empty store.
fn lease_kv(fail_leases: bool) -> crate::rpc::netrpc::Server {
    use crate::mattermost::model::AppError;
    use crate::mattermost::rpc_types::*;
    crate::rpc::netrpc::Server::new()
        .method("Plugin.KVGet", move |a: StringArgs| async move {
            let down = fail_leases && a.a.starts_with("lease_");
            Ok::<_, String>(KvGetReturns {
                a: Vec::new(),
                b: down.then(|| AppError {
                    message: "database is down".into(),
                    status_code: 500,
                    ..Default::default()
                }),
            })
        })
        .method("Plugin.KVCompareAndSet", |_: KvCompareAndSetArgs| async {
            Ok::<_, String>(BoolAppErrorReturns { a: true, b: None })
        })
}

/// An id from a request that no stored session has takes no lease (nothing would ever release
/// it, and its renewals would run for ever), however many are tried.
#[tokio::test]
async fn an_unknown_session_id_takes_no_lease() {
    let dir = temp_dir("bogus-lease");
    let config = quiet_cli_config(&dir, serde_json::json!({}));
    let node = crate::cluster::node::NodeId {
        id: "node-a".into(),
        clustered: true,
    };
    let chat = ChatService::open(
        crate::mattermost::api::in_process(lease_kv(false)),
        "bot".into(),
        &config,
        node,
    )
    .await
    .expect("opens");
    let bogus = "no-such-session-0001";
    assert_eq!(chat.route_session(bogus).await, Route::Local);
    let held = chat.ownership.leases.holds(bogus);
    chat.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        held, None,
        "a lease was taken for a session that does not exist"
    );
}

/// A single server whose KV store fails while it opens does not open without the sessions it
/// stored (it would run the whole run without them): it fails, as it does without its signing
/// secret, and the admin sees why.
#[tokio::test]
async fn a_kv_store_failing_at_opening_fails_the_opening_rather_than_lose_a_session() {
    let dir = temp_dir("kv-down-lease");
    let config = quiet_cli_config(&dir, serde_json::json!({}));
    stored_session(&dir, "idle").await;
    let opened = ChatService::open(
        crate::mattermost::api::in_process(lease_kv(true)),
        "bot".into(),
        &config,
        crate::cluster::node::NodeId::solo(),
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    let Err(e) = opened else {
        panic!("opened without its stored session");
    };
    assert!(matches!(e, OpenError::Claim(_)), "{e}");
    assert!(e.to_string().contains("database is down"), "{e}");
}

/// The KV store lost the leases (reset, or a record deleted by hand): the fence would restart
/// at 1 below the one the store saw, and the store would refuse it for ever. The lease is taken
/// above the store's fence instead, and the stored session is recovered.
#[tokio::test]
async fn a_kv_store_reset_does_not_lock_a_session_out() {
    let dir = temp_dir("kv-reset");
    let config = quiet_cli_config(&dir, serde_json::json!({}));
    {
        let store = stored_session(&dir, "stopped").await;
        store.claim("s1", "solo-old", 5).await.expect("claimed");
    }
    let chat = ChatService::open(
        crate::mattermost::api::in_process(lease_kv(false)),
        "bot".into(),
        &config,
        crate::cluster::node::NodeId::solo(),
    )
    .await
    .expect("opens although the KV store has no lease");
    let held = chat.ownership.leases.holds("s1");
    let recovered = chat.engine().get("s1").is_some();
    chat.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(held, Some(6));
    assert!(recovered, "the stored session has an actor");
}

/// On a single server a KV outage longer than the lease (a database failover) does not cost the
/// sessions: nobody else can run them, so the session is served all along and its lease taken
/// back once the store answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_server_keeps_its_sessions_through_a_kv_outage() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static DOWN: AtomicBool = AtomicBool::new(false);
    fn down() -> crate::mattermost::model::AppError {
        crate::mattermost::model::AppError {
            message: "database is down".into(),
            status_code: 500,
            ..Default::default()
        }
    }
    let kv = {
        use crate::mattermost::rpc_types::*;
        crate::rpc::netrpc::Server::new()
            .method("Plugin.KVGet", |a: StringArgs| async move {
                let fail = DOWN.load(Ordering::SeqCst) && a.a.starts_with("lease_");
                Ok::<_, String>(KvGetReturns {
                    a: Vec::new(),
                    b: fail.then(down),
                })
            })
            .method(
                "Plugin.KVCompareAndSet",
                |a: KvCompareAndSetArgs| async move {
                    let fail = DOWN.load(Ordering::SeqCst) && a.a.starts_with("lease_");
                    Ok::<_, String>(BoolAppErrorReturns {
                        a: !fail,
                        b: fail.then(down),
                    })
                },
            )
    };
    let dir = temp_dir("kv-outage");
    let config = quiet_cli_config(&dir, serde_json::json!({}));
    {
        let store = stored_session(&dir, "idle").await;
        store.set_root_post("s1", "root1").await.unwrap();
    }
    let timing = crate::cluster::lease::LeaseTiming::for_lease(std::time::Duration::from_secs(6));
    let chat = ChatService::open_timed(
        crate::mattermost::api::in_process(kv),
        "bot".into(),
        &config,
        crate::cluster::node::NodeId::solo(),
        timing,
    )
    .await
    .expect("opens");
    assert!(chat.session_by_id("s1").is_some(), "recovered at opening");
    DOWN.store(true, Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_secs(7)).await;
    let during = chat.session_by_id("s1").is_some();
    DOWN.store(false, Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let after = chat.session_by_id("s1").is_some();
    let held = chat.ownership.leases.holds("s1");
    chat.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    assert!(during, "the session was dropped during the outage");
    assert!(after, "the session is gone after the outage");
    assert!(held.is_some(), "the lease was not taken back");
}

/// Makes `dir`'s data directory with a store holding one session, `s1` in `c1` owned by alice,
/// in `status` (as an earlier run of the plugin left it); returns that store, which the caller
/// drops before the service opens the directory.
async fn stored_session(dir: &std::path::Path, status: &str) -> crate::store::Store {
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let store = crate::store::Store::open(&dir.join("data").join("claude-code.db"))
        .await
        .expect("store");
    store
        .insert_session(crate::store::SessionRecord {
            id: "s1".into(),
            channel_id: "c1".into(),
            owner_id: "alice".into(),
            project_path: dir.join("root").display().to_string(),
            cli_session_id: None,
            model: None,
            permission_mode: None,
            status: status.into(),
            created_at: 1,
            updated_at: 1,
        })
        .await
        .expect("insert");
    store
}
