//! Gob throughput, Rust against Go's encoding/gob on the same values in the
//! same run (`make bench`). The values are Go's own: the Post__typical and
//! CommandArgs__typical items of the conformance corpus.
//!
//! ENCODE: one long-lived encoder (types sent before timing), one value per
//! op into a reused buffer. DECODE: one long-lived decoder reading a stream
//! of the same value message repeated (types received once), framing included.
//! Rust and Go take turns, ROUNDS times; in each round every case is measured
//! for BENCH_SECONDS / ROUNDS per language, and the medians are compared. Prints one JSON line per case, language and
//! round, then the ratios. Target: Rust at least 2x Go's throughput in every case.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use claude_code::mattermost::model::{CommandArgs, Post};
use claude_code::rpc::gob::stream::StreamDecoder;
use claude_code::rpc::gob::{Encoder, Gob};
use serde_json::json;

const TARGET_RATIO: f64 = 2.0;

fn seconds() -> f64 {
    std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0)
}

fn gobcorpus() -> PathBuf {
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/gobcorpus");
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg("./cmd/gobcorpus")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance"))
        .status()
        .expect("go is needed to measure the Go side");
    assert!(status.success());
    out
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn load<T: Gob>(dir: &Path, name: &str) -> T {
    let bytes = std::fs::read(dir.join(format!("{name}.gob"))).unwrap();
    block_on(async {
        StreamDecoder::new(&bytes[..])
            .decode::<T>()
            .await
            .unwrap()
            .unwrap()
    })
}

/// Runs `op` in batches until `secs` have passed; returns ns per op.
fn measure(secs: f64, mut op: impl FnMut(u64)) -> f64 {
    op(1000); // warm-up
    let budget = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut ops = 0u64;
    let mut batch = 1000u64;
    while start.elapsed() < budget {
        op(batch);
        ops += batch;
        batch = (batch * 2).min(200_000);
    }
    start.elapsed().as_nanos() as f64 / ops as f64
}

fn bench_case<T: Gob>(value: &T, secs: f64) -> (f64, f64, usize) {
    let mut enc = Encoder::new();
    let mut first = Vec::new();
    enc.encode(value, &mut first).unwrap();
    let mut out = Vec::with_capacity(4096);
    enc.encode(value, &mut out).unwrap();
    let message_len = out.len();
    let encode_ns = measure(secs, |n| {
        for _ in 0..n {
            out.clear();
            enc.encode(value, &mut out).unwrap();
        }
        std::hint::black_box(&out);
    });

    // A stream: the definitions once, then the value message over and over.
    const COPIES: usize = 20_000;
    let mut stream = first.clone();
    for _ in 0..COPIES {
        stream.extend_from_slice(&out);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut decoder = StreamDecoder::new(&stream[..]);
    let mut left = 0usize;
    let decode_ns = measure(secs, |n| {
        rt.block_on(async {
            for _ in 0..n {
                if left == 0 {
                    decoder = StreamDecoder::new(&stream[..]);
                    left = COPIES + 1;
                }
                left -= 1;
                std::hint::black_box(decoder.decode::<T>().await.unwrap());
            }
        })
    });
    (encode_ns, decode_ns, message_len)
}

/// Rust and Go take turns this many times; the medians are compared, so one slow turn on a
/// busy machine (Go's own timings swing by 50% between runs here) does not decide the verdict.
const ROUNDS: usize = 3;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let secs = seconds() / ROUNDS as f64;
    let corpus = std::env::temp_dir().join(format!("gob-bench-corpus-{}", std::process::id()));
    std::fs::create_dir_all(&corpus).unwrap();
    let go = gobcorpus();
    let gen = Command::new(&go)
        .arg("gen")
        .arg("-out")
        .arg(&corpus)
        .output()
        .unwrap();
    assert!(gen.status.success());

    let post: Post = load(&corpus, "Post__typical");
    let args: CommandArgs = load(&corpus, "CommandArgs__typical");
    // case -> (rust ns per round, go ns per round)
    let mut rounds: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for round in 1..=ROUNDS {
        for (name, (enc, dec, len)) in [
            ("post", bench_case(&post, secs)),
            ("command_args", bench_case(&args, secs)),
        ] {
            for (op, ns) in [("encode", enc), ("decode", dec)] {
                let case = format!("{op}_{name}");
                println!(
                    "{}",
                    json!({"lang": "rust", "round": round, "case": case, "ns_per_op": ns, "bytes_per_op": len})
                );
                rounds.entry(case).or_default().0.push(ns);
            }
        }
        let go_out = Command::new(&go)
            .args(["bench", "-corpus"])
            .arg(&corpus)
            .args(["-seconds", &secs.to_string()])
            .output()
            .unwrap();
        assert!(
            go_out.status.success(),
            "{}",
            String::from_utf8_lossy(&go_out.stderr)
        );
        for line in String::from_utf8_lossy(&go_out.stdout).lines() {
            let Ok(mut v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let (Some(case), Some(ns)) = (v["case"].as_str(), v["ns_per_op"].as_f64()) else {
                continue;
            };
            rounds.entry(case.to_owned()).or_default().1.push(ns);
            v["round"] = json!(round);
            println!("{v}");
        }
    }
    let _ = std::fs::remove_dir_all(&corpus);

    println!(
        "\ncase                 go ns/op   rust ns/op   rust/go throughput (median of {ROUNDS} rounds; each round)   target {TARGET_RATIO}x"
    );
    let mut missed = 0;
    for (case, (rust_ns, go_ns)) in rounds {
        if rust_ns.len() != ROUNDS || go_ns.len() != ROUNDS {
            missed += 1;
            println!("{case:<20} missing measurements: rust {rust_ns:?}, go {go_ns:?}   MISSED");
            continue;
        }
        let each: Vec<String> = go_ns
            .iter()
            .zip(&rust_ns)
            .map(|(g, r)| format!("{:.2}", g / r))
            .collect();
        let (go_ns, rust_ns) = (median(go_ns), median(rust_ns));
        let ratio = go_ns / rust_ns;
        let verdict = if ratio >= TARGET_RATIO {
            "met"
        } else {
            missed += 1;
            "MISSED"
        };
        println!(
            "{case:<20} {go_ns:>9.0} {rust_ns:>12.0} {ratio:>11.2}x  [{}]   {verdict}",
            each.join(" ")
        );
    }
    println!(
        "gob bench: {} cases below the {TARGET_RATIO}x target",
        missed
    );
}
