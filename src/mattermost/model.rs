//! The Mattermost model types the plugin exchanges with the server, as gob
//! sends them (server/public v0.3.0). Fields keep Go's declaration order:
//! it fixes the field numbers we send. Fields the server sends that are not
//! modelled here (for example `Post.Metadata`) are skipped on decode.

use std::collections::BTreeMap;

use crate::gob_struct;
use crate::rpc::gob::{
    self, wire, Complex, GobDecode, GobEncode, Reader, TypeId, Types, Value, Writer,
};

/// Go's `map[string]string` (StringMap, UserMentionMap, ...); `None` is nil.
pub type StringMap = Option<BTreeMap<String, String>>;
/// Go's `map[string]any` (Post.Props and friends); `None` is nil.
pub type Props = Option<BTreeMap<String, Any>>;

gob_struct! {
    /// plugin.Context: who and where a hook call comes from.
    pub struct Context("Context") {
        pub session_id: String => "SessionId",
        pub request_id: String => "RequestId",
        pub ip_address: String => "IPAddress",
        pub accept_language: String => "AcceptLanguage",
        pub user_agent: String => "UserAgent",
    }

    pub struct Post("Post") {
        pub id: String => "Id",
        pub create_at: i64 => "CreateAt",
        pub update_at: i64 => "UpdateAt",
        pub edit_at: i64 => "EditAt",
        pub delete_at: i64 => "DeleteAt",
        pub is_pinned: bool => "IsPinned",
        pub user_id: String => "UserId",
        pub channel_id: String => "ChannelId",
        pub root_id: String => "RootId",
        pub original_id: String => "OriginalId",
        pub message: String => "Message",
        pub message_source: String => "MessageSource",
        pub r#type: String => "Type",
        pub props: Props => "Props",
        pub hashtags: String => "Hashtags",
        pub filenames: Vec<String> => "Filenames",
        pub file_ids: Vec<String> => "FileIds",
        pub pending_post_id: String => "PendingPostId",
        pub has_reactions: bool => "HasReactions",
        pub remote_id: Option<String> => "RemoteId",
        pub reply_count: i64 => "ReplyCount",
        pub last_reply_at: i64 => "LastReplyAt",
        pub participants: Vec<User> => "Participants",
        pub is_following: Option<bool> => "IsFollowing",
    }

    /// model.FileInfo: an uploaded file (UploadFile); attach it to a post via `Post::file_ids`.
    pub struct FileInfo("FileInfo") {
        pub id: String => "Id",
        pub creator_id: String => "CreatorId",
        pub post_id: String => "PostId",
        pub channel_id: String => "ChannelId",
        pub create_at: i64 => "CreateAt",
        pub update_at: i64 => "UpdateAt",
        pub delete_at: i64 => "DeleteAt",
        pub name: String => "Name",
        pub extension: String => "Extension",
        pub size: i64 => "Size",
        pub mime_type: String => "MimeType",
    }

    pub struct CommandArgs("CommandArgs") {
        pub user_id: String => "UserId",
        pub channel_id: String => "ChannelId",
        pub team_id: String => "TeamId",
        pub root_id: String => "RootId",
        pub parent_id: String => "ParentId",
        pub trigger_id: String => "TriggerId",
        pub command: String => "Command",
        pub site_url: String => "SiteURL",
        pub user_mentions: StringMap => "UserMentions",
        pub channel_mentions: StringMap => "ChannelMentions",
    }

    pub struct CommandResponse("CommandResponse") {
        pub response_type: String => "ResponseType",
        pub text: String => "Text",
        pub username: String => "Username",
        pub channel_id: String => "ChannelId",
        pub icon_url: String => "IconURL",
        pub r#type: String => "Type",
        pub props: Props => "Props",
        pub goto_location: String => "GotoLocation",
        pub trigger_id: String => "TriggerId",
        pub skip_slack_parsing: bool => "SkipSlackParsing",
        pub attachments: Vec<SlackAttachment> => "Attachments",
        pub extra_responses: Vec<CommandResponse> => "ExtraResponses",
    }

    /// model.AppError: the error hooks and API calls return.
    pub struct AppError("AppError") {
        pub id: String => "Id",
        pub message: String => "Message",
        pub detailed_error: String => "DetailedError",
        pub request_id: String => "RequestId",
        pub status_code: i64 => "StatusCode",
        pub r#where: String => "Where",
        pub skip_translation: bool => "SkipTranslation",
    }

    /// plugin.ErrorString: a plain Go error carried across the RPC boundary.
    pub struct ErrorString("ErrorString") {
        pub code: i64 => "Code",
        pub err: String => "Err",
    }

    pub struct Command("Command") {
        pub id: String => "Id",
        pub token: String => "Token",
        pub create_at: i64 => "CreateAt",
        pub update_at: i64 => "UpdateAt",
        pub delete_at: i64 => "DeleteAt",
        pub creator_id: String => "CreatorId",
        pub team_id: String => "TeamId",
        pub trigger: String => "Trigger",
        pub method: String => "Method",
        pub username: String => "Username",
        pub icon_url: String => "IconURL",
        pub auto_complete: bool => "AutoComplete",
        pub auto_complete_desc: String => "AutoCompleteDesc",
        pub auto_complete_hint: String => "AutoCompleteHint",
        pub display_name: String => "DisplayName",
        pub description: String => "Description",
        pub url: String => "URL",
        pub plugin_id: String => "PluginId",
        pub autocomplete_data: Option<AutocompleteData> => "AutocompleteData",
        pub autocomplete_icon_data: String => "AutocompleteIconData",
    }

    pub struct AutocompleteData("AutocompleteData") {
        pub trigger: String => "Trigger",
        pub hint: String => "Hint",
        pub help_text: String => "HelpText",
        pub role_id: String => "RoleID",
        pub arguments: Vec<AutocompleteArg> => "Arguments",
        pub sub_commands: Vec<AutocompleteData> => "SubCommands",
    }

    pub struct AutocompleteArg("AutocompleteArg") {
        pub name: String => "Name",
        pub help_text: String => "HelpText",
        /// "TextInput", "StaticList" or "DynamicList".
        pub r#type: String => "Type",
        pub required: bool => "Required",
        pub data: Any => "Data",
    }

    pub struct AutocompleteTextArg("AutocompleteTextArg") {
        pub hint: String => "Hint",
        pub pattern: String => "Pattern",
    }

    pub struct AutocompleteStaticListArg("AutocompleteStaticListArg") {
        pub possible_arguments: Vec<AutocompleteListItem> => "PossibleArguments",
    }

    pub struct AutocompleteListItem("AutocompleteListItem") {
        pub item: String => "Item",
        pub hint: String => "Hint",
        pub help_text: String => "HelpText",
    }

    pub struct AutocompleteDynamicListArg("AutocompleteDynamicListArg") {
        pub fetch_url: String => "FetchURL",
    }

    pub struct PluginKVSetOptions("PluginKVSetOptions") {
        pub atomic: bool => "Atomic",
        pub old_value: Vec<u8> => "OldValue",
        pub expire_in_seconds: i64 => "ExpireInSeconds",
    }

    pub struct WebsocketBroadcast("WebsocketBroadcast") {
        pub omit_users: Option<BTreeMap<String, bool>> => "OmitUsers",
        pub user_id: String => "UserId",
        pub channel_id: String => "ChannelId",
        pub team_id: String => "TeamId",
        pub connection_id: String => "ConnectionId",
        pub omit_connection_id: String => "OmitConnectionId",
        pub contains_sanitized_data: bool => "ContainsSanitizedData",
        pub contains_sensitive_data: bool => "ContainsSensitiveData",
        pub reliable_cluster_send: bool => "ReliableClusterSend",
        pub broadcast_hooks: Vec<String> => "BroadcastHooks",
        pub broadcast_hook_args: Vec<BTreeMap<String, Any>> => "BroadcastHookArgs",
    }

    /// model.SlackAttachment (an alias of MessageAttachment).
    pub struct SlackAttachment("MessageAttachment") {
        pub id: i64 => "Id",
        pub fallback: String => "Fallback",
        pub color: String => "Color",
        pub pretext: String => "Pretext",
        pub author_name: String => "AuthorName",
        pub author_link: String => "AuthorLink",
        pub author_icon: String => "AuthorIcon",
        pub title: String => "Title",
        pub title_link: String => "TitleLink",
        pub text: String => "Text",
        pub fields: Vec<SlackAttachmentField> => "Fields",
        pub image_url: String => "ImageURL",
        pub thumb_url: String => "ThumbURL",
        pub footer: String => "Footer",
        pub footer_icon: String => "FooterIcon",
        /// A string or an int64.
        pub timestamp: Any => "Timestamp",
        pub actions: Vec<PostAction> => "Actions",
    }

    pub struct SlackAttachmentField("MessageAttachmentField") {
        pub title: String => "Title",
        pub value: Any => "Value",
        pub short: bool => "Short",
    }

    /// A button or menu of an interactive message.
    pub struct PostAction("PostAction") {
        pub id: String => "Id",
        /// "button" or "select".
        pub r#type: String => "Type",
        pub name: String => "Name",
        pub tooltip: String => "Tooltip",
        pub disabled: bool => "Disabled",
        pub style: String => "Style",
        pub data_source: String => "DataSource",
        pub options: Vec<PostActionOptions> => "Options",
        pub default_option: String => "DefaultOption",
        pub integration: Option<PostActionIntegration> => "Integration",
        pub cookie: String => "Cookie",
    }

    pub struct PostActionOptions("PostActionOptions") {
        pub text: String => "Text",
        pub value: String => "Value",
    }

    pub struct PostActionIntegration("PostActionIntegration") {
        pub url: String => "URL",
        pub context: Props => "Context",
    }

    pub struct Bot("Bot") {
        pub user_id: String => "UserId",
        pub username: String => "Username",
        pub display_name: String => "DisplayName",
        pub description: String => "Description",
        pub owner_id: String => "OwnerId",
        pub last_icon_update: i64 => "LastIconUpdate",
        pub create_at: i64 => "CreateAt",
        pub update_at: i64 => "UpdateAt",
        pub delete_at: i64 => "DeleteAt",
    }

    pub struct ChannelMember("ChannelMember") {
        pub channel_id: String => "ChannelId",
        pub user_id: String => "UserId",
        pub roles: String => "Roles",
        pub last_viewed_at: i64 => "LastViewedAt",
        pub msg_count: i64 => "MsgCount",
        pub mention_count: i64 => "MentionCount",
        pub mention_count_root: i64 => "MentionCountRoot",
        pub urgent_mention_count: i64 => "UrgentMentionCount",
        pub msg_count_root: i64 => "MsgCountRoot",
        pub notify_props: StringMap => "NotifyProps",
        pub last_update_at: i64 => "LastUpdateAt",
        pub scheme_guest: bool => "SchemeGuest",
        pub scheme_user: bool => "SchemeUser",
        pub scheme_admin: bool => "SchemeAdmin",
        pub explicit_roles: String => "ExplicitRoles",
        pub auto_translation_disabled: bool => "AutoTranslationDisabled",
    }

    /// The fields the plugin reads; the rest of model.Team is skipped when decoding.
    pub struct Team("Team") {
        pub id: String => "Id",
        pub create_at: i64 => "CreateAt",
        pub update_at: i64 => "UpdateAt",
        pub delete_at: i64 => "DeleteAt",
        pub display_name: String => "DisplayName",
        pub name: String => "Name",
        /// "O" open, "I" invite only.
        pub team_type: String => "Type",
    }

    pub struct TeamMember("TeamMember") {
        pub team_id: String => "TeamId",
        pub user_id: String => "UserId",
        pub roles: String => "Roles",
        /// Non-zero: the user left (or was removed from) the team.
        pub delete_at: i64 => "DeleteAt",
        pub scheme_guest: bool => "SchemeGuest",
        pub scheme_user: bool => "SchemeUser",
        pub scheme_admin: bool => "SchemeAdmin",
        pub explicit_roles: String => "ExplicitRoles",
        pub create_at: i64 => "CreateAt",
    }

    pub struct Channel("Channel") {
        pub id: String => "Id",
        pub create_at: i64 => "CreateAt",
        pub update_at: i64 => "UpdateAt",
        pub delete_at: i64 => "DeleteAt",
        pub team_id: String => "TeamId",
        /// "O" open, "P" private, "D" direct, "G" group.
        pub r#type: String => "Type",
        pub display_name: String => "DisplayName",
        pub name: String => "Name",
        pub header: String => "Header",
        pub purpose: String => "Purpose",
        pub last_post_at: i64 => "LastPostAt",
        pub total_msg_count: i64 => "TotalMsgCount",
        pub extra_update_at: i64 => "ExtraUpdateAt",
        pub creator_id: String => "CreatorId",
        pub scheme_id: Option<String> => "SchemeId",
        pub props: Props => "Props",
        pub group_constrained: Option<bool> => "GroupConstrained",
        pub auto_translation: bool => "AutoTranslation",
        pub shared: Option<bool> => "Shared",
        pub total_msg_count_root: i64 => "TotalMsgCountRoot",
        pub policy_id: Option<String> => "PolicyID",
        pub last_root_post_at: i64 => "LastRootPostAt",
        pub banner_info: Option<ChannelBannerInfo> => "BannerInfo",
        pub policy_enforced: bool => "PolicyEnforced",
        pub policy_is_active: bool => "PolicyIsActive",
        pub default_category_name: String => "DefaultCategoryName",
    }

    pub struct ChannelBannerInfo("ChannelBannerInfo") {
        pub enabled: Option<bool> => "Enabled",
        pub text: Option<String> => "Text",
        pub background_color: Option<String> => "BackgroundColor",
    }

    pub struct User("User") {
        pub id: String => "Id",
        pub create_at: i64 => "CreateAt",
        pub update_at: i64 => "UpdateAt",
        pub delete_at: i64 => "DeleteAt",
        pub username: String => "Username",
        pub password: String => "Password",
        pub auth_data: Option<String> => "AuthData",
        pub auth_service: String => "AuthService",
        pub email: String => "Email",
        pub email_verified: bool => "EmailVerified",
        pub nickname: String => "Nickname",
        pub first_name: String => "FirstName",
        pub last_name: String => "LastName",
        pub position: String => "Position",
        pub roles: String => "Roles",
        pub allow_marketing: bool => "AllowMarketing",
        pub props: StringMap => "Props",
        pub notify_props: StringMap => "NotifyProps",
        pub last_password_update: i64 => "LastPasswordUpdate",
        pub last_picture_update: i64 => "LastPictureUpdate",
        pub failed_attempts: i64 => "FailedAttempts",
        pub locale: String => "Locale",
        pub timezone: StringMap => "Timezone",
        pub mfa_active: bool => "MfaActive",
        pub mfa_secret: String => "MfaSecret",
        pub remote_id: Option<String> => "RemoteId",
        pub last_activity_at: i64 => "LastActivityAt",
        pub is_bot: bool => "IsBot",
        pub bot_description: String => "BotDescription",
        pub bot_last_icon_update: i64 => "BotLastIconUpdate",
        pub terms_of_service_id: String => "TermsOfServiceId",
        pub terms_of_service_create_at: i64 => "TermsOfServiceCreateAt",
        pub disable_welcome_email: bool => "DisableWelcomeEmail",
        pub last_login: i64 => "LastLogin",
        pub mfa_used_timestamps: Vec<String> => "MfaUsedTimestamps",
    }

    pub struct PostList("PostList") {
        pub order: Vec<String> => "Order",
        pub posts: Option<BTreeMap<String, Post>> => "Posts",
        pub next_post_id: String => "NextPostId",
        pub prev_post_id: String => "PrevPostId",
        pub has_next: Option<bool> => "HasNext",
        pub first_inaccessible_post_time: i64 => "FirstInaccessiblePostTime",
        pub burn_on_read_posts: Option<BTreeMap<String, Post>> => "BurnOnReadPosts",
    }

    /// model.PluginStatus: one plugin on one node. `ClusterId` is the node's id when the
    /// server runs in a cluster, "" on a single server.
    pub struct PluginStatus("PluginStatus") {
        pub plugin_id: String => "PluginId",
        pub cluster_id: String => "ClusterId",
        pub plugin_path: String => "PluginPath",
        pub state: i64 => "State",
        pub error: String => "Error",
        pub name: String => "Name",
        pub description: String => "Description",
        pub version: String => "Version",
    }

    pub struct PluginClusterEvent("PluginClusterEvent") {
        pub id: String => "Id",
        pub data: Vec<u8> => "Data",
    }

    pub struct PluginClusterEventSendOptions("PluginClusterEventSendOptions") {
        /// "reliable" or "best_effort".
        pub send_type: String => "SendType",
        pub target_id: String => "TargetId",
    }

    pub struct OpenDialogRequest("OpenDialogRequest") {
        pub trigger_id: String => "TriggerId",
        pub url: String => "URL",
        pub dialog: Dialog => "Dialog",
    }

    pub struct Dialog("Dialog") {
        pub callback_id: String => "CallbackId",
        pub title: String => "Title",
        pub introduction_text: String => "IntroductionText",
        pub icon_url: String => "IconURL",
        pub elements: Vec<DialogElement> => "Elements",
        pub submit_label: String => "SubmitLabel",
        pub notify_on_cancel: bool => "NotifyOnCancel",
        pub state: String => "State",
        pub source_url: String => "SourceURL",
    }

    pub struct DialogElement("DialogElement") {
        pub display_name: String => "DisplayName",
        pub name: String => "Name",
        pub r#type: String => "Type",
        pub sub_type: String => "SubType",
        pub default: String => "Default",
        pub placeholder: String => "Placeholder",
        pub help_text: String => "HelpText",
        pub optional: bool => "Optional",
        pub min_length: i64 => "MinLength",
        pub max_length: i64 => "MaxLength",
        pub data_source: String => "DataSource",
        pub data_source_url: String => "DataSourceURL",
        pub options: Vec<PostActionOptions> => "Options",
        pub multi_select: bool => "MultiSelect",
        pub refresh: bool => "Refresh",
        pub date_time_config: Option<DialogDateTimeConfig> => "DateTimeConfig",
        pub min_date: String => "MinDate",
        pub max_date: String => "MaxDate",
        pub time_interval: i64 => "TimeInterval",
    }

    pub struct DialogDateTimeConfig("DialogDateTimeConfig") {
        pub time_interval: i64 => "TimeInterval",
        pub location_timezone: String => "LocationTimezone",
        pub allow_manual_time_entry: bool => "AllowManualTimeEntry",
    }

    /// model.Permission; calls that take one need only `id` (e.g. "create_post").
    pub struct Permission("Permission") {
        pub id: String => "Id",
        pub name: String => "Name",
        pub description: String => "Description",
        pub scope: String => "Scope",
    }

    /// The part of an HTTP request the server forwards to ServeHTTP
    /// (plugin.HTTPRequestSubset).
    pub struct HttpRequest("HTTPRequestSubset") {
        pub method: String => "Method",
        pub url: Option<GoUrl> => "URL",
        pub proto: String => "Proto",
        pub proto_major: i64 => "ProtoMajor",
        pub proto_minor: i64 => "ProtoMinor",
        pub header: Option<BTreeMap<String, Vec<String>>> => "Header",
        pub host: String => "Host",
        pub remote_addr: String => "RemoteAddr",
        pub request_uri: String => "RequestURI",
    }
}

/// Go's `*url.URL`, which gob sends through MarshalBinary as its string form.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GoUrl(pub String);

impl GobEncode for GoUrl {
    fn define(types: &mut Types<'_>) -> TypeId {
        types.define::<Self>(|_| gob::WireType::BinaryMarshaler { name: "URL".into() })
    }
    fn encode(&self, w: &mut Writer<'_>) -> gob::Result<()> {
        w.bytes(self.0.as_bytes());
        Ok(())
    }
    fn is_zero(&self) -> bool {
        // A non-nil *url.URL is always sent, even for an empty URL.
        false
    }
}

impl GobDecode for GoUrl {
    fn decode(r: &mut Reader<'_, '_>, wire: TypeId) -> gob::Result<Self> {
        match r.wire_type(wire).as_deref() {
            Ok(gob::WireType::BinaryMarshaler { .. }) => {
                let s =
                    std::str::from_utf8(r.input.bytes()?).map_err(|_| gob::Error::InvalidUtf8)?;
                Ok(GoUrl(s.to_owned()))
            }
            _ => Err(r.mismatch(wire, "GoUrl")),
        }
    }
}

/// A Go `any` (or `error`) value, as the Mattermost plugin RPC registers
/// concrete types for it. Each variant names the Go type it round-trips as.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Any {
    #[default]
    Nil,
    Bool(bool),
    /// Go `int`.
    Int(i64),
    Int64(i64),
    Int32(i32),
    Int16(i16),
    Int8(i8),
    /// Go `uint`.
    Uint(u64),
    Uint64(u64),
    Uint32(u32),
    Uint16(u16),
    Uint8(u8),
    Float64(f64),
    Float32(f32),
    Complex128(Complex),
    String(String),
    /// Go `[]byte`.
    Bytes(Vec<u8>),
    /// Go `[]string`.
    Strings(Vec<String>),
    /// Go `[]int`.
    Ints(Vec<i64>),
    /// Go `[]int64`.
    Int64s(Vec<i64>),
    /// Go `[]float64`.
    Float64s(Vec<f64>),
    /// Go `[]bool`.
    Bools(Vec<bool>),
    /// Go `[]interface {}`.
    List(Vec<Any>),
    /// Go `map[string]interface {}`.
    Map(BTreeMap<String, Any>),
    /// Go `[]*model.SlackAttachment`.
    Attachments(Vec<SlackAttachment>),
    AppError(Box<AppError>),
    ErrorString(ErrorString),
    AutocompleteText(AutocompleteTextArg),
    AutocompleteStaticList(AutocompleteStaticListArg),
    AutocompleteDynamicList(AutocompleteDynamicListArg),
    /// A registered type this plugin does not model: readable, not re-sendable.
    Other {
        name: String,
        value: Value,
    },
}

impl Any {
    /// The value as JSON, as the server would store it in a post's props. Attachments take
    /// their database shape; values JSON cannot hold (errors, unmodelled types) become null.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        let list = |items: Vec<J>| J::Array(items);
        match self {
            Any::Nil | Any::Complex128(_) | Any::AppError(_) | Any::ErrorString(_) => J::Null,
            Any::AutocompleteText(_)
            | Any::AutocompleteStaticList(_)
            | Any::AutocompleteDynamicList(_)
            | Any::Other { .. } => J::Null,
            Any::Bool(b) => J::Bool(*b),
            Any::Int(i) | Any::Int64(i) => J::from(*i),
            Any::Int32(i) => J::from(*i),
            Any::Int16(i) => J::from(*i),
            Any::Int8(i) => J::from(*i),
            Any::Uint(u) | Any::Uint64(u) => J::from(*u),
            Any::Uint32(u) => J::from(*u),
            Any::Uint16(u) => J::from(*u),
            Any::Uint8(u) => J::from(*u),
            Any::Float64(f) => J::from(*f),
            Any::Float32(f) => J::from(*f),
            Any::String(s) => J::String(s.clone()),
            Any::Bytes(b) => list(b.iter().map(|x| J::from(*x)).collect()),
            Any::Strings(v) => list(v.iter().map(|x| J::from(x.as_str())).collect()),
            Any::Ints(v) | Any::Int64s(v) => list(v.iter().map(|x| J::from(*x)).collect()),
            Any::Float64s(v) => list(v.iter().map(|x| J::from(*x)).collect()),
            Any::Bools(v) => list(v.iter().map(|x| J::Bool(*x)).collect()),
            Any::List(v) => list(v.iter().map(Any::to_json).collect()),
            Any::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
            Any::Attachments(a) => super::attachments::as_maps(a).to_json(),
        }
    }

    /// JSON as the server hands it back from the database: objects are maps, arrays lists,
    /// integers `int64` and other numbers `float64`.
    pub fn from_json(v: &serde_json::Value) -> Any {
        use serde_json::Value as J;
        match v {
            J::Null => Any::Nil,
            J::Bool(b) => Any::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Any::Int64(i),
                None => Any::Float64(n.as_f64().unwrap_or_default()),
            },
            J::String(s) => Any::String(s.clone()),
            J::Array(items) => Any::List(items.iter().map(Any::from_json).collect()),
            J::Object(m) => Any::Map(
                m.iter()
                    .map(|(k, v)| (k.clone(), Any::from_json(v)))
                    .collect(),
            ),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Any::String(s) => Some(s),
            _ => None,
        }
    }

    /// The error text of an `error` value, as Go's `Error()` would give it.
    pub fn error_text(&self) -> Option<String> {
        match self {
            Any::Nil => None,
            Any::AppError(e) => Some(e.error_text()),
            Any::ErrorString(e) => Some(e.err.clone()),
            Any::String(s) => Some(s.clone()),
            other => Some(format!("{other:?}")),
        }
    }
}

impl From<&str> for Any {
    fn from(s: &str) -> Self {
        Any::String(s.to_owned())
    }
}

impl From<String> for Any {
    fn from(s: String) -> Self {
        Any::String(s)
    }
}

impl From<bool> for Any {
    fn from(b: bool) -> Self {
        Any::Bool(b)
    }
}

impl From<AppError> for Any {
    fn from(e: AppError) -> Self {
        Any::AppError(Box::new(e))
    }
}

impl AppError {
    /// Go's `AppError.Error()`: "where: message, detailed error".
    pub fn error_text(&self) -> String {
        let mut s = String::new();
        if !self.r#where.is_empty() {
            s.push_str(&self.r#where);
            s.push_str(": ");
        }
        s.push_str(&self.message);
        if !self.detailed_error.is_empty() {
            s.push_str(", ");
            s.push_str(&self.detailed_error);
        }
        s
    }
}

impl GobEncode for Any {
    fn define(_: &mut Types<'_>) -> TypeId {
        wire::INTERFACE
    }

    fn encode(&self, w: &mut Writer<'_>) -> gob::Result<()> {
        match self {
            Any::Nil => {
                w.nil_interface();
                Ok(())
            }
            Any::Bool(v) => w.interface("bool", v),
            Any::Int(v) => w.interface("int", v),
            Any::Int64(v) => w.interface("int64", v),
            Any::Int32(v) => w.interface("int32", v),
            Any::Int16(v) => w.interface("int16", v),
            Any::Int8(v) => w.interface("int8", v),
            Any::Uint(v) => w.interface("uint", v),
            Any::Uint64(v) => w.interface("uint64", v),
            Any::Uint32(v) => w.interface("uint32", v),
            Any::Uint16(v) => w.interface("uint16", v),
            Any::Uint8(v) => w.interface("uint8", v),
            Any::Float64(v) => w.interface("float64", v),
            Any::Float32(v) => w.interface("float32", v),
            Any::Complex128(v) => w.interface("complex128", v),
            Any::String(v) => w.interface("string", v),
            Any::Bytes(v) => w.interface("[]uint8", v),
            Any::Strings(v) => w.interface("[]string", v),
            Any::Ints(v) => w.interface("[]int", v),
            Any::Int64s(v) => w.interface("[]int64", v),
            Any::Float64s(v) => w.interface("[]float64", v),
            Any::Bools(v) => w.interface("[]bool", v),
            Any::List(v) => w.interface("[]interface {}", v),
            Any::Map(v) => w.interface("map[string]interface {}", v),
            Any::Attachments(v) => w.interface("[]*model.SlackAttachment", v),
            Any::AppError(v) => w.interface("*model.AppError", v),
            Any::ErrorString(v) => w.interface("*plugin.ErrorString", v),
            Any::AutocompleteText(v) => w.interface("*model.AutocompleteTextArg", v),
            Any::AutocompleteStaticList(v) => w.interface("*model.AutocompleteStaticListArg", v),
            Any::AutocompleteDynamicList(v) => w.interface("*model.AutocompleteDynamicListArg", v),
            Any::Other { name, .. } => Err(gob::Error::Unencodable(format!(
                "interface value of unmodelled type {name}"
            ))),
        }
    }

    fn is_zero(&self) -> bool {
        matches!(self, Any::Nil)
    }
}

impl GobDecode for Any {
    fn decode(r: &mut Reader<'_, '_>, wire_id: TypeId) -> gob::Result<Self> {
        r.expect(wire_id, wire::INTERFACE, "Any")?;
        let Some(h) = r.interface_header()? else {
            return Ok(Any::Nil);
        };
        r.nested(|r| {
            let id = h.id;
            Ok(match h.name {
                "bool" => Any::Bool(r.top_level(id)?),
                "int" => Any::Int(r.top_level(id)?),
                "int64" => Any::Int64(r.top_level(id)?),
                "int32" => Any::Int32(r.top_level(id)?),
                "int16" => Any::Int16(r.top_level(id)?),
                "int8" => Any::Int8(r.top_level(id)?),
                "uint" => Any::Uint(r.top_level(id)?),
                "uint64" => Any::Uint64(r.top_level(id)?),
                "uint32" => Any::Uint32(r.top_level(id)?),
                "uint16" => Any::Uint16(r.top_level(id)?),
                "uint8" => Any::Uint8(r.top_level(id)?),
                "float64" => Any::Float64(r.top_level(id)?),
                "float32" => Any::Float32(r.top_level(id)?),
                "complex128" => Any::Complex128(r.top_level(id)?),
                "string" => Any::String(r.top_level(id)?),
                "[]uint8" => Any::Bytes(r.top_level(id)?),
                "[]string" => Any::Strings(r.top_level(id)?),
                "[]int" => Any::Ints(r.top_level(id)?),
                "[]int64" => Any::Int64s(r.top_level(id)?),
                "[]float64" => Any::Float64s(r.top_level(id)?),
                "[]bool" => Any::Bools(r.top_level(id)?),
                "[]interface {}" => Any::List(r.top_level(id)?),
                "map[string]interface {}" => Any::Map(r.top_level(id)?),
                "[]*model.SlackAttachment" => Any::Attachments(r.top_level(id)?),
                "*model.AppError" => Any::AppError(r.top_level(id)?),
                "*plugin.ErrorString" => Any::ErrorString(r.top_level(id)?),
                "*model.AutocompleteTextArg" => Any::AutocompleteText(r.top_level(id)?),
                "*model.AutocompleteStaticListArg" => Any::AutocompleteStaticList(r.top_level(id)?),
                "*model.AutocompleteDynamicListArg" => {
                    Any::AutocompleteDynamicList(r.top_level(id)?)
                }
                other => Any::Other {
                    name: other.to_owned(),
                    value: r.top_level_value(id)?,
                },
            })
        })
    }
}
