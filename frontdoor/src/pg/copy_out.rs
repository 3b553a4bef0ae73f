//! `COPY ... TO STDOUT`: psql's `\copy (query) to 'file'` and
//! `\copy table to ...`, in PostgreSQL's text and CSV formats, and
//! DuckDB's reads of an attached database, in its binary format.
//!
//! The query runs as any other; its rows, already in PostgreSQL's text
//! form, are written as COPY lines: text format escapes backslash, tab,
//! newline and carriage return and writes NULL as `\N`; CSV quotes what
//! needs quoting and writes NULL as nothing. In binary format the rows
//! come in PostgreSQL's binary form (as for a client that asks for it in
//! the extended protocol) and are framed as `COPY BINARY` frames them: a
//! signature, then per row the field count and each field's length (-1
//! for NULL) and bytes. `COPY ... FROM` is refused: Quipu only reads.
//!
//! DuckDB reads a table in ranges of PostgreSQL's physical row ids,
//! `WHERE ctid BETWEEN '(0,0)'::tid AND '(4294967295,0)'::tid` for a table
//! of a few pages (Quipu says each is one page). That whole range is every
//! row: the condition is dropped. Quipu's rows have no physical ids, so
//! any other use of `ctid` is refused by name.

use bytes::Bytes;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget,
    Expr, SetExpr, Statement, Value, visit_expressions,
};
use futures::StreamExt;
use pgwire::api::results::{CopyResponse, QueryResponse, Response};
use pgwire::messages::copy::CopyData;

/// A `COPY ... TO STDOUT` to run.
#[derive(Debug)]
pub struct CopyOut {
    /// The query whose rows are copied.
    pub query: Statement,
    csv: bool,
    /// `FORMAT binary`: rows in PostgreSQL's binary form.
    pub binary: bool,
    header: bool,
    delimiter: char,
    null: String,
}

/// `Some` for a `COPY` statement: what to run, or why it cannot.
pub fn copy_out(stmt: &Statement) -> Option<Result<CopyOut, String>> {
    let Statement::Copy {
        source,
        to,
        target,
        options,
        legacy_options,
        ..
    } = stmt
    else {
        return None;
    };
    Some(plan(source, *to, target, options, legacy_options))
}

fn plan(
    source: &CopySource,
    to: bool,
    target: &CopyTarget,
    options: &[CopyOption],
    legacy: &[CopyLegacyOption],
) -> Result<CopyOut, String> {
    if !to {
        return Err("COPY FROM is not supported: Quipu only reads".into());
    }
    if !matches!(target, CopyTarget::Stdout) {
        return Err(
            "COPY TO a file or program is not supported; use COPY ... TO STDOUT (psql's \\copy)"
                .into(),
        );
    }
    let (mut csv, mut header, mut delimiter, mut null) = (false, false, None, None);
    let mut binary = false;
    for o in options {
        match o {
            CopyOption::Format(f) => match f.value.to_ascii_lowercase().as_str() {
                "text" => csv = false,
                "csv" => csv = true,
                "binary" => binary = true,
                other => return Err(format!("COPY format \"{other}\" is not supported")),
            },
            CopyOption::Header(h) => header = *h,
            CopyOption::Delimiter(d) => delimiter = Some(*d),
            CopyOption::Null(n) => null = Some(n.clone()),
            other => return Err(format!("COPY option {other} is not supported")),
        }
    }
    for o in legacy {
        match o {
            CopyLegacyOption::Csv(more) => {
                csv = true;
                for m in more {
                    match m {
                        CopyLegacyCsvOption::Header => header = true,
                        other => return Err(format!("COPY option {other} is not supported")),
                    }
                }
            }
            CopyLegacyOption::Delimiter(d) => delimiter = Some(*d),
            CopyLegacyOption::Null(n) => null = Some(n.clone()),
            CopyLegacyOption::Header => header = true,
            CopyLegacyOption::Binary => binary = true,
            other => return Err(format!("COPY option {other} is not supported")),
        }
    }
    if header && !csv {
        return Err("COPY HEADER available only in CSV mode".into());
    }
    if binary && (csv || delimiter.is_some() || null.is_some()) {
        return Err("cannot specify DELIMITER, NULL or CSV in BINARY mode".into());
    }
    let sql = match source {
        CopySource::Query(q) => q.to_string(),
        CopySource::Table {
            table_name,
            columns,
        } if columns.is_empty() => format!("SELECT * FROM {table_name}"),
        CopySource::Table {
            table_name,
            columns,
        } => {
            let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
            format!("SELECT {} FROM {table_name}", columns.join(", "))
        }
    };
    let mut query = crate::pg::parse_sql(&sql)
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
        .ok_or("COPY needs a query")?;
    whole_ctid_range(&mut query)?;
    Ok(CopyOut {
        query,
        csv,
        binary,
        header,
        delimiter: delimiter.unwrap_or(if csv { ',' } else { '\t' }),
        null: null.unwrap_or(if csv { String::new() } else { "\\N".into() }),
    })
}

/// DuckDB's condition for every row of a table: `ctid BETWEEN '(0,0)'::tid
/// AND '(4294967295,0)'::tid`.
fn is_whole_ctid_range(e: &Expr) -> bool {
    let Expr::Between {
        expr,
        negated: false,
        low,
        high,
    } = e
    else {
        return false;
    };
    let tid = |e: &Expr, want: &str| {
        matches!(e, Expr::Cast { expr, data_type, .. }
            if data_type.to_string().eq_ignore_ascii_case("tid")
            && matches!(expr.as_ref(), Expr::Value(v)
                if v.value == Value::SingleQuotedString(want.into())))
    };
    matches!(expr.as_ref(), Expr::Identifier(i) if i.value.eq_ignore_ascii_case("ctid"))
        && tid(low, "(0,0)")
        && tid(high, "(4294967295,0)")
}

/// The query without DuckDB's whole-range `ctid` condition (at the top of
/// its `WHERE`, alone or among `AND`s); an error if `ctid` is still named.
fn whole_ctid_range(query: &mut Statement) -> Result<(), String> {
    fn without(e: Expr) -> Option<Expr> {
        match e {
            e if is_whole_ctid_range(&e) => None,
            Expr::BinaryOp {
                left,
                op: BinaryOperator::And,
                right,
            } => match (without(*left), without(*right)) {
                (Some(l), Some(r)) => Some(Expr::BinaryOp {
                    left: Box::new(l),
                    op: BinaryOperator::And,
                    right: Box::new(r),
                }),
                (one, None) | (None, one) => one,
            },
            e => Some(e),
        }
    }
    if let Statement::Query(q) = query
        && let SetExpr::Select(select) = q.body.as_mut()
        && let Some(filter) = select.selection.take()
    {
        select.selection = without(filter);
    }
    let mut named = false;
    let _ = visit_expressions(query, |e: &Expr| {
        if matches!(e, Expr::Identifier(i) if i.value.eq_ignore_ascii_case("ctid")) {
            named = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    if named {
        return Err(
            "ctid is not supported: Quipu's tables have no physical row ids (DuckDB: \
             SET pg_use_ctid_scan = false)"
                .into(),
        );
    }
    Ok(())
}

/// Starts a `COPY BINARY` stream: the signature, no flags, no extension.
const BINARY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

impl CopyOut {
    /// The query's answer, sent as COPY data.
    pub fn response(self, answer: QueryResponse) -> Response {
        if self.binary {
            // PostgreSQL's signature first; pgwire adds the trailer.
            let header = Some(BINARY_HEADER.to_vec());
            return framed(answer, header, 1, |values| {
                let mut out = vec![];
                binary_row(&values, &mut out);
                out
            });
        }
        let header = self.header.then(|| {
            let names: Vec<Option<Bytes>> = answer
                .row_schema
                .iter()
                .map(|f| Some(Bytes::copy_from_slice(f.name().as_bytes())))
                .collect();
            self.line(&names)
        });
        framed(answer, header, 0, move |values| self.line(&values))
    }

    fn line(&self, values: &[Option<Bytes>]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                let mut buf = [0; 4];
                out.extend_from_slice(self.delimiter.encode_utf8(&mut buf).as_bytes());
            }
            match v {
                None => out.extend_from_slice(self.null.as_bytes()),
                Some(v) if self.csv => self.csv_value(v, &mut out),
                Some(v) => {
                    for &b in v.iter() {
                        match b {
                            b'\\' => out.extend_from_slice(b"\\\\"),
                            b'\n' => out.extend_from_slice(b"\\n"),
                            b'\r' => out.extend_from_slice(b"\\r"),
                            b'\t' => out.extend_from_slice(b"\\t"),
                            b => out.push(b),
                        }
                    }
                }
            }
        }
        out.push(b'\n');
        out
    }

    /// A CSV value, quoted when it holds the delimiter, a quote, a line
    /// break, or would read as NULL.
    fn csv_value(&self, v: &[u8], out: &mut Vec<u8>) {
        let mut buf = [0; 4];
        let delimiter = self.delimiter.encode_utf8(&mut buf).as_bytes();
        let quote = v.is_empty() && self.null.is_empty()
            || v == self.null.as_bytes()
            || v.windows(delimiter.len()).any(|w| w == delimiter)
            || v.iter().any(|b| matches!(b, b'"' | b'\n' | b'\r'));
        if !quote {
            out.extend_from_slice(v);
            return;
        }
        out.push(b'"');
        for &b in v {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    }
}

/// The answer's rows as COPY data of `format` (0 text, 1 binary), each
/// row's fields written by `row`. The header goes out with the first row
/// (or alone when there is none): pgwire counts each message as a row in
/// the `COPY n` tag.
fn framed(
    answer: QueryResponse,
    mut header: Option<Vec<u8>>,
    format: i8,
    mut row: impl FnMut(Vec<Option<Bytes>>) -> Vec<u8> + Send + 'static,
) -> Response {
    let columns = answer.row_schema.len();
    let mut sent = false;
    let rows = answer
        .data_rows
        .map(Some)
        .chain(futures::stream::once(async { None }))
        .filter_map(move |next| {
            let first = !std::mem::replace(&mut sent, true);
            let out = match next {
                Some(Ok(data)) => {
                    let mut out = header.take().unwrap_or_default();
                    out.extend(row(super::text_out::fields(data)));
                    Some(Ok(CopyData::new(out.into())))
                }
                Some(Err(e)) => Some(Err(e)),
                None if first => header.take().map(|h| Ok(CopyData::new(h.into()))),
                None => None,
            };
            futures::future::ready(out)
        });
    Response::CopyOut(CopyResponse::new(format, columns, rows))
}

/// One row of `COPY BINARY`: its field count, then each field's length
/// (-1: NULL) and bytes.
fn binary_row(values: &[Option<Bytes>], out: &mut Vec<u8>) {
    out.extend_from_slice(&(values.len() as i16).to_be_bytes());
    for v in values {
        match v {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(v) => {
                out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                out.extend_from_slice(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(sql: &str) -> Result<CopyOut, String> {
        let stmt = crate::pg::parse_sql(sql).unwrap().remove(0);
        copy_out(&stmt).expect("a COPY")
    }

    #[test]
    fn text_and_csv_lines() {
        let row = [
            Some(Bytes::from_static(b"a\tb\\c")),
            None,
            Some(Bytes::from_static(b"x,\"y\"")),
            Some(Bytes::new()),
        ];
        let text = copy("COPY (SELECT 1) TO STDOUT").unwrap();
        assert_eq!(text.line(&row), b"a\\tb\\\\c\t\\N\tx,\"y\"\t\n");
        let csv = copy("COPY t TO STDOUT WITH (FORMAT csv, HEADER true)").unwrap();
        assert!(csv.header);
        assert_eq!(csv.line(&row), b"a\tb\\c,,\"x,\"\"y\"\"\",\"\"\n");
        assert_eq!(csv.query.to_string(), "SELECT * FROM t");
    }

    #[test]
    fn binary_rows_and_duckdbs_whole_range_of_row_ids() {
        let copy = copy(
            "COPY (SELECT a FROM \"public\".\"t\" WHERE ctid BETWEEN '(0,0)'::tid AND \
             '(4294967295,0)'::tid AND a > 1) TO STDOUT (FORMAT \"binary\")",
        )
        .unwrap();
        assert!(copy.binary);
        assert_eq!(
            copy.query.to_string(),
            "SELECT a FROM \"public\".\"t\" WHERE a > 1"
        );
        let mut out = vec![];
        binary_row(&[Some(Bytes::from_static(&[0, 0, 0, 7])), None], &mut out);
        assert_eq!(out, [0, 2, 0, 0, 0, 4, 0, 0, 0, 7, 255, 255, 255, 255]);
        assert_eq!(BINARY_HEADER.len(), 19);
    }

    #[test]
    fn what_quipu_cannot_copy_is_refused() {
        for (sql, why) in [
            ("COPY t FROM STDIN", "COPY FROM is not supported"),
            ("COPY t TO '/tmp/x'", "use COPY ... TO STDOUT"),
            (
                "COPY t TO STDOUT (FORMAT binary, NULL 'x')",
                "in BINARY mode",
            ),
            (
                "COPY (SELECT a FROM t WHERE ctid = '(0,1)'::tid) TO STDOUT (FORMAT binary)",
                "ctid is not supported",
            ),
            ("COPY t TO STDOUT (HEADER true)", "only in CSV mode"),
        ] {
            let err = copy(sql).unwrap_err();
            assert!(err.contains(why), "{sql}: {err}");
        }
    }
}
