//! The Mattermost plugin SDK layer: the model types, the hook and API call
//! argument shapes, and (later) the typed API client and Hooks trait.
//! Knows Mattermost; knows nothing of Claude.

pub mod model;
pub mod rpc_types;
