//! Printing results (aligned table, CSV, JSON) and errors (one sentence, no
//! Rust debug dump).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use datafusion::error::DataFusionError;
use futures::StreamExt;
use quipu_scheduler::{QueryOutput, SchedulerError};

use crate::args::OutputFormat;

/// A user-facing message for an error: the innermost meaningful cause,
/// without DataFusion's "External error:" wrappers or backtraces.
pub fn error_message(e: &(dyn std::error::Error + 'static)) -> String {
    if let Some(df) = e.downcast_ref::<DataFusionError>() {
        return df_message(df);
    }
    if let Some(SchedulerError::Query(df) | SchedulerError::TableNotFound { source: df, .. }) =
        e.downcast_ref::<SchedulerError>()
    {
        return df_message(df);
    }
    if let Some(quipu_connectors::ConnectorError::DataFusion(df)) =
        e.downcast_ref::<quipu_connectors::ConnectorError>()
    {
        return df_message(df);
    }
    e.to_string()
}

fn df_message(e: &DataFusionError) -> String {
    match e {
        DataFusionError::External(inner) => error_message(inner.as_ref()),
        DataFusionError::Context(ctx, inner) => format!("{ctx}: {}", df_message(inner)),
        DataFusionError::Shared(inner) => df_message(inner),
        DataFusionError::Diagnostic(_, inner) => df_message(inner),
        DataFusionError::Collection(errs) if !errs.is_empty() => df_message(&errs[0]),
        other => {
            // A call no form of a function takes, as PostgreSQL words it
            // (DataFusion lists two dozen candidate signatures).
            if let DataFusionError::Plan(m) = other
                && let Some(said) = quipu_frontdoor::unmatched_call_message(m)
            {
                return said;
            }
            let text = other.strip_backtrace();
            // DataFusion prefixes messages with the error class; keep the
            // class for plan/SQL errors (it helps), drop the generic ones.
            text.strip_prefix("External error: ")
                .or_else(|| text.strip_prefix("Execution error: "))
                .unwrap_or(&text)
                .to_string()
        }
    }
}

/// Shows elapsed time and rows so far on stderr when it is a terminal and a
/// query runs longer than a second.
struct Progress {
    started: Instant,
    last: Instant,
    enabled: bool,
    shown: bool,
}

impl Progress {
    fn new() -> Self {
        let now = Instant::now();
        Progress {
            started: now,
            last: now,
            enabled: std::io::stderr().is_terminal(),
            shown: false,
        }
    }

    fn tick(&mut self, rows: usize) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if now.duration_since(self.started) < Duration::from_secs(1)
            || now.duration_since(self.last) < Duration::from_millis(200)
        {
            return;
        }
        self.last = now;
        self.shown = true;
        eprint!(
            "\r\x1b[K{:.1} s, {rows} rows so far",
            self.started.elapsed().as_secs_f64()
        );
    }

    fn done(&self) {
        if self.shown {
            eprint!("\r\x1b[K");
        }
    }
}

/// Consumes a query's stream and prints it. Returns the number of rows.
pub async fn print(out: QueryOutput, format: OutputFormat) -> Result<usize, String> {
    print_stream(out.schema, out.stream, format).await
}

/// Prints rows already fetched (from a server, with `--server`).
pub async fn print_batches(
    schema: arrow::datatypes::SchemaRef,
    batches: Vec<RecordBatch>,
    format: OutputFormat,
) -> Result<usize, String> {
    let stream =
        datafusion::physical_plan::memory::MemoryStream::try_new(batches, schema.clone(), None)
            .map_err(|e| df_message(&e))?;
    print_stream(schema, Box::pin(stream), format).await
}

/// A `decimal256` column as text without its trailing zeros: Quipu
/// plans one only for an exact `numeric` a query shows (a double cast to
/// `numeric`, whose places are then PostgreSQL's, or a quotient), at 38
/// places (`0.5`, not `0.5` and 37 zeros).
fn shown_schema(schema: &arrow::datatypes::SchemaRef) -> arrow::datatypes::SchemaRef {
    use arrow::datatypes::{DataType, Field, Schema};
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Decimal256(..) => f.as_ref().clone().with_data_type(DataType::Utf8),
            _ => f.as_ref().clone(),
        })
        .collect();
    std::sync::Arc::new(Schema::new(fields))
}

/// `batch` with its `decimal256` columns as [`shown_schema`] says.
fn shown(batch: RecordBatch) -> Result<RecordBatch, String> {
    use arrow::array::{ArrayRef, AsArray, StringArray};
    use arrow::datatypes::DataType;
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Decimal256(..)))
    {
        return Ok(batch);
    }
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| -> Result<ArrayRef, String> {
            if !matches!(c.data_type(), DataType::Decimal256(..)) {
                return Ok(c.clone());
            }
            let text = arrow::compute::cast(c, &DataType::Utf8).map_err(|e| e.to_string())?;
            let trimmed: StringArray = text
                .as_string::<i32>()
                .iter()
                .map(|v| {
                    v.map(|v| match v.contains('.') {
                        true => v.trim_end_matches('0').trim_end_matches('.').to_string(),
                        false => v.to_string(),
                    })
                })
                .collect();
            Ok(std::sync::Arc::new(trimmed))
        })
        .collect::<Result<_, _>>()?;
    RecordBatch::try_new(shown_schema(&batch.schema()), columns).map_err(|e| e.to_string())
}

async fn print_stream(
    schema: arrow::datatypes::SchemaRef,
    mut stream: datafusion::execution::SendableRecordBatchStream,
    format: OutputFormat,
) -> Result<usize, String> {
    let mut progress = Progress::new();
    let mut rows = 0;
    let stdout = std::io::stdout();
    let mut batches: Vec<RecordBatch> = Vec::new();
    let mut csv = (format == OutputFormat::Csv).then(|| {
        arrow::csv::WriterBuilder::new()
            .with_header(true)
            .build(stdout.lock())
    });
    let mut json = (format == OutputFormat::Json)
        .then(|| arrow::json::LineDelimitedWriter::new(stdout.lock()));
    // A ticker so progress also moves while the first batch is computed.
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    loop {
        let next = tokio::select! {
            next = stream.next() => next,
            _ = ticker.tick() => { progress.tick(rows); continue; }
        };
        let Some(batch) = next else { break };
        let batch = shown(batch.map_err(|e| {
            progress.done();
            df_message(&e)
        })?)?;
        rows += batch.num_rows();
        progress.tick(rows);
        if let Some(w) = csv.as_mut() {
            w.write(&batch).map_err(|e| e.to_string())?;
        } else if let Some(w) = json.as_mut() {
            w.write(&batch).map_err(|e| e.to_string())?;
        } else {
            batches.push(batch);
        }
    }
    progress.done();
    if let Some(mut w) = json {
        w.finish().map_err(|e| e.to_string())?;
    }
    drop(csv);
    if format == OutputFormat::Table {
        if schema.fields().is_empty() {
            // DDL and SET return nothing to show.
            return Ok(rows);
        }
        let text =
            arrow::util::pretty::pretty_format_batches_with_schema(shown_schema(&schema), &batches)
                .map_err(|e| e.to_string())?;
        let mut lock = stdout.lock();
        writeln!(lock, "{text}").map_err(|e| e.to_string())?;
        writeln!(lock, "({rows} row{})", if rows == 1 { "" } else { "s" })
            .map_err(|e| e.to_string())?;
    }
    Ok(rows)
}
