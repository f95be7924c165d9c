//! The server's `model.Config`, as received from GetConfig and ConfigurationWillBeSaved: a
//! generic gob [`Value`], because the struct is huge and changes with every server version.
//! Only the few fields a plugin needs are looked up, by name.

use crate::rpc::gob::Value;

/// The field `name` of a decoded struct; `None` when it was not sent (Go omits zero values
/// and nil pointers) or `v` is not a struct.
fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    match v {
        Value::Struct(fields) => fields.iter().find(|(n, _)| n == name).map(|(_, v)| v),
        _ => None,
    }
}

/// `FileSettings.Directory` (a `*string`); `None` when absent, nil or blank.
pub(crate) fn file_settings_directory(config: &Value) -> Option<String> {
    match field(field(config, "FileSettings")?, "Directory")? {
        Value::String(dir) if !dir.trim().is_empty() => Some(dir.trim().to_owned()),
        _ => None,
    }
}

/// `ClusterSettings.Enable` (a `*bool`): whether the server is set up to run in a cluster.
pub(crate) fn cluster_enabled(config: &Value) -> bool {
    field(config, "ClusterSettings")
        .and_then(|c| field(c, "Enable"))
        .is_some_and(|v| matches!(v, Value::Bool(true)))
}

/// `ServiceSettings.SiteURL` (a `*string`) without a trailing slash; `None` when absent or
/// blank (the server then knows no absolute URL of itself).
pub(crate) fn site_url(config: &Value) -> Option<String> {
    match field(field(config, "ServiceSettings")?, "SiteURL")? {
        Value::String(url) if !url.trim().is_empty() => {
            Some(url.trim().trim_end_matches('/').to_owned())
        }
        _ => None,
    }
}

/// `PluginSettings.Plugins[plugin_id]` (a `map[string]any`) as the JSON object the server
/// stores for the plugin, the shape LoadPluginConfiguration returns; `None` when the
/// configuration has no entry for the plugin.
pub(crate) fn plugin_settings(config: &Value, plugin_id: &str) -> Option<serde_json::Value> {
    let Value::Map(plugins) = field(field(config, "PluginSettings")?, "Plugins")? else {
        return None;
    };
    plugins
        .iter()
        .find(|(k, _)| matches!(k, Value::String(id) if id == plugin_id))
        .map(|(_, settings)| json(settings))
}

/// A setting's value as encoding/json shows it. Settings are strings, numbers and booleans
/// (maps and lists for custom settings); what JSON has no form for here (bytes, complex
/// numbers, marshaller output, non-finite floats) becomes null.
fn json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Uint(u) => J::from(*u),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::String(s) => J::String(s.clone()),
        Value::Slice(items) | Value::Array(items) => J::Array(items.iter().map(json).collect()),
        Value::Map(pairs) => J::Object(
            pairs
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        Value::String(s) => s.clone(),
                        other => json(other).to_string(),
                    };
                    (key, json(v))
                })
                .collect(),
        ),
        Value::Struct(fields) => J::Object(
            fields
                .iter()
                .map(|(name, v)| (name.clone(), json(v)))
                .collect(),
        ),
        Value::Interface(Some(inner)) => json(&inner.1),
        Value::Interface(None) | Value::Bytes(_) | Value::Complex(..) | Value::Encoded(_) => {
            J::Null
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    fn any(type_name: &str, v: Value) -> Value {
        Value::Interface(Some(Box::new((type_name.into(), v))))
    }

    #[test]
    fn file_store_directory() {
        let config = |file_settings: Vec<(String, Value)>| {
            Value::Struct(vec![
                (
                    "ServiceSettings".into(),
                    Value::Struct(vec![("SiteURL".into(), s("http://mm"))]),
                ),
                ("FileSettings".into(), Value::Struct(file_settings)),
            ])
        };
        let with_dir = config(vec![
            ("DriverName".into(), s("local")),
            ("Directory".into(), s(" /var/mm/data/ ")),
        ]);
        assert_eq!(
            file_settings_directory(&with_dir).as_deref(),
            Some("/var/mm/data/")
        );
        // A nil *string is not sent at all; a blank one means nothing either.
        assert_eq!(file_settings_directory(&config(vec![])), None);
        assert_eq!(
            file_settings_directory(&config(vec![("Directory".into(), s("  "))])),
            None
        );
        assert_eq!(
            file_settings_directory(&Value::Struct(vec![(
                "SqlSettings".into(),
                Value::Struct(vec![])
            )])),
            None
        );
        assert_eq!(
            file_settings_directory(&config(vec![("Directory".into(), Value::Int(3))])),
            None
        );
        assert_eq!(file_settings_directory(&s("not a config")), None);
    }

    #[test]
    fn cluster_enabled_only_when_set() {
        let config = |enable: Option<Value>| {
            Value::Struct(vec![(
                "ClusterSettings".into(),
                Value::Struct(enable.map(|e| ("Enable".into(), e)).into_iter().collect()),
            )])
        };
        assert!(cluster_enabled(&config(Some(Value::Bool(true)))));
        assert!(!cluster_enabled(&config(Some(Value::Bool(false)))));
        assert!(!cluster_enabled(&config(None)));
        assert!(!cluster_enabled(&Value::Struct(Vec::new())));
    }

    #[test]
    fn site_url_without_its_trailing_slash() {
        let config = |url: Value| {
            Value::Struct(vec![(
                "ServiceSettings".into(),
                Value::Struct(vec![("SiteURL".into(), url)]),
            )])
        };
        assert_eq!(
            site_url(&config(s(" https://chat.example.com/ "))).as_deref(),
            Some("https://chat.example.com")
        );
        assert_eq!(site_url(&config(s(""))), None);
        assert_eq!(site_url(&Value::Struct(vec![])), None);
    }

    #[test]
    fn plugin_settings_of_one_plugin_as_json() {
        let config = Value::Struct(vec![(
            "PluginSettings".into(),
            Value::Struct(vec![(
                "Plugins".into(),
                Value::Map(vec![
                    (
                        s("other"),
                        Value::Map(vec![(s("a"), any("string", s("b")))]),
                    ),
                    (
                        s("claude-code"),
                        Value::Map(vec![
                            (
                                s("maxconcurrentsessions"),
                                any("float64", Value::Float(0.0)),
                            ),
                            (s("whocanapprove"), any("string", s("members"))),
                            (s("enabled"), any("bool", Value::Bool(true))),
                            (s("nothing"), Value::Interface(None)),
                            (
                                s("list"),
                                any(
                                    "[]interface {}",
                                    Value::Slice(vec![any("int", Value::Int(1))]),
                                ),
                            ),
                        ]),
                    ),
                ]),
            )]),
        )]);
        assert_eq!(
            plugin_settings(&config, "claude-code"),
            Some(json!({
                "maxconcurrentsessions": 0.0,
                "whocanapprove": "members",
                "enabled": true,
                "nothing": null,
                "list": [1],
            }))
        );
        assert_eq!(plugin_settings(&config, "absent"), None);
        assert_eq!(plugin_settings(&Value::Struct(vec![]), "claude-code"), None);
    }

    /// A real `model.Config` (server/public v0.3.0, `SetDefaults`, Directory `/var/mm/files/`,
    /// a plugin settings map) as GetConfig's reply, encoded by Go's encoding/gob.
    #[tokio::test]
    async fn file_store_directory_from_a_real_get_config_reply() {
        use crate::mattermost::rpc_types::Returns1;
        use crate::rpc::gob::stream::StreamDecoder;
        let bytes: &[u8] = include_bytes!("../../tests/fixtures/gob/get_config_returns.gob");
        let mut stream = StreamDecoder::new(bytes);
        let reply = stream
            .next_with(|r, id| r.top_level::<Returns1<Option<Value>>>(id))
            .await
            .expect("decodes")
            .expect("one value")
            .value;
        let config = reply.a.expect("a config");
        assert_eq!(
            file_settings_directory(&config).as_deref(),
            Some("/var/mm/files/")
        );
    }
}
