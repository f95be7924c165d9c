//! `/claude …` as typed commands, and the one table of subcommands that the
//! parser, the help text and the autocomplete tree are all built from.
//!
//! Parsing rules, kept deliberately small (nothing here reaches a shell):
//! - Words are separated by whitespace. A word that *starts* with `"` or `'`
//!   runs to the matching quote, which must end the word; that is how a path
//!   with spaces is written. Anywhere else a quote is an ordinary character
//!   (`it's` stays `it's`). There are no escapes and no expansions.
//! - Subcommand names match ASCII case-insensitively (mobile keyboards
//!   capitalise the first letter).
//! - A first word that is not a subcommand makes the whole text a prompt:
//!   `/claude fix the flaky test` is `ask fix the flaky test`. Prompts are
//!   kept verbatim (newlines, quotes), only trimmed.
//! - A subcommand that takes no arguments refuses extra words instead of
//!   ignoring them: `/claude stop the retries from looping` is far more likely
//!   a prompt than a request to end the session, so the user is told to use
//!   `ask`.

use std::fmt;

use crate::claude::args::PermissionMode;
use crate::mattermost::model::{
    Any, AutocompleteArg, AutocompleteData, AutocompleteListItem, AutocompleteStaticListArg,
    AutocompleteTextArg,
};

/// The slash command trigger.
pub const TRIGGER: &str = "claude";

/// The permission modes a user may pick, in the order they are offered.
/// `dontAsk`/`auto` stay out of chat: in a shared channel every tool call
/// should be visible and approvable.
pub const USER_PERMISSION_MODES: [PermissionMode; 3] = [
    PermissionMode::Default,
    PermissionMode::AcceptEdits,
    PermissionMode::Plan,
];

/// Parses one of [`USER_PERMISSION_MODES`] by its CLI spelling
/// (ASCII case-insensitive, so `acceptedits` works too).
pub fn parse_permission_mode(text: &str) -> Option<PermissionMode> {
    USER_PERMISSION_MODES
        .into_iter()
        .find(|m| m.as_str().eq_ignore_ascii_case(text))
}

/// Model names as the CLI accepts them: aliases (`opus`, `sonnet[1m]`) and
/// full ids (`claude-opus-4-1-20250805`, `us.anthropic.claude…:0`). The
/// character set keeps option-looking or whitespace-laden values out of the
/// CLI's argument list.
pub fn is_valid_model_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._[]:/@".contains(c))
}

/// `--worktree [branch]` of `/claude start`: the session works in its own git worktree of the
/// repository, on `branch` (an existing one is checked out), or on a new branch named after the
/// channel when `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorktreeRequest {
    pub branch: Option<String>,
}

/// What `/claude stop` does with the session's worktree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleanup {
    /// Plain `stop`: the worktree stays, so the next prompt resumes in it.
    Keep,
    /// `--clean`: removed, unless it holds uncommitted changes.
    Remove,
    /// `--clean --force`: removed, uncommitted changes discarded.
    Discard,
}

/// What `/claude …` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatCommand {
    Start {
        path: String,
        model: Option<String>,
        mode: Option<PermissionMode>,
        /// `--worktree [branch]`: work in a git worktree of `path` of its own.
        worktree: Option<WorktreeRequest>,
    },
    Stop(Cleanup),
    Status,
    Ask {
        prompt: String,
    },
    Interrupt,
    ContextThread {
        permalink: Option<String>,
    },
    ContextFile {
        path: String,
    },
    Files {
        dir: Option<String>,
    },
    File {
        path: String,
    },
    Mode(PermissionMode),
    Model(String),
    History,
    Help,
}

impl ChatCommand {
    /// The subcommand this command belongs to.
    pub fn subcommand(&self) -> Sub {
        match self {
            ChatCommand::Start { .. } => Sub::Start,
            ChatCommand::Stop(_) => Sub::Stop,
            ChatCommand::Status => Sub::Status,
            ChatCommand::Ask { .. } => Sub::Ask,
            ChatCommand::Interrupt => Sub::Interrupt,
            ChatCommand::ContextThread { .. } | ChatCommand::ContextFile { .. } => Sub::Context,
            ChatCommand::Files { .. } => Sub::Files,
            ChatCommand::File { .. } => Sub::File,
            ChatCommand::Mode(_) => Sub::Mode,
            ChatCommand::Model(_) => Sub::Model,
            ChatCommand::History => Sub::History,
            ChatCommand::Help => Sub::Help,
        }
    }
}

/// The subcommands, one per [`SUBCOMMANDS`] entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    Start,
    Stop,
    Status,
    Ask,
    Interrupt,
    Context,
    Files,
    File,
    Mode,
    Model,
    History,
    Help,
}

/// How a subcommand's argument shows in the autocomplete tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgShape {
    None,
    /// Free text; `required` is false for `[optional]` arguments.
    Text {
        required: bool,
    },
    /// A fixed first word: `(item, help)`.
    Choice(&'static [(&'static str, &'static str)]),
}

/// One row of the subcommand table.
#[derive(Debug, Clone, Copy)]
pub struct Subcommand {
    pub sub: Sub,
    pub name: &'static str,
    /// Usage after the name, as shown in help and autocomplete.
    pub hint: &'static str,
    pub help: &'static str,
    pub arg: ArgShape,
    /// A complete, valid invocation; error messages point at it.
    pub example: &'static str,
}

const CONTEXT_KINDS: &[(&str, &str)] = &[
    ("thread", "Add this thread (or the thread of a permalink)"),
    ("file", "Add a file of the project"),
];

const MODE_CHOICES: &[(&str, &str)] = &[
    ("default", "Ask before edits and commands"),
    (
        "acceptEdits",
        "Edit files without asking; ask before commands",
    ),
    ("plan", "Plan only: read, no changes"),
];

/// The single source of truth for subcommands, in the order help and
/// autocomplete show them.
pub const SUBCOMMANDS: &[Subcommand] = &[
    Subcommand {
        sub: Sub::Start,
        name: "start",
        hint: "<path> [--model M] [--mode default|acceptEdits|plan] [--worktree [branch]]",
        help: "Start a Claude Code session in this channel, working in <path> (with `--worktree`, in a git worktree of its own)",
        arg: ArgShape::Text { required: true },
        example: "/claude start /srv/projects/api",
    },
    Subcommand {
        sub: Sub::Stop,
        name: "stop",
        hint: "[--clean [--force]]",
        help: "Stop this channel's session (`--clean` also removes its worktree)",
        arg: ArgShape::None,
        example: "/claude stop",
    },
    Subcommand {
        sub: Sub::Status,
        name: "status",
        hint: "",
        help: "Show the session's state, model, mode and cost",
        arg: ArgShape::None,
        example: "/claude status",
    },
    Subcommand {
        sub: Sub::Ask,
        name: "ask",
        hint: "<prompt>",
        help: "Send a prompt to the session (`/claude <prompt>` works too)",
        arg: ArgShape::Text { required: true },
        example: "/claude ask why does the login test fail?",
    },
    Subcommand {
        sub: Sub::Interrupt,
        name: "interrupt",
        hint: "",
        help: "Interrupt the running turn",
        arg: ArgShape::None,
        example: "/claude interrupt",
    },
    Subcommand {
        sub: Sub::Context,
        name: "context",
        hint: "thread [permalink] | file <path>",
        help: "Add a thread or a file to the session's context",
        arg: ArgShape::Choice(CONTEXT_KINDS),
        example: "/claude context file src/main.rs",
    },
    Subcommand {
        sub: Sub::Files,
        name: "files",
        hint: "[dir]",
        help: "List files of the project",
        arg: ArgShape::Text { required: false },
        example: "/claude files src",
    },
    Subcommand {
        sub: Sub::File,
        name: "file",
        hint: "<path>",
        help: "Show a file of the project",
        arg: ArgShape::Text { required: true },
        example: "/claude file src/main.rs",
    },
    Subcommand {
        sub: Sub::Mode,
        name: "mode",
        hint: "default|acceptEdits|plan",
        help: "Set the permission mode",
        arg: ArgShape::Choice(MODE_CHOICES),
        example: "/claude mode plan",
    },
    Subcommand {
        sub: Sub::Model,
        name: "model",
        hint: "<model>",
        help: "Set the model",
        arg: ArgShape::Text { required: true },
        example: "/claude model sonnet",
    },
    Subcommand {
        sub: Sub::History,
        name: "history",
        hint: "",
        help: "List this channel's past sessions",
        arg: ArgShape::None,
        example: "/claude history",
    },
    Subcommand {
        sub: Sub::Help,
        name: "help",
        hint: "",
        help: "Show this help",
        arg: ArgShape::None,
        example: "/claude help",
    },
];

impl Sub {
    /// This subcommand's table row.
    pub fn spec(self) -> &'static Subcommand {
        SUBCOMMANDS
            .iter()
            .find(|s| s.sub == self)
            // Enforced by the `table_and_parser_agree` test.
            .expect("every Sub has a SUBCOMMANDS row")
    }
}

/// Why a command line was refused. Display is the ephemeral reply: it says
/// what to type instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// A required argument is missing (`what` names it).
    MissingArgument {
        sub: Sub,
        what: &'static str,
    },
    /// A subcommand that takes no arguments got some.
    UnexpectedArguments {
        sub: Sub,
        extra: String,
    },
    /// More words than the subcommand takes (usually an unquoted path with spaces).
    TooManyArguments {
        sub: Sub,
        extra: String,
    },
    UnterminatedQuote {
        quote: char,
    },
    UnknownOption {
        sub: Sub,
        option: String,
    },
    OptionNeedsValue {
        sub: Sub,
        option: &'static str,
    },
    RepeatedOption {
        sub: Sub,
        option: &'static str,
    },
    /// `stop --force` without `--clean`: force applies to the worktree's removal only.
    ForceWithoutClean,
    InvalidMode {
        given: String,
    },
    InvalidModel {
        given: String,
    },
    UnknownContextKind {
        given: String,
    },
    /// The command held bytes that are not UTF-8 (the decoder put U+FFFD in their place).
    NotText,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let modes = || {
            USER_PERMISSION_MODES
                .iter()
                .map(|m| format!("`{}`", m.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            CommandError::NotText => write!(
                f,
                "The command holds bytes that are not UTF-8 text (shown as \u{FFFD}); type it again without them."
            ),
            CommandError::MissingArgument { sub, what } => {
                let s = sub.spec();
                write!(
                    f,
                    "`/{TRIGGER} {}` needs {what}, e.g. `{}`",
                    s.name, s.example
                )
            }
            CommandError::UnexpectedArguments { sub, extra } => {
                let name = sub.spec().name;
                let takes = match sub {
                    Sub::Stop => "no arguments but `--clean` and `--force`",
                    _ => "no arguments",
                };
                write!(
                    f,
                    "`/{TRIGGER} {name}` takes {takes}. To send this as a prompt, type \
                     `/{TRIGGER} ask {name} {extra}`"
                )
            }
            CommandError::TooManyArguments { sub, extra } => {
                let s = sub.spec();
                write!(
                    f,
                    "`/{TRIGGER} {}` got more than it expects (`{extra}`). Put a path with \
                     spaces in quotes, e.g. `/{TRIGGER} {} \"my project/notes.md\"`; usage: \
                     `/{TRIGGER} {} {}`",
                    s.name, s.name, s.name, s.hint
                )
            }
            CommandError::UnterminatedQuote { quote } => write!(
                f,
                "A {quote} quote is not closed. Close it, e.g. `/{TRIGGER} start \"/srv/my project\"`"
            ),
            CommandError::UnknownOption { sub, option } => {
                let s = sub.spec();
                write!(
                    f,
                    "`/{TRIGGER} {}` has no option `{option}`. Usage: `/{TRIGGER} {} {}`",
                    s.name, s.name, s.hint
                )
            }
            CommandError::OptionNeedsValue { sub, option } => write!(
                f,
                "`{option}` needs a value, e.g. `/{TRIGGER} {} /srv/projects/api {option} {}`",
                sub.spec().name,
                example_value(option)
            ),
            CommandError::RepeatedOption { sub: Sub::Stop, option } => write!(
                f,
                "`{option}` is given twice; keep one, e.g. `/{TRIGGER} stop --clean`"
            ),
            CommandError::RepeatedOption { sub, option } => write!(
                f,
                "`{option}` is given twice; keep one, e.g. `/{TRIGGER} {} /srv/projects/api {option} {}`",
                sub.spec().name,
                example_value(option)
            ),
            CommandError::ForceWithoutClean => write!(
                f,
                "`--force` goes with `--clean`: `/{TRIGGER} stop --clean --force` removes the \
                 session's worktree and discards its uncommitted changes"
            ),
            CommandError::InvalidMode { given } => write!(
                f,
                "`{given}` is not a permission mode. Use one of {}, e.g. `/{TRIGGER} mode plan`",
                modes()
            ),
            CommandError::InvalidModel { given } => write!(
                f,
                "`{given}` is not a model name. Use an alias or a model id, e.g. \
                 `/{TRIGGER} model sonnet` or `/{TRIGGER} model claude-opus-4-1`"
            ),
            CommandError::UnknownContextKind { given } => write!(
                f,
                "`/{TRIGGER} context` adds a `thread` or a `file`, not `{given}`. Type \
                 `/{TRIGGER} context thread` or `/{TRIGGER} context file src/main.rs`"
            ),
        }
    }
}

impl std::error::Error for CommandError {}

/// A value to show in an example of `option`.
fn example_value(option: &str) -> &'static str {
    match option {
        "--mode" => "plan",
        "--worktree" => "feature/login",
        _ => "sonnet",
    }
}

/// Splits `text` into words (see the module doc for the quoting rule).
fn words(text: &str) -> Result<Vec<String>, CommandError> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let first = rest.chars().next().unwrap_or(' ');
        if first == '"' || first == '\'' {
            let body = &rest[1..];
            // The closing quote must end the word; a quote inside a word is literal.
            let close = body.char_indices().find(|&(i, c)| {
                c == first
                    && body[i + 1..]
                        .chars()
                        .next()
                        .is_none_or(|n| n.is_whitespace())
            });
            let Some((i, _)) = close else {
                return Err(CommandError::UnterminatedQuote { quote: first });
            };
            out.push(body[..i].to_owned());
            rest = body[i + 1..].trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            out.push(rest[..end].to_owned());
            rest = rest[end..].trim_start();
        }
    }
    Ok(out)
}

/// Removes the leading `/claude` (if present) from a command line.
fn strip_trigger(line: &str) -> &str {
    let line = line.trim();
    let Some(after) = line.strip_prefix('/').and_then(|l| l.strip_prefix(TRIGGER)) else {
        return line;
    };
    match after.chars().next() {
        None => "",
        Some(c) if c.is_whitespace() => after.trim_start(),
        // `/claudette …` is not ours; keep it whole (it becomes a prompt).
        Some(_) => line,
    }
}

/// Parses a command line as Mattermost passes it (`/claude …`) or the text
/// after the trigger.
pub fn parse(line: &str) -> Result<ChatCommand, CommandError> {
    // Strings from the server are decoded with invalid UTF-8 replaced (see `rpc::gob`): such a
    // command cannot name the path or text its author meant.
    if line.contains('\u{FFFD}') {
        return Err(CommandError::NotText);
    }
    let rest = strip_trigger(line);
    if rest.is_empty() {
        return Ok(ChatCommand::Help);
    }
    let name_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let (name, args) = (&rest[..name_end], rest[name_end..].trim());
    let Some(spec) = SUBCOMMANDS
        .iter()
        .find(|s| s.name.eq_ignore_ascii_case(name))
    else {
        return Ok(ChatCommand::Ask {
            prompt: rest.to_owned(),
        });
    };
    let sub = spec.sub;
    let no_args = |cmd: ChatCommand| {
        if args.is_empty() {
            Ok(cmd)
        } else {
            Err(CommandError::UnexpectedArguments {
                sub,
                extra: args.to_owned(),
            })
        }
    };
    match sub {
        Sub::Start => parse_start(args),
        Sub::Stop => parse_stop(args),
        Sub::Status => no_args(ChatCommand::Status),
        Sub::Interrupt => no_args(ChatCommand::Interrupt),
        Sub::History => no_args(ChatCommand::History),
        // Help is harmless; extra words (`/claude help start`) still show it.
        Sub::Help => Ok(ChatCommand::Help),
        Sub::Ask if args.is_empty() => Err(CommandError::MissingArgument {
            sub,
            what: "a prompt",
        }),
        Sub::Ask => Ok(ChatCommand::Ask {
            prompt: args.to_owned(),
        }),
        Sub::Context => parse_context(args),
        Sub::Files => {
            let dir = at_most_one(sub, words(args)?)?;
            Ok(ChatCommand::Files { dir })
        }
        Sub::File => match at_most_one(sub, words(args)?)? {
            Some(path) => Ok(ChatCommand::File { path }),
            None => Err(CommandError::MissingArgument {
                sub,
                what: "a file path",
            }),
        },
        Sub::Mode => match at_most_one(sub, words(args)?)? {
            None => Err(CommandError::MissingArgument {
                sub,
                what: "a permission mode",
            }),
            Some(m) => parse_permission_mode(&m)
                .map(ChatCommand::Mode)
                .ok_or(CommandError::InvalidMode { given: m }),
        },
        Sub::Model => match at_most_one(sub, words(args)?)? {
            None => Err(CommandError::MissingArgument {
                sub,
                what: "a model name",
            }),
            Some(m) if is_valid_model_name(&m) => Ok(ChatCommand::Model(m)),
            Some(m) => Err(CommandError::InvalidModel { given: m }),
        },
    }
}

/// Zero or one word; an empty quoted word (`""`) counts as none.
fn at_most_one(sub: Sub, words: Vec<String>) -> Result<Option<String>, CommandError> {
    let mut it = words.into_iter();
    let first = it.next().filter(|w| !w.is_empty());
    let extra: Vec<String> = it.collect();
    if extra.is_empty() {
        Ok(first)
    } else {
        Err(CommandError::TooManyArguments {
            sub,
            extra: extra.join(" "),
        })
    }
}

fn parse_start(args: &str) -> Result<ChatCommand, CommandError> {
    let sub = Sub::Start;
    let mut path: Option<String> = None;
    let mut model: Option<String> = None;
    let mut mode: Option<PermissionMode> = None;
    let mut worktree: Option<WorktreeRequest> = None;
    let mut it = words(args)?.into_iter().peekable();
    while let Some(word) = it.next() {
        let (option, inline_value) = match word.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o.to_owned(), Some(v.to_owned())),
            _ => (word.clone(), None),
        };
        let option: &'static str = match option.as_str() {
            "--model" => "--model",
            "--mode" => "--mode",
            "--worktree" => {
                if worktree.is_some() {
                    return Err(CommandError::RepeatedOption {
                        sub,
                        option: "--worktree",
                    });
                }
                // The branch is optional: the next word is one unless it is an option or an
                // absolute path (git refuses a branch name starting with `/` or `-`).
                let branch = match inline_value {
                    Some(v) if v.is_empty() => {
                        return Err(CommandError::OptionNeedsValue {
                            sub,
                            option: "--worktree",
                        })
                    }
                    Some(v) => Some(v),
                    None => it.next_if(|w| !w.is_empty() && !w.starts_with(['-', '/'])),
                };
                worktree = Some(WorktreeRequest { branch });
                continue;
            }
            o if o.starts_with("--") => {
                return Err(CommandError::UnknownOption {
                    sub,
                    option: o.to_owned(),
                })
            }
            _ => {
                if path.is_some() {
                    let extra: Vec<String> = std::iter::once(word).chain(it).collect();
                    return Err(CommandError::TooManyArguments {
                        sub,
                        extra: extra.join(" "),
                    });
                }
                path = Some(word);
                continue;
            }
        };
        let value = match inline_value.or_else(|| it.next()) {
            Some(v) if !v.is_empty() => v,
            _ => return Err(CommandError::OptionNeedsValue { sub, option }),
        };
        if option == "--model" {
            if model.is_some() {
                return Err(CommandError::RepeatedOption { sub, option });
            }
            if !is_valid_model_name(&value) {
                return Err(CommandError::InvalidModel { given: value });
            }
            model = Some(value);
        } else {
            if mode.is_some() {
                return Err(CommandError::RepeatedOption { sub, option });
            }
            mode = Some(
                parse_permission_mode(&value).ok_or(CommandError::InvalidMode {
                    given: value.clone(),
                })?,
            );
        }
    }
    match path.filter(|p| !p.is_empty()) {
        Some(path) => Ok(ChatCommand::Start {
            path,
            model,
            mode,
            worktree,
        }),
        None => Err(CommandError::MissingArgument {
            sub,
            what: "a project path",
        }),
    }
}

/// `stop [--clean [--force]]`. Words that are not options keep today's answer: prose after
/// `stop` is more likely a prompt than a request to stop.
fn parse_stop(args: &str) -> Result<ChatCommand, CommandError> {
    let sub = Sub::Stop;
    let (mut clean, mut force) = (false, false);
    for word in words(args)? {
        let seen = match word.as_str() {
            "--clean" => &mut clean,
            "--force" => &mut force,
            o if o.starts_with("--") => {
                return Err(CommandError::UnknownOption {
                    sub,
                    option: o.to_owned(),
                })
            }
            _ => {
                return Err(CommandError::UnexpectedArguments {
                    sub,
                    extra: args.to_owned(),
                })
            }
        };
        if *seen {
            let option = if word == "--clean" {
                "--clean"
            } else {
                "--force"
            };
            return Err(CommandError::RepeatedOption { sub, option });
        }
        *seen = true;
    }
    match (clean, force) {
        (false, false) => Ok(ChatCommand::Stop(Cleanup::Keep)),
        (true, false) => Ok(ChatCommand::Stop(Cleanup::Remove)),
        (true, true) => Ok(ChatCommand::Stop(Cleanup::Discard)),
        (false, true) => Err(CommandError::ForceWithoutClean),
    }
}

fn parse_context(args: &str) -> Result<ChatCommand, CommandError> {
    let sub = Sub::Context;
    let mut w = words(args)?.into_iter();
    let Some(kind) = w.next() else {
        return Err(CommandError::MissingArgument {
            sub,
            what: "`thread` or `file`",
        });
    };
    let rest: Vec<String> = w.collect();
    if kind.eq_ignore_ascii_case("thread") {
        Ok(ChatCommand::ContextThread {
            permalink: at_most_one(sub, rest)?,
        })
    } else if kind.eq_ignore_ascii_case("file") {
        match at_most_one(sub, rest)? {
            Some(path) => Ok(ChatCommand::ContextFile { path }),
            None => Err(CommandError::MissingArgument {
                sub,
                what: "a file path after `file`",
            }),
        }
    } else {
        Err(CommandError::UnknownContextKind { given: kind })
    }
}

/// The help text (Markdown), from the table.
pub fn help_text() -> String {
    let mut s = String::from(
        "Claude Code runs Claude Code sessions for channels. Type `/claude <prompt>` to ask.\n\n",
    );
    for c in SUBCOMMANDS {
        let usage = if c.hint.is_empty() {
            format!("/{TRIGGER} {}", c.name)
        } else {
            format!("/{TRIGGER} {} {}", c.name, c.hint)
        };
        s.push_str(&format!("- `{usage}`: {}\n", c.help));
    }
    s
}

/// The `/claude` autocomplete tree, from the table. RoleID is "system_user"
/// everywhere: older servers reject an empty role.
pub fn autocomplete_data() -> AutocompleteData {
    let item = |trigger: &str, hint: &str, help: &str, arguments, sub_commands| AutocompleteData {
        trigger: trigger.into(),
        hint: hint.into(),
        help_text: help.into(),
        role_id: "system_user".into(),
        arguments,
        sub_commands,
    };
    // A positional text argument must be required: the server refuses an optional one
    // ("Positional argument can not be optional") and the plugin would not activate. An
    // optional positional argument therefore shows only in its command's hint.
    let text_arg = |help: &str, hint: &str| AutocompleteArg {
        help_text: help.into(),
        r#type: "TextInput".into(),
        required: true,
        data: Any::AutocompleteText(AutocompleteTextArg {
            hint: hint.into(),
            pattern: String::new(),
        }),
        ..Default::default()
    };
    let static_list =
        |name: &str, help: &str, required: bool, choices: &[(&str, &str)]| AutocompleteArg {
            name: name.into(),
            help_text: help.into(),
            r#type: "StaticList".into(),
            required,
            data: Any::AutocompleteStaticList(AutocompleteStaticListArg {
                possible_arguments: choices
                    .iter()
                    .map(|(i, help)| AutocompleteListItem {
                        item: (*i).into(),
                        help_text: (*help).into(),
                        ..Default::default()
                    })
                    .collect(),
            }),
        };
    let sub_commands = SUBCOMMANDS
        .iter()
        .map(|c| match c.arg {
            ArgShape::None | ArgShape::Text { required: false } => {
                item(c.name, c.hint, c.help, Vec::new(), Vec::new())
            }
            // The path, then `--model`, `--mode` and `--worktree` as named (optional)
            // arguments, which the server allows after the positional ones.
            ArgShape::Text { required: true } if c.sub == Sub::Start => item(
                c.name,
                c.hint,
                c.help,
                vec![
                    text_arg("The project directory", "<path>"),
                    AutocompleteArg {
                        name: "model".into(),
                        help_text: "Model of this session".into(),
                        r#type: "TextInput".into(),
                        required: false,
                        data: Any::AutocompleteText(AutocompleteTextArg {
                            hint: "sonnet".into(),
                            pattern: String::new(),
                        }),
                    },
                    static_list(
                        "mode",
                        "Permission mode of this session",
                        false,
                        MODE_CHOICES,
                    ),
                    AutocompleteArg {
                        name: "worktree".into(),
                        help_text: "Work in a git worktree of its own, on this branch (a new one when left out)".into(),
                        r#type: "TextInput".into(),
                        required: false,
                        data: Any::AutocompleteText(AutocompleteTextArg {
                            hint: "[branch]".into(),
                            pattern: String::new(),
                        }),
                    },
                ],
                Vec::new(),
            ),
            ArgShape::Text { required: true } => item(
                c.name,
                c.hint,
                c.help,
                vec![text_arg(c.help, c.hint)],
                Vec::new(),
            ),
            // `context thread|file` has its own arguments after the choice,
            // so its choices are sub-commands; a plain choice is a static list.
            ArgShape::Choice(choices) if c.sub == Sub::Context => item(
                c.name,
                c.hint,
                c.help,
                Vec::new(),
                choices
                    .iter()
                    .map(|(kind, help)| {
                        if *kind == "thread" {
                            // The permalink is optional (default: this thread).
                            item(kind, "[permalink]", help, Vec::new(), Vec::new())
                        } else {
                            item(
                                kind,
                                "<path>",
                                help,
                                vec![text_arg(help, "<path>")],
                                Vec::new(),
                            )
                        }
                    })
                    .collect(),
            ),
            ArgShape::Choice(choices) => item(
                c.name,
                c.hint,
                c.help,
                vec![static_list("", c.help, true, choices)],
                Vec::new(),
            ),
        })
        .collect();
    item(
        TRIGGER,
        "[command]",
        "Run Claude Code in this channel",
        Vec::new(),
        sub_commands,
    )
}

#[cfg(test)]
mod tests;
