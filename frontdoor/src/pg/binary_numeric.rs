//! `numeric` values in PostgreSQL's binary form, written here from Arrow
//! decimals.
//!
//! pgwire 0.41 (through arrow-pg) writes a binary numeric through
//! rust_decimal, which holds 28 digits: a longer value (a `power` of a
//! `numeric(20,6)`, an `avg` of bigints at 19 places) was an error or lost
//! places, a zero lost its display scale, and every value of a column went
//! out with the column's scale where PostgreSQL keeps each value's own.
//! Here a value of any Arrow decimal (38 or 76 digits) goes out exactly,
//! with the display scale PostgreSQL gives it.
//!
//! The form (PostgreSQL's `numeric_send`): four 16-bit fields, the number
//! of base-10000 digits, the weight of the first (its power of 10000),
//! the sign (`0x0000`, `0x4000` negative) and the display scale (places
//! after the point), then the digits, first to last, without leading or
//! trailing zero digits. A zero has no digits.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryBuilder, Int32Array};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Decimal256Type};
use datafusion::arrow::error::ArrowError;

/// A decimal column as the binary `numeric` values PostgreSQL would send:
/// each value at its row's `places` (from the hidden columns of
/// `quipu_scheduler::scales`) or else at the column's scale. Places only
/// ever drop trailing zeros: a value keeps every digit it has.
pub fn binary_numerics(
    column: &ArrayRef,
    places: Option<&Int32Array>,
) -> Result<ArrayRef, ArrowError> {
    let (digits, scale): (Box<dyn Fn(usize) -> String>, i8) = match column.data_type() {
        DataType::Decimal128(_, s) => {
            let a = column.as_primitive::<Decimal128Type>().clone();
            (Box::new(move |r| a.value(r).to_string()), *s)
        }
        DataType::Decimal256(_, s) => {
            let a = column.as_primitive::<Decimal256Type>().clone();
            (Box::new(move |r| a.value(r).to_string()), *s)
        }
        other => {
            return Err(ArrowError::InvalidArgumentError(format!(
                "a binary numeric of {other}"
            )));
        }
    };
    let mut out = BinaryBuilder::with_capacity(column.len(), column.len() * 16);
    for r in 0..column.len() {
        if column.is_null(r) {
            out.append_null();
            continue;
        }
        let wanted = places.filter(|p| !p.is_null(r)).map(|p| p.value(r));
        out.append_value(numeric_send(&digits(r), scale, wanted));
    }
    Ok(Arc::new(out.finish()))
}

/// The binary form of the decimal whose unscaled value is `unscaled` (its
/// decimal text, `-` first when negative) at `scale`, shown with `places`
/// (the scale when `None`; never fewer than its last nonzero place).
fn numeric_send(unscaled: &str, scale: i8, places: Option<i32>) -> Vec<u8> {
    let (negative, digits) = match unscaled.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, unscaled),
    };
    // A negative scale counts zeros after the digits.
    let mut digits = digits.as_bytes().to_vec();
    if scale < 0 {
        digits.resize(digits.len() + usize::from(scale.unsigned_abs()), b'0');
    }
    let scale = usize::try_from(scale.max(0)).unwrap_or(0);
    if digits.len() <= scale {
        let mut padded = vec![b'0'; scale + 1 - digits.len()];
        padded.extend_from_slice(&digits);
        digits = padded;
    }
    let (int, frac) = digits.split_at(digits.len() - scale);
    let frac_len = frac.iter().rposition(|d| *d != b'0').map_or(0, |p| p + 1);
    let frac = &frac[..frac_len];
    let dscale = match places {
        Some(p) => usize::try_from(p.max(0))
            .unwrap_or(0)
            .clamp(frac_len, scale),
        None => scale,
    };
    // Base-10000 digits: the integer part padded on its left, the fraction
    // on its right, to whole groups of four.
    let int_pad = (4 - int.len() % 4) % 4;
    let mut aligned = vec![b'0'; int_pad];
    aligned.extend_from_slice(int);
    let int_groups = aligned.len() / 4;
    aligned.extend_from_slice(frac);
    aligned.resize(aligned.len().div_ceil(4) * 4, b'0');
    let mut groups: Vec<i16> = aligned
        .chunks(4)
        .map(|c| c.iter().fold(0i16, |n, d| n * 10 + i16::from(d - b'0')))
        .collect();
    let mut weight = int_groups as i32 - 1;
    let leading = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..leading);
    weight -= leading as i32;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let sign: u16 = if negative && !groups.is_empty() {
        0x4000
    } else {
        0
    };
    let mut out = Vec::with_capacity(8 + 2 * groups.len());
    out.extend_from_slice(&(groups.len() as i16).to_be_bytes());
    out.extend_from_slice(&(weight as i16).to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&(dscale as i16).to_be_bytes());
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each expected form is PostgreSQL 15's, `SELECT numeric_send(v)` of
    /// the value shown.
    #[test]
    fn values_go_out_as_postgresql_sends_them() {
        // (unscaled, scale, places, PostgreSQL's value, its form in hex)
        let cases: &[(&str, i8, Option<i32>, &str, &str)] = &[
            ("12345678", 4, None, "1234.5678", "000200000000000404d2162e"),
            ("-5", 1, None, "-0.5", "0001ffff400000011388"),
            ("0", 6, None, "0.000000", "0000000000000006"),
            ("0", 6, Some(0), "0", "0000000000000000"),
            ("-0", 3, None, "-0.000", "0000000000000003"),
            ("0", 2, None, "0.00", "0000000000000002"),
            ("100000000", 0, None, "100000000", "00010002000000000001"),
            ("25", 8, None, "0.00000025", "0001fffe000000080019"),
            (
                "250000000000000000000",
                20,
                Some(16),
                "2.5000000000000000",
                "000200000000001000021388",
            ),
            // Places never drop a nonzero digit.
            ("123", 3, Some(1), "0.123", "0001ffff0000000304ce"),
            ("7", -3, None, "7000", "00010000000000001b58"),
            // 34 digits, more than rust_decimal's 28.
            (
                "15241578780673678540313978574881900000",
                20,
                Some(16),
                "152415787806736785.4031397857488190",
                "0009000400000010000f096f1ec602a11a810fbf0f8a16741ffe",
            ),
        ];
        for (unscaled, scale, places, value, want) in cases {
            let got: String = numeric_send(unscaled, *scale, *places)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(&got, want, "{value}");
        }
    }
}
