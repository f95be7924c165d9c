//! The Mattermost plugin SDK layer: the model types, the hook and API call
//! argument shapes, the typed API client, the Hooks trait with the service
//! the host calls, and the ServeHTTP plumbing. Knows Mattermost; knows
//! nothing of Claude.

pub mod api;
pub mod attachments;
pub mod hooks;
pub mod http;
pub mod model;
pub mod rpc_types;
pub mod server_config;
