//! Log lines in text without colour, as `serve` writes them to a file or a
//! pipe: the same text as tracing-subscriber's default formatter writes,
//! without the styling calls its field formatter makes even when colour is
//! off (a third of a request line's instructions) and with the date and time
//! of day worked out once a second rather than per line (BENCHMARKS.md,
//! "The access log made cheaper").

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// A line's time as the default timer writes it (RFC 3339 in UTC, to the
/// microsecond), its date and time of day worked out once a second per
/// thread rather than on every line.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct LineTime;

impl FormatTime for LineTime {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        write_time(w, crate::clock::wall_since_epoch())
    }
}

fn write_time(w: &mut impl fmt::Write, since_epoch: Duration) -> fmt::Result {
    thread_local! {
        /// The second last written, and its text up to the fraction.
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
    }
    let secs = since_epoch.as_secs();
    SECOND.with_borrow_mut(|(second, text)| {
        if *second != secs || text.is_empty() {
            let t = i64::try_from(secs)
                .ok()
                .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            text.clear();
            write!(
                text,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )?;
            *second = secs;
        }
        write!(w, "{text}.{:06}Z", since_epoch.subsec_micros())
    })
}

/// Fields as `name=value` separated by spaces, `Debug` values as `{:?}`,
/// the message bare with terminal control characters escaped, and the
/// `log.*` fields of records from the `log` crate left out (the line's
/// target already names their origin).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct PlainFields;

pub(super) struct PlainVisitor<'a> {
    writer: Writer<'a>,
    empty: bool,
    result: fmt::Result,
}

impl<'a> MakeVisitor<Writer<'a>> for PlainFields {
    type Visitor = PlainVisitor<'a>;

    fn make_visitor(&self, writer: Writer<'a>) -> Self::Visitor {
        PlainVisitor {
            writer,
            empty: true,
            result: Ok(()),
        }
    }
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.record_debug(field, &format_args!("{value}")),
            _ => self.record_debug(field, &value),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        if !std::mem::take(&mut self.empty) {
            self.result = self.writer.write_char(' ');
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        let writer = &mut self.writer;
        self.result = self.result.and_then(|()| match name {
            "message" => write!(Escaped(writer), "{value:?}"),
            _ => write!(writer, "{name}={value:?}"),
        });
    }
}

impl VisitOutput<fmt::Result> for PlainVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for PlainVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

/// Writes control characters that a terminal could act on (ESC, BEL, BS,
/// FF, DEL and the C1 controls) as escapes, as the default formatter does
/// for messages: a log file shown on a terminal cannot be made to move the
/// cursor or change colours.
struct Escaped<'w, 'a>(&'w mut Writer<'a>);

impl fmt::Write for Escaped<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let controls = |c: char| {
            matches!(
                c,
                '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' | '\u{80}'..='\u{9f}'
            )
        };
        let mut rest = s;
        while let Some(at) = rest.find(controls) {
            self.0.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            match c as u32 {
                0x80..=0x9f => write!(self.0, "\\u{{{:x}}}", c as u32)?,
                n => write!(self.0, "\\x{n:02x}")?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// The lines `emit` logs through a text formatter without colour or
    /// time, with the given field formatter.
    fn lines_of(
        fields: impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + Send + Sync + 'static,
        emit: fn(),
    ) -> String {
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .without_time()
            .fmt_fields(fields)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = out.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn line_times_are_rfc_3339_in_utc_to_the_microsecond_across_seconds_and_leap_days() {
        let cases = [
            (0, 0, "1970-01-01T00:00:00.000000Z"),
            (951_782_400, 5, "2000-02-29T00:00:00.000005Z"),
            (1_796_670_767, 670_068, "2026-12-07T19:12:47.670068Z"),
            (1_796_670_767, 999_999, "2026-12-07T19:12:47.999999Z"),
            (1_796_670_768, 0, "2026-12-07T19:12:48.000000Z"),
            (0, 1, "1970-01-01T00:00:00.000001Z"),
        ];
        for (secs, micros, expected) in cases {
            let mut out = String::new();
            write_time(&mut out, Duration::new(secs, micros * 1000)).unwrap();
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn line_times_have_the_default_timers_shape_and_hour() {
        let now = |timer: &dyn FormatTime| {
            let mut out = String::new();
            timer.format_time(&mut Writer::new(&mut out)).unwrap();
            out
        };
        let before = now(&LineTime);
        let theirs = now(&tracing_subscriber::fmt::time::SystemTime);
        let after = now(&LineTime);
        assert_eq!(before.len(), theirs.len(), "{before} {theirs}");
        // Taken between ours, theirs is in the hour of one of them.
        let hour = |t: &str| t[..13].to_owned();
        assert!(
            hour(&theirs) == hour(&before) || hour(&theirs) == hour(&after),
            "{before} {theirs} {after}"
        );
    }

    #[test]
    fn plain_fields_write_what_the_default_formatter_writes_without_colour() {
        fn emit() {
            let path = "/beta/agentRegistry/agentInstances/a";
            tracing::info!(request_id = %"0f-1", method = %"GET", path = %path, status = 404u16, micros = 31u64, code = "AgentNotFound", "request");
            tracing::warn!(r#type = "x", detail = ?Some(1), "a message with {} and an escape \u{1b}[31m and \u{9b}", 2);
            tracing::error!("only a message");
            tracing::info!(error = %"plain", "");
            tracing::info!(
                log.target = "a::b",
                log.line = 3,
                n = 1,
                "with log metadata"
            );
        }
        let ours = lines_of(PlainFields, emit);
        let theirs = lines_of(tracing_subscriber::fmt::format::DefaultFields::new(), emit);
        assert_eq!(ours, theirs);
        assert!(
            ours.contains(r#"status=404 micros=31 code="AgentNotFound""#),
            "{ours}"
        );
        assert!(ours.contains(r"escape \x1b[31m and \u{9b}"), "{ours}");
    }
}
