//! Transport to the Mattermost server, bottom up: the go-plugin handshake,
//! the yamux session over the unix socket, go-plugin's MuxBroker, Go's gob
//! codec and net/rpc framing. Knows nothing of Mattermost's API.

pub mod broker;
pub mod gob;
pub mod handshake;
pub mod netrpc;
pub mod yamux;
