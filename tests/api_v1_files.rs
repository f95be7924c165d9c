//! The project files through REST v1 (/work/notes/issue10-contract.md): listing and reading
//! (size, the sha256 of the bytes on disk, binary or text), a person's own edits (create,
//! update and delete with `If-Match`), and everything such an edit tells: the audit log, a
//! line in the session thread, a `file_change` live event. Every refused or bad edit
//! (stale or missing `If-Match`, traversal, oversize, unknown fields, a member or an outsider)
//! gets its status and changes nothing, on disk or anywhere else. The stand-in CLI runs the
//! session (tests/support/chat.rs).

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use claude_code::chat::authz::Action;
use claude_code::config::WhoCanApprove;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::api::*;
use support::chat::*;
use support::roles::*;

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The sha256 of the file on disk now.
fn sha_on_disk(path: &Path) -> String {
    sha256(&std::fs::read(path).unwrap())
}

/// Every file below `dir` (the directory holding the project and what is beside it) with its
/// bytes: what a refused edit must leave as it was, inside the project and outside it.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.insert(path.display().to_string(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// The audit log as (session, actor, action, detail), from the plugin's store (opened
/// read-only next to the plugin's own connection).
fn audit_log(h: &Harness) -> Vec<(Option<String>, String, String, Value)> {
    use rusqlite::{Connection, OpenFlags};
    let db = h.dir.join("data/claude-code.db");
    let conn = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut stmt = conn
        .prepare("SELECT session_id, actor, action, detail FROM audit_log ORDER BY id")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            let detail: String = r.get(3)?;
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                serde_json::from_str(&detail).unwrap(),
            ))
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

/// The session's `file_change` live events as (path, action, by).
async fn file_changes(h: &Harness, sid: &str) -> Vec<(String, String, String)> {
    let url = format!("{SESSIONS}/{sid}/events?after=0&limit=1000");
    let v = owner_ok(h, "GET", &url, Value::Null, 200).await;
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "file_change")
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (s("path"), s("action"), s("by"))
        })
        .collect()
}

/// A file request with these headers (the user first), the body as given.
async fn file_call(
    h: &Harness,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (i64, Value) {
    let (status, v) = h
        .http_raw(method, url, headers, body.as_bytes().to_vec())
        .await;
    (status.expect("a status"), v)
}

/// The owner's headers with `If-Match: sha`.
fn if_match(sha: &str) -> [(&str, &str); 2] {
    [("Mattermost-User-Id", OWNER), ("If-Match", sha)]
}

/// Everything an edit touches, as it is now.
#[derive(Debug, PartialEq)]
struct World {
    api: Snapshot,
    files: BTreeMap<String, Vec<u8>>,
    audit: usize,
}

async fn world(h: &Harness, standin: &StandIn, sid: &str) -> World {
    World {
        api: snapshot(h, standin, sid).await,
        files: tree(&h.dir.join("root")),
        audit: audit_log(h).len(),
    }
}

// --- success ---------------------------------------------------------------------------------

/// Listing, reading text and binary files, then the owner's create, update and delete of one
/// file, with the refusals that guard them (a second create, a stale or missing `If-Match`);
/// each edit is in the audit log, in the thread and in the live events.
#[tokio::test]
async fn list_read_and_the_owners_edits() {
    let standin = StandIn::new();
    let h = stand_in_harness("files-ok", &standin, json!({})).await;
    std::fs::create_dir(h.project.join("src")).unwrap();
    let main_rs = b"fn main() {\n    println!(\"hi\");\n}\n";
    std::fs::write(h.project.join("src/main.rs"), main_rs).unwrap();
    let blob = b"\x7fELF\x00\x01\x02\x00binary";
    std::fs::write(h.project.join("blob.bin"), blob).unwrap();
    let (sid, _) = start_session(&h, &standin, json!({})).await;
    let files = format!("{SESSIONS}/{sid}/files");

    // Listing: the top level, then a subdirectory.
    let v = owner_ok(&h, "GET", &files, Value::Null, 200).await;
    assert_eq!(v["truncated"], false, "{v}");
    let entries: BTreeMap<&str, &Value> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e))
        .collect();
    assert_eq!(
        entries.keys().copied().collect::<Vec<_>>(),
        ["README.md", "blob.bin", "src"],
        "{v}"
    );
    assert_eq!(entries["README.md"]["kind"], "file");
    let readme_size = std::fs::metadata(h.project.join("README.md"))
        .unwrap()
        .len();
    assert_eq!(entries["README.md"]["size"], readme_size);
    assert_eq!(entries["README.md"]["path"], "README.md");
    assert_eq!(entries["blob.bin"]["size"], blob.len());
    assert_eq!(entries["src"]["kind"], "directory");
    let v = owner_ok(&h, "GET", &format!("{files}?dir=src"), Value::Null, 200).await;
    assert_eq!(v["dir"], "src", "{v}");
    assert_eq!(
        v["entries"],
        json!([{"name": "main.rs", "path": "src/main.rs", "kind": "file", "size": main_rs.len()}]),
    );
    assert_eq!(v["truncated"], false);

    // Reading: text with its language, binary without content.
    let v = owner_ok(&h, "GET", &format!("{files}/src/main.rs"), Value::Null, 200).await;
    let text = std::str::from_utf8(main_rs).unwrap();
    assert_eq!(
        v,
        json!({"path": "src/main.rs", "size": main_rs.len(), "sha256": sha256(main_rs),
            "binary": false, "content": text, "language": "rust"})
    );
    let v = owner_ok(&h, "GET", &format!("{files}/blob.bin"), Value::Null, 200).await;
    assert_eq!(
        (&v["binary"], &v["content"], &v["size"]),
        (&json!(true), &Value::Null, &json!(blob.len())),
        "{v}"
    );
    assert_eq!(v["sha256"], sha_on_disk(&h.project.join("blob.bin")));

    // Create, and a second create of the same name.
    let notes = format!("{files}/notes.md");
    let on_disk = h.project.join("notes.md");
    let owner = [("Mattermost-User-Id", OWNER)];
    let v = owner_ok(&h, "POST", &notes, json!({"content": "one\n"}), 201).await;
    let first = sha_on_disk(&on_disk);
    assert_eq!(
        v,
        json!({"path": "notes.md", "size": 4, "sha256": first.clone()})
    );
    let got = call(&h, "POST", &notes, OWNER, json!({"content": "again\n"})).await;
    assert_error(&got, 409, "a second create");
    assert_eq!(std::fs::read_to_string(&on_disk).unwrap(), "one\n");

    // Update from the version read; then again from that old version: stale.
    let body = json!({"content": "two\n"}).to_string();
    let v = file_call(&h, "PUT", &notes, &if_match(&first), &body).await;
    assert_eq!(v.0, 200, "{v:?}");
    let second = sha_on_disk(&on_disk);
    assert_eq!(second, sha256(b"two\n"));
    assert_eq!(
        v.1,
        json!({"path": "notes.md", "size": 4, "sha256": second.clone()})
    );
    let body = json!({"content": "lost\n"}).to_string();
    let got = file_call(&h, "PUT", &notes, &if_match(&first), &body).await;
    assert_error(&got, 409, "an update from a stale version");
    assert!(
        got.1["error"].as_str().unwrap().contains(&second),
        "{got:?}"
    );
    assert_eq!(std::fs::read_to_string(&on_disk).unwrap(), "two\n");

    // Without If-Match: 428, nothing changed.
    let before = world(&h, &standin, &sid).await;
    let got = file_call(&h, "PUT", &notes, &owner, &body).await;
    assert_error(&got, 428, "an update without If-Match");
    let got = file_call(&h, "DELETE", &notes, &owner, "").await;
    assert_error(&got, 428, "a delete without If-Match");
    assert_eq!(world(&h, &standin, &sid).await, before);

    // A quoted entity tag is the same version.
    let body = json!({"content": "three\n"}).to_string();
    let quoted = format!("\"{second}\"");
    let v = file_call(&h, "PUT", &notes, &if_match(&quoted), &body).await;
    assert_eq!(v.0, 200, "{v:?}");
    let third = sha_on_disk(&on_disk);
    assert_eq!(v.1["sha256"], third);

    // Delete from the version read (hex in any case).
    let upper = third.to_uppercase();
    let v = file_call(&h, "DELETE", &notes, &if_match(&upper), "").await;
    assert_eq!(v, (200, json!({})));
    assert!(!on_disk.exists());

    // Told: the audit log, the thread, the live events.
    let audit: Vec<(Option<String>, String, String, String)> = audit_log(&h)
        .into_iter()
        .filter(|(_, _, action, _)| action.starts_with("file_"))
        .map(|(s, actor, action, d)| (s, actor, action, d["path"].as_str().unwrap().into()))
        .collect();
    let entry = |action: &str| {
        (
            Some(sid.clone()),
            OWNER.to_owned(),
            action.to_owned(),
            "notes.md".to_owned(),
        )
    };
    assert_eq!(
        audit,
        [
            entry("file_created"),
            entry("file_updated"),
            entry("file_updated"),
            entry("file_deleted")
        ]
    );
    let root = h.root_post().id;
    h.wait_for("the edits announced in the thread", |log| {
        let lines: Vec<&str> = log
            .iter()
            .filter(|(k, p)| k == "create" && p.root_id == root && p.message.contains("notes.md"))
            .map(|(_, p)| p.message.as_str())
            .collect();
        lines.len() == 4
            && ["created", "updated", "updated", "deleted"]
                .iter()
                .zip(&lines)
                .all(|(what, line)| line.contains(what) && line.contains("@name-u1"))
    })
    .await;
    let change = |action: &str| ("notes.md".to_owned(), action.to_owned(), OWNER.to_owned());
    let want = vec![
        change("created"),
        change("updated"),
        change("updated"),
        change("deleted"),
    ];
    eventually("the file_change events", || async {
        file_changes(&h, &sid).await == want
    })
    .await;

    // `@all` stands alone: the server reads a word like `@all.md` as a username, not the channel.
    // A file name is text from outside: announced, it notifies no one and links nowhere.
    let hostile = "@channel [see](https:evil.example) @all notes.md";
    let url = format!("{files}/{}", hostile.replace(' ', "%20"));
    owner_ok(&h, "POST", &url, json!({"content": "x"}), 201).await;
    assert!(h.project.join(hostile).is_file());
    let announced = || {
        h.thread()
            .into_iter()
            .find(|p| p.message.contains("evil.example"))
    };
    h.wait_for("the hostile name announced", |_| announced().is_some())
        .await;
    let line = announced().unwrap().message;
    for raw in ["@channel", "@all", "](https"] {
        assert!(!line.contains(raw), "{raw} in {line:?}");
    }
    h.deactivate().await;
}

// --- refusals ---------------------------------------------------------------------------------

/// Traversal (encoded `..`, absolute), `.git` (read or written), a missing parent, oversize bodies, unknown
/// fields, a member who may not approve (403) and an outsider (404): each with its status and
/// nothing changed, in the project, beside it, in the audit log, the posts or the session.
/// Then one allowed edit is the only `file_change` the session ever published.
#[tokio::test]
async fn refused_edits_change_nothing() {
    let standin = StandIn::new();
    let h = stand_in_harness("files-refused", &standin, json!({})).await;
    // `.git` in any case (on a case-insensitive file system `.GIT` is git's own).
    for git in [".git", ".GIT"] {
        std::fs::create_dir(h.project.join(git)).unwrap();
        std::fs::write(h.project.join(git).join("config"), "[core]\n").unwrap();
    }
    let (sid, _) = start_session(&h, &standin, json!({})).await;
    let files = format!("{SESSIONS}/{sid}/files");
    let readme = h.project.join("README.md");
    let sha = sha_on_disk(&readme);
    let outside = h.dir.join("abs.txt");
    let absolute = outside.display().to_string().replace('/', "%2F");

    let content = json!({"content": "pwned\n"}).to_string();
    let big = json!({ "content": "a".repeat(1 << 20) }).to_string();
    let member_refusal = expected(MEMBER, Action::EditFile, WhoCanApprove::Owner)
        .expect("a member who may not approve may not edit");
    let mut cases: Vec<(&str, &str, String, String, i64)> = Vec::new();
    let traversal = [
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e/x",
        "..%2Fescaped.txt",
        absolute.as_str(),
        ".git/config",
        ".git/hooks-new",
        ".GIT/config",
        ".git",
    ];
    for path in traversal {
        let url = format!("{files}/{path}");
        // git's own data is refused (403) to reads and writes alike: it can hold credentials.
        let status = if path.to_lowercase().starts_with(".git") {
            403
        } else {
            400
        };
        cases.push(("POST", OWNER, url.clone(), content.clone(), status));
        cases.push(("PUT", OWNER, url.clone(), content.clone(), status));
        cases.push(("DELETE", OWNER, url.clone(), String::new(), status));
        cases.push(("GET", OWNER, url, String::new(), status));
    }
    let readme_url = format!("{files}/README.md");
    cases.push((
        "POST",
        OWNER,
        format!("{files}/nodir/x.md"),
        content.clone(),
        404,
    ));
    let missing = format!("{files}/missing.md");
    cases.push(("PUT", OWNER, missing.clone(), content.clone(), 404));
    cases.push(("DELETE", OWNER, missing.clone(), String::new(), 404));
    cases.push(("GET", OWNER, missing, String::new(), 404));
    cases.push(("POST", OWNER, format!("{files}/big.md"), big.clone(), 413));
    cases.push(("PUT", OWNER, readme_url.clone(), big, 413));
    let unknown = json!({"content": "x", "mode": "plan"}).to_string();
    cases.push(("POST", OWNER, format!("{files}/u.md"), unknown.clone(), 400));
    cases.push(("PUT", OWNER, readme_url.clone(), unknown, 400));
    cases.push((
        "POST",
        OWNER,
        format!("{files}/m.md"),
        "{\"content\": ".into(),
        400,
    ));
    for user in [MEMBER, OUTSIDER] {
        let status = if is_member(user) { 403 } else { 404 };
        cases.push((
            "POST",
            user,
            format!("{files}/by-{user}.md"),
            content.clone(),
            status,
        ));
        cases.push(("PUT", user, readme_url.clone(), content.clone(), status));
        cases.push(("DELETE", user, readme_url.clone(), String::new(), status));
    }

    for (method, user, url, body, status) in &cases {
        let before = world(&h, &standin, &sid).await;
        let headers = [("Mattermost-User-Id", *user), ("If-Match", sha.as_str())];
        let got = file_call(&h, method, url, &headers, body).await;
        let what = format!("{user} {method} {url}");
        assert_error(&got, *status, &what);
        match (*status, *user) {
            (403, OWNER) => assert!(
                got.1["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("inside `.git`")),
                "{what}: {}",
                got.1
            ),
            (403, _) => assert_eq!(got.1["error"], json!(member_refusal), "{what}"),
            (404, OUTSIDER) => assert_eq!(got.1["error"], json!(NOT_VISIBLE), "{what}"),
            _ => {}
        }
        assert_eq!(
            world(&h, &standin, &sid).await,
            before,
            "{what} changed something"
        );
    }
    assert!(!outside.exists() && !h.dir.join("root/x").exists());
    assert!(!Path::new("/etc/passwd-new").exists());

    // One allowed edit: its event is the first and only file_change (events are stored in
    // the order they happen, so an earlier one from a refused call would come before it).
    let headers = [("Mattermost-User-Id", OWNER), ("If-Match", sha.as_str())];
    let got = file_call(&h, "PUT", &readme_url, &headers, &content).await;
    assert_eq!(got.0, 200, "{got:?}");
    let want = vec![(
        "README.md".to_owned(),
        "updated".to_owned(),
        OWNER.to_owned(),
    )];
    eventually("the allowed edit's event", || async {
        !file_changes(&h, &sid).await.is_empty()
    })
    .await;
    assert_eq!(file_changes(&h, &sid).await, want);
    h.deactivate().await;
}
