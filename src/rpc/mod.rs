//! Transport to the Mattermost server: the gob codec and net/rpc framing
//! (the yamux session, MuxBroker and handshake join them here).

pub mod gob;
pub mod netrpc;
