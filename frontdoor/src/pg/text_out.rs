//! Values in PostgreSQL's text form where pgwire's differs.
//!
//! pgwire 0.41 writes every `timestamp`, `timestamptz` and `time` with six
//! fractional digits (`2024-02-29 12:34:56.000000`); PostgreSQL writes the
//! fraction without its trailing zeros, and none when it is zero
//! (`2024-02-29 12:34:56`, `12:34:56.5`). psql shows that text and the JDBC
//! driver's `getString` returns it. The rows of such columns are mended on
//! their way out.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use pgwire::api::Type;
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::messages::data::DataRow;

/// The columns whose text needs mending (text format, a time type).
pub fn time_columns(fields: &[FieldInfo]) -> Vec<usize> {
    fields
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            f.format() == FieldFormat::Text
                && matches!(
                    *f.datatype(),
                    Type::TIMESTAMP | Type::TIMESTAMPTZ | Type::TIME | Type::TIMETZ
                )
        })
        .map(|(i, _)| i)
        .collect()
}

/// The row with the fractions of `columns` trimmed.
pub fn mend(row: DataRow, columns: &[usize]) -> DataRow {
    let count = row.field_count;
    let mut data = BytesMut::with_capacity(row.data.len());
    for (i, value) in fields(row).into_iter().enumerate() {
        match value {
            None => data.put_i32(-1),
            Some(v) if columns.contains(&i) => {
                let v = trimmed(&v);
                data.put_i32(v.len() as i32);
                data.put_slice(&v);
            }
            Some(v) => {
                data.put_i32(v.len() as i32);
                data.put_slice(&v);
            }
        }
    }
    DataRow::new(data, count)
}

/// `12:34:56.500000+00` as `12:34:56.5+00`: the run of digits after the
/// seconds' point loses its trailing zeros, and the point goes with them
/// when none is left.
fn trimmed(v: &[u8]) -> Vec<u8> {
    let Some(dot) = v.iter().position(|&b| b == b'.') else {
        return v.to_vec();
    };
    let digits = v[dot + 1..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let kept = v[dot + 1..dot + 1 + digits]
        .iter()
        .rposition(|&b| b != b'0')
        .map_or(0, |p| p + 1);
    let mut out = v[..dot].to_vec();
    if kept > 0 {
        out.extend_from_slice(&v[dot..dot + 1 + kept]);
    }
    out.extend_from_slice(&v[dot + 1 + digits..]);
    out
}

/// The values of a row in text format (`None` for NULL).
pub fn fields(row: DataRow) -> Vec<Option<Bytes>> {
    let mut data = row.data.freeze();
    let mut out = Vec::with_capacity(row.field_count.max(0) as usize);
    for _ in 0..row.field_count {
        let len = data.get_i32();
        if len < 0 {
            out.push(None);
        } else {
            out.push(Some(data.split_to(len as usize)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_as_postgresql_writes_them() {
        for (pgwire, pg) in [
            ("2024-02-29 12:34:56.000000", "2024-02-29 12:34:56"),
            ("2024-02-29 12:34:56.500000", "2024-02-29 12:34:56.5"),
            ("2024-02-29 12:34:56.000000+00", "2024-02-29 12:34:56+00"),
            (
                "2024-02-29 12:34:56.123456-05:30",
                "2024-02-29 12:34:56.123456-05:30",
            ),
            ("12:00:00.010000", "12:00:00.01"),
            ("2024-02-29 12:34:56", "2024-02-29 12:34:56"),
        ] {
            assert_eq!(String::from_utf8(trimmed(pgwire.as_bytes())).unwrap(), pg);
        }
        let mut data = BytesMut::new();
        for v in [Some("1"), None, Some("2024-02-29 12:34:56.000000")] {
            match v {
                None => data.put_i32(-1),
                Some(v) => {
                    data.put_i32(v.len() as i32);
                    data.put_slice(v.as_bytes());
                }
            }
        }
        let row = mend(DataRow::new(data, 3), &[2]);
        assert_eq!(
            fields(row),
            [
                Some(Bytes::from_static(b"1")),
                None,
                Some(Bytes::from_static(b"2024-02-29 12:34:56"))
            ]
        );
    }
}
