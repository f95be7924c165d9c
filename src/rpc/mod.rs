//! The go-plugin "netrpc" protocol stack: process handshake, yamux session, MuxBroker
//! (transport), and above them gob + net/rpc (codec).

pub mod broker;
pub mod handshake;
pub mod yamux;
