//! Logging as hclog JSON lines on stderr, the format Mattermost's host reads
//! plugin stderr as (go-plugin log_entry.go): `@level`, `@message` and
//! `@timestamp` (layout `2006-01-02T15:04:05.000000Z07:00`; a malformed one
//! makes the host drop to its plain-text path).
//!
//! Nothing else goes in the JSON object: the host hands any other key to the
//! server's hclog adapter (public/plugin/hclog_adapter.go), which joins them
//! with `fmt.Sprint` into one `wrapped_extras` string without separators
//! (`@moduleclaude_code::appallowed_project_roots1…`). So an event's fields
//! are folded into the message as `key=value` pairs, quoted when needed, and
//! read in the server's log as written.
//!
//! A small `tracing` layer of ours on the registry: one JSON object per
//! event, written with a single `write_all` so concurrent lines never mix.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// Environment variable for the lowest level logged (`trace`..`error`); default `info`.
pub const LOG_LEVEL_ENV: &str = "MM_CLAUDE_CODE_LOG_LEVEL";

/// The hclog level name of a tracing level.
pub fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        _ => "error",
    }
}

/// UTC time in hclog's layout, microseconds, `Z` for UTC.
pub fn format_timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// Days since 1970-01-01 -> (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm; avoids a date crate for one function).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Longest text value (message or field) written; go-plugin reads plugin stderr in lines of at
/// most 64 KiB and logs anything longer as raw debug fragments, level and fields lost.
pub const MAX_VALUE_BYTES: usize = 16 * 1024;
/// Longest line written. JSON escaping can grow a value up to six times, and there may be
/// several: a line over this is written again with much shorter values.
const MAX_LINE_BYTES: usize = 60 * 1024;

/// `text` cut to at most `max` bytes (on a character boundary), saying how much went.
fn bounded(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text.len() - end;
    text.truncate(end);
    text.push_str(&format!("… ({cut} more bytes not logged)"));
    text
}

#[derive(Default)]
struct Fields {
    message: String,
    /// `(key, value as text)` in the order the event declared them.
    fields: Vec<(String, String)>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = value;
        } else {
            self.fields.push((field.name().to_owned(), value));
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_owned());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.to_string());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.to_string());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.to_string());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.to_string());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }
}

/// A field value as it appears after `key=`: as is when it is one plain word, else quoted
/// (JSON string syntax) so that spaces, `=`, quotes and control characters cannot blur where
/// it ends.
fn field_value(value: &str) -> String {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '=' | '\\'));
    if plain {
        value.to_owned()
    } else {
        serde_json::Value::from(value).to_string()
    }
}

/// The message with the fields folded in: `message key=value key="two words"`, every text
/// cut to `max` bytes and the whole to `4 * max`.
fn folded_message(f: &Fields, max: usize) -> String {
    let mut text = bounded(f.message.clone(), max);
    for (key, value) in &f.fields {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(key);
        text.push('=');
        text.push_str(&field_value(&bounded(value.clone(), max)));
    }
    bounded(text, 4 * max)
}

/// Formats one event as an hclog JSON line (with the trailing newline). Only the event's
/// level, message (fields folded in) and time are sent: see the module doc. The module
/// (`@module`) is left out for the same reason.
pub fn format_line(level: &Level, time: SystemTime, visit: impl FnOnce(&mut dyn Visit)) -> String {
    let mut f = Fields::default();
    visit(&mut f);
    let render = |max: usize| {
        serde_json::json!({
            "@level": level_name(level),
            "@message": folded_message(&f, max),
            "@timestamp": format_timestamp(time),
        })
        .to_string()
    };
    let mut line = render(MAX_VALUE_BYTES);
    if line.len() > MAX_LINE_BYTES {
        line = render(MAX_VALUE_BYTES / 64);
    }
    line.push('\n');
    line
}

/// The layer: every enabled event becomes one line on stderr.
pub struct HclogLayer {
    max: Level,
}

impl HclogLayer {
    pub fn new(max: Level) -> Self {
        HclogLayer { max }
    }
}

impl<S: Subscriber> Layer<S> for HclogLayer {
    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        *metadata.level() <= self.max
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        let line = format_line(meta.level(), SystemTime::now(), |v| event.record(v));
        // Nowhere to report a failed write to stderr; drop the line.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// The level from [`LOG_LEVEL_ENV`], default info.
pub fn level_from_env() -> Level {
    std::env::var(LOG_LEVEL_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(Level::INFO)
}

/// Installs the layer as the global subscriber (once; later calls are no-ops).
pub fn init() {
    let _ = tracing_subscriber::registry()
        .with(HclogLayer::new(level_from_env()))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_in_hclog_layout() {
        assert_eq!(format_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let t = UNIX_EPOCH + Duration::new(1_136_214_245, 123_456_789);
        assert_eq!(format_timestamp(t), "2006-01-02T15:04:05.123456Z");
        // Leap day.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(format_timestamp(t), "2000-02-29T00:00:00.000000Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_798_761_599);
        assert_eq!(format_timestamp(t), "2026-12-31T23:59:59.000000Z");
    }

    #[derive(Clone, Default)]
    struct Capture(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

    impl<S: Subscriber> Layer<S> for Capture {
        fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
            let meta = event.metadata();
            let line = format_line(meta.level(), UNIX_EPOCH, |v| event.record(v));
            self.0.lock().unwrap().push(line);
        }
    }

    fn capture(f: impl FnOnce()) -> Vec<serde_json::Value> {
        let cap = Capture::default();
        let subscriber = tracing_subscriber::registry().with(cap.clone());
        tracing::subscriber::with_default(subscriber, f);
        let lines = cap.0.lock().unwrap().clone();
        lines
            .iter()
            .map(|l| {
                assert!(l.ends_with('\n'));
                assert_eq!(l.matches('\n').count(), 1, "one line: {l}");
                assert!(l.len() <= MAX_LINE_BYTES, "{} bytes", l.len());
                serde_json::from_str(l).unwrap()
            })
            .collect()
    }

    #[test]
    fn event_lines_are_hclog_json_with_the_fields_in_the_message() {
        let lines = capture(|| {
            tracing::info!(
                allowed_project_roots = 1,
                claude_cli_path = "/opt/claude code/bin/claude",
                api_key_set = true,
                "configuration loaded"
            );
            tracing::warn!("multi\nline \"quoted\"");
            tracing::error!(reason = "", path = "a=b", quote = "say \"hi\"", "x");
        });
        assert_eq!(lines.len(), 3);
        // Only hclog's own keys: the host would glue any other key and value together.
        for v in &lines {
            let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(keys, ["@level", "@message", "@timestamp"], "{v}");
        }
        assert_eq!(lines[0]["@level"], "info");
        assert_eq!(lines[0]["@timestamp"], "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            lines[0]["@message"],
            "configuration loaded allowed_project_roots=1 \
             claude_cli_path=\"/opt/claude code/bin/claude\" api_key_set=true"
        );
        assert_eq!(lines[1]["@level"], "warn");
        assert_eq!(lines[1]["@message"], "multi\nline \"quoted\"");
        assert_eq!(
            lines[2]["@message"],
            r#"x reason="" path="a=b" quote="say \"hi\"""#
        );
    }

    #[test]
    fn field_values_are_quoted_only_when_needed() {
        assert_eq!(field_value("claude_code::app"), "claude_code::app");
        assert_eq!(field_value("é-ü"), "é-ü");
        assert_eq!(field_value(""), r#""""#);
        assert_eq!(field_value("two words"), r#""two words""#);
        assert_eq!(field_value("tab\there"), r#""tab\there""#);
        assert_eq!(field_value("\u{1}"), r#""\u0001""#);
        assert_eq!(field_value(r"C:\x"), r#""C:\\x""#);
    }

    #[test]
    fn long_values_are_cut_so_the_line_stays_one_hclog_line() {
        // 'é' is two bytes: the cut must land on a character boundary.
        let long = format!("x{}", "é".repeat(50_000));
        let lines = capture(|| tracing::error!(detail = %long, "{long}"));
        let line = lines[0].to_string();
        assert!(line.len() < 60 * 1024, "{} bytes", line.len());
        assert_eq!(lines[0]["@level"], "error");
        let message = lines[0]["@message"].as_str().unwrap();
        let (text, detail) = message.split_once(" detail=").unwrap();
        let cut = format!(
            "({} more bytes not logged)",
            long.len() - (MAX_VALUE_BYTES - 1)
        );
        assert!(
            text.starts_with("xéé") && text.ends_with(&cut),
            "{text:.40}"
        );
        // Quoted: the note about the cut has spaces.
        assert!(detail.starts_with("\"xéé"), "{detail:.40}");
        assert!(detail.ends_with(&format!("{cut}\"")), "…");
        assert_eq!(bounded("short".into(), 3), "sho… (2 more bytes not logged)");
        assert_eq!(bounded("short".into(), 5), "short");
    }

    #[test]
    fn escaping_and_many_fields_still_fit_one_line() {
        // Control characters escape to six bytes each, in the field's quotes and again in JSON.
        let nasty = "\u{1}".repeat(20_000);
        let lines = capture(|| tracing::warn!(a = %nasty, b = %nasty, c = %nasty, "{nasty}"));
        assert_eq!(lines[0]["@level"], "warn");
        assert!(lines[0]["@message"]
            .as_str()
            .unwrap()
            .ends_with("more bytes not logged)"));
    }

    #[test]
    fn level_names() {
        assert_eq!(level_name(&Level::TRACE), "trace");
        assert_eq!(level_name(&Level::ERROR), "error");
    }
}
