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
//! Two runs:
//! - `paced`: the fake writes one line every BENCH_LINE_GAP_MS (default 10 ms, i.e. 100 lines/s
//!   per session and 5000/s for all 50: faster than a model streams). This is the latency the
//!   target is about: what the engine adds to each line.
//! - `burst`: every line of a turn at once, all sessions together. Lines queue behind each
//!   other, so its latency is backlog, not per-line cost; it is reported with the throughput.
//!
//! Memory: VmRSS of this process (not the fake CLIs) after a warm-up session, then again with
//! 50 sessions started and used; the delta over 50 is the engine's cost per session.
//! Targets (paced run): ≤ 1 MiB per session, p99 < 5 ms. Prints the numbers and MISSED/met.

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
const FAKE_GAP_VAR: &str = "ANTHROPIC_FAKE_CLI_GAP_US";
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
fn run_fake_cli(transcript: &Path, gap: Duration) -> std::io::Result<()> {
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
                // Independent sessions are not in lockstep: each fake starts its turn at its own
                // offset within one gap, or all 50 would write at the same instant every gap.
                if !gap.is_zero() {
                    std::thread::sleep(gap * (std::process::id() % 100) / 100);
                }
                for line in &recorded {
                    if !gap.is_zero() {
                        std::thread::sleep(gap);
                    }
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
        let gap = std::env::var(FAKE_GAP_VAR)
            .ok()
            .and_then(|s| s.parse().ok())
            .map(Duration::from_micros)
            .unwrap_or_default();
        let result = run_fake_cli(Path::new(&transcript), gap);
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

struct Run {
    latencies: Vec<Duration>,
    bytes_per_session: f64,
    elapsed: Duration,
    lines: usize,
}

async fn bench() {
    let gap_ms: u64 = std::env::var("BENCH_LINE_GAP_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let turns = turns();
    let paced = run(Duration::from_millis(gap_ms), turns).await;
    let burst = run(Duration::ZERO, turns).await;
    let report = |name: &str, r: &Run| {
        let (p50, p99, max) = (
            percentile(&r.latencies, 50.0),
            percentile(&r.latencies, 99.0),
            r.latencies.last().copied().unwrap_or_default(),
        );
        println!(
            "{}",
            json!({"bench": "engine", "run": name, "sessions": SESSIONS, "turns_per_session": turns,
                   "samples": r.latencies.len(), "cli_lines": r.lines, "elapsed_s": r.elapsed.as_secs_f64(),
                   "lines_per_s": (r.lines as f64 / r.elapsed.as_secs_f64()).round(),
                   "engine_bytes_per_session": r.bytes_per_session.round(),
                   "latency_p50_us": p50.as_micros(), "latency_p99_us": p99.as_micros(),
                   "latency_max_us": max.as_micros()})
        );
        (p50, p99, max)
    };
    let (p50, p99, max) = report("paced", &paced);
    let (bp50, bp99, _) = report("burst", &burst);
    println!(
        "engine memory per session: {:.0} KiB (target <= 1024 KiB): {}",
        paced.bytes_per_session / 1024.0,
        verdict(paced.bytes_per_session <= TARGET_BYTES_PER_SESSION)
    );
    println!(
        "stdout line -> published event, {SESSIONS} sessions, a line every {gap_ms} ms each: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms over {} samples (target p99 < 5 ms): {}",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        paced.latencies.len(),
        verdict(!paced.latencies.is_empty() && p99 < TARGET_P99)
    );
    println!(
        "burst (all lines at once, backlog included): {:.0} lines/s, p50 {:.1} ms, p99 {:.1} ms (no target)",
        burst.lines as f64 / burst.elapsed.as_secs_f64(),
        bp50.as_secs_f64() * 1e3,
        bp99.as_secs_f64() * 1e3
    );
}

async fn run(gap: Duration, turns: usize) -> Run {
    let root = std::env::temp_dir().join(format!(
        "cc-bench-engine-{}-{}",
        std::process::id(),
        gap.as_micros()
    ));
    let project = root.join("proj");
    std::fs::create_dir_all(&project).expect("bench dirs");
    let transcript =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cli/text_partial.jsonl");
    let env = CliEnv {
        cli_path: std::env::current_exe().expect("own path"),
        home_dir: root.join("home"),
        path: std::env::var_os("PATH"),
        anthropic: vec![
            (FAKE_MODE_VAR.into(), transcript.display().to_string()),
            (FAKE_GAP_VAR.into(), gap.as_micros().to_string()),
        ],
        ..CliEnv::default()
    };
    let store = Store::open(&root.join("engine.db")).await.expect("store");
    let engine = Engine::new(
        store,
        Arc::new(ProcessLauncher::new(env)),
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
    let lines_per_turn = std::fs::read_to_string(&transcript)
        .map(|t| t.lines().count())
        .unwrap_or(0);
    let _ = std::fs::remove_dir_all(&root);
    Run {
        latencies,
        bytes_per_session: rss_after.saturating_sub(rss_before) as f64 / SESSIONS as f64,
        elapsed,
        lines: lines_per_turn * turns * SESSIONS,
    }
}
