//! Logging: text or JSON lines, levels from `RUST_LOG` (default `info`).
//!
//! Field values come partly from the IdP (usernames, group names): in text logs every control
//! character in them is escaped, so a username with a CR or LF can never forge a log line of
//! its own. JSON lines are escaped by the JSON encoder already.

use std::fmt::{self, Write as _};

use tracing_subscriber::field::{MakeExt, RecordFields};
use tracing_subscriber::fmt::format::{self, Writer};
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    // try_init: a second call (tests starting several instances) must not panic.
    let _ = match format {
        LogFormat::Text => builder.fmt_fields(EscapedFields).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
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
}
