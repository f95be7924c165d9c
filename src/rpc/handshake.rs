//! Process start of a go-plugin (netrpc) plugin: environment checks, the unix socket, and the
//! one handshake line printed on stdout. Pure pieces, unit-tested; `main` wires them.

use std::io;
use std::path::{Path, PathBuf};

/// Environment variable carrying the magic cookie.
pub const MAGIC_COOKIE_KEY: &str = "MATTERMOST_PLUGIN";
/// The value Mattermost sets (go-plugin HandshakeConfig of the server).
pub const MAGIC_COOKIE_VALUE: &str = "Securely message teams, anywhere.";
/// Comma list of app protocol versions the host supports.
pub const PROTOCOL_VERSIONS_KEY: &str = "PLUGIN_PROTOCOL_VERSIONS";
/// Directory override for the socket (set by go-plugin only with a RunnerFunc).
pub const SOCKET_DIR_KEY: &str = "PLUGIN_UNIX_SOCKET_DIR";
/// The app protocol version we speak.
pub const APP_PROTOCOL_VERSION: u32 = 1;
/// go-plugin core protocol version.
pub const CORE_PROTOCOL_VERSION: u32 = 1;
/// What to print when started by hand.
pub const NOT_BY_HAND: &str =
    "This binary is a Mattermost plugin; it is started by the Mattermost server, not by hand.";

/// Handshake failures.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HandshakeError {
    /// `MATTERMOST_PLUGIN` missing or wrong: we were not started by Mattermost.
    #[error("{NOT_BY_HAND}")]
    NotStartedByMattermost,
    /// The host offers no protocol version we speak.
    #[error("host offers plugin protocol versions {offered:?}, this plugin speaks only 1")]
    UnsupportedProtocol {
        /// The raw `PLUGIN_PROTOCOL_VERSIONS` value.
        offered: String,
    },
}

/// Check the magic cookie value (`None` = variable unset).
pub fn check_magic_cookie(value: Option<&str>) -> Result<(), HandshakeError> {
    match value {
        Some(v) if v == MAGIC_COOKIE_VALUE => Ok(()),
        _ => Err(HandshakeError::NotStartedByMattermost),
    }
}

/// Check `PLUGIN_PROTOCOL_VERSIONS` (comma list) contains 1. Unset means the host predates the
/// variable and speaks version 1 (go-plugin falls back to the handshake config's version).
pub fn check_protocol_versions(value: Option<&str>) -> Result<u32, HandshakeError> {
    let Some(v) = value else {
        return Ok(APP_PROTOCOL_VERSION);
    };
    let ok = v
        .split(',')
        .filter_map(|p| p.trim().parse::<u32>().ok())
        .any(|n| n == APP_PROTOCOL_VERSION);
    if ok {
        Ok(APP_PROTOCOL_VERSION)
    } else {
        Err(HandshakeError::UnsupportedProtocol {
            offered: v.to_string(),
        })
    }
}

/// Both environment checks against the real process environment.
pub fn check_env() -> Result<u32, HandshakeError> {
    let cookie = std::env::var(MAGIC_COOKIE_KEY).ok();
    check_magic_cookie(cookie.as_deref())?;
    let versions = std::env::var(PROTOCOL_VERSIONS_KEY).ok();
    check_protocol_versions(versions.as_deref())
}

/// Directory for the socket: `$PLUGIN_UNIX_SOCKET_DIR` if set and non-empty, else `$TMPDIR`
/// (`std::env::temp_dir`).
pub fn socket_dir() -> PathBuf {
    match std::env::var_os(SOCKET_DIR_KEY) {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => std::env::temp_dir(),
    }
}

/// A fresh random socket path `<dir>/plugin<20 digits>`; any file there is removed.
pub fn fresh_socket_path(dir: &Path) -> io::Result<PathBuf> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| io::Error::other(format!("getrandom: {e}")))?;
    let path = dir.join(format!("plugin{:020}", u64::from_le_bytes(b)));
    remove_stale(&path)?;
    Ok(path)
}

/// Remove whatever is at `path` (a stale socket), ignoring "not found".
pub fn remove_stale(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Bind a unix listener at a fresh path under `dir`.
pub fn bind_socket(dir: &Path) -> io::Result<(tokio::net::UnixListener, PathBuf)> {
    let path = fresh_socket_path(dir)?;
    let listener = tokio::net::UnixListener::bind(&path)?;
    Ok((listener, path))
}

/// The go-plugin handshake line: `1|1|unix|<path>|netrpc|\n`.
pub fn handshake_line(socket_path: &Path) -> String {
    format!(
        "{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|unix|{}|netrpc|\n",
        socket_path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_cookie() {
        assert_eq!(check_magic_cookie(Some(MAGIC_COOKIE_VALUE)), Ok(()));
        for bad in [None, Some(""), Some("securely message teams, anywhere.")] {
            let e = check_magic_cookie(bad).unwrap_err();
            assert_eq!(e, HandshakeError::NotStartedByMattermost);
            assert_eq!(
                e.to_string(),
                "This binary is a Mattermost plugin; it is started by the Mattermost server, not by hand."
            );
        }
    }

    #[test]
    fn protocol_versions() {
        assert_eq!(check_protocol_versions(Some("1")), Ok(1));
        assert_eq!(check_protocol_versions(Some("2, 1")), Ok(1));
        assert_eq!(check_protocol_versions(None), Ok(1));
        for bad in ["", "2", "11", "2,3", "x"] {
            assert!(matches!(
                check_protocol_versions(Some(bad)),
                Err(HandshakeError::UnsupportedProtocol { .. })
            ));
        }
    }

    #[test]
    fn line_format() {
        assert_eq!(
            handshake_line(Path::new("/tmp/plugin2816513541")),
            "1|1|unix|/tmp/plugin2816513541|netrpc|\n"
        );
    }

    #[tokio::test]
    async fn socket_paths_are_fresh_and_bindable() {
        let dir = std::env::temp_dir();
        let a = fresh_socket_path(&dir).unwrap();
        let b = fresh_socket_path(&dir).unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(&dir));
        assert!(a
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("plugin")));
        std::fs::write(&a, b"stale").unwrap();
        remove_stale(&a).unwrap();
        assert!(!a.exists());
        remove_stale(&a).unwrap();
        let (l, p) = bind_socket(&dir).unwrap();
        assert!(p.exists());
        drop(l);
        std::fs::remove_file(&p).unwrap();
    }
}
