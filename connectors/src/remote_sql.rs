//! DataFusion filters as PostgreSQL SQL, for the filters a remote query can
//! evaluate exactly as DataFusion would. Anything else returns `None` and
//! stays in DataFusion. Identifiers and literals are quoted here and only
//! here.

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, expr::InList};

/// Plan properties of a remote scan that runs as one stream (one remote
/// query or `find`), shared by `PgScanExec` and `MongoScanExec`.
pub fn single_scan_properties(
    schema: &datafusion::arrow::datatypes::SchemaRef,
) -> std::sync::Arc<datafusion::physical_plan::PlanProperties> {
    scan_properties(schema, 1)
}

/// Whether a scan is planned for Ballista (its session carries Ballista's
/// settings), whose tasks cannot be handed single partitions of our scans
/// (see `PgScanExec`).
pub fn on_ballista(state: &dyn datafusion::catalog::Session) -> bool {
    state
        .config_options()
        .entries()
        .iter()
        .any(|e| e.key.starts_with("ballista."))
}

/// The streams of `n` remote queries (`stream(i)`) merged into one output
/// partition, each query on its own task (its own connection or cursor,
/// its decoding on its own thread), batches passed on as they come;
/// dropping the merged stream aborts the tasks. `name` and `partition`
/// word the error for a partition other than 0.
pub fn merged_partition(
    name: &str,
    partition: usize,
    schema: &datafusion::arrow::datatypes::SchemaRef,
    n: usize,
    stream: impl Fn(
        usize,
    )
        -> datafusion::error::Result<datafusion::physical_plan::SendableRecordBatchStream>,
) -> datafusion::error::Result<datafusion::physical_plan::SendableRecordBatchStream> {
    use futures::StreamExt;
    if partition != 0 {
        return Err(datafusion::error::DataFusionError::Internal(format!(
            "{name} has one output partition, asked for {partition}"
        )));
    }
    let mut merged = datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder::new(
        schema.clone(),
        2 * n,
    );
    for i in 0..n {
        let tx = merged.tx();
        let mut stream = stream(i)?;
        merged.spawn(async move {
            while let Some(batch) = stream.next().await {
                if tx.send(batch).await.is_err() {
                    break;
                }
            }
            Ok(())
        });
    }
    Ok(merged.build())
}

/// Plan properties of a remote scan with `partitions` independent streams.
pub fn scan_properties(
    schema: &datafusion::arrow::datatypes::SchemaRef,
    partitions: usize,
) -> std::sync::Arc<datafusion::physical_plan::PlanProperties> {
    use datafusion::physical_expr::EquivalenceProperties;
    use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
    std::sync::Arc::new(datafusion::physical_plan::PlanProperties::new(
        EquivalenceProperties::new(schema.clone()),
        datafusion::physical_plan::Partitioning::UnknownPartitioning(partitions),
        EmissionType::Incremental,
        Boundedness::Bounded,
    ))
}

/// The column indices a scan reads (all when `projection` is None) and
/// the schema it returns.
pub fn projected(
    schema: &datafusion::arrow::datatypes::SchemaRef,
    projection: Option<&Vec<usize>>,
) -> datafusion::error::Result<(Vec<usize>, datafusion::arrow::datatypes::SchemaRef)> {
    let indices: Vec<usize> = projection
        .cloned()
        .unwrap_or_else(|| (0..schema.fields().len()).collect());
    let projected = std::sync::Arc::new(schema.project(&indices)?);
    Ok((indices, projected))
}

/// What one live-source scan of an executed plan read.
#[derive(Debug, Clone)]
pub struct ScanFetched {
    pub source: String,
    /// The scan's one-line EXPLAIN text (remote query included).
    pub line: String,
    /// Its `rows_fetched` metric (None when the scan has not run).
    pub rows: Option<usize>,
}

/// The rows each PostgreSQL and MongoDB scan of `plan` fetched from its
/// source, from the operators' metrics (for benchmarks and tests that check
/// how much a source was asked for).
pub fn rows_fetched(
    plan: &std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>,
) -> Vec<ScanFetched> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    let mut scans = vec![];
    let _ = plan.apply(|node| {
        let source = if let Some(s) = node.downcast_ref::<crate::postgres::PgScanExec>() {
            Some(s.source().name.clone())
        } else {
            node.downcast_ref::<crate::mongo::MongoScanExec>()
                .map(|s| s.source().name.clone())
        };
        if let Some(source) = source {
            scans.push(ScanFetched {
                source,
                line: datafusion::physical_plan::displayable(node.as_ref())
                    .one_line()
                    .to_string(),
                rows: node
                    .metrics()
                    .and_then(|m| m.sum_by_name("rows_fetched"))
                    .map(|v| v.as_usize()),
            });
        }
        Ok(TreeNodeRecursion::Continue)
    });
    scans
}

/// `"name"` with embedded quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// An escape-string literal (`E'...'`), safe whatever the server's
/// `standard_conforming_strings`. `None` for strings PostgreSQL cannot hold.
pub fn quote_literal(s: &str) -> Option<String> {
    if s.contains('\0') {
        return None;
    }
    Some(format!(
        "E'{}'",
        s.replace('\\', "\\\\").replace('\'', "''")
    ))
}

fn column<'a>(e: &'a Expr, schema: &'a Schema) -> Option<(&'a str, &'a DataType)> {
    match e {
        Expr::Column(c) => schema
            .field_with_name(&c.name)
            .ok()
            .map(|f| (f.name().as_str(), f.data_type())),
        _ => None,
    }
}

/// A value as a PostgreSQL literal (None: not expressible, or NULL).
pub fn sql_literal(v: &ScalarValue) -> Option<String> {
    use ScalarValue::*;
    Some(match v {
        _ if v.is_null() => return None,
        Boolean(Some(b)) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        Int8(Some(x)) => x.to_string(),
        Int16(Some(x)) => x.to_string(),
        Int32(Some(x)) => x.to_string(),
        Int64(Some(x)) => x.to_string(),
        UInt8(Some(x)) => x.to_string(),
        UInt16(Some(x)) => x.to_string(),
        UInt32(Some(x)) => x.to_string(),
        UInt64(Some(x)) => x.to_string(),
        Float32(Some(x)) if x.is_finite() => format!("{x:?}::float8"),
        Float64(Some(x)) if x.is_finite() => format!("{x:?}::float8"),
        Utf8(Some(s)) | LargeUtf8(Some(s)) | Utf8View(Some(s)) => quote_literal(s)?,
        Decimal128(Some(x), _, s) => {
            let s = *s as u32;
            let sign = if *x < 0 { "-" } else { "" };
            let a = x.unsigned_abs();
            let p = 10u128.pow(s);
            if s == 0 {
                format!("{sign}{a}")
            } else {
                format!("{sign}{}.{:0width$}", a / p, a % p, width = s as usize)
            }
        }
        Date32(Some(d)) => {
            let date = chrono_date(*d)?;
            format!("'{date}'::date")
        }
        TimestampSecond(Some(t), tz) => ts(*t as i128 * 1_000_000, tz.is_some())?,
        TimestampMillisecond(Some(t), tz) => ts(*t as i128 * 1_000, tz.is_some())?,
        TimestampMicrosecond(Some(t), tz) => ts(*t as i128, tz.is_some())?,
        TimestampNanosecond(Some(t), tz) => {
            if t % 1000 != 0 {
                return None;
            }
            ts(*t as i128 / 1000, tz.is_some())?
        }
        _ => return None,
    })
}

fn chrono_date(days: i32) -> Option<String> {
    let d = datafusion::arrow::temporal_conversions::date32_to_datetime(days)?;
    Some(d.format("%Y-%m-%d").to_string())
}

fn ts(micros: i128, tz: bool) -> Option<String> {
    let m: i64 = micros.try_into().ok()?;
    let t = datafusion::arrow::temporal_conversions::timestamp_us_to_datetime(m)?;
    let text = t.format("%Y-%m-%d %H:%M:%S%.6f");
    Some(if tz {
        format!("'{text}+00'::timestamptz")
    } else {
        format!("'{text}'::timestamp")
    })
}

fn comparable(t: &DataType, op: Operator) -> bool {
    match t {
        // Text order depends on the server's collation: only (in)equality.
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            matches!(op, Operator::Eq | Operator::NotEq)
        }
        DataType::Binary => false,
        _ => true,
    }
}

fn flip(op: Operator) -> Option<Operator> {
    Some(match op {
        Operator::Eq | Operator::NotEq => op,
        Operator::Lt => Operator::Gt,
        Operator::LtEq => Operator::GtEq,
        Operator::Gt => Operator::Lt,
        Operator::GtEq => Operator::LtEq,
        _ => return None,
    })
}

fn sql_op(op: Operator) -> Option<&'static str> {
    Some(match op {
        Operator::Eq => "=",
        Operator::NotEq => "<>",
        Operator::Lt => "<",
        Operator::LtEq => "<=",
        Operator::Gt => ">",
        Operator::GtEq => ">=",
        _ => return None,
    })
}

/// The filter as a PostgreSQL boolean expression over the table's columns.
pub fn filter_to_sql(e: &Expr, schema: &Schema) -> Option<String> {
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And | Operator::Or => {
                let (l, r) = (filter_to_sql(left, schema)?, filter_to_sql(right, schema)?);
                Some(format!(
                    "({l} {} {r})",
                    if *op == Operator::And { "AND" } else { "OR" }
                ))
            }
            _ => {
                let (col, op, lit) = match (column(left, schema), column(right, schema)) {
                    (Some(c), None) => (c, *op, right.as_ref()),
                    (None, Some(c)) => (c, flip(*op)?, left.as_ref()),
                    _ => return None,
                };
                let Expr::Literal(v, _) = lit else {
                    return None;
                };
                if !comparable(col.1, op) {
                    return None;
                }
                Some(format!(
                    "{} {} {}",
                    quote_ident(col.0),
                    sql_op(op)?,
                    sql_literal(v)?
                ))
            }
        },
        Expr::Not(inner) => Some(format!("NOT ({})", filter_to_sql(inner, schema)?)),
        Expr::IsNull(inner) => Some(format!("{} IS NULL", quote_ident(column(inner, schema)?.0))),
        Expr::IsNotNull(inner) => Some(format!(
            "{} IS NOT NULL",
            quote_ident(column(inner, schema)?.0)
        )),
        Expr::InList(InList {
            expr,
            list,
            negated,
        }) => {
            let (name, _) = column(expr, schema)?;
            let items = list
                .iter()
                .map(|i| match i {
                    Expr::Literal(v, _) => sql_literal(v),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?;
            if items.is_empty() {
                return None;
            }
            Some(format!(
                "{} {}IN ({})",
                quote_ident(name),
                if *negated { "NOT " } else { "" },
                items.join(", ")
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Field;
    use datafusion::logical_expr::{col, lit};

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("a\"b", DataType::Utf8, true),
        ])
    }

    #[test]
    fn quoting_is_safe() {
        let s = schema();
        let e = col("a\"b").eq(lit("O'Brien \\' OR 1=1 --"));
        assert_eq!(
            filter_to_sql(&e, &s).unwrap(),
            "\"a\"\"b\" = E'O''Brien \\\\'' OR 1=1 --'"
        );
        assert_eq!(filter_to_sql(&col("a\"b").eq(lit("x\0y")), &s), None);
        let e = col("id")
            .gt(lit(5i64))
            .and(col("id").in_list(vec![lit(1i64), lit(2i64)], true));
        assert_eq!(
            filter_to_sql(&e, &s).unwrap(),
            "(\"id\" > 5 AND \"id\" NOT IN (1, 2))"
        );
        // Text ranges depend on collation: not pushed.
        assert_eq!(filter_to_sql(&col("a\"b").lt(lit("m")), &s), None);
        assert_eq!(
            filter_to_sql(&lit(3i64).lt(col("id")), &s).unwrap(),
            "\"id\" > 3"
        );
    }
}
