//! Processes as `/proc` shows them: one process's parent, group and start time, the tree below
//! a process, and the identity (pid, start time, boot) that names one process for good, so a
//! pid recorded by an earlier run is signalled only while it still names the same process.
//!
//! Every function here reads `/proc`: call them off the async runtime's thread.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// What `/proc/<pid>/stat` says of a process that matters here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcInfo {
    pub ppid: i32,
    pub pgrp: i32,
    /// Start time in clock ticks after boot: with the pid (and the boot), names one process.
    pub start: u64,
    /// Exited but not yet reaped: it runs nothing any more.
    pub zombie: bool,
}

pub(crate) fn process_info(pid: i32) -> Option<ProcInfo> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: split after the LAST ')'.
    let (_, rest) = stat.rsplit_once(") ")?;
    // Fields from the third (state) on; ppid, pgrp and starttime are the 4th, 5th and 22nd.
    let fields: Vec<&str> = rest.split(' ').collect();
    Some(ProcInfo {
        zombie: matches!(fields.first(), Some(&("Z" | "X"))),
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// Every process below `root` (children, their children, …) with what `/proc` said of it.
pub fn descendants(root: i32) -> Vec<(i32, ProcInfo)> {
    let mut table: Vec<(i32, ProcInfo)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            if let Some(info) = process_info(pid) {
                table.push((pid, info));
            }
        }
    }
    let mut parents = vec![root];
    // The table is read process by process, not atomically: a pid reused mid-read could make
    // a parent cycle.
    let mut visited = HashSet::from([root]);
    let mut found = Vec::new();
    while let Some(parent) = parents.pop() {
        for (pid, info) in &table {
            if info.ppid == parent && visited.insert(*pid) {
                found.push((*pid, *info));
                parents.push(*pid);
            }
        }
    }
    found
}

/// The process groups of every live descendant of `root`, with the members seen in each as
/// `(pid, start time)`.
pub fn descendant_groups(root: i32) -> HashMap<i32, HashSet<(i32, u64)>> {
    let mut groups: HashMap<i32, HashSet<(i32, u64)>> = HashMap::new();
    for (pid, info) in descendants(root) {
        groups
            .entry(info.pgrp)
            .or_default()
            .insert((pid, info.start));
    }
    groups
}

/// This boot's id: start times count from boot, so a pid and start time recorded before a
/// reboot may name a new process after it.
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
}

/// One process, for good: what a later run of the plugin needs to find a process this run
/// started, and to leave alone a process that merely got the same pid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessIdentity {
    pub pid: i32,
    /// Clock ticks after boot (`/proc/<pid>/stat`, field 22).
    pub start: u64,
    pub boot_id: String,
}

impl ProcessIdentity {
    /// The identity of `pid` now; None if it is gone (or `/proc` cannot be read).
    pub fn of(pid: i32) -> Option<Self> {
        Some(ProcessIdentity {
            pid,
            start: process_info(pid)?.start,
            boot_id: boot_id()?,
        })
    }

    /// Still the same process, and still running (a zombie runs nothing).
    pub fn is_alive(&self) -> bool {
        process_info(self.pid).is_some_and(|p| p.start == self.start && !p.zombie)
            && boot_id().as_deref() == Some(self.boot_id.as_str())
    }

    /// SIGKILLs the process, every process below it and their process groups (Bash commands
    /// run in groups of their own), if it is still the process this identity names; then waits
    /// up to `wait` for it to be gone. Returns whether it was alive.
    pub fn kill_tree(&self, wait: Duration) -> bool {
        if !self.is_alive() {
            return false;
        }
        // Everything below is collected before anything dies: a process whose parent is
        // killed is re-parented away and could no longer be found from here.
        let below = descendants(self.pid);
        let groups: HashSet<i32> = below.iter().map(|(_, info)| info.pgrp).collect();
        for group in groups {
            ignore_gone(killpg(Pid::from_raw(group), Signal::SIGKILL));
        }
        for (pid, _) in &below {
            ignore_gone(kill(Pid::from_raw(*pid), Signal::SIGKILL));
        }
        if process_info(self.pid).is_some_and(|p| p.pgrp == self.pid) {
            ignore_gone(killpg(Pid::from_raw(self.pid), Signal::SIGKILL));
        }
        ignore_gone(kill(Pid::from_raw(self.pid), Signal::SIGKILL));
        let deadline = Instant::now() + wait;
        while self.is_alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }
}

fn ignore_gone(result: nix::Result<()>) {
    if let Err(e) = result {
        if e != nix::errno::Errno::ESRCH {
            tracing::debug!("SIGKILL to a leftover process: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The identity names one process: the same pid with another start time (a reused pid)
    /// or another boot is not it, and a process that exited is not alive.
    #[test]
    fn identity_is_pid_start_time_and_boot() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let pid = i32::try_from(child.id()).expect("pid");
        let me = ProcessIdentity::of(pid).expect("alive");
        assert!(me.is_alive());
        let reused = ProcessIdentity {
            start: me.start + 1,
            ..me.clone()
        };
        assert!(!reused.is_alive());
        assert!(!reused.kill_tree(Duration::ZERO), "not ours: untouched");
        let rebooted = ProcessIdentity {
            boot_id: "another-boot".into(),
            ..me.clone()
        };
        assert!(!rebooted.is_alive());
        assert!(me.is_alive(), "neither look-alike was killed");
        child.kill().expect("kill");
        child.wait().expect("reap");
        assert!(!me.is_alive());
    }
}
