//! Pictures and files into a prompt, end to end with the REAL Claude Code CLI against the
//! scripted fake model: a thread reply's image reaches the model as an image block with the
//! same bytes, a text file as a delimited block before the words; an oversize or unsupported
//! file is left out, and the poster is told which and why.
//! A missing CLI fails these tests on purpose (run `make claude-cli`, or set CLAUDE_CLI).

mod support;

use std::time::Duration;

use claude_code::mattermost::model::*;
use serde_json::{json, Value};
use sha2::Digest;
use support::chat::*;

/// A valid 2×2 red PNG.
const PNG: &[u8] = b"\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x02\x00\x00\x00\x02\x08\x02\x00\x00\x00\xfd\xd4\x9a\x73\x00\x00\x00\x10\x49\x44\x41\x54\x78\x9c\x63\xf8\xcf\xc0\x00\x44\x0c\x10\x0a\x00\x1f\xee\x03\xfd\x8b\x5f\x14\xd4\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82";

fn sha256(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn text(t: &str) -> Value {
    json!({"kind": "message", "blocks": [{"type": "text", "text": t}]})
}

fn reply(root: &Post, id: &str, message: &str, file_ids: Vec<String>) -> Post {
    Post {
        id: id.into(),
        user_id: "u1".into(),
        channel_id: CHANNEL.into(),
        root_id: root.id.clone(),
        message: message.into(),
        file_ids,
        ..Default::default()
    }
}

/// The fake model's streamed requests (with their `images` entries), in order.
fn streamed(h: &Harness) -> Vec<Value> {
    h.server
        .requests()
        .into_iter()
        .filter(|r| r["kind"] == "stream")
        .collect()
}

/// The images of the newest user message of a request (the CLI sends the conversation whole,
/// so earlier images come again).
fn last_prompt_images(request: &Value) -> Vec<Value> {
    let messages = request["body"]["messages"].as_array().unwrap();
    let last = messages.iter().rposition(|m| m["role"] == "user").unwrap();
    request["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["message"] == last)
        .cloned()
        .collect()
}

fn ephemerals(h: &Harness) -> Vec<String> {
    h.log()
        .into_iter()
        .filter(|(k, _)| k == "ephemeral")
        .map(|(_, p)| p.message)
        .collect()
}

#[tokio::test]
async fn an_attached_image_and_text_file_reach_the_model_and_the_rest_is_named() {
    let h = Harness::new(
        "attach",
        |_| {
            json!([
                text("A red square, and your notes."),
                text("Still a red square.")
            ])
        },
        json!({"MaxPromptFileMB": 1}),
    )
    .await;
    let root = h.start().await;
    let shot = h.upload("u1", "shot.png", PNG);
    let notes = h.upload("u1", "notes.txt", b"NOTES-MARKER: the square must be red\n");
    // Over MaxPromptFileMB, and a PNG by its bytes: refused from its size alone.
    let mut big_bytes = PNG.to_vec();
    big_bytes.resize(1024 * 1024 * 3 / 2, 0);
    let big = h.upload("u1", "big.png", &big_bytes);
    // Named like an image, a zip by its bytes.
    let zip = h.upload("u1", "photo.png", b"PK\x03\x04\x14\x00\x00\x00\x08\x00");
    h.post(reply(
        &root,
        "reply-1",
        "What do you see?",
        vec![shot.clone(), notes.clone(), big.clone(), zip.clone()],
    ))
    .await;
    h.wait_for("the answer", |l| {
        l.iter()
            .any(|(_, p)| p.message.contains("A red square") && p.message.contains("✓ Done"))
    })
    .await;

    let request = streamed(&h).last().cloned().unwrap();
    assert_eq!(
        last_prompt_images(&request),
        [
            json!({"message": 0, "source_type": "base64", "media_type": "image/png",
                "bytes": PNG.len(), "sha256": sha256(PNG)})
        ],
        "the model's request: {request}"
    );
    let sent = request["body"]["messages"].to_string();
    assert!(
        sent.contains(
            r#"<attached-file name=\"notes.txt\">\nNOTES-MARKER: the square must be red\n\n</attached-file>"#
        ),
        "{sent}"
    );
    assert!(sent.contains("What do you see?"), "{sent}");
    assert!(sent.contains("[image: shot.png]"), "{sent}");
    // The oversize file was never downloaded.
    assert_eq!(h.api.lock().unwrap().fetched, [shot.clone(), notes, zip]);
    let said = ephemerals(&h);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].starts_with("Your message went to Claude without all of its files:"),
        "{said:?}"
    );
    assert!(
        said[0].contains(
            "`big.png` was left out: 1.5 MB is over the limit of 1.0 MB per file (MaxPromptFileMB)"
        ),
        "{said:?}"
    );
    assert!(
        said[0].contains(
            "`photo.png` was left out: not an image (PNG, JPEG, GIF, WebP) or a UTF-8 text file"
        ),
        "{said:?}"
    );

    // An image without words is a prompt.
    h.post(reply(&root, "reply-2", "", vec![shot])).await;
    h.wait_for("the second answer", |l| {
        l.iter()
            .any(|(_, p)| p.message.contains("Still a red square.") && p.message.contains("✓ Done"))
    })
    .await;
    let request = streamed(&h).last().cloned().unwrap();
    let images = last_prompt_images(&request);
    assert_eq!(images.len(), 1, "{request}");
    assert_eq!(images[0]["sha256"], sha256(PNG));
    // The history names the image; its bytes are not in the transcript.
    let history = h.command("/claude history").await;
    assert!(history.contains("**You**: [image: shot.png]"), "{history}");
    assert!(!history.contains("iVBOR"), "{history}");

    // Only an unusable file and no words: nothing goes to the model, and the poster is told.
    let calls = streamed(&h).len();
    let pdf = h.upload("u1", "spec.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n");
    h.post(reply(&root, "reply-3", " ", vec![pdf])).await;
    h.wait_for("the refusal", |l| {
        l.iter()
            .any(|(k, p)| k == "ephemeral" && p.message.starts_with("Nothing was sent"))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(streamed(&h).len(), calls, "nothing was sent");
    let last = ephemerals(&h).pop().unwrap();
    assert!(
        last.contains("`spec.pdf` was left out: not an image"),
        "{last}"
    );
    h.deactivate().await;
}

/// Two replies posted a moment apart reach Claude in the order they were posted, even when the
/// first one's file takes long to fetch: Mattermost runs the post hook of each in its own
/// goroutine, and the second one, with no file, would otherwise be queued first.
#[tokio::test]
async fn a_reply_with_a_slow_file_keeps_its_place_before_the_next_reply() {
    let h = Harness::new(
        "order",
        |_| json!([text("ANSWER-ONE"), text("ANSWER-TWO")]),
        json!({}),
    )
    .await;
    let root = h.start().await;
    let shot = h.upload("u1", "shot.png", PNG);
    h.api.lock().unwrap().file_delay = Duration::from_millis(1500);
    tokio::join!(
        h.post(reply(
            &root,
            "reply-1",
            "FIRST-MARK look at this",
            vec![shot]
        )),
        async {
            // Sent after the first one's hook call.
            tokio::time::sleep(Duration::from_millis(50)).await;
            h.post(reply(&root, "reply-2", "SECOND-MARK and also", vec![]))
                .await
        }
    );
    h.wait_for("both answers", |l| {
        l.iter()
            .any(|(_, p)| p.message.contains("ANSWER-TWO") && p.message.contains("✓ Done"))
    })
    .await;
    let prompts: Vec<String> = streamed(&h)
        .iter()
        .map(|r| {
            let messages = r["body"]["messages"].as_array().unwrap();
            let last = messages.iter().rposition(|m| m["role"] == "user").unwrap();
            messages[last].to_string()
        })
        .collect();
    let first = prompts.iter().position(|p| p.contains("FIRST-MARK"));
    let second = prompts.iter().position(|p| p.contains("SECOND-MARK"));
    assert!(
        matches!((first, second), (Some(a), Some(b)) if a < b),
        "the model got the replies in this order: {prompts:#?}"
    );
    h.deactivate().await;
}
