//! The plugin executable Mattermost starts. Thin: supervisor mode (src/supervisor.rs),
//! environment checks, signal disposition, logging, then [`claude_code::plugin::run`].

use std::path::PathBuf;
use std::time::Duration;

use claude_code::app::App;
use claude_code::plugin::{self, log};
use claude_code::rpc::handshake;

/// See Cargo.toml: musl's allocator is slow for the large buffers of HTTP bodies.
#[cfg(target_env = "musl")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // Before anything else: this executable is also each CLI's supervisor, started with the
    // CLI's environment (no go-plugin cookie) by the plugin itself.
    if let Some(code) = claude_code::supervisor::run_if_requested() {
        std::process::exit(code);
    }
    if let Err(e) = handshake::check_env() {
        eprintln!("{} {}: {e}", env!("PLUGIN_ID"), env!("PLUGIN_VERSION"));
        std::process::exit(1);
    }
    // A Ctrl-C to the server's process group must not kill the plugin (Go
    // plugins do the same); the host ends us with Quit or SIGKILL.
    // SAFETY: installs SIG_IGN, no handler code runs; before any thread exists.
    if let Err(e) = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGINT,
            nix::sys::signal::SigHandler::SigIgn,
        )
    } {
        eprintln!("cannot ignore SIGINT: {e}");
    }
    log::init();
    claude_code::supervisor::supervise_with(PathBuf::from("/proc/self/exe"));
    // One thread runs every task: the plugin's work is I/O between the host and
    // the CLIs, and a call crosses several tasks (yamux, net/rpc, handler), so
    // wake-ups within one thread keep latency low even on a busy server. SQLite
    // has its own thread and blocking work goes to the blocking pool.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let app = App::from_env();
    let code = match runtime.block_on(plugin::run(app)) {
        Ok(exit) => {
            tracing::info!(reason = ?exit, "plugin exited");
            0
        }
        Err(e) => {
            tracing::error!("{e}");
            1
        }
    };
    // Tasks still blocked on I/O must not hold the process past the host's 2 s.
    runtime.shutdown_timeout(Duration::from_millis(200));
    std::process::exit(code);
}
