//! The argument and return shapes of hook and API calls.
//!
//! Mattermost's RPC layer wraps the parameters of a call `M(p1, p2, ...)` in
//! a struct `Z_MArgs{A p1; B p2; ...}` and its results in `Z_MReturns{A r1;
//! ...}`. Only the field names and types matter on the wire, so the generic
//! [`Args1`]..[`Args3`] and [`Returns1`]/[`Returns2`] cover most calls; the
//! aliases below name them. Result type `error` is an interface ([`Any`]);
//! `*model.AppError` is a plain pointer (`Option<AppError>`).

use crate::gob_struct;

use super::model::*;

gob_struct! {
    pub struct Args1<A>("Args") { pub a: A => "A" }
    pub struct Args2<A, B>("Args") { pub a: A => "A", pub b: B => "B" }
    pub struct Args3<A, B, C>("Args") { pub a: A => "A", pub b: B => "B", pub c: C => "C" }
    pub struct Returns1<A>("Returns") { pub a: A => "A" }
    pub struct Returns2<A, B>("Returns") { pub a: A => "A", pub b: B => "B" }

    /// Z_OnActivateArgs: the broker ids of the API and DB driver streams.
    pub struct OnActivateArgs("Z_OnActivateArgs") {
        pub api_mux_id: u32 => "APIMuxId",
        pub driver_mux_id: u32 => "DriverMuxId",
    }

    /// Z_ConfigurationWillBeSavedReturns with its error only: field A (a replacement
    /// `*model.Config`) is left out of the wire type, which Go decodes as nil, "save the
    /// configuration as it is". Gob matches fields by name, so B alone is enough.
    pub struct ConfigurationWillBeSavedReturns("Z_ConfigurationWillBeSavedReturns") {
        pub b: Any => "B",
    }

    /// Z_ServeHTTPArgs.
    pub struct ServeHttpArgs("Z_ServeHTTPArgs") {
        pub response_writer_stream: u32 => "ResponseWriterStream",
        pub request: Option<HttpRequest> => "Request",
        pub context: Option<Context> => "Context",
        pub request_body_stream: u32 => "RequestBodyStream",
    }
}

/// A result of Go type `error`: `Any::Nil` when there is none.
pub type ErrorReturn = Returns1<Any>;
/// A result of Go type `*model.AppError`.
pub type AppErrorReturn = Returns1<Option<AppError>>;

pub type ExecuteCommandArgs = Args2<Option<Context>, Option<CommandArgs>>;
pub type ExecuteCommandReturns = Returns2<Option<CommandResponse>, Option<AppError>>;
pub type MessageHasBeenPostedArgs = Args2<Option<Context>, Option<Post>>;
pub type MessageHasBeenUpdatedArgs = Args3<Option<Context>, Option<Post>, Option<Post>>;
pub type MessageWillBePostedReturns = Returns2<Option<Post>, String>;
pub type OnPluginClusterEventArgs = Args2<Option<Context>, PluginClusterEvent>;
/// Z_ConfigurationWillBeSavedArgs: the `*model.Config` about to be saved, generically (see
/// [`super::server_config`]).
pub type ConfigurationWillBeSavedArgs = Args1<Option<crate::rpc::gob::Value>>;

pub type RegisterCommandArgs = Args1<Option<Command>>;
pub type UnregisterCommandArgs = Args2<String, String>;
pub type LoadPluginConfigurationReturns = Returns1<Vec<u8>>;
pub type EnsureBotUserArgs = Args1<Option<Bot>>;
pub type EnsureBotUserReturns = Returns2<String, Any>;
pub type KvSetArgs = Args2<String, Vec<u8>>;
pub type KvSetWithOptionsArgs = Args3<String, Vec<u8>, PluginKVSetOptions>;
pub type KvGetReturns = Returns2<Vec<u8>, Option<AppError>>;
pub type KvListArgs = Args2<i64, i64>;
pub type KvListReturns = Returns2<Vec<String>, Option<AppError>>;
pub type KvCompareAndSetArgs = Args3<String, Vec<u8>, Vec<u8>>;
pub type BoolAppErrorReturns = Returns2<bool, Option<AppError>>;
pub type PostArgs = Args1<Option<Post>>;
pub type PostReturns = Returns2<Option<Post>, Option<AppError>>;
/// UploadFile(data, channelId, filename).
pub type UploadFileArgs = Args3<Vec<u8>, String, String>;
pub type UploadFileReturns = Returns2<Option<FileInfo>, Option<AppError>>;
/// GetFileInfo(fileId): the file's metadata (name, size, MIME type the client claimed).
pub type GetFileInfoReturns = Returns2<Option<FileInfo>, Option<AppError>>;
/// GetFile(fileId): the file's bytes, read whole by the server.
pub type GetFileReturns = Returns2<Vec<u8>, Option<AppError>>;
pub type EphemeralPostArgs = Args2<String, Option<Post>>;
pub type EphemeralPostReturns = Returns1<Option<Post>>;
pub type GetPostThreadReturns = Returns2<Option<PostList>, Option<AppError>>;
/// `GetPostsSince(channelId, time)`: returns a [`GetPostThreadReturns`].
pub type GetPostsSinceArgs = Args2<String, i64>;
pub type GetChannelReturns = Returns2<Option<Channel>, Option<AppError>>;
pub type GetChannelMemberReturns = Returns2<Option<ChannelMember>, Option<AppError>>;
pub type HasPermissionToChannelArgs = Args3<String, String, Option<Permission>>;
/// HasPermissionTo(userID, permission): a system-wide permission such as `manage_system`.
pub type HasPermissionToArgs = Args2<String, Option<Permission>>;
pub type GetTeamReturns = Returns2<Option<Team>, Option<AppError>>;
pub type GetTeamMemberReturns = Returns2<Option<TeamMember>, Option<AppError>>;
pub type GetUserReturns = Returns2<Option<User>, Option<AppError>>;
/// GetPluginStatus(id): takes a [`StringArgs`].
pub type GetPluginStatusReturns = Returns2<Option<PluginStatus>, Option<AppError>>;
pub type GetBotReturns = Returns2<Option<Bot>, Option<AppError>>;
pub type PublishWebSocketEventArgs =
    Args3<String, Option<std::collections::BTreeMap<String, Any>>, Option<WebsocketBroadcast>>;
pub type PublishPluginClusterEventArgs = Args2<PluginClusterEvent, PluginClusterEventSendOptions>;
pub type OpenInteractiveDialogArgs = Args1<OpenDialogRequest>;
/// LogDebug / LogInfo / LogWarn / LogError: the message and alternating key/value pairs.
pub type LogArgs = Args2<String, Vec<Any>>;
pub type StringErrorReturns = Returns2<String, Any>;
/// Calls whose only parameter is a string (GetPost, KVGet, GetUser, ...).
pub type StringArgs = Args1<String>;
/// Calls taking two strings (UnregisterCommand, GetChannelMember, DeleteEphemeralPost, ...).
pub type TwoStringArgs = Args2<String, String>;
pub type GetBotArgs = Args2<String, bool>;
pub type BoolReturns = Returns1<bool>;
pub type StringReturns = Returns1<String>;
pub type OnConfigurationChangeReturns = ErrorReturn;
