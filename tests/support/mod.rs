//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

pub mod chat;
pub mod cli;
pub mod host;
pub mod roles;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the Go conformance tool once per test binary and returns its path.
/// Go is part of the toolchain these tests need: without it they fail, with
/// a message saying so, rather than pass without checking anything.
pub fn gobcorpus() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("gobcorpus");
        let status = Command::new("go")
            .args(["build", "-o"])
            .arg(&out)
            .arg("./cmd/gobcorpus")
            .current_dir(repo_root().join("tests/conformance"))
            .status()
            .expect(
                "`go` is needed for the Go cross-checks (make conformance installs nothing else)",
            );
        assert!(
            status.success(),
            "building tests/conformance/cmd/gobcorpus failed"
        );
        out
    })
}

/// A fresh directory under the target's temporary area.
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// JSON equality where numbers compare by value (Go writes 1.0 as 1).
pub fn json_equivalent(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::*;
    match (a, b) {
        (Number(x), Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
            (Some(p), Some(q), _, _) => p == q,
            (_, _, Some(p), Some(q)) => p == q,
            _ => x.as_f64() == y.as_f64(),
        },
        (Array(x), Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equivalent(p, q))
        }
        (Object(x), Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equivalent(v, w)))
        }
        _ => a == b,
    }
}
