//! The gob cross-check against Go's encoding/gob (tests/conformance).
//!
//! Go encodes a corpus of Mattermost values; Rust decodes every item both
//! generically (compared with Go's own dump of the value) and into the typed
//! model, re-encodes the typed values, and Go decodes those and compares them
//! with the originals (reflect.DeepEqual). Every item, both directions.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command as Process;

use claude_code::mattermost::model::*;
use claude_code::mattermost::rpc_types::*;
use claude_code::rpc::gob::stream::StreamDecoder;
use claude_code::rpc::gob::{time::GoTime, Encoder, Gob};
use support::json_equivalent;

/// Decodes every value of a stream as `T` and encodes them again on one stream.
async fn retype<T: Gob>(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut decoder = StreamDecoder::new(bytes);
    let mut encoder = Encoder::new();
    let mut out = Vec::new();
    while let Some(value) = decoder.decode::<T>().await.map_err(|e| e.to_string())? {
        encoder
            .encode(&value, &mut out)
            .map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// The Rust type each corpus key decodes into.
async fn roundtrip(key: &str, bytes: &[u8]) -> Result<Vec<u8>, String> {
    match key {
        "Post" => retype::<Post>(bytes).await,
        "CommandArgs" => retype::<CommandArgs>(bytes).await,
        "CommandResponse" => retype::<CommandResponse>(bytes).await,
        "AppError" => retype::<AppError>(bytes).await,
        "Command" => retype::<Command>(bytes).await,
        "Context" => retype::<Context>(bytes).await,
        "PluginKVSetOptions" => retype::<PluginKVSetOptions>(bytes).await,
        "WebsocketBroadcast" => retype::<WebsocketBroadcast>(bytes).await,
        "SlackAttachment" => retype::<SlackAttachment>(bytes).await,
        "PostAction" => retype::<PostAction>(bytes).await,
        "FileInfo" => retype::<FileInfo>(bytes).await,
        "Bot" => retype::<Bot>(bytes).await,
        "ChannelMember" => retype::<ChannelMember>(bytes).await,
        "Channel" => retype::<Channel>(bytes).await,
        "User" => retype::<User>(bytes).await,
        "PostList" => retype::<PostList>(bytes).await,
        "PluginStatus" => retype::<PluginStatus>(bytes).await,
        "PluginClusterEvent" => retype::<PluginClusterEvent>(bytes).await,
        "PluginClusterEventSendOptions" => retype::<PluginClusterEventSendOptions>(bytes).await,
        "OpenDialogRequest" => retype::<OpenDialogRequest>(bytes).await,
        "ErrorString" => retype::<ErrorString>(bytes).await,
        "Time" => retype::<GoTime>(bytes).await,
        "Props" => retype::<BTreeMap<String, Any>>(bytes).await,
        "Z_ExecuteCommandArgs" => retype::<ExecuteCommandArgs>(bytes).await,
        "Z_ExecuteCommandReturns" => retype::<ExecuteCommandReturns>(bytes).await,
        "Z_OnActivateArgs" => retype::<OnActivateArgs>(bytes).await,
        "Z_OnActivateReturns" => retype::<ErrorReturn>(bytes).await,
        "Z_RegisterCommandArgs" => retype::<RegisterCommandArgs>(bytes).await,
        "Z_RegisterCommandReturns" => retype::<ErrorReturn>(bytes).await,
        "Z_MessageHasBeenPostedArgs" => retype::<MessageHasBeenPostedArgs>(bytes).await,
        "Z_KVSetArgs" => retype::<KvSetArgs>(bytes).await,
        "Z_KVGetReturns" => retype::<KvGetReturns>(bytes).await,
        "Z_KVSetWithOptionsArgs" => retype::<KvSetWithOptionsArgs>(bytes).await,
        "Z_KVListReturns" => retype::<KvListReturns>(bytes).await,
        "Z_CreatePostArgs" => retype::<PostArgs>(bytes).await,
        "Z_CreatePostReturns" => retype::<PostReturns>(bytes).await,
        "Z_UploadFileArgs" => retype::<UploadFileArgs>(bytes).await,
        "Z_UploadFileReturns" => retype::<UploadFileReturns>(bytes).await,
        "Z_SendEphemeralPostArgs" => retype::<EphemeralPostArgs>(bytes).await,
        "Z_GetPostThreadReturns" => retype::<GetPostThreadReturns>(bytes).await,
        "Z_PublishWebSocketEventArgs" => retype::<PublishWebSocketEventArgs>(bytes).await,
        "Z_LogDebugArgs" => retype::<LogArgs>(bytes).await,
        "Z_EnsureBotUserReturns" => retype::<EnsureBotUserReturns>(bytes).await,
        "Z_LoadPluginConfigurationArgsReturns" => {
            retype::<LoadPluginConfigurationReturns>(bytes).await
        }
        "Z_ServeHTTPArgs" => retype::<ServeHttpArgs>(bytes).await,
        "Z_OpenInteractiveDialogArgs" => retype::<OpenInteractiveDialogArgs>(bytes).await,
        "Z_PublishPluginClusterEventArgs" => retype::<PublishPluginClusterEventArgs>(bytes).await,
        "Z_GetPluginStatusReturns" => retype::<GetPluginStatusReturns>(bytes).await,
        other => Err(format!("no Rust type registered for corpus key {other}")),
    }
}

/// Checks one Go-encoded item: the generic dump of each value equals Go's.
async fn check_generic(gob: &[u8], expected: &serde_json::Value) -> Result<(), String> {
    let values = expected["values"]
        .as_array()
        .ok_or("no values in the .json")?;
    let mut decoder = StreamDecoder::new(gob);
    let mut got = Vec::new();
    while let Some(decoded) = decoder.decode_value().await.map_err(|e| e.to_string())? {
        got.push(decoded.value.to_dump());
    }
    if got.len() != values.len() {
        return Err(format!(
            "{} values decoded, {} expected",
            got.len(),
            values.len()
        ));
    }
    for (i, (g, e)) in got.iter().zip(values).enumerate() {
        if !json_equivalent(g, e) {
            return Err(format!("value {i} differs:\n rust: {g}\n   go: {e}"));
        }
    }
    Ok(())
}

async fn check_corpus_dir(go_dir: &Path, rust_dir: &Path) -> Vec<String> {
    let mut failures = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(go_dir)
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .into_string()
                .ok()?
                .strip_suffix(".gob")
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    assert!(
        names.len() >= 50,
        "only {} corpus items in {}",
        names.len(),
        go_dir.display()
    );
    for name in &names {
        let gob = std::fs::read(go_dir.join(format!("{name}.gob"))).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(go_dir.join(format!("{name}.json"))).unwrap())
                .unwrap();
        if let Err(e) = check_generic(&gob, &json).await {
            failures.push(format!("{name} (generic decode): {e}"));
        }
        let key = name.split("__").next().unwrap();
        match roundtrip(key, &gob).await {
            Ok(bytes) => std::fs::write(rust_dir.join(format!("{name}.gob")), bytes).unwrap(),
            Err(e) => failures.push(format!("{name} (typed decode): {e}")),
        }
    }
    failures
}

/// Has Go write its corpus into a fresh directory named `name`.
fn go_corpus(name: &str) -> std::path::PathBuf {
    let dir = support::fresh_dir(name);
    let gen = Process::new(support::gobcorpus())
        .arg("gen")
        .arg("-out")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        gen.status.success(),
        "gobcorpus gen: {}",
        String::from_utf8_lossy(&gen.stderr)
    );
    dir
}

#[tokio::test]
async fn go_corpus_round_trips_through_rust_both_directions() {
    let go_dir = go_corpus("corpus-go");
    let rust_dir = support::fresh_dir("corpus-rust");

    let failures = check_corpus_dir(&go_dir, &rust_dir).await;
    assert!(
        failures.is_empty(),
        "Rust side failed:\n{}",
        failures.join("\n")
    );

    let verify = Process::new(support::gobcorpus())
        .args(["verify", "-corpus"])
        .arg(&go_dir)
        .arg("-rust")
        .arg(&rust_dir)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&verify.stdout);
    println!("{report}");
    assert!(
        verify.status.success(),
        "Go rejected Rust's encodings:\n{report}{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[test]
fn gobdump_prints_one_line_per_message_of_the_go_corpus() {
    let go_dir = go_corpus("corpus-gobdump");
    let mut checked = 0;
    for entry in std::fs::read_dir(&go_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "gob") {
            continue;
        }
        let out = Process::new(env!("CARGO_BIN_EXE_gobdump"))
            .stdin(std::fs::File::open(&path).unwrap())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "gobdump {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path.with_extension("json")).unwrap()).unwrap();
        let expected_values = json["values"].as_array().unwrap().len();
        let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect();
        let values = lines.iter().filter(|l| l["msg"] == "value").count();
        assert_eq!(values, expected_values, "{}", path.display());
        for (line, expected) in lines
            .iter()
            .filter(|l| l["msg"] == "value")
            .zip(json["values"].as_array().unwrap())
        {
            assert!(
                json_equivalent(&line["value"], expected),
                "{}",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 50, "only {checked} files checked");
}
