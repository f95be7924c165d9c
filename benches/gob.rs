//! Gob throughput, Rust against Go's encoding/gob on the same values in the
//! same run (`make bench`). The values are Go's own: the Post__typical and
//! CommandArgs__typical items of the conformance corpus.
//!
//! ENCODE: one long-lived encoder (types sent before timing), one value per
//! op into a reused buffer. DECODE: one long-lived decoder reading a stream
//! of the same value message repeated (types received once), framing included.
//! Prints one JSON line per case and language, then the ratios. Target: Rust
//! at least 2x Go's throughput in every case.

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

fn main() {
    let secs = seconds();
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
    let mut rust = std::collections::HashMap::new();
    for (name, (enc, dec, len)) in [
        ("post", bench_case(&post, secs)),
        ("command_args", bench_case(&args, secs)),
    ] {
        for (op, ns) in [("encode", enc), ("decode", dec)] {
            let case = format!("{op}_{name}");
            println!(
                "{}",
                json!({"lang": "rust", "case": case, "ns_per_op": ns, "bytes_per_op": len})
            );
            rust.insert(case, ns);
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
    let _ = std::fs::remove_dir_all(&corpus);
    println!("\ncase                  go ns/op   rust ns/op   rust/go throughput   target {TARGET_RATIO}x");
    let mut missed = 0;
    for line in String::from_utf8_lossy(&go_out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        println!("{line}");
        let case = v["case"].as_str().unwrap_or_default().to_owned();
        let (Some(go_ns), Some(rust_ns)) = (v["ns_per_op"].as_f64(), rust.get(&case)) else {
            continue;
        };
        let ratio = go_ns / rust_ns;
        let verdict = if ratio >= TARGET_RATIO {
            "met"
        } else {
            missed += 1;
            "MISSED"
        };
        println!("{case:<20} {go_ns:>10.0} {rust_ns:>12.0} {ratio:>18.2}x   {verdict}");
    }
    println!(
        "gob bench: {} cases below the {TARGET_RATIO}x target",
        missed
    );
}
