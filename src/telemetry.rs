//! Logging: text or JSON lines, levels from `RUST_LOG` (default `info`), and the request id of
//! the request a line was logged for.
//!
//! Field values come partly from the IdP (usernames, group names): in text logs every control
//! character in them is escaped, so a username with a CR or LF can never forge a log line of
//! its own. JSON lines are escaped by the JSON encoder already.
//!
//! The request id is not a tracing span: a span per request cost the auth check about 2.5 µs of
//! CPU (a third of an anonymous check), since the subscriber registers it, formats its fields and
//! locks the filter's span map at every poll. It is a task-local set around the request's
//! future instead (a thread-local swap per poll), read only when a line is actually written, and
//! written where the span would be: `request{request_id=...}:` in text, `"request_id"` in JSON.

use std::fmt::{self, Write as _};
use std::future::Future;

use actix_web::http::header::HeaderValue;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::{MakeExt, RecordFields};
use tracing_subscriber::fmt::format::{self, Format, Full, Json, JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

tokio::task_local! {
    static REQUEST_ID: HeaderValue;
}

/// Runs `future` as the request `id`: every line it logs names it.
pub fn with_request_id<F: Future>(id: HeaderValue, future: F) -> impl Future<Output = F::Output> {
    REQUEST_ID.scope(id, future)
}

/// The id of the request being handled, if any: for work it hands to a task of its own.
pub fn current_request_id() -> Option<HeaderValue> {
    REQUEST_ID.try_with(HeaderValue::clone).ok()
}

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // try_init: a second call (tests starting several instances) must not panic.
    let _ = match format {
        LogFormat::Text => builder
            .fmt_fields(EscapedFields)
            .event_format(TextLines::default())
            .try_init(),
        LogFormat::Json => builder
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines::default())
            .try_init(),
    };
}

/// Text lines as tracing's own format writes them (without targets), with the request id where
/// a span would be: `<time>  INFO request{request_id=...}: message fields`.
pub struct TextLines {
    full: Format<Full, SystemTime>,
    /// The part after the request id: no time and no level, written before it.
    rest: Format<Full, ()>,
}

impl Default for TextLines {
    fn default() -> Self {
        TextLines {
            full: format::format().with_target(false),
            rest: format::format()
                .with_target(false)
                .without_time()
                .with_level(false),
        }
    }
}

const DIM: &str = "\x1b[2m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// The colours tracing gives each level.
fn level_colour(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "\x1b[35m",
        Level::DEBUG => "\x1b[34m",
        Level::INFO => "\x1b[32m",
        Level::WARN => "\x1b[33m",
        Level::ERROR => "\x1b[31m",
    }
}

impl<S, N> FormatEvent<S, N> for TextLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some(id) = current_request_id() else {
            return self.full.format_event(ctx, writer, event);
        };
        let id = id.to_str().unwrap_or_default();
        let level = event.metadata().level();
        if writer.has_ansi_escapes() {
            write!(writer, "{DIM}")?;
            SystemTime.format_time(&mut writer)?;
            write!(writer, "{RESET} {}{level:>5}{RESET} ", level_colour(level))?;
            write!(
                writer,
                "{BOLD}request{RESET}{BOLD}{{{RESET}request_id={id}{BOLD}}}{RESET}{DIM}:{RESET} "
            )?;
        } else {
            SystemTime.format_time(&mut writer)?;
            write!(writer, " {level:>5} request{{request_id={id}}}: ")?;
        }
        self.rest.format_event(ctx, writer, event)
    }
}

/// JSON lines as tracing writes them (the event's fields flattened), with `"request_id"` first
/// when the line belongs to a request.
pub struct JsonLines(Format<Json, SystemTime>);

impl Default for JsonLines {
    fn default() -> Self {
        JsonLines(
            format::format()
                .json()
                .flatten_event(true)
                .with_span_list(false),
        )
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some(id) = current_request_id() else {
            return self.0.format_event(ctx, writer, event);
        };
        // Only lines of a request pay for the copy; JSON has no colours to lose on the way.
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        let id = serde_json::to_string(id.to_str().unwrap_or_default()).map_err(|_| fmt::Error)?;
        match line.strip_prefix('{') {
            Some(rest) if rest.starts_with('}') => write!(writer, "{{\"request_id\":{id}{rest}"),
            Some(rest) => write!(writer, "{{\"request_id\":{id},{rest}"),
            None => writer.write_str(&line),
        }
    }
}

/// Text fields as `name=value`, space-separated, the message first and bare, with control
/// characters escaped.
pub struct EscapedFields;

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let formatter = format::debug_fn(|writer, field, value| {
            let text = format!("{value:?}");
            let text = escape_controls(&text);
            if field.name() == "message" {
                write!(writer, "{text}")
            } else {
                write!(writer, "{}={text}", field.name())
            }
        })
        .delimited(" ");
        let mut visitor = tracing_subscriber::field::MakeVisitor::make_visitor(&formatter, writer);
        fields.record(&mut visitor);
        tracing_subscriber::field::VisitOutput::finish(visitor)
    }
}

/// `\n`, `\r`, `\t` and every other control character written as an escape.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_controls("alice"), "alice");
        assert_eq!(
            escape_controls("a\r\nINFO fake line\t\u{1b}[31m\u{85}"),
            "a\\r\\nINFO fake line\\t\\u{1b}[31m\\u{85}"
        );
    }

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_username_with_a_newline_stays_on_its_line() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .fmt_fields(EscapedFields)
            .finish();
        let user = "mallory\nINFO signed in user=admin";
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(user = %user, groups = 2, "signed in");
            tracing::warn!(detail = ?user, "login failed");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].contains("signed in user=mallory\\nINFO signed in user=admin groups=2"),
            "{text}"
        );
        assert!(lines[1].contains("login failed detail="), "{text}");
    }

    /// One `info` line, as JSON or text, with colours or not, logged as the request `id` if any.
    fn one_line(json: bool, ansi: bool, id: Option<&'static str>) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let log = || tracing::info!(user = "alice", status = 200, "auth check");
        let run = |log: &dyn Fn()| match id {
            Some(id) => REQUEST_ID.sync_scope(HeaderValue::from_static(id), log),
            None => log(),
        };
        let builder = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(ansi);
        if json {
            let subscriber = builder
                .fmt_fields(JsonFields::new())
                .event_format(JsonLines::default())
                .finish();
            tracing::subscriber::with_default(subscriber, || run(&log));
        } else {
            let subscriber = builder
                .fmt_fields(EscapedFields)
                .event_format(TextLines::default())
                .finish();
            tracing::subscriber::with_default(subscriber, || run(&log));
        }
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    /// The line without its timestamp (everything up to the first space).
    fn untimed(line: &str) -> &str {
        let start = line.find(' ').unwrap();
        &line[start..]
    }

    #[test]
    fn a_text_line_of_a_request_names_it_where_a_span_would() {
        let plain = one_line(false, false, None);
        assert_eq!(
            untimed(&plain),
            "  INFO auth check user=\"alice\" status=200\n"
        );
        let of_request = one_line(false, false, Some("0af7-651"));
        assert_eq!(
            untimed(&of_request),
            "  INFO request{request_id=0af7-651}: auth check user=\"alice\" status=200\n"
        );
        // With colours: the same words, coloured as tracing colours its spans and levels.
        let coloured = one_line(false, true, Some("0af7-651"));
        assert!(coloured.starts_with(DIM), "{coloured:?}");
        let words: String = coloured
            .split('\x1b')
            .map(|part| part.split_once('m').map_or(part, |(_, rest)| rest))
            .collect();
        assert_eq!(untimed(&words), untimed(&of_request), "{coloured:?}");
        assert!(coloured.contains("\x1b[32m INFO"), "{coloured:?}");
    }

    #[test]
    fn a_json_line_of_a_request_has_its_id_first() {
        let plain: serde_json::Value = serde_json::from_str(&one_line(true, false, None)).unwrap();
        assert_eq!(plain["message"], "auth check");
        assert_eq!(plain["user"], "alice");
        assert!(plain.get("request_id").is_none(), "{plain}");
        assert!(
            plain.get("span").is_none() && plain.get("spans").is_none(),
            "{plain}"
        );
        // Visible ASCII may hold quotes and backslashes: escaped like any JSON string.
        let line = one_line(true, false, Some(r#"a"b\c"#));
        assert!(line.starts_with(r#"{"request_id":"a\"b\\c","#), "{line}");
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["request_id"], r#"a"b\c"#);
        assert_eq!(parsed["status"], 200);
        assert_eq!(parsed["level"], "INFO");
    }
}
