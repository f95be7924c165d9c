//! High availability: which node of a Mattermost cluster runs each session (a lease in the
//! plugin KV store with a fencing number), and forwarding of what reaches another node to it.
//!
//! - [`node`]: this process's node id (the server's cluster id, or one of its own).
//! - [`lease`]: one lease without I/O: the KV record, the timing, the table of who may write what.
//! - [`leases`]: the keeper of this node's leases: acquire, renew, release, report losses.

// Wired in by the lead in the same session (then these allows go). `lease` is allowed in test
// builds too: `LeaseTiming::from_env` has no test (it reads the process's environment, which
// tests share; `from_setting` is tested).
#[allow(dead_code)]
pub(crate) mod lease;
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod leases;
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod node;
