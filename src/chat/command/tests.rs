use super::*;

const ALL_SUBS: [Sub; 12] = [
    Sub::Start,
    Sub::Stop,
    Sub::Status,
    Sub::Ask,
    Sub::Interrupt,
    Sub::Context,
    Sub::Files,
    Sub::File,
    Sub::Mode,
    Sub::Model,
    Sub::History,
    Sub::Help,
];

fn ok(line: &str) -> ChatCommand {
    parse(line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

fn err(line: &str) -> CommandError {
    match parse(line) {
        Ok(c) => panic!("{line:?} parsed as {c:?}"),
        Err(e) => e,
    }
}

#[test]
fn table_and_parser_agree() {
    // Every Sub has exactly one row; every row's example parses back to it.
    for sub in ALL_SUBS {
        assert_eq!(
            SUBCOMMANDS.iter().filter(|s| s.sub == sub).count(),
            1,
            "{sub:?}"
        );
    }
    assert_eq!(SUBCOMMANDS.len(), ALL_SUBS.len());
    for row in SUBCOMMANDS {
        assert_eq!(ok(row.example).subcommand(), row.sub, "{}", row.example);
        assert!(row.example.starts_with(&format!("/{TRIGGER} {}", row.name)));
        // The name alone is either valid or an error that names the row.
        if let Err(e) = parse(&format!("/claude {}", row.name)) {
            assert!(e.to_string().contains(row.name), "{e}");
        }
    }
}

#[test]
fn tree_and_table_agree() {
    let tree = autocomplete_data();
    let tree_names: Vec<&str> = tree
        .sub_commands
        .iter()
        .map(|s| s.trigger.as_str())
        .collect();
    let table_names: Vec<&str> = SUBCOMMANDS.iter().map(|s| s.name).collect();
    assert_eq!(tree_names, table_names);
    // Every tree name is parsed as its subcommand, never as a prompt.
    for node in &tree.sub_commands {
        let parsed = parse(&format!("/claude {}", node.trigger));
        if let Ok(ChatCommand::Ask { prompt }) = &parsed {
            assert_eq!(node.trigger, "ask", "{prompt}");
        }
    }
    // The context kinds in the tree are the ones the parser accepts.
    let context = tree
        .sub_commands
        .iter()
        .find(|s| s.trigger == "context")
        .unwrap();
    let kinds: Vec<&str> = context
        .sub_commands
        .iter()
        .map(|s| s.trigger.as_str())
        .collect();
    assert_eq!(kinds, ["thread", "file"]);
    assert!(matches!(
        ok("/claude context thread"),
        ChatCommand::ContextThread { .. }
    ));
    assert!(matches!(
        ok("/claude context file a"),
        ChatCommand::ContextFile { .. }
    ));
    // The mode choices are exactly the user modes.
    let mode = tree
        .sub_commands
        .iter()
        .find(|s| s.trigger == "mode")
        .unwrap();
    let Any::AutocompleteStaticList(list) = &mode.arguments[0].data else {
        panic!("mode is a static list")
    };
    for item in &list.possible_arguments {
        assert!(parse_permission_mode(&item.item).is_some(), "{}", item.item);
    }
    assert_eq!(list.possible_arguments.len(), USER_PERMISSION_MODES.len());
}

#[test]
fn valid_commands() {
    use ChatCommand::*;
    let start = |path: &str, model: Option<&str>, mode: Option<PermissionMode>| Start {
        path: path.into(),
        model: model.map(Into::into),
        mode,
        worktree: None,
    };
    let table: Vec<(&str, ChatCommand)> = vec![
        ("/claude", Help),
        ("  /claude   ", Help),
        ("/claude help", Help),
        ("/claude help start", Help),
        ("/claude HELP", Help),
        ("/claude start /srv/api", start("/srv/api", None, None)),
        ("start /srv/api", start("/srv/api", None, None)),
        (
            "/claude start \"/srv/my project\"",
            start("/srv/my project", None, None),
        ),
        (
            "/claude start '/srv/it''s here'",
            start("/srv/it''s here", None, None),
        ),
        ("/claude start /srv/it's", start("/srv/it's", None, None)),
        (
            "/claude start /srv/api --model opus --mode plan",
            start("/srv/api", Some("opus"), Some(PermissionMode::Plan)),
        ),
        (
            "/claude start --mode=acceptEdits /srv/api --model=claude-opus-4-1",
            start(
                "/srv/api",
                Some("claude-opus-4-1"),
                Some(PermissionMode::AcceptEdits),
            ),
        ),
        (
            "/claude Start /srv/api --mode ACCEPTEDITS",
            start("/srv/api", None, Some(PermissionMode::AcceptEdits)),
        ),
        ("/claude stop", Stop(Cleanup::Keep)),
        ("/claude status", Status),
        ("/claude interrupt", Interrupt),
        ("/claude history", History),
        (
            "/claude ask  why is   it \"slow\"? ",
            Ask {
                prompt: "why is   it \"slow\"?".into(),
            },
        ),
        (
            "/claude fix the flaky test\nin auth",
            Ask {
                prompt: "fix the flaky test\nin auth".into(),
            },
        ),
        (
            "/claude 'unclosed quote in a prompt",
            Ask {
                prompt: "'unclosed quote in a prompt".into(),
            },
        ),
        (
            "/claudette hi",
            Ask {
                prompt: "/claudette hi".into(),
            },
        ),
        ("/claude context thread", ContextThread { permalink: None }),
        (
            "/claude context thread https://chat.example.com/team/pl/abc123",
            ContextThread {
                permalink: Some("https://chat.example.com/team/pl/abc123".into()),
            },
        ),
        (
            "/claude context file \"docs/read me.md\"",
            ContextFile {
                path: "docs/read me.md".into(),
            },
        ),
        ("/claude files", Files { dir: None }),
        ("/claude files \"\"", Files { dir: None }),
        (
            "/claude files src/chat",
            Files {
                dir: Some("src/chat".into()),
            },
        ),
        (
            "/claude file src/lib.rs",
            File {
                path: "src/lib.rs".into(),
            },
        ),
        (
            "/claude file ../../etc/passwd",
            // Parsing is not authorization: files.rs refuses this later.
            File {
                path: "../../etc/passwd".into(),
            },
        ),
        ("/claude mode plan", Mode(PermissionMode::Plan)),
        ("/claude mode default", Mode(PermissionMode::Default)),
        ("/claude model sonnet[1m]", Model("sonnet[1m]".into())),
    ];
    for (line, want) in table {
        assert_eq!(ok(line), want, "{line:?}");
    }
}

#[test]
fn invalid_commands() {
    use CommandError::*;
    let table: Vec<(&str, CommandError)> = vec![
        (
            "/claude start",
            MissingArgument {
                sub: Sub::Start,
                what: "a project path",
            },
        ),
        (
            "/claude start \"\"",
            MissingArgument {
                sub: Sub::Start,
                what: "a project path",
            },
        ),
        (
            "/claude start --model opus",
            MissingArgument {
                sub: Sub::Start,
                what: "a project path",
            },
        ),
        (
            "/claude start /srv/my project",
            TooManyArguments {
                sub: Sub::Start,
                extra: "project".into(),
            },
        ),
        ("/claude start \"/srv/my", UnterminatedQuote { quote: '"' }),
        (
            "/claude start /srv/api --force",
            UnknownOption {
                sub: Sub::Start,
                option: "--force".into(),
            },
        ),
        (
            "/claude start /srv/api --model",
            OptionNeedsValue {
                sub: Sub::Start,
                option: "--model",
            },
        ),
        (
            "/claude start /srv/api --mode=",
            OptionNeedsValue {
                sub: Sub::Start,
                option: "--mode",
            },
        ),
        (
            "/claude start /srv/api --mode plan --mode default",
            RepeatedOption {
                sub: Sub::Start,
                option: "--mode",
            },
        ),
        (
            "/claude start /srv/api --mode bypassPermissions",
            InvalidMode {
                given: "bypassPermissions".into(),
            },
        ),
        (
            "/claude start /srv/api --model '--dangerously-skip-permissions'",
            InvalidModel {
                given: "--dangerously-skip-permissions".into(),
            },
        ),
        (
            "/claude stop the retries from looping",
            UnexpectedArguments {
                sub: Sub::Stop,
                extra: "the retries from looping".into(),
            },
        ),
        (
            "/claude status now",
            UnexpectedArguments {
                sub: Sub::Status,
                extra: "now".into(),
            },
        ),
        (
            "/claude ask   ",
            MissingArgument {
                sub: Sub::Ask,
                what: "a prompt",
            },
        ),
        (
            "/claude context",
            MissingArgument {
                sub: Sub::Context,
                what: "`thread` or `file`",
            },
        ),
        (
            "/claude context file",
            MissingArgument {
                sub: Sub::Context,
                what: "a file path after `file`",
            },
        ),
        (
            "/claude context channel",
            UnknownContextKind {
                given: "channel".into(),
            },
        ),
        (
            "/claude file",
            MissingArgument {
                sub: Sub::File,
                what: "a file path",
            },
        ),
        (
            "/claude file my notes.md",
            TooManyArguments {
                sub: Sub::File,
                extra: "notes.md".into(),
            },
        ),
        (
            "/claude mode",
            MissingArgument {
                sub: Sub::Mode,
                what: "a permission mode",
            },
        ),
        (
            "/claude mode yolo",
            InvalidMode {
                given: "yolo".into(),
            },
        ),
        (
            "/claude model",
            MissingArgument {
                sub: Sub::Model,
                what: "a model name",
            },
        ),
        (
            "/claude model 'my model'",
            InvalidModel {
                given: "my model".into(),
            },
        ),
    ];
    for (line, want) in table {
        assert_eq!(err(line), want, "{line:?}");
    }
}

#[test]
fn worktree_and_clean_options() {
    let start = |path: &str, branch: Option<&str>| ChatCommand::Start {
        path: path.into(),
        model: None,
        mode: None,
        worktree: Some(WorktreeRequest {
            branch: branch.map(Into::into),
        }),
    };
    for (line, want) in [
        ("/claude start /srv/api --worktree", start("/srv/api", None)),
        (
            "/claude start /srv/api --worktree feature/login",
            start("/srv/api", Some("feature/login")),
        ),
        (
            "/claude start /srv/api --worktree=fix-1",
            start("/srv/api", Some("fix-1")),
        ),
        // A path or an option after `--worktree` is not its branch.
        ("/claude start --worktree /srv/api", start("/srv/api", None)),
        (
            "/claude start --worktree \"/srv/my api\"",
            start("/srv/my api", None),
        ),
    ] {
        assert_eq!(ok(line), want, "{line}");
    }
    let tree = autocomplete_data();
    let start_args = &tree.sub_commands[0].arguments;
    assert!(start_args
        .iter()
        .any(|a| a.name == "worktree" && !a.required));
    let with_mode = ok("/claude start /srv/api --worktree --mode plan");
    assert!(
        matches!(&with_mode, ChatCommand::Start { worktree: Some(w), mode: Some(PermissionMode::Plan), .. } if w.branch.is_none()),
        "{with_mode:?}"
    );
    assert_eq!(
        ok("/claude stop --clean"),
        ChatCommand::Stop(Cleanup::Remove)
    );
    assert_eq!(
        ok("/claude stop --clean --force"),
        ChatCommand::Stop(Cleanup::Discard)
    );
    assert_eq!(
        ok("/claude STOP --force --clean"),
        ChatCommand::Stop(Cleanup::Discard)
    );

    assert_eq!(err("/claude stop --force"), CommandError::ForceWithoutClean);
    assert!(err("/claude stop --force")
        .to_string()
        .contains("/claude stop --clean --force"));
    assert_eq!(
        err("/claude stop --clean --clean"),
        CommandError::RepeatedOption {
            sub: Sub::Stop,
            option: "--clean"
        }
    );
    assert_eq!(
        err("/claude stop --purge"),
        CommandError::UnknownOption {
            sub: Sub::Stop,
            option: "--purge".into()
        }
    );
    assert!(err("/claude stop the retries")
        .to_string()
        .contains("/claude ask stop the retries"));
    assert_eq!(
        err("/claude start /srv/api --worktree a --worktree b"),
        CommandError::RepeatedOption {
            sub: Sub::Start,
            option: "--worktree"
        }
    );
    let e = err("/claude start /srv/api --worktree=");
    assert_eq!(
        e,
        CommandError::OptionNeedsValue {
            sub: Sub::Start,
            option: "--worktree"
        }
    );
    assert!(e.to_string().contains("--worktree feature/login"), "{e}");
    // Two words after the option: the branch, then one too many.
    assert!(matches!(
        err("/claude start /srv/api --worktree a b"),
        CommandError::TooManyArguments { .. }
    ));
}

#[test]
fn error_messages_say_what_to_type() {
    assert_eq!(
        err("/claude start").to_string(),
        "`/claude start` needs a project path, e.g. `/claude start /srv/projects/api`"
    );
    assert_eq!(
        err("/claude stop it now").to_string(),
        "`/claude stop` takes no arguments but `--clean` and `--force`. To send this as a \
         prompt, type `/claude ask stop it now`"
    );
    let e = err("/claude start /srv/my project").to_string();
    assert!(e.contains("quotes"), "{e}");
    assert!(err("/claude mode yolo")
        .to_string()
        .contains("`acceptEdits`"));
    // Every message suggests a `/claude …` line to type.
    for line in [
        "/claude start \"x",
        "/claude start x --nope",
        "/claude start x --model",
        "/claude start x --model a --model b",
        "/claude model 'a b'",
        "/claude context channel",
        "/claude ask",
    ] {
        let e = err(line).to_string();
        assert!(e.contains("`/claude "), "{line}: {e}");
    }
}

#[test]
fn help_lists_every_subcommand() {
    let h = help_text();
    for row in SUBCOMMANDS {
        assert!(
            h.contains(&format!("`/claude {}", row.name)),
            "{}",
            row.name
        );
    }
}

#[test]
fn model_names() {
    for good in [
        "opus",
        "sonnet[1m]",
        "claude-opus-4-1-20250805",
        "us.anthropic.claude-3:0",
    ] {
        assert!(is_valid_model_name(good), "{good}");
    }
    for bad in ["", "-x", "a b", "a;b", "a$(b)", &"a".repeat(129)] {
        assert!(!is_valid_model_name(bad), "{bad}");
    }
}

/// A command whose bytes were not UTF-8 (the decoder replaced them) gets a clear answer.
#[test]
fn a_command_that_is_not_text_is_refused_clearly() {
    let err = parse("/claude start /srv/\u{FFFD}x").unwrap_err();
    assert_eq!(err, CommandError::NotText);
    assert!(err.to_string().contains("not UTF-8 text"), "{err}");
}
