//! The users of the authorization tests and the roles each holds, so that what a route or a
//! command must answer is derived from the table (`claude_code::chat::authz::allowed`), never
//! copied from it.

use claude_code::chat::authz::{self, Action, Role};
use claude_code::config::WhoCanApprove;
use serde_json::{json, Value};

use super::chat::{Harness, StandIn};

/// Starts the channel's session.
pub const OWNER: &str = "u1";
/// Another member of the channel.
pub const MEMBER: &str = "u2";
/// A member of the team who is not in the channel.
pub const OUTSIDER: &str = "u4";
/// A system admin who is not in the channel.
pub const ADMIN: &str = "u5";

/// A harness whose sessions run `standin`, without command limits, u5 a system admin;
/// `extra` settings are merged in.
pub async fn stand_in_harness(name: &str, standin: &StandIn, extra: Value) -> Harness {
    let mut settings = json!({
        "ClaudeCliPath": standin.path().display().to_string(),
        "CommandsPerMinute": 0,
    });
    for (k, v) in extra.as_object().unwrap() {
        settings[k] = v.clone();
    }
    let h = Harness::new(name, |_| json!([]), settings).await;
    h.api.lock().unwrap().admins = vec![ADMIN.into()];
    h
}

/// The roles each user holds (u1 started the session).
pub fn roles(user: &str, who_can_approve: WhoCanApprove) -> Vec<Role> {
    let member = [Role::Anyone, Role::Member, Role::Starter];
    match user {
        OWNER => [&member[..], &[Role::Owner, Role::Approver]].concat(),
        MEMBER if who_can_approve == WhoCanApprove::Members => {
            [&member[..], &[Role::Approver]].concat()
        }
        MEMBER => member.to_vec(),
        ADMIN => vec![Role::Anyone, Role::SystemAdmin],
        _ => vec![Role::Anyone],
    }
}

/// Whether `user` is a member of the session's channel.
pub fn is_member(user: &str) -> bool {
    roles(user, WhoCanApprove::Owner).contains(&Role::Member)
}

/// What the table says `user` gets for `action`: `None` = allowed, else the refusal.
pub fn expected(user: &str, action: Action, who: WhoCanApprove) -> Option<String> {
    match authz::allowed(&roles(user, who), action, who) {
        authz::Decision::Allow => None,
        authz::Decision::Refuse(text) => Some(text),
    }
}
