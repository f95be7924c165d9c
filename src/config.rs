//! System Console settings: the raw JSON the server stores for the plugin
//! (LoadPluginConfiguration) -> a validated [`Config`], in two steps:
//! [`RawConfig::parse`] (shape: JSON object, string values) then
//! [`RawConfig::validate`] (meaning: absolute roots, a usable CLI path, a
//! well-formed key). The app swaps in a new Config only when both pass, so a
//! bad edit in the console keeps the previous configuration running.
//!
//! Keys are matched case-insensitively: the server's config store lower-cases
//! plugin setting keys, and Go plugins decode them with encoding/json, which
//! matches names case-insensitively too.

use std::fmt;
use std::path::{Component, Path, PathBuf};

/// Setting keys, as in plugin.json's settings_schema.
pub const KEY_ALLOWED_PROJECT_ROOTS: &str = "AllowedProjectRoots";
pub const KEY_CLAUDE_CLI_PATH: &str = "ClaudeCliPath";
pub const KEY_ANTHROPIC_API_KEY: &str = "AnthropicApiKey";

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

/// The settings as stored, before validation (missing = empty).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawConfig {
    pub allowed_project_roots: String,
    pub claude_cli_path: String,
    pub anthropic_api_key: Secret,
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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            allowed_project_roots: Vec::new(),
            claude_cli_path: DEFAULT_CLAUDE_CLI.to_owned(),
            anthropic_api_key: None,
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
        Ok(RawConfig {
            allowed_project_roots: get(KEY_ALLOWED_PROJECT_ROOTS)?,
            claude_cli_path: get(KEY_CLAUDE_CLI_PATH)?,
            anthropic_api_key: Secret(get(KEY_ANTHROPIC_API_KEY)?),
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
        Ok(Config {
            allowed_project_roots: roots,
            claude_cli_path,
            anthropic_api_key: (!key.is_empty()).then(|| Secret::new(key)),
        })
    }
}

/// Parse then validate.
pub fn load(bytes: &[u8]) -> Result<Config, ConfigError> {
    RawConfig::parse(bytes)?.validate()
}

#[cfg(test)]
mod tests {
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
    fn plugin_json_schema_matches_the_keys() {
        let manifest: serde_json::Value =
            serde_json::from_str(include_str!("../plugin.json")).unwrap();
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
                KEY_ANTHROPIC_API_KEY
            ]
        );
        for s in settings {
            assert!(!s["help_text"].as_str().unwrap_or("").is_empty(), "{s}");
            let secret = s["secret"].as_bool().unwrap_or(false);
            assert_eq!(secret, s["key"] == KEY_ANTHROPIC_API_KEY, "{s}");
        }
    }
}
