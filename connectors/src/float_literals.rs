//! A decimal literal compared with a floating-point value is a double, as
//! in PostgreSQL (where `float8` is the preferred numeric type: `price =
//! 133.99` over a `float8` column compares doubles).
//!
//! Quipu reads bare decimal literals as `numeric` (PostgreSQL's meaning,
//! `parse_float_as_decimal`), and DataFusion 55 then compares a `Float64`
//! column with `IN (133.99, 69.49)` by casting the column to the literals'
//! decimal type, which cuts 133.98999999999999 to 133.98: no row matched.
//! This analyzer rule runs before DataFusion's type coercion and turns
//! such literals into doubles (rounded correctly from their text).
//!
//! The same rule gives `avg` of a decimal PostgreSQL's digits: DataFusion
//! keeps the argument's scale + 4 (`avg` of a `numeric(12,0)` column gave
//! 11.7727 where PostgreSQL gives 11.7727272727272727, at least 16
//! significant digits); the argument is read at scale 16 first, so the
//! average carries 20 places (as long as its integer digits fit: at most
//! 22).

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::logical_expr::expr::{Cast, InList};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion::optimizer::AnalyzerRule;

#[derive(Debug, Default)]
pub struct FloatComparedWithDecimal;

impl AnalyzerRule for FloatComparedWithDecimal {
    fn name(&self) -> &str {
        "quipu_float_compared_with_decimal"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        Ok(plan
            .transform_up_with_subqueries(|node| {
                let mut schema = merge_schema(&node.inputs());
                if let LogicalPlan::TableScan(scan) = &node
                    && let Ok(own) = DFSchema::try_from_qualified_schema(
                        scan.table_name.clone(),
                        &scan.source.schema(),
                    )
                {
                    schema.merge(&own);
                }
                // Names kept: the nodes above refer to these expressions
                // by name (as DataFusion's type coercion keeps them).
                let names = NamePreserver::new(&node);
                node.map_expressions(|e| {
                    let name = names.save(&e);
                    Ok(e.transform_up(|e| Ok(rewrite(e, &schema)))?
                        .update_data(|e| name.restore(e)))
                })
            })?
            .data)
    }
}

fn rewrite(e: Expr, schema: &DFSchema) -> Transformed<Expr> {
    let is_float = |e: &Expr| {
        matches!(
            e.get_type(schema),
            Ok(DataType::Float16 | DataType::Float32 | DataType::Float64)
        )
    };
    match e {
        Expr::AggregateFunction(mut agg)
            if agg.func.name() == "avg" && agg.params.args.len() == 1 =>
        {
            match agg.params.args[0].get_type(schema) {
                Ok(DataType::Decimal128(p, s))
                    if s < AVG_SCALE && p as i16 - s as i16 <= 38 - AVG_SCALE as i16 =>
                {
                    let arg = agg.params.args.remove(0);
                    agg.params.args.push(Expr::Cast(Cast::new(
                        Box::new(arg),
                        DataType::Decimal128(38, AVG_SCALE),
                    )));
                    Transformed::yes(Expr::AggregateFunction(agg))
                }
                _ => Transformed::no(Expr::AggregateFunction(agg)),
            }
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if comparison(op) => {
            if is_float(&left) && as_double(&right).is_some() {
                let right = Box::new(as_double(&right).unwrap());
                Transformed::yes(Expr::BinaryExpr(BinaryExpr { left, op, right }))
            } else if is_float(&right) && as_double(&left).is_some() {
                let left = Box::new(as_double(&left).unwrap());
                Transformed::yes(Expr::BinaryExpr(BinaryExpr { left, op, right }))
            } else {
                Transformed::no(Expr::BinaryExpr(BinaryExpr { left, op, right }))
            }
        }
        Expr::InList(InList {
            expr,
            list,
            negated,
        }) if is_float(&expr) && list.iter().any(|x| as_double(x).is_some()) => {
            let list = list
                .into_iter()
                .map(|x| as_double(&x).unwrap_or(x))
                .collect();
            Transformed::yes(Expr::InList(InList {
                expr,
                list,
                negated,
            }))
        }
        Expr::Between(Between {
            expr,
            negated,
            low,
            high,
        }) if is_float(&expr) && (as_double(&low).is_some() || as_double(&high).is_some()) => {
            let low = Box::new(as_double(&low).unwrap_or(*low));
            let high = Box::new(as_double(&high).unwrap_or(*high));
            Transformed::yes(Expr::Between(Between {
                expr,
                negated,
                low,
                high,
            }))
        }
        other => Transformed::no(other),
    }
}

/// The scale `avg` reads a decimal at (its result has 4 more places).
const AVG_SCALE: i8 = 16;

fn comparison(op: Operator) -> bool {
    matches!(
        op,
        Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
            | Operator::IsDistinctFrom
            | Operator::IsNotDistinctFrom
    )
}

/// A decimal literal (or its negation) as a double literal.
fn as_double(e: &Expr) -> Option<Expr> {
    match e {
        Expr::Literal(v @ ScalarValue::Decimal128(..), _) => {
            let d = if v.is_null() {
                None
            } else {
                // The decimal's text, parsed: the double nearest to it.
                Some(v.to_string().parse::<f64>().ok()?)
            };
            Some(Expr::Literal(ScalarValue::Float64(d), None))
        }
        Expr::Negative(inner) => match as_double(inner)? {
            Expr::Literal(ScalarValue::Float64(d), m) => {
                Some(Expr::Literal(ScalarValue::Float64(d.map(|d| -d)), m))
            }
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float64Array, RecordBatch};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::execution::SessionStateBuilder;
    use datafusion::optimizer::Analyzer;
    use datafusion::prelude::{SessionConfig, SessionContext};
    use std::sync::Arc;

    #[tokio::test]
    async fn decimal_literals_meet_doubles_as_doubles() {
        let mut rules = Analyzer::new().rules;
        rules.insert(0, Arc::new(FloatComparedWithDecimal));
        let mut config = SessionConfig::new();
        config.options_mut().sql_parser.parse_float_as_decimal = true;
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .with_analyzer_rules(rules)
            .build();
        let ctx = SessionContext::new_with_state(state);
        let schema = Arc::new(Schema::new(vec![Field::new("p", DataType::Float64, true)]));
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(Float64Array::from(vec![
                133.99, 69.49, 2.99, -1.5,
            ]))],
        )
        .unwrap();
        ctx.register_batch("t", batch).unwrap();
        for (sql, want) in [
            ("SELECT count(*) FROM t WHERE p IN (133.99, 69.49)", 2),
            ("SELECT count(*) FROM t WHERE p = 133.99 OR 2.99 = p", 2),
            ("SELECT count(*) FROM t WHERE p BETWEEN 2.99 AND 69.49", 2),
            ("SELECT count(*) FROM t WHERE p = -1.5", 1),
            ("SELECT count(*) FROM t WHERE p NOT IN (133.99)", 3),
            // Inside an aggregate the projection above names: kept.
            ("SELECT sum(CASE WHEN p > 60.5 THEN 1 ELSE 0 END) FROM t", 2),
            ("SELECT count(*) FILTER (WHERE p IN (2.99, 1.5)) FROM t", 1),
        ] {
            let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
            let n = batches[0]
                .column(0)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Int64Array>()
                .unwrap()
                .value(0);
            assert_eq!(n, want, "{sql}");
        }
        // avg of a decimal: 20 places, not the column's scale + 4
        // (DataFusion cuts the last place where PostgreSQL rounds its 16th
        // significant digit: 1.6666666666666667; both within 1e-16).
        let batches = ctx
            .sql("SELECT CAST(avg(d) AS VARCHAR) FROM (VALUES (CAST(1 AS DECIMAL(12,0))), (2), (2)) AS v(d)")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let text = datafusion::arrow::util::display::array_value_to_string(batches[0].column(0), 0)
            .unwrap();
        assert_eq!(text, "1.66666666666666666666");
    }
}
