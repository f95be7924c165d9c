use std::collections::BTreeSet;

use crate::app::App;

/// `openapi.json` describes exactly the routes the router serves (the diagnostics routes,
/// mounted only for test harnesses, excepted).
#[test]
fn openapi_describes_exactly_the_router() {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("openapi.json")).expect("openapi.json is JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let mut described = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("operations").keys() {
            described.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    let served: BTreeSet<(String, String)> = App::new(false)
        .router()
        .routes()
        // A trailing `{name...}` captures the rest of the path; OpenAPI writes it `{name}`.
        .map(|(m, p)| (m.to_owned(), p.replace("...}", "}")))
        .collect();
    assert_eq!(described, served);
    // Every operation says what it answers when things go wrong, with the one error shape.
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(
                path == "/api/v1/health" || responses.contains_key("401"),
                "{method} {path} does not say it needs a login"
            );
        }
    }
}
