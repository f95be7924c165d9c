//! High availability: which node of a Mattermost cluster runs each session (a lease in the
//! plugin KV store with a fencing number), and forwarding of what reaches another node to it.

#[cfg_attr(not(test), allow(dead_code, unused_imports))] // wired in by the lead in the same session
pub(crate) mod forward;
