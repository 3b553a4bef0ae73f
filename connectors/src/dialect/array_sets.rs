//! Arrays as sets and their bounds, as PostgreSQL's (issue 22): `a @> b`,
//! `a <@ b`, `a && b`, `array_dims`, `array_upper` and `array_lower`.
//! Found by probing function by function.
//!
//! - `@>` (contains), `<@` (is contained by) and `&&` (overlaps) compare
//!   the elements of both arrays at every depth, as PostgreSQL's
//!   `array_contain_compare` does: a NULL element equals nothing, so
//!   `ARRAY[1, NULL] @> ARRAY[NULL]` is false (DataFusion 55's
//!   `array_has_all` said true) and `&&` skips NULLs (its `array_has_any`
//!   said `ARRAY[1, NULL] && ARRAY[NULL]` was true). `&&` was refused
//!   ("Unsupported binary operator: PGOverlap"). Elements compare as
//!   PostgreSQL's `=` of their common type: `NaN` equals `NaN`, `-0`
//!   equals `0`. A NULL array gives NULL.
//! - `array_dims(a)` is PostgreSQL's text, `[1:2][1:3]` (DataFusion's
//!   was the list of lengths, `[2, 3]`), NULL for an empty array.
//!   `array_upper(a, d)` is the length of dimension `d`, `array_lower(a,
//!   d)` 1 (Quipu's arrays start at 1), both NULL for a dimension the
//!   array does not have or an empty array. They did not exist.
//!   `array_ndims` of an empty array is NULL (DataFusion's said 1).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int32Array, Scalar, StringArray, new_empty_array,
};
use datafusion::arrow::compute::kernels::{cmp, numeric};
use datafusion::arrow::compute::{cast, concat};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::utils::base_type;
use datafusion::common::{DFSchema, Result, plan_err};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::type_coercion::binary::comparison_coercion;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::sql::sqlparser::ast::BinaryOperator;

use super::is_list;

/// What a function asks.
#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum Ask {
    /// `a @> b` (`b <@ a`).
    Contains,
    /// `a && b`.
    Overlaps,
    Dims,
    Ndims,
    Upper,
    Lower,
}

impl Ask {
    fn name(self) -> &'static str {
        match self {
            Ask::Contains => "quipu_array_contains",
            Ask::Overlaps => "quipu_array_overlaps",
            Ask::Dims => "array_dims",
            Ask::Ndims => "array_ndims",
            Ask::Upper => "array_upper",
            Ask::Lower => "array_lower",
        }
    }
}

/// The functions, for the session's registry.
pub fn functions() -> Vec<ScalarUDF> {
    [
        Ask::Contains,
        Ask::Overlaps,
        Ask::Dims,
        Ask::Ndims,
        Ask::Upper,
        Ask::Lower,
    ]
    .into_iter()
    .map(|ask| {
        ScalarUDF::new_from_impl(ArraySet {
            ask,
            signature: Signature::user_defined(Volatility::Immutable),
        })
    })
    .collect()
}

/// Plans `@>`, `<@` and `&&` with an array on either side: an expression
/// planner, consulted before DataFusion's own.
#[derive(Debug, Default)]
pub struct ArrayOperators;

impl ExprPlanner for ArrayOperators {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        let expr = array_text_operand(expr, schema);
        if !matches!(
            expr.op,
            BinaryOperator::AtArrow | BinaryOperator::ArrowAt | BinaryOperator::PGOverlap
        ) {
            return Ok(PlannerResult::Original(expr));
        }
        let types = [&expr.left, &expr.right].map(|e| e.get_type(schema).ok());
        let array_or_null =
            |t: &Option<DataType>| t.as_ref().is_some_and(|t| is_list(t) || t.is_null());
        let arrays = types.iter().any(|t| t.as_ref().is_some_and(is_list));
        if !arrays || !types.iter().all(array_or_null) {
            return Ok(PlannerResult::Original(expr));
        }
        let (ask, args) = match expr.op {
            BinaryOperator::AtArrow => (Ask::Contains, vec![expr.left, expr.right]),
            BinaryOperator::ArrowAt => (Ask::Contains, vec![expr.right, expr.left]),
            _ => (Ask::Overlaps, vec![expr.left, expr.right]),
        };
        Ok(PlannerResult::Planned(Expr::ScalarFunction(
            ScalarFunction::new_udf(crate::session::scalar_function(ask.name()), args),
        )))
    }
}

/// A parameter with no type beside an array (`id = ANY ($1)`, `tags &&
/// $1`, `tags @> $1`) is an array of the other side's type, as PostgreSQL
/// infers it: asyncpg, which encodes a parameter as the type the server
/// describes, was told `text` and refused a Python list ("expected str,
/// got list"). Run on a statement's plan before its parameters are
/// described.
pub fn array_placeholders(
    plan: datafusion::logical_expr::LogicalPlan,
) -> Result<datafusion::logical_expr::LogicalPlan> {
    use datafusion::arrow::datatypes::Field;
    use datafusion::common::tree_node::{Transformed, TreeNode};
    use datafusion::logical_expr::expr::Placeholder;
    let untyped = |e: &Expr| matches!(e, Expr::Placeholder(Placeholder { field: None, .. }));
    let typed = |e: &mut Expr, t: DataType| {
        if let Expr::Placeholder(p) = e {
            p.field = Some(Arc::new(Field::new("", t, true)));
        }
    };
    plan.transform_up_with_subqueries(|node| {
        let schema = super::expression_schema(&node);
        let type_of = |e: &Expr| e.get_type(&schema).ok().filter(|t| !t.is_null());
        node.map_expressions(|e| {
            e.transform_up(|x| {
                let Expr::ScalarFunction(mut f) = x else {
                    return Ok(Transformed::no(x));
                };
                let mut changed = false;
                match f.name() {
                    super::arrays::QUANTIFIED if f.args.len() > 1 && untyped(&f.args[1]) => {
                        if let Some(t) = type_of(&f.args[0]) {
                            typed(
                                &mut f.args[1],
                                DataType::List(Arc::new(Field::new_list_field(t, true))),
                            );
                            changed = true;
                        }
                    }
                    name if name == Ask::Contains.name() || name == Ask::Overlaps.name() => {
                        for (from, to) in [(0, 1), (1, 0)] {
                            if f.args.len() == 2
                                && untyped(&f.args[to])
                                && let Some(t) = type_of(&f.args[from]).filter(is_list)
                            {
                                typed(&mut f.args[to], t);
                                changed = true;
                            }
                        }
                    }
                    _ => {}
                }
                Ok(Transformed::new_transformed(
                    Expr::ScalarFunction(f),
                    changed,
                ))
            })
        })
    })
    .map(|t| t.data)
}

/// A text literal beside an array in a comparison or an array operator
/// (`tags <> '{a,b}'`, `tags @> '{a}'`) is an array of the other side's
/// type, as PostgreSQL reads the `unknown` literal (DataFusion: "Cannot
/// infer common argument type for comparison operation List(Utf8) !=
/// Utf8"). The cast is read as `array_in` reads it
/// (`scheduler/src/text_forms.rs`).
fn array_text_operand(mut expr: RawBinaryExpr, schema: &DFSchema) -> RawBinaryExpr {
    use BinaryOperator::*;
    if !matches!(
        expr.op,
        Eq | NotEq | Lt | LtEq | Gt | GtEq | AtArrow | ArrowAt | PGOverlap
    ) {
        return expr;
    }
    let list_type = |e: &Expr| e.get_type(schema).ok().filter(is_list);
    let (left, right) = (list_type(&expr.left), list_type(&expr.right));
    if let (Some(t), None) = (&left, &right)
        && super::text_literal(&expr.right).is_some()
    {
        expr.right = datafusion::logical_expr::cast(expr.right, t.clone());
    } else if let (None, Some(t)) = (&left, &right)
        && super::text_literal(&expr.left).is_some()
    {
        expr.left = datafusion::logical_expr::cast(expr.left, t.clone());
    }
    expr
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ArraySet {
    ask: Ask,
    signature: Signature,
}

impl ScalarUDFImpl for ArraySet {
    fn name(&self) -> &str {
        self.ask.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, types: &[DataType]) -> Result<Vec<DataType>> {
        let name = self.ask.name();
        let shown = || {
            types
                .iter()
                .map(super::pg_functions::pg_type_name)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match (self.ask, types) {
            (Ask::Contains | Ask::Overlaps, [a, b]) => {
                let (x, y) = (base_type(a), base_type(b));
                if !(a.is_null() || b.is_null()) && comparison_coercion(&x, &y).is_none() {
                    return plan_err!(
                        "operator does not exist: {} {} {}",
                        super::pg_functions::pg_type_name(a),
                        if self.ask == Ask::Contains {
                            "@>"
                        } else {
                            "&&"
                        },
                        super::pg_functions::pg_type_name(b)
                    );
                }
                Ok(types.to_vec())
            }
            (Ask::Dims | Ask::Ndims, [a]) if is_list(a) || a.is_null() => Ok(types.to_vec()),
            (Ask::Upper | Ask::Lower, [a, d])
                if (is_list(a) || a.is_null()) && (d.is_integer() || d.is_null()) =>
            {
                Ok(vec![a.clone(), DataType::Int64])
            }
            _ => plan_err!("function {name}({}) does not exist", shown()),
        }
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(match self.ask {
            Ask::Contains | Ask::Overlaps => DataType::Boolean,
            Ask::Dims => DataType::Utf8,
            Ask::Ndims | Ask::Upper | Ask::Lower => DataType::Int32,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let rows = arrays[0].len();
        let out: ArrayRef = match self.ask {
            Ask::Contains | Ask::Overlaps => {
                let mut out = Vec::with_capacity(rows);
                for i in 0..rows {
                    out.push(match (row(&arrays[0], i), row(&arrays[1], i)) {
                        (Some(a), Some(b)) => Some(self.compare(a, b)?),
                        _ => None,
                    });
                }
                Arc::new(BooleanArray::from(out))
            }
            Ask::Dims => Arc::new(
                (0..rows)
                    .map(|i| {
                        let dims = dims(&arrays[0], i);
                        (!dims.is_empty())
                            .then(|| dims.iter().map(|n| format!("[1:{n}]")).collect::<String>())
                    })
                    .collect::<StringArray>(),
            ),
            Ask::Ndims => Arc::new(
                (0..rows)
                    .map(|i| {
                        let dims = dims(&arrays[0], i);
                        (!dims.is_empty()).then_some(dims.len() as i32)
                    })
                    .collect::<Int32Array>(),
            ),
            Ask::Upper | Ask::Lower => {
                let d = arrays[1].as_primitive::<datafusion::arrow::datatypes::Int64Type>();
                Arc::new(
                    (0..rows)
                        .map(|i| {
                            let n = d.is_valid(i).then(|| d.value(i))?;
                            let n = usize::try_from(n).ok()?.checked_sub(1)?;
                            let length = *dims(&arrays[0], i).get(n)?;
                            Some(if self.ask == Ask::Lower { 1 } else { length })
                        })
                        .collect::<Int32Array>(),
                )
            }
        };
        super::pg_text::shaped_like(&args.args, out)
    }
}

impl ArraySet {
    /// `a @> b` or `a && b` of one row's two arrays.
    fn compare(&self, a: ArrayRef, b: ArrayRef) -> Result<bool> {
        let (a, b) = (leaves(a)?, leaves(b)?);
        let Some(common) = comparison_coercion(a.data_type(), b.data_type()) else {
            return plan_err!(
                "array elements of {} and {} do not compare",
                a.data_type(),
                b.data_type()
            );
        };
        let (a, b) = (equal_form(&a, &common)?, equal_form(&b, &common)?);
        for j in 0..b.len() {
            if b.is_null(j) {
                // Equal to nothing: `@>` fails, `&&` looks further.
                if self.ask == Ask::Contains {
                    return Ok(false);
                }
                continue;
            }
            let found = cmp::eq(&Scalar::new(b.slice(j, 1)), &a)?.true_count() > 0;
            match (self.ask, found) {
                (Ask::Overlaps, true) => return Ok(true),
                (Ask::Contains, false) => return Ok(false),
                _ => {}
            }
        }
        Ok(self.ask == Ask::Contains)
    }
}

/// Row `i` of an array column, NULL as `None`.
fn row(a: &ArrayRef, i: usize) -> Option<ArrayRef> {
    if a.is_null(i) {
        return None;
    }
    match a.data_type() {
        DataType::List(_) => Some(a.as_list::<i32>().value(i)),
        DataType::LargeList(_) => Some(a.as_list::<i64>().value(i)),
        DataType::FixedSizeList(..) => Some(a.as_fixed_size_list().value(i)),
        _ => None,
    }
}

/// The elements of an array at its deepest level, in order.
fn leaves(a: ArrayRef) -> Result<ArrayRef> {
    if !is_list(a.data_type()) {
        return Ok(a);
    }
    let parts = (0..a.len())
        .filter_map(|i| row(&a, i))
        .map(leaves)
        .collect::<Result<Vec<_>>>()?;
    if parts.is_empty() {
        return Ok(new_empty_array(&base_type(a.data_type())));
    }
    Ok(concat(
        &parts.iter().map(|p| p.as_ref()).collect::<Vec<_>>(),
    )?)
}

/// Elements cast to their common type, a float's `-0` made `0` (Arrow's
/// `=` of floats tells them apart; PostgreSQL's does not, and takes
/// `NaN` as equal to `NaN`, as Arrow's does).
fn equal_form(a: &ArrayRef, common: &DataType) -> Result<ArrayRef> {
    let a = cast(a, common)?;
    if !common.is_floating() {
        return Ok(a);
    }
    let zero = cast(&Int32Array::from(vec![0]), common)?;
    Ok(numeric::add(&a, &Scalar::new(zero))?)
}

/// The lengths of row `i`'s dimensions, outermost first; none for a NULL
/// or an empty array.
fn dims(a: &ArrayRef, i: usize) -> Vec<i32> {
    let mut out = Vec::new();
    let mut next = row(a, i);
    while let Some(level) = next {
        if level.is_empty() {
            break;
        }
        out.push(i32::try_from(level.len()).unwrap_or(i32::MAX));
        next = row(&level, 0);
    }
    out
}

#[cfg(test)]
pub(in crate::dialect) mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    /// `sql`'s result in a bare Quipu session, as a table.
    pub(in crate::dialect) async fn one(sql: &str) -> String {
        let state = crate::session::build_state(
            Arc::new(datafusion::catalog::MemoryCatalogProviderList::new()),
            datafusion::prelude::SessionConfig::new(),
            Arc::new(datafusion::execution::runtime_env::RuntimeEnv::default()),
        );
        let ctx = SessionContext::new_with_state(state);
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string()
    }

    /// Each checked against PostgreSQL 15 by psql.
    #[tokio::test]
    async fn sets_and_bounds_are_postgresqls() {
        let got = one(
            "SELECT ARRAY[1, NULL] @> ARRAY[NULL::int] AS a, ARRAY[1] <@ ARRAY[1, NULL] AS b, \
             ARRAY[1, 2] @> ARRAY[]::int[] AS c, ARRAY[[1, 2]] @> ARRAY[2] AS d, \
             ARRAY[1, NULL] && ARRAY[NULL::int] AS e, ARRAY[1, 2] && ARRAY[2.0] AS f, \
             ARRAY[1, 2] && ARRAY[3] AS g, ARRAY[-0.0::float8] @> ARRAY[0.0::float8] AS h, \
             ARRAY[1] && NULL AS i",
        )
        .await;
        assert!(
            got.contains("| false | true | true | true | false | true | false | true |   |"),
            "{got}"
        );
        let got = one(
            "SELECT array_dims(ARRAY[[1, 2, 3], [4, 5, 6]]) AS a, array_dims(make_array()) AS b, \
             array_upper(ARRAY[[1, 2, 3], [4, 5, 6]], 2) AS c, array_upper(ARRAY[1], 2) AS d, \
             array_lower(ARRAY[1], 0) AS e, array_lower(ARRAY[5, 6], 1) AS f",
        )
        .await;
        assert!(got.contains("| [1:2][1:3] |   | 3 |   |   | 1 |"), "{got}");
        let got = one(
            "SELECT array_ndims(ARRAY[[1], [2]]) AS a, array_ndims(ARRAY[]::int[]) AS b, \
             array_ndims(ARRAY[7]) AS c",
        )
        .await;
        assert!(got.contains("| 2 |   | 1 |"), "{got}");
    }
}
