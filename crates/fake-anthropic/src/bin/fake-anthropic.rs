//! `fake-anthropic [--log FILE] [--port N] SCRIPT.json`
//!
//! Prints its base URL (`http://127.0.0.1:PORT`) as the first stdout line, then serves until
//! SIGINT/SIGTERM. Used by harnesses in other languages that cannot link the library.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use fake_anthropic::{FakeServer, Script};

const USAGE: &str = "usage: fake-anthropic [--log FILE] [--port N] SCRIPT.json";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut log: Option<PathBuf> = None;
    let mut port: u16 = 0;
    let mut script: Option<PathBuf> = None;
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--log") => log = args.next().map(PathBuf::from),
            Some("--port") => match args.next().and_then(|p| p.to_str()?.parse().ok()) {
                Some(p) => port = p,
                None => {
                    eprintln!("--port needs a number\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            Some("-h" | "--help") => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ if script.is_none() => script = Some(PathBuf::from(arg)),
            _ => {
                eprintln!("unexpected argument {arg:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(script_path) = script else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let script = match Script::from_file(&script_path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fake-anthropic: {e}");
            return ExitCode::from(2);
        }
    };
    let server = match FakeServer::start_on(script, log.as_deref(), port).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fake-anthropic: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", server.base_url());
    let _ = std::io::stdout().flush();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("fake-anthropic: cannot watch SIGTERM: {e}");
            return ExitCode::FAILURE;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    drop(server);
    ExitCode::SUCCESS
}
