//! `COPY ... TO STDOUT`: psql's `\copy (query) to 'file'` and
//! `\copy table to ...`, in PostgreSQL's text and CSV formats.
//!
//! The query runs as any other; its rows, already in PostgreSQL's text
//! form, are written as COPY lines: text format escapes backslash, tab,
//! newline and carriage return and writes NULL as `\N`; CSV quotes what
//! needs quoting and writes NULL as nothing. `COPY ... FROM` is refused:
//! Quipu only reads.

use bytes::Bytes;
use datafusion::sql::sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget, Statement,
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
    for o in options {
        match o {
            CopyOption::Format(f) => match f.value.to_ascii_lowercase().as_str() {
                "text" => csv = false,
                "csv" => csv = true,
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
            CopyLegacyOption::Binary => return Err("COPY BINARY is not supported".into()),
            other => return Err(format!("COPY option {other} is not supported")),
        }
    }
    if header && !csv {
        return Err("COPY HEADER available only in CSV mode".into());
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
    let query = crate::pg::parse_sql(&sql)
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
        .ok_or("COPY needs a query")?;
    Ok(CopyOut {
        query,
        csv,
        header,
        delimiter: delimiter.unwrap_or(if csv { ',' } else { '\t' }),
        null: null.unwrap_or(if csv { String::new() } else { "\\N".into() }),
    })
}

impl CopyOut {
    /// The query's answer, sent as COPY data.
    pub fn response(self, answer: QueryResponse) -> Response {
        let columns = answer.row_schema.len();
        // The header goes out with the first row: pgwire counts each
        // message as a row in the `COPY n` tag.
        let mut header = self.header.then(|| {
            let names: Vec<Option<Bytes>> = answer
                .row_schema
                .iter()
                .map(|f| Some(Bytes::copy_from_slice(f.name().as_bytes())))
                .collect();
            self.line(&names)
        });
        let mut sent = false;
        let rows = answer
            .data_rows
            .map(Some)
            .chain(futures::stream::once(async { None }))
            .filter_map(move |row| {
                let first = !std::mem::replace(&mut sent, true);
                let out = match row {
                    Some(Ok(row)) => {
                        let mut line = header.take().unwrap_or_default();
                        line.extend(self.line(&super::text_out::fields(row)));
                        Some(Ok(CopyData::new(line.into())))
                    }
                    Some(Err(e)) => Some(Err(e)),
                    // No row: the header alone.
                    None if first => header.take().map(|h| Ok(CopyData::new(h.into()))),
                    None => None,
                };
                futures::future::ready(out)
            });
        let data = rows;
        Response::CopyOut(CopyResponse::new(0, columns, data))
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
    fn what_quipu_cannot_copy_is_refused() {
        for (sql, why) in [
            ("COPY t FROM STDIN", "COPY FROM is not supported"),
            ("COPY t TO '/tmp/x'", "use COPY ... TO STDOUT"),
            ("COPY t TO STDOUT (FORMAT binary)", "format \"binary\""),
            ("COPY t TO STDOUT (HEADER true)", "only in CSV mode"),
        ] {
            let err = copy(sql).unwrap_err();
            assert!(err.contains(why), "{sql}: {err}");
        }
    }
}
