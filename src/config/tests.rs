use super::*;

fn roots(c: &Config) -> Vec<&str> {
    c.allowed_project_roots
        .iter()
        .map(|p| p.to_str().unwrap())
        .collect()
}

#[test]
fn valid_configs() {
    let c = load(b"").unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(load(b"null").unwrap(), Config::default());
    assert_eq!(load(b"{}").unwrap(), Config::default());
    let c = load(
        br#"{"allowedprojectroots": " /srv/a, /srv/b/\n\n/srv/a ", "ClaudeCliPath": "/opt/claude/bin/claude",
             "AnthropicApiKey": " sk-ant-123 ", "other": 5}"#,
    )
    .unwrap();
    assert_eq!(roots(&c), ["/srv/a", "/srv/b"]);
    assert_eq!(c.claude_cli_path, "/opt/claude/bin/claude");
    assert_eq!(
        c.anthropic_api_key.as_ref().map(Secret::expose),
        Some("sk-ant-123")
    );
    let c = load(br#"{"ClaudeCliPath": "claude-beta", "AnthropicApiKey": null}"#).unwrap();
    assert_eq!(c.claude_cli_path, "claude-beta");
    assert_eq!(c.anthropic_api_key, None);
}

#[test]
fn invalid_configs() {
    let table: &[(&[u8], ConfigError)] = &[
        (b"[1]", ConfigError::NotJson("got [1]".into())),
        (
            br#"{"AllowedProjectRoots": 3}"#,
            ConfigError::NotAString {
                key: KEY_ALLOWED_PROJECT_ROOTS,
            },
        ),
        (
            br#"{"AllowedProjectRoots": "/srv/a,srv/b"}"#,
            ConfigError::RootNotAbsolute {
                root: "srv/b".into(),
            },
        ),
        (
            br#"{"AllowedProjectRoots": "/srv/../etc"}"#,
            ConfigError::RootNotNormal {
                root: "/srv/../etc".into(),
            },
        ),
        (
            br#"{"AllowedProjectRoots": "/srv/./a"}"#,
            ConfigError::RootNotNormal {
                root: "/srv/./a".into(),
            },
        ),
        (
            br#"{"AllowedProjectRoots": "/"}"#,
            ConfigError::RootIsSlash { root: "/".into() },
        ),
        (
            br#"{"ClaudeCliPath": "bin/claude"}"#,
            ConfigError::CliPathRelative {
                path: "bin/claude".into(),
            },
        ),
        (
            br#"{"ClaudeCliPath": "/bin/cl\u0000aude"}"#,
            ConfigError::ControlCharacters {
                key: KEY_CLAUDE_CLI_PATH,
            },
        ),
        (
            br#"{"AnthropicApiKey": "sk ant"}"#,
            ConfigError::ApiKeyWhitespace,
        ),
    ];
    for (input, want) in table {
        assert_eq!(
            load(input).as_ref(),
            Err(want),
            "{}",
            String::from_utf8_lossy(input)
        );
    }
    assert!(matches!(load(b"{"), Err(ConfigError::NotJson(_))));
}

#[test]
fn secrets_stay_out_of_debug() {
    let c = load(br#"{"AnthropicApiKey": "sk-ant-secret"}"#).unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("sk-ant-secret"), "{dbg}");
    assert!(dbg.contains("redacted"));
}

#[test]
fn new_settings_valid() {
    let c = load(
        br#"{"DefaultModel": " opus ", "DefaultPermissionMode": "acceptEdits",
             "WhoCanStart": "@Alice, team:platform\n@bob, @alice", "WhoCanApprove": "Members",
             "MaxConcurrentSessions": 12, "IdleTimeoutMinutes": "0",
             "ApprovalTimeoutMinutes": 30.0, "CommandsPerMinute": " 7 ",
             "PostUpdateIntervalSeconds": 5, "DataDirectory": "/var/lib/cc/",
             "ApprovalReminderMinutes": 0, "MaxPromptFiles": "0", "MaxPromptFileMB": 20}"#,
    )
    .unwrap();
    assert_eq!(c.default_model.as_deref(), Some("opus"));
    assert_eq!(c.default_permission_mode, PermissionMode::AcceptEdits);
    assert_eq!(
        c.who_can_start,
        WhoCanStart::Only(vec![
            Principal::User("alice".into()),
            Principal::Team("platform".into()),
            Principal::User("bob".into()),
        ])
    );
    assert_eq!(c.who_can_approve, WhoCanApprove::Members);
    assert_eq!(c.max_concurrent_sessions, 12);
    assert_eq!(c.idle_timeout, None);
    assert_eq!(c.approval_timeout, Duration::from_secs(1800));
    assert_eq!(c.commands_per_minute, 7);
    assert_eq!(c.post_update_interval, Duration::from_secs(5));
    assert_eq!(c.approval_reminder, None);
    assert_eq!(c.data_directory.as_deref(), Some(Path::new("/var/lib/cc")));
    assert_eq!(c.max_prompt_files, 0);
    assert_eq!(c.max_prompt_file_bytes, 20 * 1024 * 1024);

    let d = load(br#"{"WhoCanStart": "everyone", "WhoCanApprove": "owner"}"#).unwrap();
    assert_eq!(d, Config::default());
    assert_eq!(d.idle_timeout, Some(Duration::from_secs(3600)));
    assert_eq!(d.approval_timeout, Duration::from_secs(600));
    assert_eq!(d.commands_per_minute, 30);
    assert_eq!(d.max_concurrent_sessions, 5);
    assert_eq!(d.post_update_interval, Duration::from_secs(2));
    assert_eq!(d.approval_reminder, Some(Duration::from_secs(300)));
    assert_eq!(d.max_prompt_files, 5);
    assert_eq!(d.max_prompt_file_bytes, 5 * 1024 * 1024);
    let r = load(br#"{"ApprovalReminderMinutes": "15"}"#).unwrap();
    assert_eq!(r.approval_reminder, Some(Duration::from_secs(900)));
}

#[test]
fn who_can_start_allows() {
    let only = WhoCanStart::Only(vec![
        Principal::User("alice".into()),
        Principal::Team("platform".into()),
    ]);
    assert!(only.allows("alice", &[]));
    assert!(only.allows("Alice", &["other"]));
    assert!(only.allows("carol", &["other", "platform"]));
    assert!(!only.allows("carol", &["other"]));
    assert!(WhoCanStart::Everyone.allows("anyone", &[]));
}

#[test]
fn zero_commands_per_minute_turns_the_limit_off() {
    let c = load(br#"{"CommandsPerMinute": 0}"#).unwrap();
    assert_eq!(c.commands_per_minute, 0);
}

#[test]
fn new_settings_invalid() {
    let range = |key, min, max, value| ConfigError::OutOfRange {
        key,
        min,
        max,
        value,
    };
    let table: &[(&[u8], ConfigError)] = &[
        (
            br#"{"DefaultModel": "my model"}"#,
            ConfigError::InvalidModel {
                value: "my model".into(),
            },
        ),
        (
            br#"{"DefaultModel": "--dangerously-skip-permissions"}"#,
            ConfigError::InvalidModel {
                value: "--dangerously-skip-permissions".into(),
            },
        ),
        (
            br#"{"DefaultPermissionMode": "bypassPermissions"}"#,
            ConfigError::InvalidPermissionMode {
                value: "bypassPermissions".into(),
            },
        ),
        (
            br#"{"WhoCanStart": "alice"}"#,
            ConfigError::InvalidPrincipal {
                entry: "alice".into(),
            },
        ),
        (
            br#"{"WhoCanStart": "@al"}"#,
            ConfigError::InvalidPrincipal {
                entry: "@al".into(),
            },
        ),
        (
            br#"{"WhoCanStart": "everyone, @alice"}"#,
            ConfigError::InvalidPrincipal {
                entry: "everyone".into(),
            },
        ),
        (
            br#"{"WhoCanStart": "team:a b"}"#,
            ConfigError::InvalidPrincipal {
                entry: "team:a b".into(),
            },
        ),
        (
            br#"{"WhoCanApprove": "anyone"}"#,
            ConfigError::InvalidWhoCanApprove {
                value: "anyone".into(),
            },
        ),
        (
            br#"{"MaxConcurrentSessions": 0}"#,
            range(KEY_MAX_CONCURRENT_SESSIONS, 1, 100, 0),
        ),
        (
            br#"{"MaxConcurrentSessions": "101"}"#,
            range(KEY_MAX_CONCURRENT_SESSIONS, 1, 100, 101),
        ),
        (
            br#"{"IdleTimeoutMinutes": -1}"#,
            range(KEY_IDLE_TIMEOUT_MINUTES, 0, 10_080, -1),
        ),
        (
            br#"{"ApprovalTimeoutMinutes": 0}"#,
            range(KEY_APPROVAL_TIMEOUT_MINUTES, 1, 1_440, 0),
        ),
        (
            br#"{"ApprovalReminderMinutes": 1441}"#,
            range(KEY_APPROVAL_REMINDER_MINUTES, 0, 1_440, 1_441),
        ),
        (
            br#"{"ApprovalReminderMinutes": -1}"#,
            range(KEY_APPROVAL_REMINDER_MINUTES, 0, 1_440, -1),
        ),
        (
            br#"{"CommandsPerMinute": 99999999999}"#,
            range(KEY_COMMANDS_PER_MINUTE, 0, 600, 99_999_999_999),
        ),
        (
            br#"{"PostUpdateIntervalSeconds": 0}"#,
            range(KEY_POST_UPDATE_INTERVAL_SECONDS, 1, 60, 0),
        ),
        (
            br#"{"PostUpdateIntervalSeconds": 61}"#,
            range(KEY_POST_UPDATE_INTERVAL_SECONDS, 1, 60, 61),
        ),
        (
            br#"{"MaxPromptFiles": 11}"#,
            range(KEY_MAX_PROMPT_FILES, 0, 10, 11),
        ),
        (
            br#"{"MaxPromptFileMB": 0}"#,
            range(KEY_MAX_PROMPT_FILE_MB, 1, 50, 0),
        ),
        (
            br#"{"MaxPromptFileMB": 51}"#,
            range(KEY_MAX_PROMPT_FILE_MB, 1, 50, 51),
        ),
        (
            br#"{"CommandsPerMinute": "ten"}"#,
            ConfigError::NotANumber {
                key: KEY_COMMANDS_PER_MINUTE,
                value: "ten".into(),
            },
        ),
        (
            br#"{"IdleTimeoutMinutes": 1.5}"#,
            ConfigError::NotANumber {
                key: KEY_IDLE_TIMEOUT_MINUTES,
                value: "1.5".into(),
            },
        ),
        (
            br#"{"MaxConcurrentSessions": true}"#,
            ConfigError::NotAString {
                key: KEY_MAX_CONCURRENT_SESSIONS,
            },
        ),
        (
            br#"{"DataDirectory": "data"}"#,
            ConfigError::DataDirectoryNotAbsolute {
                path: "data".into(),
            },
        ),
        (
            br#"{"DataDirectory": "/var/../etc"}"#,
            ConfigError::DataDirectoryNotAbsolute {
                path: "/var/../etc".into(),
            },
        ),
    ];
    for (input, want) in table {
        assert_eq!(
            load(input).as_ref(),
            Err(want),
            "{}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn anthropic_base_url() {
    let c = load(br#"{"AnthropicBaseUrl": " http://127.0.0.1:9/v1 "}"#).unwrap();
    assert_eq!(
        c.anthropic_base_url.as_deref(),
        Some("http://127.0.0.1:9/v1")
    );
    assert_eq!(load(b"{}").unwrap().anthropic_base_url, None);
    for bad in ["ftp://x", "api.anthropic.com", "http://a b"] {
        let json = serde_json::json!({ "AnthropicBaseUrl": bad }).to_string();
        assert!(
            matches!(
                load(json.as_bytes()),
                Err(ConfigError::InvalidBaseUrl { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn plugin_json_schema_matches_the_keys() {
    let manifest: serde_json::Value =
        serde_json::from_str(include_str!("../../plugin.json")).unwrap();
    let settings = manifest["settings_schema"]["settings"].as_array().unwrap();
    let keys: Vec<&str> = settings
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            KEY_ALLOWED_PROJECT_ROOTS,
            KEY_CLAUDE_CLI_PATH,
            KEY_ANTHROPIC_API_KEY,
            KEY_ANTHROPIC_BASE_URL,
            KEY_DEFAULT_MODEL,
            KEY_DEFAULT_PERMISSION_MODE,
            KEY_WHO_CAN_START,
            KEY_WHO_CAN_APPROVE,
            KEY_MAX_CONCURRENT_SESSIONS,
            KEY_IDLE_TIMEOUT_MINUTES,
            KEY_APPROVAL_TIMEOUT_MINUTES,
            KEY_APPROVAL_REMINDER_MINUTES,
            KEY_COMMANDS_PER_MINUTE,
            KEY_MAX_CONTEXT_KB,
            KEY_MAX_PROMPT_FILES,
            KEY_MAX_PROMPT_FILE_MB,
            KEY_POST_UPDATE_INTERVAL_SECONDS,
            KEY_DATA_DIRECTORY,
        ]
    );
    // Settings that cannot change under a running plugin (the data directory holds the open
    // store) say that they apply at the next enable; every other one applies to what
    // starts after it is saved (ChatService::apply_config).
    const APPLIES_AT_NEXT_ENABLE: &[&str] = &[KEY_DATA_DIRECTORY];
    const NEXT_ENABLE_NOTE: &str = "applies when the plugin is next enabled";
    for s in settings {
        let help = s["help_text"].as_str().unwrap_or("");
        assert!(!help.is_empty(), "{s}");
        let key = s["key"].as_str().unwrap();
        assert_eq!(
            help.contains(NEXT_ENABLE_NOTE),
            APPLIES_AT_NEXT_ENABLE.contains(&key),
            "{key}: {help}"
        );
        let secret = s["secret"].as_bool().unwrap_or(false);
        assert_eq!(secret, s["key"] == KEY_ANTHROPIC_API_KEY, "{s}");
    }
    // The manifest's defaults, saved as they are, validate to Config::default().
    let defaults: serde_json::Map<String, serde_json::Value> = settings
        .iter()
        .map(|s| (s["key"].as_str().unwrap().to_owned(), s["default"].clone()))
        .collect();
    let bytes = serde_json::to_vec(&defaults).unwrap();
    assert_eq!(load(&bytes).unwrap(), Config::default());
    // Dropdown and radio options are exactly the values validation accepts.
    for s in settings {
        for o in s["options"].as_array().into_iter().flatten() {
            let one = serde_json::json!({ s["key"].as_str().unwrap(): o["value"] });
            assert!(load(one.to_string().as_bytes()).is_ok(), "{o}");
        }
    }
    let modes = settings
        .iter()
        .find(|s| s["key"] == KEY_DEFAULT_PERMISSION_MODE)
        .unwrap()["options"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(modes, crate::chat::command::USER_PERMISSION_MODES.len());
}
