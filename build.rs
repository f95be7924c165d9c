//! Keeps the binary's plugin id and version in sync with plugin.json.
//!
//! plugin.json is the manifest Mattermost reads from the tarball; the binary must
//! agree with it, so the build fails when the two drift apart rather than shipping
//! a plugin that reports one version and installs as another.

use std::{env, fs, path::Path};

fn main() {
    let manifest_path = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap()).join("plugin.json");
    println!("cargo:rerun-if-changed={}", manifest_path.display());
    let text = fs::read_to_string(&manifest_path).expect("plugin.json is readable");
    let manifest: serde_json::Value =
        serde_json::from_str(&text).expect("plugin.json is valid JSON");
    let id = manifest["id"]
        .as_str()
        .expect("plugin.json has a string id");
    let version = manifest["version"]
        .as_str()
        .expect("plugin.json has a string version");
    let crate_version = env::var("CARGO_PKG_VERSION").unwrap();
    assert_eq!(
        version, crate_version,
        "plugin.json version {version} differs from Cargo.toml version {crate_version}: change both"
    );
    println!("cargo:rustc-env=PLUGIN_ID={id}");
    println!("cargo:rustc-env=PLUGIN_VERSION={version}");
}
