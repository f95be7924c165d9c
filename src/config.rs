//! System Console settings: the raw JSON the server stores for the plugin
//! (LoadPluginConfiguration) -> a validated [`Config`], in two steps:
//! [`RawConfig::parse`] (shape: JSON object, string values) then
//! [`RawConfig::validate`] (meaning: absolute roots, a usable CLI path, a
//! well-formed key, known modes, numbers in range). The app swaps in a new
//! Config only when both pass, so a bad edit in the console keeps the previous
//! configuration running.
//!
//! Number settings are accepted as JSON numbers or as strings of digits: the
//! System Console saves `number` settings as numbers, while settings written
//! by hand or through the API often arrive as strings.
//!
//! Keys are matched case-insensitively: the server's config store lower-cases
//! plugin setting keys, and Go plugins decode them with encoding/json, which
//! matches names case-insensitively too.

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::chat::command::{is_valid_model_name, parse_permission_mode};
use crate::claude::args::PermissionMode;

/// Setting keys, as in plugin.json's settings_schema.
pub const KEY_ALLOWED_PROJECT_ROOTS: &str = "AllowedProjectRoots";
pub const KEY_CLAUDE_CLI_PATH: &str = "ClaudeCliPath";
pub const KEY_ANTHROPIC_API_KEY: &str = "AnthropicApiKey";
pub const KEY_ANTHROPIC_BASE_URL: &str = "AnthropicBaseUrl";
pub const KEY_DEFAULT_MODEL: &str = "DefaultModel";
pub const KEY_DEFAULT_PERMISSION_MODE: &str = "DefaultPermissionMode";
pub const KEY_WHO_CAN_START: &str = "WhoCanStart";
pub const KEY_WHO_CAN_APPROVE: &str = "WhoCanApprove";
pub const KEY_MAX_CONCURRENT_SESSIONS: &str = "MaxConcurrentSessions";
pub const KEY_IDLE_TIMEOUT_MINUTES: &str = "IdleTimeoutMinutes";
pub const KEY_APPROVAL_TIMEOUT_MINUTES: &str = "ApprovalTimeoutMinutes";
pub const KEY_APPROVAL_REMINDER_MINUTES: &str = "ApprovalReminderMinutes";
pub const KEY_COMMANDS_PER_MINUTE: &str = "CommandsPerMinute";
pub const KEY_MAX_CONTEXT_KB: &str = "MaxContextKB";
pub const KEY_MAX_PROMPT_FILES: &str = "MaxPromptFiles";
pub const KEY_MAX_PROMPT_FILE_MB: &str = "MaxPromptFileMB";
pub const KEY_POST_UPDATE_INTERVAL_SECONDS: &str = "PostUpdateIntervalSeconds";
pub const KEY_DATA_DIRECTORY: &str = "DataDirectory";

/// `(key, default, min, max)` of the number settings; plugin.json repeats the
/// defaults (a test keeps them equal).
pub const MAX_CONCURRENT_SESSIONS: (&str, u32, u32, u32) = (KEY_MAX_CONCURRENT_SESSIONS, 5, 1, 100);
/// 0 = sessions never stop for idleness; at most a week.
pub const IDLE_TIMEOUT_MINUTES: (&str, u32, u32, u32) = (KEY_IDLE_TIMEOUT_MINUTES, 60, 0, 10_080);
/// An approval nobody answers is denied after this; at most a day.
pub const APPROVAL_TIMEOUT_MINUTES: (&str, u32, u32, u32) =
    (KEY_APPROVAL_TIMEOUT_MINUTES, 10, 1, 1_440);
/// A card still waiting after this long sends its approver one direct message; 0 = never.
pub const APPROVAL_REMINDER_MINUTES: (&str, u32, u32, u32) =
    (KEY_APPROVAL_REMINDER_MINUTES, 5, 0, 1_440);
/// 0 turns the limit off (for load tests and servers that limit elsewhere).
pub const COMMANDS_PER_MINUTE: (&str, u32, u32, u32) = (KEY_COMMANDS_PER_MINUTE, 30, 0, 600);
/// A thread or file added with `/claude context` is cut to this many KB (a 9 MB thread would
/// otherwise become a 9 MB prompt, held in memory until it is sent).
pub const MAX_CONTEXT_KB: (&str, u32, u32, u32) = (KEY_MAX_CONTEXT_KB, 64, 1, 4_096);
/// Files a prompt may carry (a Mattermost post holds at most 10); 0 = none.
pub const MAX_PROMPT_FILES: (&str, u32, u32, u32) = (KEY_MAX_PROMPT_FILES, 5, 0, 10);
/// Size of each file a prompt carries, in MB: it is read whole into memory (and an image is
/// held as base64 until its turn).
pub const MAX_PROMPT_FILE_MB: (&str, u32, u32, u32) = (KEY_MAX_PROMPT_FILE_MB, 5, 1, 50);
/// A turn's post is updated at most this often at first (then less and less often: browsers
/// follow the text through live events; the post is for mobile clients and history).
pub const POST_UPDATE_INTERVAL_SECONDS: (&str, u32, u32, u32) =
    (KEY_POST_UPDATE_INTERVAL_SECONDS, 2, 1, 60);

/// The CLI command used when ClaudeCliPath is empty (looked up on PATH).
pub const DEFAULT_CLAUDE_CLI: &str = "claude";

/// Why a configuration was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("the settings are not a JSON object: {0}")]
    NotJson(String),
    #[error("setting {key} must be a string")]
    NotAString { key: &'static str },
    #[error("AllowedProjectRoots: {root:?} is not an absolute path")]
    RootNotAbsolute { root: String },
    #[error("AllowedProjectRoots: {root:?} must not contain '.' or '..' segments")]
    RootNotNormal { root: String },
    #[error("AllowedProjectRoots: {root:?} is the filesystem root; name a project directory")]
    RootIsSlash { root: String },
    #[error("ClaudeCliPath: {path:?} must be a command name or an absolute path")]
    CliPathRelative { path: String },
    #[error("{key}: control characters are not allowed")]
    ControlCharacters { key: &'static str },
    #[error("AnthropicApiKey: must not contain whitespace")]
    ApiKeyWhitespace,
    #[error("AnthropicBaseUrl: {url:?} must be an http:// or https:// URL without whitespace")]
    InvalidBaseUrl { url: String },
    #[error("setting {key} must be a whole number, got {value:?}")]
    NotANumber { key: &'static str, value: String },
    #[error("setting {key} must be between {min} and {max}, got {value}")]
    OutOfRange {
        key: &'static str,
        min: u32,
        max: u32,
        value: i64,
    },
    #[error(
        "DefaultModel: {value:?} is not a model name (use an alias like `sonnet` or a model id)"
    )]
    InvalidModel { value: String },
    #[error("DefaultPermissionMode: {value:?} must be one of default, acceptEdits, plan")]
    InvalidPermissionMode { value: String },
    #[error("WhoCanStart: {entry:?} is not `everyone`, `@username` or `team:team-name`")]
    InvalidPrincipal { entry: String },
    #[error("WhoCanApprove: {value:?} must be `owner` or `members`")]
    InvalidWhoCanApprove { value: String },
    #[error("DataDirectory: {path:?} must be an absolute path without '.' or '..' segments")]
    DataDirectoryNotAbsolute { path: String },
}

/// A secret that never shows up in Debug output or logs.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "Secret(<empty>)"
        } else {
            "Secret(<redacted>)"
        })
    }
}

/// Who may start a session.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum WhoCanStart {
    #[default]
    Everyone,
    /// Any of these users, or any member of these teams.
    Only(Vec<Principal>),
}

/// An entry of [`WhoCanStart::Only`]; names are lower-case, as Mattermost
/// stores them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// `@username`
    User(String),
    /// `team:team-name`
    Team(String),
}

impl WhoCanStart {
    /// Whether `username`, a member of `team_names`, may start a session.
    /// The team names listed (lower-case), to be resolved against the user's memberships.
    pub fn team_names(&self) -> Vec<&str> {
        match self {
            WhoCanStart::Everyone => Vec::new(),
            WhoCanStart::Only(list) => list
                .iter()
                .filter_map(|p| match p {
                    Principal::Team(t) => Some(t.as_str()),
                    Principal::User(_) => None,
                })
                .collect(),
        }
    }

    pub fn allows(&self, username: &str, team_names: &[&str]) -> bool {
        match self {
            WhoCanStart::Everyone => true,
            WhoCanStart::Only(list) => list.iter().any(|p| match p {
                Principal::User(u) => u.eq_ignore_ascii_case(username),
                Principal::Team(t) => team_names.iter().any(|n| t.eq_ignore_ascii_case(n)),
            }),
        }
    }
}

/// Who may answer a session's approval cards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhoCanApprove {
    /// Only the user who started the session.
    #[default]
    Owner,
    /// Any member of the session's channel.
    Members,
}

/// The settings as stored, before validation (missing = empty). Number
/// settings keep their text so that validation can quote bad input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawConfig {
    pub allowed_project_roots: String,
    pub claude_cli_path: String,
    pub anthropic_api_key: Secret,
    pub anthropic_base_url: String,
    pub default_model: String,
    pub default_permission_mode: String,
    pub who_can_start: String,
    pub who_can_approve: String,
    pub max_concurrent_sessions: String,
    pub idle_timeout_minutes: String,
    pub approval_timeout_minutes: String,
    pub approval_reminder_minutes: String,
    pub commands_per_minute: String,
    pub max_context_kb: String,
    pub max_prompt_files: String,
    pub max_prompt_file_mb: String,
    pub post_update_interval_seconds: String,
    pub data_directory: String,
}

/// The validated configuration the app runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Directories sessions may work in (absolute, normalized, no duplicates).
    pub allowed_project_roots: Vec<PathBuf>,
    /// The CLI to run: a bare command name (PATH lookup) or an absolute path.
    pub claude_cli_path: String,
    /// `None` = the CLI's own login is used.
    pub anthropic_api_key: Option<Secret>,
    /// `ANTHROPIC_BASE_URL` for the CLI; `None` = Anthropic's API.
    pub anthropic_base_url: Option<String>,
    /// `None` = the CLI's default model.
    pub default_model: Option<String>,
    /// Used when `/claude start` names no `--mode`.
    pub default_permission_mode: PermissionMode,
    pub who_can_start: WhoCanStart,
    pub who_can_approve: WhoCanApprove,
    /// Sessions running at once on this server (each CLI is ~250-300 MB).
    pub max_concurrent_sessions: u32,
    /// `None` = never stop an idle session.
    pub idle_timeout: Option<Duration>,
    /// An unanswered approval is denied (with a message) after this.
    pub approval_timeout: Duration,
    /// A card still waiting after this long sends its approver a direct message; `None` = never.
    pub approval_reminder: Option<Duration>,
    /// Per user, across channels; also the burst size.
    pub commands_per_minute: u32,
    /// The most a thread or file added with `/claude context` may bring, in bytes.
    pub max_context_bytes: usize,
    /// Files attached to a prompt that are taken (the others are left out, and said).
    pub max_prompt_files: u32,
    /// The largest file a prompt takes, in bytes.
    pub max_prompt_file_bytes: usize,
    /// The first gap between updates of a turn's post while it streams.
    pub post_update_interval: Duration,
    /// `None` = a `claude-code` directory under the server's data directory
    /// (FileSettings.Directory); the integrator resolves it.
    pub data_directory: Option<PathBuf>,
}

fn minutes(m: u32) -> Duration {
    Duration::from_secs(u64::from(m) * 60)
}

fn seconds(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

fn kilobytes(kb: u32) -> usize {
    kb as usize * 1024
}

fn megabytes(mb: u32) -> usize {
    mb as usize * 1024 * 1024
}

impl Default for Config {
    fn default() -> Self {
        Config {
            allowed_project_roots: Vec::new(),
            claude_cli_path: DEFAULT_CLAUDE_CLI.to_owned(),
            anthropic_api_key: None,
            anthropic_base_url: None,
            default_model: None,
            default_permission_mode: PermissionMode::Default,
            who_can_start: WhoCanStart::Everyone,
            who_can_approve: WhoCanApprove::Owner,
            max_concurrent_sessions: MAX_CONCURRENT_SESSIONS.1,
            idle_timeout: Some(minutes(IDLE_TIMEOUT_MINUTES.1)),
            approval_timeout: minutes(APPROVAL_TIMEOUT_MINUTES.1),
            approval_reminder: Some(minutes(APPROVAL_REMINDER_MINUTES.1)),
            commands_per_minute: COMMANDS_PER_MINUTE.1,
            max_context_bytes: kilobytes(MAX_CONTEXT_KB.1),
            max_prompt_files: MAX_PROMPT_FILES.1,
            max_prompt_file_bytes: megabytes(MAX_PROMPT_FILE_MB.1),
            post_update_interval: seconds(POST_UPDATE_INTERVAL_SECONDS.1),
            data_directory: None,
        }
    }
}

impl RawConfig {
    /// Step 1: shape. `bytes` empty or `null` means no settings saved yet.
    pub fn parse(bytes: &[u8]) -> Result<RawConfig, ConfigError> {
        let text = std::str::from_utf8(bytes).map_err(|e| ConfigError::NotJson(e.to_string()))?;
        if text.trim().is_empty() {
            return Ok(RawConfig::default());
        }
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ConfigError::NotJson(e.to_string()))?;
        let obj = match value {
            serde_json::Value::Null => return Ok(RawConfig::default()),
            serde_json::Value::Object(o) => o,
            other => return Err(ConfigError::NotJson(format!("got {other}"))),
        };
        let get = |key: &'static str| -> Result<String, ConfigError> {
            match obj
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
            {
                None | Some(serde_json::Value::Null) => Ok(String::new()),
                Some(serde_json::Value::String(s)) => Ok(s.clone()),
                Some(_) => Err(ConfigError::NotAString { key }),
            }
        };
        let number = |key: &'static str| -> Result<String, ConfigError> {
            match obj
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
            {
                Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
                _ => get(key),
            }
        };
        Ok(RawConfig {
            allowed_project_roots: get(KEY_ALLOWED_PROJECT_ROOTS)?,
            claude_cli_path: get(KEY_CLAUDE_CLI_PATH)?,
            anthropic_api_key: Secret(get(KEY_ANTHROPIC_API_KEY)?),
            anthropic_base_url: get(KEY_ANTHROPIC_BASE_URL)?,
            default_model: get(KEY_DEFAULT_MODEL)?,
            default_permission_mode: get(KEY_DEFAULT_PERMISSION_MODE)?,
            who_can_start: get(KEY_WHO_CAN_START)?,
            who_can_approve: get(KEY_WHO_CAN_APPROVE)?,
            max_concurrent_sessions: number(KEY_MAX_CONCURRENT_SESSIONS)?,
            idle_timeout_minutes: number(KEY_IDLE_TIMEOUT_MINUTES)?,
            approval_timeout_minutes: number(KEY_APPROVAL_TIMEOUT_MINUTES)?,
            approval_reminder_minutes: number(KEY_APPROVAL_REMINDER_MINUTES)?,
            commands_per_minute: number(KEY_COMMANDS_PER_MINUTE)?,
            max_context_kb: number(KEY_MAX_CONTEXT_KB)?,
            max_prompt_files: number(KEY_MAX_PROMPT_FILES)?,
            max_prompt_file_mb: number(KEY_MAX_PROMPT_FILE_MB)?,
            post_update_interval_seconds: number(KEY_POST_UPDATE_INTERVAL_SECONDS)?,
            data_directory: get(KEY_DATA_DIRECTORY)?,
        })
    }

    /// Step 2: meaning.
    pub fn validate(&self) -> Result<Config, ConfigError> {
        let mut roots: Vec<PathBuf> = Vec::new();
        for item in self.allowed_project_roots.split([',', '\n']) {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            if item.chars().any(char::is_control) {
                return Err(ConfigError::ControlCharacters {
                    key: KEY_ALLOWED_PROJECT_ROOTS,
                });
            }
            let path = Path::new(item);
            if !path.is_absolute() {
                return Err(ConfigError::RootNotAbsolute {
                    root: item.to_owned(),
                });
            }
            // `Path::components` already drops `.` in the middle; check the raw text.
            if item.split('/').any(|s| s == "." || s == "..")
                || path
                    .components()
                    .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
            {
                return Err(ConfigError::RootNotNormal {
                    root: item.to_owned(),
                });
            }
            let normalized: PathBuf = path.components().collect();
            if normalized == Path::new("/") {
                return Err(ConfigError::RootIsSlash {
                    root: item.to_owned(),
                });
            }
            if !roots.contains(&normalized) {
                roots.push(normalized);
            }
        }

        let cli = self.claude_cli_path.trim();
        if cli.chars().any(char::is_control) {
            return Err(ConfigError::ControlCharacters {
                key: KEY_CLAUDE_CLI_PATH,
            });
        }
        let claude_cli_path = if cli.is_empty() {
            DEFAULT_CLAUDE_CLI.to_owned()
        } else if cli.contains('/') && !cli.starts_with('/') {
            // Relative to what? The plugin runs in the server's cwd; refuse.
            return Err(ConfigError::CliPathRelative {
                path: cli.to_owned(),
            });
        } else {
            cli.to_owned()
        };

        let key = self.anthropic_api_key.expose().trim();
        if key.chars().any(char::is_whitespace) {
            return Err(ConfigError::ApiKeyWhitespace);
        }
        if key.chars().any(char::is_control) {
            return Err(ConfigError::ControlCharacters {
                key: KEY_ANTHROPIC_API_KEY,
            });
        }
        let base_url = self.anthropic_base_url.trim();
        if !base_url.is_empty()
            && (!(base_url.starts_with("http://") || base_url.starts_with("https://"))
                || base_url
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(ConfigError::InvalidBaseUrl {
                url: base_url.to_owned(),
            });
        }
        let model = self.default_model.trim();
        if !model.is_empty() && !is_valid_model_name(model) {
            return Err(ConfigError::InvalidModel {
                value: model.to_owned(),
            });
        }
        let mode = self.default_permission_mode.trim();
        let default_permission_mode = if mode.is_empty() {
            PermissionMode::Default
        } else {
            parse_permission_mode(mode).ok_or_else(|| ConfigError::InvalidPermissionMode {
                value: mode.to_owned(),
            })?
        };
        let approve = self.who_can_approve.trim();
        let who_can_approve = match approve.to_ascii_lowercase().as_str() {
            "" | "owner" => WhoCanApprove::Owner,
            "members" => WhoCanApprove::Members,
            _ => {
                return Err(ConfigError::InvalidWhoCanApprove {
                    value: approve.to_owned(),
                })
            }
        };
        let data = self.data_directory.trim();
        let data_directory = if data.is_empty() {
            None
        } else {
            let path = Path::new(data);
            if !path.is_absolute()
                || data.split('/').any(|s| s == "." || s == "..")
                || data.chars().any(char::is_control)
            {
                return Err(ConfigError::DataDirectoryNotAbsolute {
                    path: data.to_owned(),
                });
            }
            Some(path.components().collect())
        };
        let idle = number_setting(IDLE_TIMEOUT_MINUTES, &self.idle_timeout_minutes)?;
        let reminder = number_setting(APPROVAL_REMINDER_MINUTES, &self.approval_reminder_minutes)?;
        Ok(Config {
            allowed_project_roots: roots,
            claude_cli_path,
            anthropic_api_key: (!key.is_empty()).then(|| Secret::new(key)),
            anthropic_base_url: (!base_url.is_empty()).then(|| base_url.to_owned()),
            default_model: (!model.is_empty()).then(|| model.to_owned()),
            default_permission_mode,
            who_can_start: parse_who_can_start(&self.who_can_start)?,
            who_can_approve,
            max_concurrent_sessions: number_setting(
                MAX_CONCURRENT_SESSIONS,
                &self.max_concurrent_sessions,
            )?,
            idle_timeout: (idle > 0).then(|| minutes(idle)),
            approval_timeout: minutes(number_setting(
                APPROVAL_TIMEOUT_MINUTES,
                &self.approval_timeout_minutes,
            )?),
            approval_reminder: (reminder > 0).then(|| minutes(reminder)),
            commands_per_minute: number_setting(COMMANDS_PER_MINUTE, &self.commands_per_minute)?,
            max_context_bytes: kilobytes(number_setting(MAX_CONTEXT_KB, &self.max_context_kb)?),
            max_prompt_files: number_setting(MAX_PROMPT_FILES, &self.max_prompt_files)?,
            max_prompt_file_bytes: megabytes(number_setting(
                MAX_PROMPT_FILE_MB,
                &self.max_prompt_file_mb,
            )?),
            post_update_interval: seconds(number_setting(
                POST_UPDATE_INTERVAL_SECONDS,
                &self.post_update_interval_seconds,
            )?),
            data_directory,
        })
    }
}

/// A number setting: empty = default, otherwise a whole number in range.
fn number_setting(
    (key, default, min, max): (&'static str, u32, u32, u32),
    text: &str,
) -> Result<u32, ConfigError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(default);
    }
    // JSON numbers arrive as their text; `5.0` is a whole number too.
    let value: i64 = match text.parse::<i64>() {
        Ok(v) => v,
        Err(_) => match text.parse::<f64>() {
            Ok(f) if f.fract() == 0.0 && f.abs() < 1e15 => f as i64,
            _ => {
                return Err(ConfigError::NotANumber {
                    key,
                    value: text.to_owned(),
                })
            }
        },
    };
    match u32::try_from(value) {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(ConfigError::OutOfRange {
            key,
            min,
            max,
            value,
        }),
    }
}

/// `everyone` (or empty), or a comma/newline-separated list of `@username`
/// and `team:team-name` entries.
fn parse_who_can_start(text: &str) -> Result<WhoCanStart, ConfigError> {
    let entries: Vec<&str> = text
        .split([',', '\n'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    if entries.is_empty() || entries == ["everyone"] {
        return Ok(WhoCanStart::Everyone);
    }
    // Mattermost's own name rules: usernames a-z0-9._- (3-22), team names a-z0-9-_ (2-64).
    let name_ok = |name: &str, extra: &str, len: std::ops::RangeInclusive<usize>| {
        len.contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || extra.contains(c))
    };
    let mut list = Vec::new();
    for entry in entries {
        let lower = entry.to_ascii_lowercase();
        let principal = if let Some(user) = lower.strip_prefix('@') {
            name_ok(user, "._-", 3..=22).then(|| Principal::User(user.to_owned()))
        } else if let Some(team) = lower.strip_prefix("team:") {
            name_ok(team, "-_", 2..=64).then(|| Principal::Team(team.to_owned()))
        } else {
            None
        };
        match principal {
            Some(p) if !list.contains(&p) => list.push(p),
            Some(_) => {}
            None => {
                return Err(ConfigError::InvalidPrincipal {
                    entry: entry.to_owned(),
                })
            }
        }
    }
    Ok(WhoCanStart::Only(list))
}

/// Parse then validate.
pub fn load(bytes: &[u8]) -> Result<Config, ConfigError> {
    RawConfig::parse(bytes)?.validate()
}

#[cfg(test)]
mod tests;
