//! `upper`, `lower` and `initcap` as PostgreSQL's (issue 22).
//!
//! PostgreSQL with a UTF-8 locale maps case one character at a time (C's
//! `towupper` / `towlower`): a character with no single-character
//! counterpart stays as it is, so `upper('Straße')` is `STRAßE`.
//! DataFusion 55 uses Rust's full Unicode mapping, which may grow a
//! character into several (`ß` -> `SS`, `ﬁ` -> `FI`), so it answered
//! `STRASSE`, and `WHERE upper(s) = 'STRASSE'` found a row that PostgreSQL
//! (where the same filter is pushed down) does not. These functions replace
//! DataFusion's under the same names, so the two paths agree. Lowering
//! has one multi-character case in Unicode, `İ` -> `i̇`, where C's
//! `towlower` gives the plain `i`: the first character is kept. `initcap`
//! (found by the long expression run: `initcap('ßx')` was `SSx`) keeps
//! DataFusion's word rule, which is PostgreSQL's (a letter after an
//! alphanumeric character is lowered, any other raised), with the same
//! one-character mapping.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum Case {
    Upper,
    Lower,
    /// Each word's first letter raised, the others lowered.
    Initial,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct CaseMap {
    name: &'static str,
    case: Case,
    signature: Signature,
}

/// `upper`, `lower` and `initcap` with PostgreSQL's character-by-character
/// mapping.
pub fn functions() -> Vec<ScalarUDF> {
    [
        ("upper", Case::Upper),
        ("lower", Case::Lower),
        ("initcap", Case::Initial),
    ]
    .into_iter()
    .map(|(name, case)| {
        ScalarUDF::new_from_impl(CaseMap {
            name,
            case,
            signature: Signature::string(1, Volatility::Immutable),
        })
    })
    .collect()
}

/// One character's PostgreSQL-style case mapping.
fn map_char(c: char, upper: bool) -> char {
    if upper {
        let mut m = c.to_uppercase();
        match (m.next(), m.next()) {
            (Some(u), None) => u,
            _ => c,
        }
    } else {
        c.to_lowercase().next().unwrap_or(c)
    }
}

/// `text` mapped as PostgreSQL maps it.
fn map_text(text: &str, case: Case) -> String {
    let mut after_alphanumeric = false;
    text.chars()
        .map(|c| {
            let upper = match case {
                Case::Upper => true,
                Case::Lower => false,
                Case::Initial => !after_alphanumeric,
            };
            after_alphanumeric = c.is_alphanumeric();
            map_char(c, upper)
        })
        .collect()
}

impl CaseMap {
    fn map_array(&self, input: &ArrayRef) -> Result<ArrayRef> {
        let utf8 = cast(input, &DataType::Utf8)?;
        let strings = utf8
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("cast to Utf8 gives a StringArray");
        let out: StringArray = strings
            .iter()
            .map(|v| v.map(|s| map_text(s, self.case)))
            .collect();
        let out: ArrayRef = Arc::new(out);
        Ok(cast(&out, input.data_type())?)
    }
}

impl ScalarUDFImpl for CaseMap {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types[0].clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        super::pg_text::unary(&args.args[0], |a| self.map_array(a))
    }
}

#[cfg(test)]
mod tests {
    use super::{Case, map_text};

    #[test]
    fn one_character_at_a_time() {
        assert_eq!(map_text("Straße ñandú ﬁx", Case::Upper), "STRAßE ÑANDÚ ﬁX");
        assert_eq!(map_text("ÉCOLE İstanbul", Case::Lower), "école istanbul");
        assert_eq!(map_text("MiXeD 🦙", Case::Lower), "mixed 🦙");
        // PostgreSQL 16 with LC_CTYPE C.UTF-8 answers these.
        assert_eq!(map_text("Ñ 0éé_7.\"ßñß", Case::Initial), "Ñ 0éé_7.\"ßñß");
        assert_eq!(
            map_text("hello wORLD-x ßx", Case::Initial),
            "Hello World-X ßx"
        );
    }
}
