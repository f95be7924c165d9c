use super::*;

#[test]
fn implemented_list() {
    let names: Vec<&str> = App::new(false)
        .implemented()
        .iter()
        .map(|h| h.name())
        .collect();
    assert_eq!(
        names,
        [
            "OnActivate",
            "OnDeactivate",
            "OnConfigurationChange",
            "ExecuteCommand",
            "ServeHTTP",
            "MessageHasBeenPosted",
            "OnPluginClusterEvent",
            "ConfigurationWillBeSaved",
            "ServeMetrics"
        ]
    );
}

#[test]
fn help_and_other_commands() {
    for line in ["/claude help", "/claude", "  /claude   help  extra"] {
        let r = command_response(line);
        assert_eq!(r.response_type, "ephemeral");
        assert!(r.text.starts_with("Claude Code"), "{}", r.text);
        assert!(r.text.contains("/claude start"), "{}", r.text);
    }
    let r = command_response("/claude status");
    assert_eq!(r.response_type, "ephemeral");
    assert!(
        r.text.starts_with("`/claude status` is not available"),
        "{}",
        r.text
    );
    let r = command_response("/claude frobnicate now");
    assert!(
        r.text.starts_with("`/claude ask` is not available"),
        "{}",
        r.text
    );
    let r = command_response("/claude start");
    assert!(r.text.contains("needs a project path"), "{}", r.text);
}

/// `model.AutocompleteData.IsValid` of the server (public/model/command_autocomplete.go),
/// rule for rule and with its messages; RegisterCommand runs it on the plugin's tree and
/// a failure stops the activation.
fn server_is_valid(ad: &AutocompleteData) -> Result<(), &'static str> {
    if ad.trigger.is_empty() {
        return Err("An empty command name in the autocomplete data");
    }
    if ad.trigger.to_lowercase() != ad.trigger {
        return Err("Command should be lowercase");
    }
    if !["system_admin", "system_user", ""].contains(&ad.role_id.as_str()) {
        return Err("Wrong role in the autocomplete data");
    }
    if !ad.arguments.is_empty() && !ad.sub_commands.is_empty() {
        return Err("Command can't have arguments and subcommands");
    }
    let mut named_seen = false;
    for arg in &ad.arguments {
        if !arg.name.is_empty() {
            named_seen = true;
        } else if named_seen {
            return Err("Named argument should not be before positional argument");
        }
        match arg.r#type.as_str() {
            "DynamicList" => {
                let Any::AutocompleteDynamicList(list) = &arg.data else {
                    return Err("Not a proper DynamicList type argument");
                };
                // Go's url.Parse refuses control characters; a relative URL is fine.
                if list.fetch_url.chars().any(char::is_control) {
                    return Err("FetchURL is not a proper url");
                }
            }
            "StaticList" => {
                let Any::AutocompleteStaticList(list) = &arg.data else {
                    return Err("Not a proper StaticList type argument");
                };
                if list.possible_arguments.iter().any(|i| i.item.is_empty()) {
                    return Err("Possible argument name not set in StaticList argument");
                }
            }
            "TextInput" => {
                if !matches!(arg.data, Any::AutocompleteText(_)) {
                    return Err("Not a proper TextInput type argument");
                }
                if arg.name.is_empty() && !arg.required {
                    return Err("Positional argument can not be optional");
                }
            }
            // The server does not check other types.
            _ => {}
        }
    }
    ad.sub_commands.iter().try_for_each(server_is_valid)
}

#[test]
fn the_mirror_of_is_valid_refuses_what_the_server_refuses() {
    let text = |name: &str, required: bool| AutocompleteArg {
        name: name.into(),
        r#type: "TextInput".into(),
        required,
        data: Any::AutocompleteText(AutocompleteTextArg::default()),
        ..Default::default()
    };
    let node = |trigger: &str, arguments: Vec<AutocompleteArg>| AutocompleteData {
        trigger: trigger.into(),
        role_id: "system_user".into(),
        arguments,
        ..Default::default()
    };
    let check = |sub: AutocompleteData| {
        server_is_valid(&AutocompleteData {
            sub_commands: vec![sub],
            ..node("claude", vec![])
        })
    };
    // The tree that kept the plugin from activating: `files [dir]`.
    assert_eq!(
        check(node("files", vec![text("", false)])),
        Err("Positional argument can not be optional")
    );
    assert_eq!(check(node("files", vec![text("", true)])), Ok(()));
    assert_eq!(check(node("files", vec![text("dir", false)])), Ok(()));
    assert_eq!(
        check(node("files", vec![text("dir", false), text("", true)])),
        Err("Named argument should not be before positional argument")
    );
    assert_eq!(
        check(node("", vec![])),
        Err("An empty command name in the autocomplete data")
    );
    assert_eq!(
        check(node("Files", vec![])),
        Err("Command should be lowercase")
    );
    assert_eq!(
        check(AutocompleteData {
            role_id: "team_user".into(),
            ..node("files", vec![])
        }),
        Err("Wrong role in the autocomplete data")
    );
    assert_eq!(
        check(AutocompleteData {
            sub_commands: vec![node("x", vec![])],
            ..node("files", vec![text("", true)])
        }),
        Err("Command can't have arguments and subcommands")
    );
    let typed = |r#type: &str, data: Any| AutocompleteArg {
        r#type: r#type.into(),
        required: true,
        data,
        ..Default::default()
    };
    assert_eq!(
        check(node("m", vec![typed("StaticList", Any::Nil)])),
        Err("Not a proper StaticList type argument")
    );
    assert_eq!(
        check(node(
            "m",
            vec![typed(
                "StaticList",
                Any::AutocompleteStaticList(AutocompleteStaticListArg {
                    possible_arguments: vec![AutocompleteListItem::default()],
                })
            )]
        )),
        Err("Possible argument name not set in StaticList argument")
    );
    assert_eq!(
        check(node("m", vec![typed("TextInput", Any::Nil)])),
        Err("Not a proper TextInput type argument")
    );
    assert_eq!(
        check(node("m", vec![typed("DynamicList", Any::Nil)])),
        Err("Not a proper DynamicList type argument")
    );
}

#[test]
fn autocomplete_tree_is_valid_for_the_server() {
    let c = slash_command();
    // RegisterPluginCommand refuses an empty trigger before looking at the tree. It does
    // not run Command.IsValid, but the command passes its plugin-relevant rules too.
    assert_eq!(c.trigger, "claude");
    assert!((1..=128).contains(&c.trigger.len()) && !c.trigger.starts_with('/'));
    assert!(!c.trigger.contains(' '));
    assert!(c.display_name.len() <= 64 && c.description.len() <= 128);
    let ad = c.autocomplete_data.unwrap();
    assert_eq!(server_is_valid(&ad), Ok(()));
    let names: Vec<&str> = ad.sub_commands.iter().map(|s| s.trigger.as_str()).collect();
    assert_eq!(
        names,
        [
            "start",
            "stop",
            "status",
            "ask",
            "interrupt",
            "context",
            "files",
            "file",
            "mode",
            "model",
            "history",
            "help"
        ]
    );
    // Still useful: hints everywhere, the modes as a list, `start`'s options by name.
    let sub = |name: &str| ad.sub_commands.iter().find(|s| s.trigger == name).unwrap();
    assert_eq!(sub("files").hint, "[dir]");
    assert_eq!(sub("context").sub_commands[0].hint, "[permalink]");
    assert!(matches!(
        sub("mode").arguments[0].data,
        Any::AutocompleteStaticList(_)
    ));
    let start: Vec<&str> = sub("start")
        .arguments
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(start, ["", "model", "mode", "worktree"]);
}

struct NoDial;
impl crate::mattermost::hooks::Dialer for NoDial {
    fn dial(
        &self,
        _: u32,
    ) -> HookFuture<'_, std::io::Result<Box<dyn crate::mattermost::http::Duplex>>> {
        Box::pin(async { Err(std::io::Error::other("no broker in this test")) })
    }
}

/// The server's calls as Go encodes them (tests/fixtures/gob/README.md): an invalid
/// MaxConcurrentSessions is refused with the validation's text, a valid entry and a
/// config without one are accepted (nil error, nil config).
#[tokio::test]
async fn configuration_will_be_saved_refuses_settings_that_would_not_load() {
    use crate::mattermost::rpc_types::ConfigurationWillBeSavedReturns;
    use crate::rpc::gob::stream::StreamDecoder;
    use crate::rpc::netrpc::ResponseHeader;
    use tokio::io::AsyncWriteExt;

    let (host, plugin) = tokio::io::duplex(1 << 16);
    let server = crate::mattermost::hooks::hooks_server(App::new(false), Arc::new(NoDial));
    tokio::spawn(async move { server.serve(plugin).await });
    let (read, mut write) = tokio::io::split(host);
    let calls: &[u8] =
        include_bytes!("../../tests/fixtures/gob/configuration_will_be_saved_calls.gob");
    tokio::spawn(async move { write.write_all(calls).await });
    let mut replies = StreamDecoder::new(read);
    let mut errors = std::collections::BTreeMap::new();
    for _ in 0..3 {
        let header: ResponseHeader = replies.decode().await.unwrap().unwrap();
        assert_eq!(header.error, "", "seq {}", header.seq);
        assert_eq!(header.service_method, "Plugin.ConfigurationWillBeSaved");
        let reply: ConfigurationWillBeSavedReturns = replies.decode().await.unwrap().unwrap();
        errors.insert(header.seq, reply.b);
    }
    let Some(Any::AppError(e)) = errors.get(&1) else {
        panic!("the invalid settings were accepted: {errors:?}")
    };
    assert_eq!(
        e.message,
        "Claude Code: setting MaxConcurrentSessions must be between 1 and 100, got 0"
    );
    assert_eq!(e.status_code, 400);
    assert_eq!(e.r#where, "ConfigurationWillBeSaved");
    // Shown as it is: the server would otherwise look the message up as an i18n id.
    assert!(e.skip_translation);
    assert_eq!(errors.get(&2), Some(&Any::Nil));
    assert_eq!(errors.get(&3), Some(&Any::Nil));
}
