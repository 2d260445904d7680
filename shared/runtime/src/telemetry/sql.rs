//! A span per SQL statement, child of the span it ran under.
//!
//! sqlx 0.8 reports every statement it finished as a `sqlx::query` event (its summary, its text,
//! its rows and how long it took) but opens no span. [`SqlSpans`] turns each such event into an
//! OpenTelemetry CLIENT span, `db.system=postgresql`, named after the statement's operation,
//! that started `elapsed` before the event and ended at it. The text is the statement as sent:
//! sqlx binds parameters as `$1`, `$2`…, so it holds no values; long text is cut.
//!
//! Whether a statement failed is not in sqlx's event. So the span of the latest statement of
//! a span is held open (its end time already fixed) until the next statement, the end of that
//! span, or [`statement_failed`], which the runtime's mapping of database errors
//! ([`crate::Error::database`]) calls: then it ends with status error and the database's
//! message.
//!
//! Cost: the layer is installed only when traces are exported. Without it, no filter enables
//! sqlx's DEBUG `sqlx::query` events, so sqlx skips them after one cached check and formats
//! nothing. With it, each statement costs what sqlx spends to build its event (a summary and a
//! copy of the text), one span (a few attributes, one bounded copy of the text) and a send to
//! the batch exporter; statements outside any sampled span (background jobs) are skipped after
//! reading the current context.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SdkTracer, Span};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer;
use tracing_subscriber::registry::LookupSpan;

use super::bounded;

/// The target of sqlx's statement events.
pub const SQLX_TARGET: &str = "sqlx::query";

/// Longest statement text a span carries, in bytes.
const MAX_STATEMENT_BYTES: usize = 2048;

/// Longest database error message a span carries, in bytes.
const MAX_MESSAGE_BYTES: usize = 512;

/// The layer; see the module documentation.
#[derive(Debug)]
pub struct SqlSpans {
    tracer: SdkTracer,
}

impl SqlSpans {
    pub fn new(tracer: SdkTracer) -> Self {
        Self { tracer }
    }
}

/// The span of the latest statement under a tracing span, not yet ended.
struct PendingStatement {
    span: Span,
    ended_at: SystemTime,
}

impl PendingStatement {
    fn end(mut self) {
        self.span.end_with_timestamp(self.ended_at);
    }
}

impl<S> Layer<S> for SqlSpans
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &Event<'_>, ctx: layer::Context<'_, S>) {
        if event.metadata().target() != SQLX_TARGET {
            return;
        }
        let parent = Context::current();
        let parent_span = parent.span();
        let parent_context = parent_span.span_context();
        if !parent_context.is_valid() || !parent_context.is_sampled() {
            return;
        }
        let mut fields = StatementFields::default();
        event.record(&mut fields);
        let ended_at = SystemTime::now();
        let started_at = Duration::try_from_secs_f64(fields.elapsed_secs)
            .ok()
            .and_then(|elapsed| ended_at.checked_sub(elapsed))
            .unwrap_or(ended_at);
        let text = fields.text();
        let operation = operation(text);
        let span = self
            .tracer
            .span_builder(operation.clone())
            .with_kind(SpanKind::Client)
            .with_start_time(started_at)
            .with_attributes([
                KeyValue::new("db.system", "postgresql"),
                KeyValue::new("db.operation", operation),
                KeyValue::new("db.statement", bounded(text, MAX_STATEMENT_BYTES)),
            ])
            .start_with_context(&self.tracer, &parent);
        let pending = PendingStatement { span, ended_at };
        match ctx.lookup_current() {
            Some(current) => {
                let mut extensions = current.extensions_mut();
                if let Some(previous) = extensions.remove::<PendingStatement>() {
                    previous.end();
                }
                extensions.insert(pending);
            }
            None => pending.end(),
        }
    }

    fn on_close(&self, id: tracing::span::Id, ctx: layer::Context<'_, S>) {
        if let Some(span) = ctx.span(&id)
            && let Some(pending) = span.extensions_mut().remove::<PendingStatement>()
        {
            pending.end();
        }
    }
}

/// Marks the latest statement of the current span as failed with `error`, and ends its span.
/// Does nothing when no statement span is pending (traces off, or none ran under this span).
pub fn statement_failed(error: &sqlx::Error) {
    tracing::Span::current().with_subscriber(|(id, dispatch)| {
        let Some(registry) = dispatch.downcast_ref::<tracing_subscriber::Registry>() else {
            return;
        };
        let Some(span) = registry.span(id) else {
            return;
        };
        let Some(mut pending) = span.extensions_mut().remove::<PendingStatement>() else {
            return;
        };
        let message = match error.as_database_error() {
            Some(database) => format!(
                "{} (SQLSTATE {})",
                database.message(),
                database.code().unwrap_or(Cow::Borrowed("?"))
            ),
            None => error.to_string(),
        };
        pending
            .span
            .set_status(Status::error(bounded(&message, MAX_MESSAGE_BYTES)));
        pending.end();
    });
}

/// What the layer reads from sqlx's event.
#[derive(Default)]
struct StatementFields {
    summary: String,
    statement: String,
    elapsed_secs: f64,
}

impl StatementFields {
    /// sqlx puts the whole text in `db.statement` only when it is longer than the summary (the
    /// first four words); otherwise the summary is the text.
    fn text(&self) -> &str {
        let statement = self.statement.trim();
        if statement.is_empty() {
            self.summary.trim()
        } else {
            statement
        }
    }
}

impl Visit for StatementFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => value.clone_into(&mut self.summary),
            "db.statement" => value.clone_into(&mut self.statement),
            _ => {}
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "elapsed_secs" {
            self.elapsed_secs = value;
        }
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn std::fmt::Debug) {}
}

/// The statement's operation, upper case: its first keyword, or for a `WITH` query the verb of
/// the main statement after the common table expressions (`WITH moved AS (UPDATE …) INSERT …`
/// is an INSERT). Quoted text and parentheses are skipped.
pub fn operation(sql: &str) -> String {
    let mut words = top_level_words(sql);
    let Some(first) = words.next() else {
        return "SQL".to_owned();
    };
    if !first.eq_ignore_ascii_case("WITH") {
        return first.to_ascii_uppercase();
    }
    words
        .find(|word| {
            ["SELECT", "INSERT", "UPDATE", "DELETE", "MERGE"]
                .iter()
                .any(|verb| word.eq_ignore_ascii_case(verb))
        })
        .map_or_else(|| "WITH".to_owned(), str::to_ascii_uppercase)
}

/// The words of `sql` outside parentheses and quotes, in order.
fn top_level_words(sql: &str) -> impl Iterator<Item = &str> {
    let mut depth = 0_usize;
    let mut quote: Option<char> = None;
    let mut start: Option<usize> = None;
    let mut words = Vec::new();
    for (index, c) in sql.char_indices() {
        if let Some(open) = quote {
            if c == open {
                quote = None;
            }
            continue;
        }
        let word_char = c.is_ascii_alphanumeric() || c == '_';
        if word_char && depth == 0 {
            start.get_or_insert(index);
            continue;
        }
        if let Some(begin) = start.take() {
            words.push(&sql[begin..index]);
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if let Some(begin) = start {
        words.push(&sql[begin..]);
    }
    words.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operation_is_the_first_keyword_or_the_verb_after_the_ctes() {
        assert_eq!(operation("SELECT balance FROM accounts"), "SELECT");
        assert_eq!(operation("  insert into t values ($1)"), "INSERT");
        assert_eq!(
            operation(
                "WITH moved AS (UPDATE accounts SET balance = balance - $1 RETURNING id), \
                 logged AS MATERIALIZED (SELECT 'insert (' FROM moved) INSERT INTO log SELECT * FROM logged"
            ),
            "INSERT"
        );
        assert_eq!(
            operation("WITH RECURSIVE r(n) AS (SELECT 1) SELECT n FROM r"),
            "SELECT"
        );
        assert_eq!(operation("BEGIN"), "BEGIN");
        assert_eq!(operation(""), "SQL");
    }
}
