//! Which node of the cluster this process is.
//!
//! Mattermost reports the node's id as the plugin's `ClusterId` (`GetPluginStatus`) when it runs
//! in a cluster, and "" on a single server. Without a cluster id the process makes up one of its
//! own, `solo-<uuid>`, unique per process. A solo process takes the leases an earlier solo
//! process left at once (there is no other node to wait for; see `lease::decide`), with the next
//! fence, so that whatever the earlier process still writes is refused.

use crate::mattermost::api::Api;

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

/// Asks the server which node this is. An error is logged and taken as "not clustered": the
/// plugin then runs as on a single server, which is what it did before clusters were known.
pub(crate) async fn node_id(api: &Api, plugin_id: &str) -> NodeId {
    match api.get_plugin_status(plugin_id).await {
        Ok(status) if !status.cluster_id.is_empty() => NodeId {
            id: status.cluster_id,
            clustered: true,
        },
        Ok(_) => NodeId::solo(),
        Err(e) => {
            tracing::warn!(error = %e, "could not ask the server for the plugin's cluster id; running as a single node");
            NodeId::solo()
        }
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
        let node = node_id(&host(Ok("node-a")), "claude-code").await;
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
            node_id(&api, "claude-code").await,
            node_id(&api, "claude-code").await,
        );
        assert!(is_solo(&a), "{a:?}");
        assert!(is_solo(&b), "{b:?}");
        assert_ne!(a.id, b.id);
    }

    #[tokio::test]
    async fn an_error_is_a_solo_node() {
        assert!(is_solo(
            &node_id(&host(Err("database down")), "claude-code").await
        ));
        assert!(is_solo(&node_id(&host(Ok("node-a")), "other-plugin").await));
        // A server without the method at all (net/rpc error).
        assert!(is_solo(
            &node_id(&in_process(Server::new()), "claude-code").await
        ));
    }
}
