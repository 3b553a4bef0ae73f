//! The functions PostgreSQL clients call that DataFusion and
//! datafusion-pg-catalog lack or answer differently: `version()`,
//! `to_regtype`, `pg_size_pretty`, `current_setting`/`set_config` over the
//! connection's settings, and the catalog functions that answer as a
//! database without comments, sequences or indexes does. Registered per
//! connection by [`register`].

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;
use pgwire::api::Type;
use quipu_connectors::dialect::pg_text::shaped_like;

/// Registers the functions on a connection's context; `current_setting`
/// and `set_config` read and write `settings`.
pub(super) fn register(ctx: &SessionContext, settings: Settings) {
    ctx.register_udf(version_udf());
    ctx.register_udf(to_regtype_udf());
    ctx.register_udf(size_pretty_udf());
    for f in constant_udfs() {
        ctx.register_udf(f);
    }
    ctx.register_udf(current_setting_udf(settings.clone()));
    ctx.register_udf(set_config_udf(settings));
}

/// `version()` as PostgreSQL words it: SQLAlchemy, JDBC and BI tools
/// parse the number after "PostgreSQL".
fn version_udf() -> datafusion::logical_expr::ScalarUDF {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    use datafusion::scalar::ScalarValue;
    create_udf(
        "version",
        vec![],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|_args: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(format!(
                "PostgreSQL {} on {}-{}, federating through Apache DataFusion",
                super::server_version(),
                std::env::consts::ARCH,
                std::env::consts::OS
            )))))
        }),
    )
}

/// `to_regtype(name)`: the OID of a built-in type, NULL for any other
/// name (psycopg asks for `hstore` when SQLAlchemy connects).
fn to_regtype_udf() -> datafusion::logical_expr::ScalarUDF {
    use datafusion::arrow::array::{Array, Int32Array, StringArray};
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    static OIDS: std::sync::OnceLock<HashMap<String, i32>> = std::sync::OnceLock::new();
    let oids = OIDS.get_or_init(|| {
        (1..10_000u32)
            .filter_map(|oid| Type::from_oid(oid).map(|t| (t.name().to_string(), oid as i32)))
            .collect()
    });
    create_udf(
        "to_regtype",
        vec![DataType::Utf8],
        DataType::Int32,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let names = arrays[0]
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| DataFusionError::Plan("to_regtype takes text".into()))?;
            let out: Int32Array = (0..names.len())
                .map(|i| {
                    if names.is_null(i) {
                        return None;
                    }
                    let name = names.value(i).trim().trim_start_matches("pg_catalog.");
                    oids.get(name.to_ascii_lowercase().as_str()).copied()
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    )
}

/// Functions with one answer here: `pg_type_is_visible(oid)`,
/// `pg_collation_is_visible(oid)` and `pg_function_is_visible(oid)` are
/// true (one search path, no shadowing); nothing has a comment
/// (`obj_description`, `col_description`: psql's `\dT`, JDBC's
/// `getUDTs`); Quipu has no sequences nor indexes, so
/// `pg_get_serial_sequence(table, column)` and `pg_get_indexdef(...)` are
/// NULL. SQLAlchemy's `get_columns` and `get_indexes` call them.
fn constant_udfs() -> Vec<datafusion::logical_expr::ScalarUDF> {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, Signature, Volatility};
    use datafusion::scalar::ScalarValue;
    /// Any arguments (clients send untyped parameters), one answer.
    #[derive(Debug, PartialEq, Eq, Hash)]
    struct Constant {
        name: &'static str,
        value: ScalarValue,
        signature: Signature,
    }
    impl datafusion::logical_expr::ScalarUDFImpl for Constant {
        fn name(&self) -> &str {
            self.name
        }
        fn signature(&self) -> &Signature {
            &self.signature
        }
        fn return_type(&self, _: &[DataType]) -> Result<DataType> {
            Ok(self.value.data_type())
        }
        fn invoke_with_args(&self, _: ScalarFunctionArgs) -> Result<ColumnarValue> {
            Ok(ColumnarValue::Scalar(self.value.clone()))
        }
    }
    [
        ("pg_type_is_visible", ScalarValue::Boolean(Some(true))),
        ("pg_collation_is_visible", ScalarValue::Boolean(Some(true))),
        ("pg_function_is_visible", ScalarValue::Boolean(Some(true))),
        // No comments on anything.
        ("obj_description", ScalarValue::Utf8(None)),
        ("col_description", ScalarValue::Utf8(None)),
        ("shobj_description", ScalarValue::Utf8(None)),
        ("pg_get_serial_sequence", ScalarValue::Utf8(None)),
        ("pg_get_indexdef", ScalarValue::Utf8(None)),
        // The signatures of functions (psql's `\\df`, JDBC's
        // `getFunctions`) are not known: NULL.
        ("pg_get_function_result", ScalarValue::Utf8(None)),
        ("pg_get_function_arguments", ScalarValue::Utf8(None)),
        (
            "pg_get_function_identity_arguments",
            ScalarValue::Utf8(None),
        ),
    ]
    .into_iter()
    .map(|(name, value)| {
        datafusion::logical_expr::ScalarUDF::new_from_impl(Constant {
            name,
            value,
            signature: Signature::variadic_any(Volatility::Immutable),
        })
    })
    .collect()
}

/// `set_config(name, value, is_local)`: `SET name = value` (for the
/// connection; Quipu has no transactions to scope `is_local` to), answering
/// the value. asyncpg calls it while it introspects types. Settings of the
/// engine (`datafusion.*`, `quipu.*`) are set with `SET`, not here.
fn set_config_udf(settings: Settings) -> datafusion::logical_expr::ScalarUDF {
    use datafusion::arrow::array::{Array, StringArray};
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    create_udf(
        "set_config",
        vec![DataType::Utf8, DataType::Utf8, DataType::Boolean],
        DataType::Utf8,
        Volatility::Volatile,
        Arc::new(move |args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let text = |i: usize| {
                arrays[i]
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .expect("coerced to Utf8")
                    .clone()
            };
            let (names, values) = (text(0), text(1));
            let mut out = Vec::with_capacity(names.len());
            for i in 0..names.len() {
                if names.is_null(i) {
                    return Err(DataFusionError::Execution(
                        "set_config: the setting name must not be NULL".into(),
                    ));
                }
                let name = names.value(i).to_ascii_lowercase();
                if name.starts_with("datafusion.") || name.starts_with("quipu.") {
                    return Err(DataFusionError::Execution(format!(
                        "set_config cannot change {name}; use SET {name} = ..."
                    )));
                }
                let value = (!values.is_null(i)).then(|| values.value(i).to_string());
                settings
                    .lock()
                    .unwrap()
                    .insert(name, value.clone().unwrap_or_default());
                out.push(value);
            }
            shaped_like(args, Arc::new(StringArray::from(out)))
        }),
    )
}

/// `pg_size_pretty(bytes)` as PostgreSQL words it: `8192 bytes`, `16 kB`,
/// `10 MB` (a unit is used from 10 of it on, rounded half up).
fn size_pretty_udf() -> datafusion::logical_expr::ScalarUDF {
    use datafusion::arrow::array::{Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    create_udf(
        "pg_size_pretty",
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let bytes = arrays[0]
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("coerced to Int64");
            let out: StringArray = bytes.iter().map(|b| b.map(size_pretty)).collect();
            shaped_like(args, Arc::new(out))
        }),
    )
}

fn size_pretty(bytes: i64) -> String {
    const LIMIT: u64 = 10 * 1024;
    if bytes.unsigned_abs() < LIMIT {
        return format!("{bytes} bytes");
    }
    // PostgreSQL's dbsize.c: one extra bit kept for rounding half away
    // from zero.
    let mut size = bytes >> 9;
    for unit in ["kB", "MB", "GB", "TB"] {
        if size.unsigned_abs() < LIMIT * 2 - 1 || unit == "TB" {
            return format!("{} {unit}", (size + size.signum()) / 2);
        }
        size >>= 10;
    }
    unreachable!("TB is the last unit")
}

/// A connection's PostgreSQL settings (`SET application_name ...`).
pub type Settings = Arc<std::sync::Mutex<HashMap<String, String>>>;

/// `current_setting(name [, missing_ok])`: what `SHOW name` answers.
fn current_setting_udf(settings: Settings) -> datafusion::logical_expr::ScalarUDF {
    use datafusion::arrow::array::{Array, StringArray};
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{ColumnarValue, Signature, Volatility};
    #[derive(Debug)]
    struct CurrentSetting {
        settings: Settings,
        signature: Signature,
    }
    impl PartialEq for CurrentSetting {
        fn eq(&self, other: &Self) -> bool {
            Arc::ptr_eq(&self.settings, &other.settings)
        }
    }
    impl Eq for CurrentSetting {}
    impl std::hash::Hash for CurrentSetting {
        fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
            Arc::as_ptr(&self.settings).hash(state);
        }
    }
    impl datafusion::logical_expr::ScalarUDFImpl for CurrentSetting {
        fn name(&self) -> &str {
            "current_setting"
        }
        fn signature(&self) -> &Signature {
            &self.signature
        }
        fn return_type(&self, _: &[DataType]) -> Result<DataType> {
            Ok(DataType::Utf8)
        }
        fn invoke_with_args(
            &self,
            args: datafusion::logical_expr::ScalarFunctionArgs,
        ) -> Result<ColumnarValue> {
            let arrays = ColumnarValue::values_to_arrays(&args.args)?;
            let names = datafusion::arrow::compute::cast(&arrays[0], &DataType::Utf8)?;
            let names = names.as_any().downcast_ref::<StringArray>().expect("cast");
            let missing_ok = arrays
                .get(1)
                .map(|a| datafusion::arrow::compute::cast(a, &DataType::Boolean))
                .transpose()?;
            let mut out = Vec::with_capacity(names.len());
            for i in 0..names.len() {
                if names.is_null(i) {
                    out.push(None);
                    continue;
                }
                let name = names.value(i).to_ascii_lowercase();
                match super::setting(&self.settings, &name) {
                    Some(v) => out.push(Some(v)),
                    None if missing_ok.as_ref().is_some_and(|m| {
                        let m = m
                            .as_any()
                            .downcast_ref::<datafusion::arrow::array::BooleanArray>();
                        m.is_some_and(|m| m.is_valid(i) && m.value(i))
                    }) =>
                    {
                        out.push(None)
                    }
                    None => {
                        return Err(DataFusionError::Execution(format!(
                            "unrecognized configuration parameter \"{name}\""
                        )));
                    }
                }
            }
            shaped_like(&args.args, Arc::new(StringArray::from(out)))
        }
    }
    datafusion::logical_expr::ScalarUDF::new_from_impl(CurrentSetting {
        settings,
        signature: Signature::one_of(
            vec![
                datafusion::logical_expr::TypeSignature::Exact(vec![DataType::Utf8]),
                datafusion::logical_expr::TypeSignature::Exact(vec![
                    DataType::Utf8,
                    DataType::Boolean,
                ]),
            ],
            Volatility::Stable,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_postgresql_prints_them() {
        for (bytes, pg) in [
            (0, "0 bytes"),
            (10239, "10239 bytes"),
            (10240, "10 kB"),
            (1_000_000, "977 kB"),
            (10_485_760, "10 MB"),
            (1_500_000_000, "1431 MB"),
            (-20_000, "-20 kB"),
        ] {
            assert_eq!(size_pretty(bytes), pg, "{bytes}");
        }
    }
}
