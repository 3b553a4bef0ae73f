//! A text literal beside typed values in `CASE`, `COALESCE`, `GREATEST`,
//! `LEAST` and `NULLIF` takes their type, as PostgreSQL's `unknown` does
//! (issue 22); and a text literal cast to a date or a timestamp by
//! DataFusion's type coercion is read as PostgreSQL reads it.
//!
//! - `CASE WHEN i > 0 THEN i ELSE '7' END` was `text` (DataFusion's common
//!   type of `integer` and `text`); PostgreSQL's is `integer`, and the two
//!   order otherwise (`'10' < '7'`). [`UnknownLiterals`] casts such
//!   literals to the other values' common type before DataFusion's type
//!   coercion.
//! - `COALESCE(d, '2024-01-01')` of a date, a timestamp or a boolean was
//!   refused while planning ("function coalesce(date, text) does not
//!   exist"). [`coalesce`] wraps DataFusion's: where it finds no common
//!   type, text takes the others' (a text *column* there is refused
//!   afterwards by `mixed_text.rs`, as in PostgreSQL).
//! - The cast type coercion puts on such a literal (`GREATEST(ts,
//!   '2024-01-01 10:00Z')`, `x IN ('Jan 5 2024', ...)`) was Arrow's,
//!   which refused most of PostgreSQL's forms ("Error parsing timestamp
//!   from '2024-01-01 10:00Z'"). [`TimeLiterals`], after the coercion,
//!   reads each as `time_text::read_as` does (the session's `DateStyle`
//!   order, a `timestamptz` without an offset on the session's clock).

use std::sync::Arc;

use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::logical_expr::expr::{Cast, ScalarFunction, TryCast};
use datafusion::logical_expr::type_coercion::binary::comparison_coercion;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ReturnFieldArgs, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature,
};
use datafusion::optimizer::AnalyzerRule;

use super::text_literal;

/// The common type of the values that are neither text literals nor
/// NULLs, when there is one and it is not text.
fn typed_common<'a>(values: impl Iterator<Item = &'a Expr>, schema: &DFSchema) -> Option<DataType> {
    let mut common: Option<DataType> = None;
    for e in values {
        if text_literal(e).is_some() {
            continue;
        }
        let t = e.get_type(schema).ok()?;
        if t.is_null() {
            continue;
        }
        common = Some(match common {
            None => t,
            Some(c) => comparison_coercion(&c, &t)?,
        });
    }
    common.filter(|t| !t.is_string() && !t.is_null())
}

/// The text literals among `values` cast to the others' common type
/// ([`typed_common`]); whether there were any and such a type.
fn type_literals(values: Vec<&mut Expr>, schema: &DFSchema) -> bool {
    if !values.iter().any(|e| text_literal(e).is_some()) {
        return false;
    }
    let Some(to) = typed_common(values.iter().map(|e| &**e), schema) else {
        return false;
    };
    for e in values {
        if text_literal(e).is_some() {
            *e = Expr::Cast(Cast::new(Box::new(e.clone()), to.clone()));
        }
    }
    true
}

/// Before DataFusion's type coercion: text literals among typed values
/// take their type.
#[derive(Debug, Default)]
pub struct UnknownLiterals;

impl AnalyzerRule for UnknownLiterals {
    fn name(&self) -> &str {
        "quipu_unknown_literals"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        Ok(super::transform_up_outside_recursion(plan, &mut |node| {
            let schema = super::expression_schema(&node);
            let node = super::rewrite_keeping_names(node, |e| typed(e, &schema))?;
            if !node.transformed {
                return Ok(node);
            }
            node.map_data(|node| node.recompute_schema())
        })?
        .data)
    }
}

fn typed(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    Ok(match e {
        Expr::Case(mut case) => {
            let yes = type_literals(super::case_values_mut(&mut case), schema);
            Transformed::new_transformed(Expr::Case(case), yes)
        }
        Expr::ScalarFunction(ScalarFunction { func, mut args })
            if matches!(func.name(), "coalesce" | "greatest" | "least" | "nullif") =>
        {
            let yes = type_literals(args.iter_mut().collect(), schema);
            Transformed::new_transformed(Expr::ScalarFunction(ScalarFunction { func, args }), yes)
        }
        e => Transformed::no(e),
    })
}

/// After DataFusion's type coercion: a text literal cast to a date or a
/// timestamp read as PostgreSQL reads it.
#[derive(Debug, Default)]
pub struct TimeLiterals;

impl AnalyzerRule for TimeLiterals {
    fn name(&self) -> &str {
        "quipu_time_literals"
    }

    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> Result<LogicalPlan> {
        let order = config
            .extensions
            .get::<crate::QuipuOptions>()
            .map(|o| o.date_order)
            .unwrap_or(super::datetime_input::DateOrder::Mdy);
        let session: Option<Tz> = config
            .execution
            .time_zone
            .as_deref()
            .and_then(|z| z.parse::<Tz>().ok());
        Ok(super::transform_up_outside_recursion(plan, &mut |node| {
            super::rewrite_keeping_names(node, |e| read(e, order, session.as_ref()))
        })?
        .data)
    }
}

/// `CAST('text' AS date | timestamp)` (or `TRY_CAST`) with the text
/// PostgreSQL reads written so Arrow's cast reads it alike.
fn read(
    e: Expr,
    order: super::datetime_input::DateOrder,
    session: Option<&Tz>,
) -> Result<Transformed<Expr>> {
    let (expr, to) = match &e {
        Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field }) => {
            (expr, field.data_type())
        }
        _ => return Ok(Transformed::no(e)),
    };
    if !matches!(to, DataType::Date32 | DataType::Timestamp(..)) {
        return Ok(Transformed::no(e));
    }
    let Some(text) = text_literal(expr) else {
        return Ok(Transformed::no(e));
    };
    let zone = match to {
        DataType::Timestamp(_, Some(tz)) if !super::utc_zone(tz) => tz.parse::<Tz>().ok(),
        DataType::Timestamp(_, Some(_)) => session.copied(),
        _ => None,
    };
    let Some(written) = super::time_text::read_as(text, to, zone.as_ref(), order)? else {
        return Ok(Transformed::no(e));
    };
    let lit = Box::new(Expr::Literal(ScalarValue::Utf8(Some(written)), None));
    Ok(Transformed::yes(match e {
        Expr::TryCast(TryCast { field, .. }) => Expr::TryCast(TryCast { expr: lit, field }),
        Expr::Cast(Cast { field, .. }) => Expr::Cast(Cast { expr: lit, field }),
        e => e,
    }))
}

/// `coalesce`: DataFusion's, with text taking the other values' type
/// where DataFusion finds no common one.
pub fn coalesce() -> ScalarUDF {
    let inner = datafusion::functions::core::coalesce();
    ScalarUDF::new_from_impl(Coalesce {
        signature: inner.signature().clone(),
        inner,
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Coalesce {
    inner: Arc<ScalarUDF>,
    signature: Signature,
}

impl ScalarUDFImpl for Coalesce {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, types: &[DataType]) -> Result<Vec<DataType>> {
        let err = match self.inner.coerce_types(types) {
            Ok(t) => return Ok(t),
            Err(e) => e,
        };
        let typed: Vec<DataType> = types
            .iter()
            .filter(|t| !t.is_string() && !t.is_null())
            .cloned()
            .collect();
        if typed.is_empty() || typed.len() == types.len() {
            return Err(err);
        }
        let Some(to) = self.inner.coerce_types(&typed)?.first().cloned() else {
            return Err(err);
        };
        Ok(vec![to; types.len()])
    }

    fn return_type(&self, types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(types)
    }

    fn return_field_from_args(
        &self,
        args: ReturnFieldArgs,
    ) -> Result<datafusion::arrow::datatypes::FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn simplify(
        &self,
        args: Vec<Expr>,
        info: &datafusion::logical_expr::simplify::SimplifyContext,
    ) -> Result<datafusion::logical_expr::simplify::ExprSimplifyResult> {
        self.inner.inner().simplify(args, info)
    }

    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }

    fn conditional_arguments<'a>(
        &self,
        args: &'a [Expr],
    ) -> Option<(Vec<&'a Expr>, Vec<&'a Expr>)> {
        self.inner.conditional_arguments(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.inner.invoke_with_args(args)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::prelude::SessionContext;

    /// Each checked against PostgreSQL 15 by psql.
    #[tokio::test]
    async fn text_literals_take_the_other_values_type() {
        let state = crate::session::build_state(
            Arc::new(datafusion::catalog::MemoryCatalogProviderList::new()),
            datafusion::prelude::SessionConfig::new(),
            Arc::new(datafusion::execution::runtime_env::RuntimeEnv::default()),
        );
        let ctx = SessionContext::new_with_state(state);
        let sql = "SELECT max(CAST(arrow_typeof(CASE WHEN x > 5 THEN x ELSE '7' END) AS text)) AS a, \
                   max(CASE WHEN x > 5 THEN x ELSE '7' END) AS b, \
                   min(coalesce(d, 'Jan 5 2024')) AS c, bool_and(coalesce(NULL, 'yes') = 'yes') AS e, \
                   max(greatest(ts, 'Jan 1 2024 10:00 PM')) AS f \
                   FROM (VALUES (10, CAST(NULL AS date), TIMESTAMP '2023-01-01 00:00'), \
                   (2, DATE '2024-02-29', TIMESTAMP '2023-01-01 00:00')) t(x, d, ts)";
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let got = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        // An integer CASE (as text '7' > '10'), the date PostgreSQL reads.
        assert!(
            got.contains("| Int32 | 10 | 2024-01-05 | true | 2024-01-01T22:00:00 |"),
            "{got}"
        );
    }
}
