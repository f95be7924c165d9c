//! High availability: which node of a Mattermost cluster runs each session (a lease in the
//! plugin KV store with a fencing number), and forwarding of what reaches another node to it.
//!
//! - [`node`]: this process's node id (the server's cluster id, or one of its own).
//! - [`lease`]: one lease without I/O: the KV record, the timing, the table of who may write what.
//! - [`leases`]: the keeper of this node's leases: acquire, renew, release, report losses.
//! - [`forward`]: a call carried to the node that runs its session, and its answer back.
//! - [`directory`]: which session each channel has, for nodes that do not share a data directory.

pub(crate) mod directory;
pub(crate) mod forward;
pub mod lease;
pub mod leases;
pub(crate) mod node;
