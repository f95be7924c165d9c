//! Which node of the cluster this process is.
//!
//! Mattermost reports the node's id as the plugin's `ClusterId` (`GetPluginStatus`) when it runs
//! in a cluster, and "" on a single server. Without a cluster id the process makes up one of its
//! own, `solo-<uuid>`, unique per process. A solo process takes the leases an earlier solo
//! process left at once (there is no other node to wait for; see `lease::decide`), with the next
//! fence, so that whatever the earlier process still writes is refused.

use std::time::Duration;

use crate::mattermost::api::{Api, ApiError};
use crate::mattermost::server_config;

/// How the id of a process that is not part of a cluster begins.
pub(crate) const SOLO_PREFIX: &str = "solo-";

/// This process's node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeId {
    /// The cluster id, or `solo-<uuid simple>`.
    pub id: String,
    /// Whether the server said it runs in a cluster (a non-empty `ClusterId`).
    pub clustered: bool,
}

impl NodeId {
    /// A fresh id for a process that is not part of a cluster.
    pub(crate) fn solo() -> NodeId {
        NodeId {
            id: format!("{SOLO_PREFIX}{}", uuid::Uuid::new_v4().simple()),
            clustered: false,
        }
    }
}

/// Why this node could not learn who it is.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The server is set up as a cluster but did not say which node this is: running as a
    /// single node there would take the other nodes' sessions.
    #[error(
        "the server runs in a cluster (or could not tell) but did not say which node this is: {0}"
    )]
    Unknown(#[source] ApiError),
}

/// How many times GetPluginStatus is asked, and how long apart, before its failure counts.
const STATUS_TRIES: u32 = 3;
const STATUS_RETRY: Duration = Duration::from_millis(500);

/// Asks the server which node this is. A server that keeps failing to say is asked whether it
/// is set up as a cluster at all: if it is not, this is a single server; if it is (or cannot
/// tell), the plugin does not start, rather than run as one node among others unaware of them.
pub(crate) async fn node_id(api: &Api, plugin_id: &str) -> Result<NodeId, NodeError> {
    let mut tries = 0;
    let error = loop {
        match api.get_plugin_status(plugin_id).await {
            Ok(status) if !status.cluster_id.is_empty() => {
                return Ok(NodeId {
                    id: status.cluster_id,
                    clustered: true,
                })
            }
            Ok(_) => return Ok(NodeId::solo()),
            Err(e) => {
                tries += 1;
                if tries == STATUS_TRIES {
                    break e;
                }
                tokio::time::sleep(STATUS_RETRY).await;
            }
        }
    };
    let enabled = api
        .get_config_value()
        .await
        .ok()
        .map(|config| server_config::cluster_enabled(&config));
    without_status(enabled, error)
}

/// The node when GetPluginStatus failed, from `ClusterSettings.Enable` (`None`: unknown).
fn without_status(cluster_enabled: Option<bool>, error: ApiError) -> Result<NodeId, NodeError> {
    match cluster_enabled {
        Some(false) => {
            tracing::warn!(%error, "the server did not tell the plugin's cluster id; it is not a cluster, so this is a single node");
            Ok(NodeId::solo())
        }
        _ => Err(NodeError::Unknown(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mattermost::api::in_process;
    use crate::mattermost::model::{AppError, PluginStatus};
    use crate::mattermost::rpc_types::{GetPluginStatusReturns, StringArgs};
    use crate::rpc::netrpc::Server;

    /// A host whose GetPluginStatus answers `answer` for plugin "claude-code" and 404 otherwise.
    fn host(answer: Result<&'static str, &'static str>) -> Api {
        in_process(Server::new().method(
            "Plugin.GetPluginStatus",
            move |a: StringArgs| async move {
                let r = match answer {
                    Ok(cluster_id) if a.a == "claude-code" => GetPluginStatusReturns {
                        a: Some(PluginStatus {
                            plugin_id: a.a,
                            cluster_id: cluster_id.into(),
                            state: 2,
                            ..Default::default()
                        }),
                        b: None,
                    },
                    Ok(_) => GetPluginStatusReturns {
                        a: None,
                        b: Some(AppError {
                            message: "plugin not found".into(),
                            status_code: 404,
                            ..Default::default()
                        }),
                    },
                    Err(message) => GetPluginStatusReturns {
                        a: None,
                        b: Some(AppError {
                            message: message.into(),
                            status_code: 500,
                            ..Default::default()
                        }),
                    },
                };
                Ok::<_, String>(r)
            },
        ))
    }

    fn is_solo(node: &NodeId) -> bool {
        let hex = node.id.strip_prefix("solo-").unwrap_or("");
        !node.clustered && hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
    }

    #[tokio::test]
    async fn a_cluster_id_is_the_node() {
        let node = node_id(&host(Ok("node-a")), "claude-code").await.unwrap();
        assert_eq!(
            node,
            NodeId {
                id: "node-a".into(),
                clustered: true
            }
        );
    }

    #[tokio::test]
    async fn no_cluster_id_is_a_solo_node_unique_per_process() {
        let api = host(Ok(""));
        let (a, b) = (
            node_id(&api, "claude-code").await.unwrap(),
            node_id(&api, "claude-code").await.unwrap(),
        );
        assert!(is_solo(&a), "{a:?}");
        assert!(is_solo(&b), "{b:?}");
        assert_ne!(a.id, b.id);
    }

    /// A server that does not say which node this is, and cannot say whether it is a cluster
    /// (here: no GetConfig either), does not get a plugin that would run as a lone node.
    #[tokio::test(start_paused = true)]
    async fn an_error_is_no_node_unless_the_server_is_not_a_cluster() {
        for (api, plugin) in [
            (host(Err("database down")), "claude-code"),
            (host(Ok("node-a")), "other-plugin"),
            (in_process(Server::new()), "claude-code"),
        ] {
            let got = node_id(&api, plugin).await;
            assert!(matches!(got, Err(NodeError::Unknown(_))), "{got:?}");
        }
        let error = || ApiError::App(Box::default());
        assert!(is_solo(&without_status(Some(false), error()).unwrap()));
        assert!(without_status(Some(true), error()).is_err());
        assert!(without_status(None, error()).is_err());
    }
}
