//! High availability: which node of a Mattermost cluster runs each session (a lease in the
//! plugin KV store with a fencing number), and forwarding of what reaches another node to it.
