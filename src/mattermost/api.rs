//! The typed client of the server's plugin API (service `Plugin` on the
//! broker stream the host names in OnActivate's `APIMuxId`).
//!
//! Every method is one net/rpc call with the `Z_<M>Args`/`Z_<M>Returns`
//! shapes of [`super::rpc_types`]. Results come back as `Result<T,
//! ApiError>`: a server-side `*model.AppError` or Go `error` becomes
//! [`ApiError::App`] / [`ApiError::Error`], a broken stream or codec failure
//! [`ApiError::Rpc`].

use std::collections::BTreeMap;

use super::model::*;
use super::rpc_types::*;
use crate::rpc::gob::{GobDecode, GobEncode, Value};
use crate::rpc::netrpc::{CallError, Client, Empty};

/// Why an API call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// The server answered with a `*model.AppError`.
    #[error("{}", .0.error_text())]
    App(Box<AppError>),
    /// The server answered with a plain Go `error`.
    #[error("{0}")]
    Error(String),
    /// The call did not complete: the stream broke, the server does not know
    /// the method, or a value could not be encoded or decoded.
    #[error("plugin API call {method} failed: {source}")]
    Rpc {
        method: &'static str,
        #[source]
        source: CallError,
    },
    /// The server reported success but sent no value where one was expected.
    #[error("plugin API call {0} returned nothing")]
    Empty(&'static str),
}

impl ApiError {
    /// The HTTP status the server attached, if it was an AppError with one.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            ApiError::App(e) => u16::try_from(e.status_code).ok().filter(|s| *s >= 100),
            _ => None,
        }
    }

    fn from_any(e: Any) -> Option<ApiError> {
        match e {
            Any::Nil => None,
            Any::AppError(e) => Some(ApiError::App(e)),
            other => Some(ApiError::Error(other.error_text().unwrap_or_default())),
        }
    }
}

fn app(e: Option<AppError>) -> Result<(), ApiError> {
    match e {
        None => Ok(()),
        Some(e) => Err(ApiError::App(Box::new(e))),
    }
}

fn err(e: Any) -> Result<(), ApiError> {
    match ApiError::from_any(e) {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

fn some<T>(method: &'static str, v: Option<T>) -> Result<T, ApiError> {
    v.ok_or(ApiError::Empty(method))
}

/// The plugin API client. Cheap to clone; calls may run concurrently.
#[derive(Clone)]
pub struct Api {
    client: Client,
}

impl Api {
    /// Wraps a net/rpc client connected to the host's API server.
    pub fn new(client: Client) -> Self {
        Api { client }
    }

    /// Whether the API stream is still up.
    pub fn is_open(&self) -> bool {
        self.client.is_open()
    }

    async fn call<A: GobEncode, R: GobDecode + Send + 'static>(
        &self,
        method: &'static str,
        arg: &A,
    ) -> Result<R, ApiError> {
        self.client
            .call(&format!("Plugin.{method}"), arg)
            .await
            .map_err(|source| ApiError::Rpc { method, source })
    }

    fn s(v: &str) -> StringArgs {
        Args1 { a: v.to_owned() }
    }

    fn ss(a: &str, b: &str) -> TwoStringArgs {
        Args2 {
            a: a.to_owned(),
            b: b.to_owned(),
        }
    }

    // --- commands -------------------------------------------------------

    pub async fn register_command(&self, command: Command) -> Result<(), ApiError> {
        let r: ErrorReturn = self
            .call("RegisterCommand", &Args1 { a: Some(command) })
            .await?;
        err(r.a)
    }

    pub async fn unregister_command(&self, team_id: &str, trigger: &str) -> Result<(), ApiError> {
        let r: ErrorReturn = self
            .call("UnregisterCommand", &Self::ss(team_id, trigger))
            .await?;
        err(r.a)
    }

    // --- configuration, bundle, server ----------------------------------

    /// The plugin's settings as the JSON object the server stores (keys may
    /// arrive lower-cased: match them case-insensitively).
    pub async fn load_plugin_configuration(&self) -> Result<Vec<u8>, ApiError> {
        let r: LoadPluginConfigurationReturns =
            self.call("LoadPluginConfiguration", &Empty {}).await?;
        Ok(r.a)
    }

    pub async fn get_bundle_path(&self) -> Result<String, ApiError> {
        let r: StringErrorReturns = self.call("GetBundlePath", &Empty {}).await?;
        err(r.b)?;
        Ok(r.a)
    }

    pub async fn get_server_version(&self) -> Result<String, ApiError> {
        let r: StringReturns = self.call("GetServerVersion", &Empty {}).await?;
        Ok(r.a)
    }

    // --- bots and users -------------------------------------------------

    /// Creates the bot or updates the existing one; returns its user id.
    pub async fn ensure_bot_user(&self, bot: Bot) -> Result<String, ApiError> {
        let r: EnsureBotUserReturns = self.call("EnsureBotUser", &Args1 { a: Some(bot) }).await?;
        err(r.b)?;
        if r.a.is_empty() {
            return Err(ApiError::Empty("EnsureBotUser"));
        }
        Ok(r.a)
    }

    pub async fn get_bot(&self, bot_user_id: &str, include_deleted: bool) -> Result<Bot, ApiError> {
        let r: GetBotReturns = self
            .call(
                "GetBot",
                &Args2 {
                    a: bot_user_id.to_owned(),
                    b: include_deleted,
                },
            )
            .await?;
        app(r.b)?;
        some("GetBot", r.a)
    }

    pub async fn get_user(&self, user_id: &str) -> Result<User, ApiError> {
        let r: GetUserReturns = self.call("GetUser", &Self::s(user_id)).await?;
        app(r.b)?;
        some("GetUser", r.a)
    }

    // --- plugins ----------------------------------------------------------

    /// This node's status of plugin `id`; its `cluster_id` names the node in a cluster.
    pub async fn get_plugin_status(&self, id: &str) -> Result<PluginStatus, ApiError> {
        let r: GetPluginStatusReturns = self.call("GetPluginStatus", &Self::s(id)).await?;
        app(r.b)?;
        some("GetPluginStatus", r.a)
    }

    // --- key-value store ------------------------------------------------

    pub async fn kv_set(&self, key: &str, value: Vec<u8>) -> Result<(), ApiError> {
        let r: AppErrorReturn = self
            .call(
                "KVSet",
                &Args2 {
                    a: key.to_owned(),
                    b: value,
                },
            )
            .await?;
        app(r.a)
    }

    /// `value` empty deletes the key (gob cannot tell nil from empty).
    pub async fn kv_set_with_options(
        &self,
        key: &str,
        value: Vec<u8>,
        options: PluginKVSetOptions,
    ) -> Result<bool, ApiError> {
        let r: BoolAppErrorReturns = self
            .call(
                "KVSetWithOptions",
                &Args3 {
                    a: key.to_owned(),
                    b: value,
                    c: options,
                },
            )
            .await?;
        app(r.b)?;
        Ok(r.a)
    }

    /// `None` when the key is missing. An empty value cannot be told from a
    /// missing one on the wire, and the server stores none anyway.
    pub async fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, ApiError> {
        let r: KvGetReturns = self.call("KVGet", &Self::s(key)).await?;
        app(r.b)?;
        Ok(Some(r.a).filter(|v| !v.is_empty()))
    }

    pub async fn kv_delete(&self, key: &str) -> Result<(), ApiError> {
        let r: AppErrorReturn = self.call("KVDelete", &Self::s(key)).await?;
        app(r.a)
    }

    pub async fn kv_list(&self, page: i64, per_page: i64) -> Result<Vec<String>, ApiError> {
        let r: KvListReturns = self
            .call(
                "KVList",
                &Args2 {
                    a: page,
                    b: per_page,
                },
            )
            .await?;
        app(r.b)?;
        Ok(r.a)
    }

    /// Sets `key` to `new` if it currently holds `old` (`None` = absent);
    /// `new == None` deletes. Returns whether it was set.
    pub async fn kv_compare_and_set(
        &self,
        key: &str,
        old: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, ApiError> {
        let r: BoolAppErrorReturns = self
            .call(
                "KVCompareAndSet",
                &Args3 {
                    a: key.to_owned(),
                    b: old.unwrap_or_default(),
                    c: new.unwrap_or_default(),
                },
            )
            .await?;
        app(r.b)?;
        Ok(r.a)
    }

    // --- posts ----------------------------------------------------------

    pub async fn create_post(&self, post: Post) -> Result<Post, ApiError> {
        self.post_call("CreatePost", post).await
    }

    pub async fn update_post(&self, post: Post) -> Result<Post, ApiError> {
        self.post_call("UpdatePost", post).await
    }

    async fn post_call(&self, method: &'static str, post: Post) -> Result<Post, ApiError> {
        let r: PostReturns = self.call(method, &Args1 { a: Some(post) }).await?;
        app(r.b)?;
        some(method, r.a)
    }

    /// Uploads `data` as `filename` to `channel_id`, to be attached to a post (its
    /// `file_ids`) when the post is created.
    pub async fn upload_file(
        &self,
        data: Vec<u8>,
        channel_id: &str,
        filename: &str,
    ) -> Result<FileInfo, ApiError> {
        let args: UploadFileArgs = Args3 {
            a: data,
            b: channel_id.to_owned(),
            c: filename.to_owned(),
        };
        let r: UploadFileReturns = self.call("UploadFile", &args).await?;
        app(r.b)?;
        some("UploadFile", r.a)
    }

    /// An uploaded file's metadata: read it (its size) before [`Api::get_file`], which brings
    /// the bytes whole.
    pub async fn get_file_info(&self, file_id: &str) -> Result<FileInfo, ApiError> {
        let r: GetFileInfoReturns = self.call("GetFileInfo", &Self::s(file_id)).await?;
        app(r.b)?;
        some("GetFileInfo", r.a)
    }

    pub async fn get_file(&self, file_id: &str) -> Result<Vec<u8>, ApiError> {
        let r: GetFileReturns = self.call("GetFile", &Self::s(file_id)).await?;
        app(r.b)?;
        Ok(r.a)
    }

    pub async fn get_post(&self, post_id: &str) -> Result<Post, ApiError> {
        let r: PostReturns = self.call("GetPost", &Self::s(post_id)).await?;
        app(r.b)?;
        some("GetPost", r.a)
    }

    pub async fn delete_post(&self, post_id: &str) -> Result<(), ApiError> {
        let r: AppErrorReturn = self.call("DeletePost", &Self::s(post_id)).await?;
        app(r.a)
    }

    pub async fn send_ephemeral_post(&self, user_id: &str, post: Post) -> Result<Post, ApiError> {
        self.ephemeral_call("SendEphemeralPost", user_id, post)
            .await
    }

    pub async fn update_ephemeral_post(&self, user_id: &str, post: Post) -> Result<Post, ApiError> {
        self.ephemeral_call("UpdateEphemeralPost", user_id, post)
            .await
    }

    async fn ephemeral_call(
        &self,
        method: &'static str,
        user_id: &str,
        post: Post,
    ) -> Result<Post, ApiError> {
        let r: EphemeralPostReturns = self
            .call(
                method,
                &Args2 {
                    a: user_id.to_owned(),
                    b: Some(post),
                },
            )
            .await?;
        some(method, r.a)
    }

    pub async fn delete_ephemeral_post(
        &self,
        user_id: &str,
        post_id: &str,
    ) -> Result<(), ApiError> {
        let _: Empty = self
            .call("DeleteEphemeralPost", &Self::ss(user_id, post_id))
            .await?;
        Ok(())
    }

    pub async fn get_post_thread(&self, post_id: &str) -> Result<PostList, ApiError> {
        let r: GetPostThreadReturns = self.call("GetPostThread", &Self::s(post_id)).await?;
        app(r.b)?;
        some("GetPostThread", r.a)
    }

    /// The channel's posts created or changed since `since_ms` (milliseconds since the epoch).
    pub async fn get_posts_since(
        &self,
        channel_id: &str,
        since_ms: i64,
    ) -> Result<PostList, ApiError> {
        let args: GetPostsSinceArgs = Args2 {
            a: channel_id.to_owned(),
            b: since_ms,
        };
        let r: GetPostThreadReturns = self.call("GetPostsSince", &args).await?;
        app(r.b)?;
        some("GetPostsSince", r.a)
    }

    // --- channels and permissions ---------------------------------------

    pub async fn get_channel(&self, channel_id: &str) -> Result<Channel, ApiError> {
        let r: GetChannelReturns = self.call("GetChannel", &Self::s(channel_id)).await?;
        app(r.b)?;
        some("GetChannel", r.a)
    }

    /// The direct channel between two users, created if it does not exist yet.
    pub async fn get_direct_channel(
        &self,
        user_id_1: &str,
        user_id_2: &str,
    ) -> Result<Channel, ApiError> {
        let r: GetChannelReturns = self
            .call("GetDirectChannel", &Self::ss(user_id_1, user_id_2))
            .await?;
        app(r.b)?;
        some("GetDirectChannel", r.a)
    }

    /// The server's whole `model.Config`, decoded generically (it is huge and changes with
    /// every server version); read it with [`Value`] accessors.
    pub async fn get_config_value(&self) -> Result<Value, ApiError> {
        let r: Returns1<Option<Value>> = self.call("GetConfig", &Empty {}).await?;
        some("GetConfig", r.a)
    }

    pub async fn get_team_by_name(&self, name: &str) -> Result<Team, ApiError> {
        let r: GetTeamReturns = self.call("GetTeamByName", &Self::s(name)).await?;
        app(r.b)?;
        some("GetTeamByName", r.a)
    }

    /// A member with `delete_at != 0` has left the team.
    pub async fn get_team_member(
        &self,
        team_id: &str,
        user_id: &str,
    ) -> Result<TeamMember, ApiError> {
        let r: GetTeamMemberReturns = self
            .call("GetTeamMember", &Self::ss(team_id, user_id))
            .await?;
        app(r.b)?;
        some("GetTeamMember", r.a)
    }

    pub async fn get_channel_member(
        &self,
        channel_id: &str,
        user_id: &str,
    ) -> Result<ChannelMember, ApiError> {
        let r: GetChannelMemberReturns = self
            .call("GetChannelMember", &Self::ss(channel_id, user_id))
            .await?;
        app(r.b)?;
        some("GetChannelMember", r.a)
    }

    /// Makes `user_id` a member of the channel (AddChannelMember; the server posts its join
    /// message). An existing member is returned as is. The server refuses direct and group
    /// channels, and a user who is not a member of the channel's team.
    pub async fn add_channel_member(
        &self,
        channel_id: &str,
        user_id: &str,
    ) -> Result<ChannelMember, ApiError> {
        let r: GetChannelMemberReturns = self
            .call("AddChannelMember", &Self::ss(channel_id, user_id))
            .await?;
        app(r.b)?;
        some("AddChannelMember", r.a)
    }

    /// Makes `user_id` a member of the team (CreateTeamMember).
    pub async fn create_team_member(
        &self,
        team_id: &str,
        user_id: &str,
    ) -> Result<TeamMember, ApiError> {
        let r: GetTeamMemberReturns = self
            .call("CreateTeamMember", &Self::ss(team_id, user_id))
            .await?;
        app(r.b)?;
        some("CreateTeamMember", r.a)
    }

    /// A system-wide permission, e.g. `"manage_system"` (what makes a system admin).
    pub async fn has_permission_to(
        &self,
        user_id: &str,
        permission_id: &str,
    ) -> Result<bool, ApiError> {
        let r: BoolReturns = self
            .call(
                "HasPermissionTo",
                &Args2 {
                    a: user_id.to_owned(),
                    b: Some(Permission {
                        id: permission_id.to_owned(),
                        ..Default::default()
                    }),
                },
            )
            .await?;
        Ok(r.a)
    }

    /// `permission_id` e.g. `"create_post"`.
    pub async fn has_permission_to_channel(
        &self,
        user_id: &str,
        channel_id: &str,
        permission_id: &str,
    ) -> Result<bool, ApiError> {
        let r: BoolReturns = self
            .call(
                "HasPermissionToChannel",
                &Args3 {
                    a: user_id.to_owned(),
                    b: channel_id.to_owned(),
                    c: Some(Permission {
                        id: permission_id.to_owned(),
                        ..Default::default()
                    }),
                },
            )
            .await?;
        Ok(r.a)
    }

    // --- events and dialogs ---------------------------------------------

    /// `event` is prefixed by the server with `custom_<plugin id>_`.
    pub async fn publish_websocket_event(
        &self,
        event: &str,
        payload: BTreeMap<String, Any>,
        broadcast: WebsocketBroadcast,
    ) -> Result<(), ApiError> {
        let _: Empty = self
            .call(
                "PublishWebSocketEvent",
                &Args3 {
                    a: event.to_owned(),
                    b: Some(payload),
                    c: Some(broadcast),
                },
            )
            .await?;
        Ok(())
    }

    pub async fn publish_plugin_cluster_event(
        &self,
        event: PluginClusterEvent,
        options: PluginClusterEventSendOptions,
    ) -> Result<(), ApiError> {
        let r: ErrorReturn = self
            .call(
                "PublishPluginClusterEvent",
                &Args2 {
                    a: event,
                    b: options,
                },
            )
            .await?;
        err(r.a)
    }

    pub async fn open_interactive_dialog(
        &self,
        request: OpenDialogRequest,
    ) -> Result<(), ApiError> {
        let r: AppErrorReturn = self
            .call("OpenInteractiveDialog", &Args1 { a: request })
            .await?;
        app(r.a)
    }

    // --- server log -----------------------------------------------------

    pub async fn log_debug(&self, msg: &str, kv: &[(&str, &str)]) -> Result<(), ApiError> {
        self.log("LogDebug", msg, kv).await
    }

    pub async fn log_info(&self, msg: &str, kv: &[(&str, &str)]) -> Result<(), ApiError> {
        self.log("LogInfo", msg, kv).await
    }

    pub async fn log_warn(&self, msg: &str, kv: &[(&str, &str)]) -> Result<(), ApiError> {
        self.log("LogWarn", msg, kv).await
    }

    pub async fn log_error(&self, msg: &str, kv: &[(&str, &str)]) -> Result<(), ApiError> {
        self.log("LogError", msg, kv).await
    }

    async fn log(
        &self,
        method: &'static str,
        msg: &str,
        kv: &[(&str, &str)],
    ) -> Result<(), ApiError> {
        // The Go client stringifies every element anyway; strings are always registered.
        let pairs: Vec<Any> = kv
            .iter()
            .flat_map(|(k, v)| [Any::from(*k), Any::from(*v)])
            .collect();
        let _: Empty = self
            .call(
                method,
                &Args2 {
                    a: msg.to_owned(),
                    b: pairs,
                },
            )
            .await?;
        Ok(())
    }
}

/// An [`Api`] served in process by `server`, the host's side of the API stream (tests).
#[cfg(test)]
pub(crate) fn in_process(server: crate::rpc::netrpc::Server) -> Api {
    let (plugin, host) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move { server.serve(host).await });
    Api::new(Client::new(plugin))
}
