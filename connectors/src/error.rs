//! Errors of the connectors crate. Each names the source or table involved.

use datafusion::error::DataFusionError;

pub type Result<T, E = ConnectorError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error(transparent)]
    Catalog(#[from] quipu_catalog::CatalogError),
    #[error("source `{source_name}`: {reason}")]
    Source { source_name: String, reason: String },
    #[error("source `{source_name}`: cannot list {url}: {reason}")]
    List {
        source_name: String,
        url: String,
        reason: String,
    },
    #[error("table `{table}`: {reason}")]
    Table { table: String, reason: String },
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
}

impl From<ConnectorError> for DataFusionError {
    fn from(e: ConnectorError) -> Self {
        match e {
            ConnectorError::DataFusion(e) => e,
            other => DataFusionError::External(Box::new(other)),
        }
    }
}

/// A value an expression cannot compute, with PostgreSQL's SQLSTATE for it
/// (class 22, or 21000 for a scalar subquery of more than one row): what
/// the front doors answer for it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DataException {
    pub sqlstate: &'static str,
    pub message: String,
}

impl DataException {
    pub fn error(sqlstate: &'static str, message: &str) -> DataFusionError {
        DataFusionError::External(Box::new(DataException {
            sqlstate,
            message: message.into(),
        }))
    }
}

/// Arrow's words for a text that is not a value of a type (`CAST('abc' AS
/// int)`: "Cannot cast string 'abc' to value of Int32 type", "Error
/// parsing timestamp from 'abc': ..."), as PostgreSQL says it, with its
/// SQLSTATE: `invalid input syntax for type integer: "abc"` (22P02; 22007
/// for a date or time), a number too large for its type (22003), a date
/// or time whose fields are out of range (`2024-02-30`, `25:00`: 22008).
/// None for other words.
///
/// ```
/// use quipu_connectors::error::text_not_a_value;
/// let said = |m| text_not_a_value(m).unwrap();
/// assert_eq!(
///     said("Cannot cast string 'abc' to value of Int32 type"),
///     ("22P02", r#"invalid input syntax for type integer: "abc""#.into())
/// );
/// assert_eq!(
///     said("Cannot cast string '99999999999' to value of Int32 type"),
///     ("22003", r#"value "99999999999" is out of range for type integer"#.into())
/// );
/// assert_eq!(
///     said("Cannot cast string '2024-02-30' to value of Date32 type"),
///     ("22008", r#"date/time field value out of range: "2024-02-30""#.into())
/// );
/// assert_eq!(
///     said("Error parsing timestamp from 'noon': timestamp must contain at least 10 characters"),
///     ("22007", r#"invalid input syntax for type timestamp: "noon""#.into())
/// );
/// assert_eq!(
///     said(r#"Parser error: Invalid input syntax for type interval: "x""#),
///     ("22007", r#"invalid input syntax for type interval: "x""#.into())
/// );
/// assert_eq!(
///     said("Cannot cast string '1.2.3' to value of Decimal128(38, 10) type").0,
///     "22P02"
/// );
/// assert_eq!(
///     said("Cannot cast string '1e40' to value of Decimal128(38, 10) type"),
///     ("22003", "numeric field overflow".into())
/// );
/// assert_eq!(
///     said("Cannot cast value 'maybe' to value of Boolean type"),
///     ("22P02", r#"invalid input syntax for type boolean: "maybe""#.into())
/// );
/// assert_eq!(
///     said("Execution error: Error parsing timestamp from '2024-13-01' using format '%Y-%m-%d': input is out of range"),
///     ("22008", r#"date/time field value out of range: "2024-13-01""#.into())
/// );
/// assert!(text_not_a_value("Cannot cast Utf8 to Int32").is_none());
/// ```
pub fn text_not_a_value(m: &str) -> Option<(&'static str, String)> {
    use datafusion::arrow::datatypes::DataType;
    let start = ["Cannot cast string '", "Cannot cast value '"]
        .iter()
        .find_map(|w| m.find(w).map(|at| at + w.len()));
    let (text, ty) = if let Some(at) = start {
        let rest = &m[at..];
        let end = rest.find("' to value of ")?;
        let ty = &rest[end + "' to value of ".len()..];
        let ty = ty[..ty.find(" type")?].parse::<DataType>().ok()?;
        (&rest[..end], ty)
    } else if let Some(at) = m.find("Error parsing timestamp from '") {
        let rest = &m[at + "Error parsing timestamp from '".len()..];
        // `to_date`/`to_timestamp` name their format after the text.
        let end = rest.find("' using format '").or_else(|| rest.find("': "))?;
        let text = &rest[..end];
        (
            text,
            DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Nanosecond, None),
        )
    } else if let Some(at) = m.find("Invalid input syntax for type interval: \"") {
        let rest = &m[at + "Invalid input syntax for type interval: \"".len()..];
        let text = &rest[..rest.find('"')?];
        return Some((
            "22007",
            format!("invalid input syntax for type interval: \"{text}\""),
        ));
    } else {
        return None;
    };
    let name = match &ty {
        DataType::Time32(_) | DataType::Time64(_) => "time".to_string(),
        DataType::Timestamp(_, None) => "timestamp".to_string(),
        t => crate::dialect::pg_functions::pg_type_name(t),
    };
    let trimmed = text.trim();
    let datetime = matches!(
        ty,
        DataType::Date32 | DataType::Date64 | DataType::Time32(_) | DataType::Time64(_)
    ) || matches!(ty, DataType::Timestamp(..));
    // Only digits and separators: the fields are there, one is out of range.
    let fields = !trimmed.is_empty()
        && trimmed.chars().any(|c| c.is_ascii_digit())
        && trimmed
            .chars()
            .all(|c| c.is_ascii_digit() || " -:./T+".contains(c));
    let digits = trimmed.trim_start_matches(['-', '+']);
    let integer = !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit());
    Some(match ty {
        _ if datetime && fields => (
            "22008",
            format!("date/time field value out of range: \"{text}\""),
        ),
        _ if datetime => (
            "22007",
            format!("invalid input syntax for type {name}: \"{text}\""),
        ),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 if integer => (
            "22003",
            format!("value \"{text}\" is out of range for type {name}"),
        ),
        DataType::Decimal128(..) | DataType::Decimal256(..) if trimmed.parse::<f64>().is_ok() => {
            ("22003", "numeric field overflow".into())
        }
        _ => (
            "22P02",
            format!("invalid input syntax for type {name}: \"{text}\""),
        ),
    })
}

/// Arrow's words for a value out of its type's range, as PostgreSQL says
/// it (22003): a decimal too large for a cast's precision
/// (`CAST(1234.5 AS numeric(4,1))`: "1234.5 is too large to store in a
/// Decimal128 of precision 4. Max is 999.9", `XX000` before), a number
/// cast to a narrower integer ("Can't cast value 2147483648 to type
/// Int32", `22000` before) and `abs` of the least integer ("Int32Array
/// overflow on abs(-2147483648)"). None for other words.
///
/// ```
/// use quipu_connectors::error::out_of_range;
/// assert_eq!(
///     out_of_range("Invalid argument error: 1234.5 is too large to store in a Decimal128 of precision 4. Max is 999.9"),
///     Some(("22003", "numeric field overflow".to_string()))
/// );
/// assert_eq!(
///     out_of_range("Compute error: Int64Array overflow on abs(-9223372036854775808)"),
///     Some(("22003", "bigint out of range".to_string()))
/// );
/// assert_eq!(
///     out_of_range("Cast error: Can't cast value 2147483648 to type Int32"),
///     Some(("22003", "integer out of range".to_string()))
/// );
/// assert_eq!(out_of_range("Compute error: something else"), None);
/// ```
pub fn out_of_range(m: &str) -> Option<(&'static str, String)> {
    if m.contains(" is too large to store in a Decimal") {
        return Some(("22003", "numeric field overflow".into()));
    }
    // A cast of a number to a narrower integer (`2147483648::int`).
    if let Some(at) = m.find("Can't cast value ") {
        let ty = m[at..].rsplit_once(" to type ")?.1.trim();
        let name = match ty {
            "Int16" => "smallint",
            "Int32" => "integer",
            "Int64" => "bigint",
            _ => return None,
        };
        return Some(("22003", format!("{name} out of range")));
    }
    for (array, name) in [
        ("Int16Array overflow", "smallint"),
        ("Int32Array overflow", "integer"),
        ("Int64Array overflow", "bigint"),
    ] {
        if m.contains(array) {
            return Some(("22003", format!("{name} out of range")));
        }
    }
    None
}
