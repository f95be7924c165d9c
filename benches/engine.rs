//! Session engine under load: 50 concurrent sessions, each on a lightweight fake CLI that
//! replays a transcript recorded from the real CLI (tests/fixtures/cli/text_partial.jsonl).
//!
//! The fake CLI is this same binary, re-executed: the engine clears the child's environment
//! except `ANTHROPIC_*`, so `ANTHROPIC_FAKE_CLI_TRANSCRIPT` switches it into fake mode. It
//! stamps each `text_delta` with the wall-clock nanoseconds at which it writes the line; the
//! bench subtracts that from the time the event reaches a subscriber. That latency covers the
//! pipe, parsing, the SQLite write (events are stored before they are published) and the
//! broadcast.
//!
//! Memory: VmRSS of this process (not the fake CLIs) after a warm-up session, then again with
//! 50 sessions started and used; the delta over 50 is the engine's cost per session.
//! Targets: ≤ 1 MiB per session, p99 < 5 ms. Prints the numbers and MISSED/met.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use claude_code::claude::CliEnv;
use claude_code::sessions::{
    Engine, EventKind, ProcessLauncher, SessionConfig, SessionHandle, SessionSpec,
};
use claude_code::store::Store;
use serde_json::{json, Value};

const SESSIONS: usize = 50;
const FAKE_MODE_VAR: &str = "ANTHROPIC_FAKE_CLI_TRANSCRIPT";
const TARGET_BYTES_PER_SESSION: f64 = 1024.0 * 1024.0;
const TARGET_P99: Duration = Duration::from_millis(5);

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn turns() -> usize {
    std::env::var("BENCH_TURNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
}

/// Fake CLI: answers `initialize`, replays the recorded turn for each user line.
fn run_fake_cli(transcript: &Path) -> std::io::Result<()> {
    let recorded: Vec<Value> = std::fs::read_to_string(transcript)?
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        // The recording's own control traffic belonged to its host, not to ours.
        .filter(|v| {
            !matches!(
                v["type"].as_str(),
                Some("control_response" | "control_request")
            )
        })
        .collect();
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let msg: Value = match serde_json::from_str(&line?) {
            Ok(v) => v,
            Err(_) => std::process::exit(1), // like the real CLI
        };
        match msg["type"].as_str() {
            Some("control_request") => {
                let reply = json!({"type": "control_response", "response": {"subtype": "success",
                    "request_id": msg["request_id"], "response": {}}});
                writeln!(out, "{reply}")?;
                out.flush()?;
            }
            Some("user") => {
                for line in &recorded {
                    let mut line = line.clone();
                    if line["event"]["delta"]["type"] == "text_delta" {
                        line["event"]["delta"]["text"] = json!(now_ns().to_string());
                    }
                    writeln!(out, "{line}")?;
                    out.flush()?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Runs `turns` prompts on one session; returns the text-delta latencies.
async fn drive(session: SessionHandle, turns: usize) -> Vec<Duration> {
    let mut rx = session.subscribe();
    let mut latencies = Vec::new();
    for turn in 0..turns {
        if let Err(e) = session.prompt(&format!("turn {turn}"), "bench").await {
            eprintln!("prompt failed: {e}");
            return latencies;
        }
        loop {
            match rx.recv().await {
                Ok(event) => match event.kind {
                    EventKind::TextDelta { text } => {
                        if let Ok(sent) = text.parse::<u128>() {
                            let ns = now_ns().saturating_sub(sent);
                            latencies
                                .push(Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX)));
                        }
                    }
                    EventKind::TurnResult { .. } => break,
                    _ => {}
                },
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    eprintln!("subscriber lagged by {n} events");
                }
                Err(e) => {
                    eprintln!("event stream ended: {e}");
                    return latencies;
                }
            }
        }
    }
    latencies
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

fn main() {
    if let Some(transcript) = std::env::var_os(FAKE_MODE_VAR) {
        let result = run_fake_cli(Path::new(&transcript));
        std::process::exit(if result.is_ok() { 0 } else { 1 });
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    runtime.block_on(bench());
}

async fn bench() {
    let root = std::env::temp_dir().join(format!("cc-bench-engine-{}", std::process::id()));
    let project = root.join("proj");
    std::fs::create_dir_all(&project).expect("bench dirs");
    let transcript =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cli/text_partial.jsonl");
    let env = CliEnv {
        cli_path: std::env::current_exe().expect("own path"),
        home_dir: root.join("home"),
        path: std::env::var_os("PATH"),
        anthropic: vec![(FAKE_MODE_VAR.into(), transcript.display().to_string())],
        ..CliEnv::default()
    };
    let store = Store::open(&root.join("engine.db")).await.expect("store");
    let engine = Engine::new(
        store,
        Arc::new(ProcessLauncher { env }),
        SessionConfig::default(),
    );
    let spec = SessionSpec {
        channel_id: "bench".into(),
        owner_id: "bench".into(),
        project_path: project.clone(),
        model: None,
        permission_mode: None,
    };

    // Warm-up: one-time allocations (runtime, SQLite caches, parser) are not per-session cost.
    let warm = engine.start(spec.clone()).await.expect("warm-up session");
    drive(warm.clone(), 2).await;
    warm.stop("bench").await.expect("stop warm-up");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_before = rss_bytes();

    let turns = turns();
    let started = std::time::Instant::now();
    let mut sessions = Vec::new();
    for _ in 0..SESSIONS {
        sessions.push(engine.start(spec.clone()).await.expect("session starts"));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for session in &sessions {
        tasks.spawn(drive(session.clone(), turns));
    }
    let mut latencies = Vec::new();
    while let Some(result) = tasks.join_next().await {
        latencies.extend(result.unwrap_or_default());
    }
    let elapsed = started.elapsed();
    let rss_after = rss_bytes();
    engine.stop_all().await;

    latencies.sort();
    let per_session = rss_after.saturating_sub(rss_before) as f64 / SESSIONS as f64;
    let (p50, p99, max) = (
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or_default(),
    );
    println!(
        "{}",
        json!({"bench": "engine", "sessions": SESSIONS, "turns_per_session": turns,
               "samples": latencies.len(), "elapsed_s": elapsed.as_secs_f64(),
               "rss_before_bytes": rss_before, "rss_after_bytes": rss_after,
               "engine_bytes_per_session": per_session.round(),
               "latency_p50_us": p50.as_micros(), "latency_p99_us": p99.as_micros(),
               "latency_max_us": max.as_micros()})
    );
    println!(
        "engine memory per session: {:.0} KiB (target <= 1024 KiB): {}",
        per_session / 1024.0,
        verdict(per_session <= TARGET_BYTES_PER_SESSION)
    );
    println!(
        "stdout line -> published event: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms over {} samples (target p99 < 5 ms): {}",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        latencies.len(),
        verdict(!latencies.is_empty() && p99 < TARGET_P99)
    );
    let _ = std::fs::remove_dir_all(&root);
}
