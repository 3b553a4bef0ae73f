//! Whole-subtree pushdown: the logical optimizer rule that turns every
//! largest part of a plan that reads one PostgreSQL source only (joins,
//! aggregates, filters, projections over its tables) into one remote query.
//!
//! It runs after DataFusion's own rules, so filters and projections that
//! sit above a subtree have already been pushed into it. The subtree is
//! rendered by `Render`: one `SELECT` per plan node over derived tables
//! with fresh aliases and positional column names, so no reference can
//! name a relation out of scope; only expressions go through DataFusion's
//! unparser (PostgreSQL dialect), and their literals through Quipu's own
//! quoting. The query is wrapped as `SELECT q.c0::type, ... FROM (...) AS
//! q(c0, ...)` so its columns come back in exactly the Arrow types
//! DataFusion planned for them.
//!
//! Only what means the same on both sides is pushed: a short list of
//! functions and aggregates, no string ordering (collations differ), no
//! decimal division (rounding differs), no intervals. Everything else stays
//! in DataFusion, above a smaller pushed subtree; a plan that cannot be
//! rendered is left as it was. A `Sort` at the top of a subtree stays
//! in DataFusion too (a subquery's order is not kept by SQL).
//!
//! datafusion-federation's `VirtualExecutionPlan` is not serialisable (see
//! DESIGN.md), so the rule is ours. MongoDB sorts and aggregates are pushed
//! by `crate::mongo::pushdown`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema, ScalarValue, TableReference};
use datafusion::datasource::{TableProvider, TableType, provider_as_source, source_as_provider};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    Expr, ExprSchemable, JoinType, LogicalPlan, LogicalPlanBuilder, Operator,
    expr::AggregateFunction,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::sql::unparser::Unparser;
use datafusion::sql::unparser::dialect::PostgreSqlDialect;
use quipu_catalog::SourceDef;

use crate::postgres::sql::quote_ident;
use crate::postgres::{PgPools, PgScanExec, PgTable};

/// The optimizer rule (added to every Quipu session after DataFusion's).
#[derive(Debug, Default)]
pub struct PushToSources {
    /// Names the replacement scans `__quipu_remote_N` (unique in a plan).
    counter: AtomicUsize,
}

impl OptimizerRule for PushToSources {
    fn name(&self) -> &str {
        "quipu_push_to_sources"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        None
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> DfResult<Transformed<LogicalPlan>> {
        plan.transform_down(|node| {
            let Some(source) = pg_source(&node) else {
                return places_apart(node);
            };
            if !worth_pushing(&node) {
                return Ok(Transformed::no(node));
            }
            let n = self.counter.fetch_add(1, Ordering::Relaxed);
            match remote_plan(&node, source, n)? {
                Some(replaced) => Ok(Transformed::new(replaced, true, TreeNodeRecursion::Jump)),
                None => Ok(Transformed::no(node)),
            }
        })
    }
}

/// The PostgreSQL table behind a scan, when it is one and allows pushdown.
fn pg_table(scan: &datafusion::logical_expr::TableScan) -> Option<Arc<dyn TableProvider>> {
    let provider = source_as_provider(&scan.source).ok()?;
    let table = provider.as_ref().downcast_ref::<PgTable>()?;
    table.pushdown().then_some(provider)
}

/// The one PostgreSQL source a whole subtree reads, if it reads exactly one
/// and every node and expression in it can be said in PostgreSQL's SQL with
/// the same meaning.
fn pg_source(plan: &LogicalPlan) -> Option<Arc<dyn TableProvider>> {
    let same = |a: Arc<dyn TableProvider>, b: Arc<dyn TableProvider>| {
        let (ta, tb) = (
            a.as_ref().downcast_ref::<PgTable>()?,
            b.as_ref().downcast_ref::<PgTable>()?,
        );
        (ta.source().name == tb.source().name
            && crate::remote::options_key(ta.source()) == crate::remote::options_key(tb.source()))
        .then_some(a)
    };
    let all_ok = |exprs: &[&Expr], schema: &DFSchema| exprs.iter().all(|e| expr_ok(e, schema));
    let source = match plan {
        LogicalPlan::TableScan(scan) => {
            let provider = pg_table(scan)?;
            let schema =
                DFSchema::try_from_qualified_schema(scan.table_name.clone(), &scan.source.schema())
                    .ok()?;
            all_ok(&scan.filters.iter().collect::<Vec<_>>(), &schema).then_some(provider)?
        }
        LogicalPlan::Projection(p) => {
            let s = pg_source(&p.input)?;
            all_ok(&p.expr.iter().collect::<Vec<_>>(), p.input.schema()).then_some(s)?
        }
        LogicalPlan::Filter(f) => {
            let s = pg_source(&f.input)?;
            expr_ok(&f.predicate, f.input.schema()).then_some(s)?
        }
        LogicalPlan::SubqueryAlias(a) => pg_source(&a.input)?,
        LogicalPlan::Limit(l) => {
            let literal = |e: &Option<Box<Expr>>| {
                e.as_deref()
                    .is_none_or(|e| matches!(e, Expr::Literal(ScalarValue::Int64(Some(_)), _)))
            };
            if !literal(&l.skip) || !literal(&l.fetch) {
                return None;
            }
            pg_source(&l.input)?
        }
        LogicalPlan::Sort(s) => {
            let s2 = pg_source(&s.input)?;
            let exprs: Vec<&Expr> = s.expr.iter().map(|e| &e.expr).collect();
            // Sorting strings depends on the remote collation.
            let strings = exprs.iter().any(|e| {
                e.get_type(s.input.schema())
                    .map(|t| is_string(&t))
                    .unwrap_or(true)
            });
            (!strings && all_ok(&exprs, s.input.schema())).then_some(s2)?
        }
        LogicalPlan::Aggregate(a) => {
            let s = pg_source(&a.input)?;
            if a.group_expr
                .iter()
                .any(|e| matches!(e, Expr::GroupingSet(_)))
            {
                return None;
            }
            let exprs: Vec<&Expr> = a.group_expr.iter().chain(&a.aggr_expr).collect();
            all_ok(&exprs, a.input.schema()).then_some(s)?
        }
        LogicalPlan::Join(j) => {
            if !matches!(
                j.join_type,
                JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full
            ) || j.null_equality != datafusion::common::NullEquality::NullEqualsNothing
            {
                return None;
            }
            let s = same(pg_source(&j.left)?, pg_source(&j.right)?)?;
            let joined = j.left.schema().join(j.right.schema()).ok()?;
            let mut exprs: Vec<&Expr> = j.on.iter().flat_map(|(l, r)| [l, r]).collect();
            exprs.extend(j.filter.iter());
            let keys_ok = j.on.iter().all(|(l, _)| {
                l.get_type(j.left.schema())
                    .map(|t| castable(&t).is_some())
                    .unwrap_or(false)
            });
            (keys_ok && all_ok(&exprs, &joined)).then_some(s)?
        }
        _ => return None,
    };
    // What comes back must be decodable in the planned types.
    plan.schema()
        .fields()
        .iter()
        .all(|f| castable(f.data_type()).is_some())
        .then_some(source)
}

/// Pushing pays off when the subtree does more than a scan already does
/// (filters, projections and limits are pushed by the scan itself), and it
/// does not end in a sort (whose order a subquery would not keep).
fn worth_pushing(plan: &LogicalPlan) -> bool {
    let mut top = plan;
    loop {
        match top {
            LogicalPlan::Projection(p) => top = &p.input,
            LogicalPlan::SubqueryAlias(a) => top = &a.input,
            LogicalPlan::Limit(l) => top = &l.input,
            LogicalPlan::Sort(_) => return false,
            _ => break,
        }
    }
    let mut found = false;
    let _ = plan.apply(|n| {
        if matches!(n, LogicalPlan::Join(_) | LogicalPlan::Aggregate(_)) || asks_places(n) {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// A projection that cannot be pushed whole but reads a pushable input
/// and asks for the places of its columns (`scale(c)`, [`asks_places`]),
/// as two: the places computed in a projection of their own right over
/// the input, which is pushed with it, and the rest above. Otherwise the
/// source would not be asked, and every value would have the column's
/// places (`SELECT n, s || 'x'` printed `1.5000000000`).
fn places_apart(node: LogicalPlan) -> DfResult<Transformed<LogicalPlan>> {
    use datafusion::logical_expr::Projection;
    let LogicalPlan::Projection(p) = node else {
        return Ok(Transformed::no(node));
    };
    let of_column = |e: &Expr| matches!(e, Expr::ScalarFunction(f) if f.name() == "scale" && matches!(f.args.as_slice(), [Expr::Column(_)]));
    let mut asked: Vec<Expr> = vec![];
    for e in &p.expr {
        let _ = e.apply(|x| {
            if of_column(x) && !asked.contains(x) {
                asked.push(x.clone());
            }
            Ok(TreeNodeRecursion::Continue)
        });
    }
    if asked.is_empty() || pg_source(&p.input).is_none() {
        return Ok(Transformed::no(LogicalPlan::Projection(p)));
    }
    let name = |k: usize| format!("__quipu_scale_{k}");
    let mut below: Vec<Expr> = p
        .input
        .schema()
        .iter()
        .map(|(q, f)| Expr::Column(Column::from((q, f))))
        .collect();
    below.extend(
        asked
            .iter()
            .enumerate()
            .map(|(k, e)| e.clone().alias(name(k))),
    );
    let below = Projection::try_new(below, p.input.clone())?;
    let names = datafusion::logical_expr::expr_rewriter::NamePreserver::new_for_projection();
    let above = p
        .expr
        .into_iter()
        .map(|e| {
            let saved = names.save(&e);
            let replaced = e.transform_up(|x| {
                Ok(match asked.iter().position(|a| *a == x) {
                    Some(k) => Transformed::yes(Expr::Column(Column::from_name(name(k)))),
                    None => Transformed::no(x),
                })
            })?;
            Ok(saved.restore(replaced.data))
        })
        .collect::<DfResult<Vec<_>>>()?;
    Ok(Transformed::yes(LogicalPlan::Projection(
        Projection::try_new(above, Arc::new(LogicalPlan::Projection(below)))?,
    )))
}

/// Whether `node` computes `scale(x)`, the places of a numeric, which only
/// the source knows for a `numeric` without a precision (each value keeps
/// its own): the front door asks for them to print such a column as
/// PostgreSQL does (`scheduler`'s `scales`).
fn asks_places(node: &LogicalPlan) -> bool {
    node.expressions().iter().any(|e| {
        e.exists(|e| Ok(matches!(e, Expr::ScalarFunction(f) if f.name() == "scale")))
            .unwrap_or(false)
    })
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn is_int(t: &DataType) -> bool {
    t.is_integer()
}

fn is_number(t: &DataType) -> bool {
    t.is_integer() || t.is_floating() || matches!(t, DataType::Decimal128(..))
}

fn is_time(t: &DataType) -> bool {
    matches!(t, DataType::Date32 | DataType::Timestamp(..))
}

/// The PostgreSQL type a result column is cast to so that it decodes into
/// the Arrow type DataFusion planned (None: not pushable).
fn castable(t: &DataType) -> Option<String> {
    crate::postgres::types::Wire::of_arrow(t).map(|w| w.cast())
}

/// Scalar functions that PostgreSQL has with the same name, arguments and
/// meaning (connections run with `TimeZone=UTC`).
const SCALARS: &[&str] = &[
    "abs",
    "ceil",
    "floor",
    "lower",
    "upper",
    "btrim",
    "ltrim",
    "rtrim",
    "coalesce",
    "nullif",
    "concat",
    "char_length",
    "character_length",
    "length",
    "date_trunc",
    "starts_with",
    // A numeric's own places (`dialect::pg_numeric::scale`): only the
    // source knows them for a `numeric` without a precision.
    "scale",
];

fn literal_ok(v: &ScalarValue) -> bool {
    v.is_null()
        || matches!(
            v,
            ScalarValue::Boolean(_)
                | ScalarValue::Int8(_)
                | ScalarValue::Int16(_)
                | ScalarValue::Int32(_)
                | ScalarValue::Int64(_)
                | ScalarValue::Decimal128(..)
                | ScalarValue::Date32(_)
        )
        // The unparser prints an infinite double as a name (`-inf`: "column
        // \"inf\" does not exist" at the source); such a filter is evaluated
        // here.
        || matches!(v, ScalarValue::Float64(Some(x)) if x.is_finite())
        // PostgreSQL text cannot hold NUL: such a filter is evaluated here.
        || matches!(v, ScalarValue::Utf8(Some(s)) if !s.contains('\0'))
}

/// Whether every name the unparser would print (columns, aliases, table
/// qualifiers, the remote tables' names) can be quoted safely by it; see
/// `sql::ident_ok`. A plan with another name is not pushed.
fn idents_ok(plan: &LogicalPlan, remote: &HashMap<Vec<String>, Vec<String>>) -> bool {
    use crate::postgres::sql::ident_ok;
    let table_ok = |t: &TableReference| t.to_vec().iter().all(|p| ident_ok(p));
    let expr_bad = |e: &Expr| {
        e.exists(|e| {
            Ok(match e {
                Expr::Column(c) => !ident_ok(&c.name) || !c.relation.as_ref().is_none_or(&table_ok),
                Expr::Alias(a) => !ident_ok(&a.name) || !a.relation.as_ref().is_none_or(&table_ok),
                _ => false,
            })
        })
        .unwrap_or(true)
    };
    let node_bad = |node: &LogicalPlan| {
        let schema_ok = node
            .schema()
            .iter()
            .all(|(q, f)| ident_ok(f.name()) && q.is_none_or(&table_ok));
        let names_ok = match node {
            LogicalPlan::TableScan(scan) => {
                table_ok(&scan.table_name)
                    && scan
                        .source
                        .schema()
                        .fields()
                        .iter()
                        .all(|f| ident_ok(f.name()))
            }
            LogicalPlan::SubqueryAlias(a) => table_ok(&a.alias),
            _ => true,
        };
        !schema_ok || !names_ok || node.expressions().iter().any(expr_bad)
    };
    remote.values().flatten().all(|p| ident_ok(p))
        && !plan.exists(|node| Ok(node_bad(node))).unwrap_or(true)
}

/// Whether an expression means the same in PostgreSQL.
fn expr_ok(e: &Expr, schema: &DFSchema) -> bool {
    let mut ok = true;
    let ty = |e: &Expr| e.get_type(schema).ok();
    let _ = e.apply(|e| {
        // A `timestamptz` in the session's zone (`scheduler/src/zones.rs`)
        // means another thing on a connection that runs in UTC.
        let zoned = matches!(ty(e), Some(DataType::Timestamp(_, Some(tz)))
            if !crate::dialect::utc_zone(&tz));
        let good = !zoned && match e {
            Expr::Column(_) | Expr::Alias(_) => true,
            Expr::Literal(v, _) => literal_ok(v),
            Expr::BinaryExpr(b) => {
                let (l, r) = (ty(&b.left), ty(&b.right));
                let strings = l.as_ref().is_some_and(is_string) || r.as_ref().is_some_and(is_string);
                match b.op {
                    Operator::Eq
                    | Operator::NotEq
                    | Operator::And
                    | Operator::Or
                    | Operator::IsDistinctFrom
                    | Operator::IsNotDistinctFrom => true,
                    // String order depends on the remote collation.
                    Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq => !strings,
                    Operator::Plus | Operator::Minus | Operator::Multiply => {
                        l.as_ref().is_some_and(is_number) && r.as_ref().is_some_and(is_number)
                    }
                    // Integer division truncates on both sides; decimal
                    // division rounds differently.
                    Operator::Divide | Operator::Modulo => matches!(
                        (&l, &r),
                        (Some(a), Some(b)) if (is_int(a) && is_int(b)) || (a.is_floating() && b.is_floating())
                    ),
                    _ => false,
                }
            }
            Expr::Not(_)
            | Expr::IsNull(_)
            | Expr::IsNotNull(_)
            | Expr::IsTrue(_)
            | Expr::IsFalse(_)
            | Expr::IsNotTrue(_)
            | Expr::IsNotFalse(_)
            | Expr::Negative(_)
            | Expr::Case(_)
            | Expr::InList(_) => true,
            Expr::Between(b) => !ty(&b.expr).is_some_and(|t| is_string(&t)),
            Expr::Like(l) => l.escape_char.is_none(),
            Expr::Cast(c) => match ty(&c.expr) {
                Some(from) => {
                    let to = c.field.data_type();
                    // PostgreSQL rounds a decimal or float cast to an
                    // integer; Quipu's plan spells out the rounding with
                    // truncating casts (scheduler/src/rounding.rs), which
                    // must not be rounded again there.
                    let rounds = !is_int(&from) && is_int(to);
                    (is_number(&from) && is_number(to) && !rounds)
                        || (is_time(&from) && is_time(to))
                        || from == *to
                }
                None => false,
            },
            Expr::ScalarFunction(f) => SCALARS.contains(&f.name()),
            Expr::AggregateFunction(AggregateFunction { func, params }) => {
                let arg = params.args.first().and_then(ty);
                params.order_by.is_empty()
                    && match func.name() {
                        "count" => true,
                        "sum" => arg.as_ref().is_some_and(is_number),
                        // Averages of decimals round differently.
                        "avg" => arg.is_some_and(|t| is_int(&t) || t.is_floating()),
                        // String min/max depend on the remote collation.
                        "min" | "max" => !arg.is_some_and(|t| is_string(&t)),
                        _ => false,
                    }
            }
            _ => false,
        };
        if good {
            Ok(TreeNodeRecursion::Continue)
        } else {
            ok = false;
            Ok(TreeNodeRecursion::Stop)
        }
    });
    ok && ty(e).is_some_and(|t| castable(&t).is_some() || t == DataType::Null)
}

/// The replacement of a pushable subtree: a scan of one remote query,
/// re-labelled with the subtree's column names and qualifiers. `None` when
/// the subtree cannot be rendered as one query (see `Render`).
fn remote_plan(
    plan: &LogicalPlan,
    provider: Arc<dyn TableProvider>,
    n: usize,
) -> DfResult<Option<LogicalPlan>> {
    let table = provider
        .as_ref()
        .downcast_ref::<PgTable>()
        .expect("pg_source returns PostgreSQL tables");
    // Quipu's table names in this subtree -> the remote `schema.table`.
    let mut names: HashMap<Vec<String>, Vec<String>> = HashMap::new();
    plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(p) = source_as_provider(&scan.source)
            && let Some(t) = p.as_ref().downcast_ref::<PgTable>()
        {
            let quipu: Vec<String> = scan.table_name.to_vec();
            names.insert(quipu, vec![t.name().schema.clone(), t.name().table.clone()]);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    if !idents_ok(plan, &names) {
        return Ok(None);
    }
    // A subtree of no column (only its rows matter: the cluster's plan of
    // a NOT IN keeps just the check of the subquery's counts) has no query
    // of its own to read: `SELECT  FROM ...`, `AS q()` were syntax errors
    // at the source (seed 1 #3755 of the long run). Its inputs are pushed.
    if plan.schema().fields().is_empty() {
        return Ok(None);
    }
    let Some(sql) = Render::new().block(plan) else {
        tracing::debug!("not pushing a subtree that cannot be rendered as one query");
        return Ok(None);
    };
    let out = plan.schema();
    let fields: Vec<Field> = out
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            // With its metadata: how a column read as text is read
            // (`sql::text_read`).
            Field::new(format!("c{i}"), f.data_type().clone(), f.is_nullable())
                .with_metadata(f.metadata().clone())
        })
        .collect();
    let remote_table = Arc::new(RemoteQueryTable {
        source: table.source().clone(),
        pools: table.pools().clone(),
        schema: Arc::new(Schema::new(fields)),
        sql,
        exact_decimals: exact_decimals(plan),
    });
    let alias = format!("__quipu_remote_{n}");
    let labels: Vec<Expr> = out
        .iter()
        .enumerate()
        .map(|(i, (qualifier, f))| {
            let c = Expr::Column(Column::new(
                Some(TableReference::bare(alias.as_str())),
                format!("c{i}"),
            ));
            match qualifier {
                Some(q) => c.alias_qualified(Some(q.clone()), f.name()),
                None => c.alias(f.name()),
            }
        })
        .collect();
    let replaced =
        LogicalPlanBuilder::scan(alias.as_str(), provider_as_source(remote_table), None)?
            .project(labels)?
            .build()?;
    Ok(Some(replaced))
}

/// Renders a pushable subtree as one PostgreSQL query of Quipu's own shape.
///
/// Every plan node is one `SELECT` whose inputs are derived tables with
/// fresh aliases (`"t0"`, `"t1"`, ...) and whose columns are named by
/// position (`"c0"`, `"c1"`, ... in the node's schema order), so every
/// column reference is `"tN"."cK"` of a relation in the same `FROM`, and
/// nothing depends on the names or qualifiers DataFusion gave the columns.
/// PostgreSQL folds such simple subqueries back into one join tree when it
/// plans the query.
///
/// DataFusion 55's unparser (`plan_to_sql`) wraps a projection below a
/// join or a filter in a derived table it names `derived_projection`, yet
/// keeps the inner table's name on the references outside it (`missing
/// FROM-clause entry for table "customers"` for an unaliased join with a
/// filter, and for `LEFT JOIN ... WHERE o.order_id IS NULL` even with
/// aliases), and moves the filters of an outer join's inputs into its
/// `ON`. So only expressions are unparsed here (`Unparser::expr_to_sql`),
/// each with its columns first replaced by their positions, and rendered
/// with Quipu's literal quoting (`sql::render_unparsed`). `None`
/// for anything that cannot be said this way: the caller then keeps the
/// subtree in DataFusion, over smaller pushed parts.
struct Render {
    dialect: PostgreSqlDialect,
    aliases: usize,
}

/// A column of a node's input: the input's alias in the `FROM` and the
/// column's position in that input.
type Input<'a> = (&'a str, &'a DFSchema);

impl Render {
    fn new() -> Render {
        Render {
            dialect: PostgreSqlDialect {},
            aliases: 0,
        }
    }

    fn alias(&mut self) -> String {
        let a = format!("t{}", self.aliases);
        self.aliases += 1;
        a
    }

    /// An expression over a node's inputs, its columns replaced by
    /// `"tN"."cK"`. A column that names no input column, or more than one,
    /// makes the node unpushable.
    fn expr(&self, e: &Expr, inputs: &[Input]) -> Option<String> {
        self.expr_with(e, |c| {
            let (alias, i) = position(inputs, c)?;
            Some(Column::new(
                Some(TableReference::bare(alias)),
                format!("c{i}"),
            ))
        })
    }

    fn expr_with(&self, e: &Expr, column: impl Fn(&Column) -> Option<Column>) -> Option<String> {
        let e = e
            .clone()
            .unalias_nested()
            .data
            .transform(|e| match e {
                Expr::Column(c) => match column(&c) {
                    Some(c) => Ok(Transformed::yes(Expr::Column(c))),
                    None => datafusion::common::plan_err!("column {c} is not an input column"),
                },
                other => Ok(Transformed::no(other)),
            })
            .ok()?
            .data;
        let ast = Unparser::new(&self.dialect).expr_to_sql(&e).ok()?;
        crate::postgres::sql::render_unparsed(ast)
    }

    /// `"t"."c0" AS "c0", ...`: the `n` columns of input `t` as they are,
    /// named from `c{first}` on.
    /// `exprs` as the select items `... AS "c0", ... AS "c1"`, or None if
    /// one cannot be rendered.
    fn numbered<'e>(
        &self,
        exprs: impl Iterator<Item = &'e Expr>,
        inputs: &[Input],
    ) -> Option<Vec<String>> {
        exprs
            .enumerate()
            .map(|(k, e)| Some(format!("{} AS \"c{k}\"", self.expr(e, inputs)?)))
            .collect()
    }

    fn passthrough(alias: &str, n: usize, first: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("{}.\"c{i}\" AS \"c{}\"", quote_ident(alias), first + i))
            .collect()
    }

    fn order_by(
        &self,
        sort: &[datafusion::logical_expr::SortExpr],
        inputs: &[Input],
    ) -> Option<String> {
        let keys = sort
            .iter()
            .map(|s| {
                Some(format!(
                    "{} {} NULLS {}",
                    self.expr(&s.expr, inputs)?,
                    if s.asc { "ASC" } else { "DESC" },
                    if s.nulls_first { "FIRST" } else { "LAST" }
                ))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(format!(" ORDER BY {}", keys.join(", ")))
    }

    /// The query of a scan, with the filter and the projection right above
    /// it (and its alias) when there are.
    fn scan(
        &mut self,
        scan: &datafusion::logical_expr::TableScan,
        alias: Option<&TableReference>,
        filter: Option<&Expr>,
        projection: Option<&[Expr]>,
    ) -> Option<String> {
        let provider = source_as_provider(&scan.source).ok()?;
        let table = provider.as_ref().downcast_ref::<PgTable>()?;
        let schema = scan.source.schema();
        let t = self.alias();
        // Everything here names the table's own columns, by the table's
        // name or its alias.
        let own = |c: &Column| {
            let ours = c.relation.as_ref().is_none_or(|r| {
                r.resolved_eq(&scan.table_name) || alias.is_some_and(|a| r.resolved_eq(a))
            });
            (ours && schema.index_of(&c.name).is_ok())
                .then(|| Column::new(Some(TableReference::bare(t.as_str())), &c.name))
        };
        let items = match projection {
            Some(exprs) => exprs
                .iter()
                .enumerate()
                .map(|(k, e)| Some(format!("{} AS \"c{k}\"", self.expr_with(e, own)?)))
                .collect::<Option<Vec<_>>>()?,
            None => {
                let indices: Vec<usize> = match &scan.projection {
                    Some(p) => p.clone(),
                    None => (0..schema.fields().len()).collect(),
                };
                indices
                    .iter()
                    .enumerate()
                    .map(|(k, &i)| {
                        format!(
                            "{}.{} AS \"c{k}\"",
                            quote_ident(&t),
                            quote_ident(schema.field(i).name())
                        )
                    })
                    .collect()
            }
        };
        let mut rest = format!(
            "{}.{} AS {}",
            quote_ident(&table.name().schema),
            quote_ident(&table.name().table),
            quote_ident(&t)
        );
        // DataFusion keeps a filter it pushed into the scan above it too.
        let mut conjuncts: Vec<&Expr> = scan.filters.iter().collect();
        for e in filter
            .map(datafusion::logical_expr::utils::split_conjunction)
            .unwrap_or_default()
        {
            if !conjuncts.contains(&e) {
                conjuncts.push(e);
            }
        }
        let conditions = conjuncts
            .iter()
            .map(|f| Some(format!("({})", self.expr_with(f, own)?)))
            .collect::<Option<Vec<_>>>()?;
        if !conditions.is_empty() {
            rest.push_str(&format!(" WHERE {}", conditions.join(" AND ")));
        }
        if let Some(n) = scan.fetch {
            rest.push_str(&format!(" LIMIT {n}"));
        }
        Some(format!("SELECT {} FROM {rest}", items.join(", ")))
    }

    /// The query of a join, with the filter and the projection right above
    /// it when there are.
    fn join(
        &mut self,
        j: &datafusion::logical_expr::Join,
        filter: Option<&Expr>,
        projection: Option<&[Expr]>,
    ) -> Option<String> {
        let keyword = match j.join_type {
            JoinType::Inner => "INNER JOIN",
            JoinType::Left => "LEFT JOIN",
            JoinType::Right => "RIGHT JOIN",
            JoinType::Full => "FULL JOIN",
            _ => return None,
        };
        if j.null_equality != datafusion::common::NullEquality::NullEqualsNothing {
            return None;
        }
        let left = self.block(&j.left)?;
        let l = self.alias();
        let right = self.block(&j.right)?;
        let r = self.alias();
        let (ls, rs) = (j.left.schema().as_ref(), j.right.schema().as_ref());
        let both = [(l.as_str(), ls), (r.as_str(), rs)];
        let mut on =
            j.on.iter()
                .map(|(a, b)| {
                    Some(format!(
                        "{} = {}",
                        self.expr(a, &both[..1])?,
                        self.expr(b, &both[1..])?
                    ))
                })
                .collect::<Option<Vec<_>>>()?;
        if let Some(f) = &j.filter {
            on.push(format!("({})", self.expr(f, &both)?));
        }
        if on.is_empty() {
            on.push("TRUE".into());
        }
        let items = match projection {
            Some(exprs) => self.numbered(exprs.iter(), &both)?,
            None => {
                let mut items = Self::passthrough(&l, ls.fields().len(), 0);
                items.extend(Self::passthrough(&r, rs.fields().len(), ls.fields().len()));
                items
            }
        };
        let mut sql = format!(
            "SELECT {} FROM ({left}) AS {} {keyword} ({right}) AS {} ON {}",
            items.join(", "),
            quote_ident(&l),
            quote_ident(&r),
            on.join(" AND ")
        );
        if let Some(f) = filter {
            sql.push_str(&format!(" WHERE {}", self.expr(f, &both)?));
        }
        Some(sql)
    }

    /// The query of one node: its columns are `c0, c1, ...` in the order of
    /// the node's schema.
    fn block(&mut self, plan: &LogicalPlan) -> Option<String> {
        let from = |sql: &str, alias: &str| format!("({sql}) AS {}", quote_ident(alias));
        let select =
            |items: Vec<String>, rest: String| format!("SELECT {} FROM {rest}", items.join(", "));
        // A projection and a filter right above a scan or a join are said
        // in the scan's or the join's own `SELECT`.
        let (projection, below) = match plan {
            LogicalPlan::Projection(p) if !is_identity(p) => {
                (Some(p.expr.as_slice()), p.input.as_ref())
            }
            _ => (None, plan),
        };
        let (filter, base) = match below {
            LogicalPlan::Filter(f) => (Some(&f.predicate), f.input.as_ref()),
            _ => (None, below),
        };
        // (A table's alias names the scan's columns as well as its name.)
        let (alias, base) = match base {
            LogicalPlan::SubqueryAlias(a)
                if matches!(a.input.as_ref(), LogicalPlan::TableScan(_)) =>
            {
                (Some(&a.alias), a.input.as_ref())
            }
            _ => (None, base),
        };
        match base {
            // (A filter above a scan with a limit filters what the limit kept.)
            LogicalPlan::TableScan(scan) if filter.is_none() || scan.fetch.is_none() => {
                return self.scan(scan, alias, filter, projection);
            }
            LogicalPlan::Join(j) => return self.join(j, filter, projection),
            _ => {}
        }
        Some(match plan {
            LogicalPlan::TableScan(scan) => self.scan(scan, None, None, None)?,
            LogicalPlan::Projection(p) if is_identity(p) => self.block(&p.input)?,
            LogicalPlan::SubqueryAlias(a) => self.block(&a.input)?,
            LogicalPlan::Projection(p) => {
                let input = self.block(&p.input)?;
                let t = self.alias();
                let inputs = [(t.as_str(), p.input.schema().as_ref())];
                let items = self.numbered(p.expr.iter(), &inputs)?;
                select(items, from(&input, &t))
            }
            LogicalPlan::Filter(f) => {
                let input = self.block(&f.input)?;
                let t = self.alias();
                let predicate = self.expr(&f.predicate, &[(t.as_str(), f.input.schema())])?;
                let items = Self::passthrough(&t, f.input.schema().fields().len(), 0);
                select(items, format!("{} WHERE {predicate}", from(&input, &t)))
            }
            LogicalPlan::Aggregate(a) => {
                let input = self.block(&a.input)?;
                let t = self.alias();
                let inputs = [(t.as_str(), a.input.schema().as_ref())];
                let items = self.numbered(a.group_expr.iter().chain(&a.aggr_expr), &inputs)?;
                let mut rest = from(&input, &t);
                if !a.group_expr.is_empty() {
                    let keys: Vec<String> =
                        (1..=a.group_expr.len()).map(|i| i.to_string()).collect();
                    rest.push_str(&format!(" GROUP BY {}", keys.join(", ")));
                }
                select(items, rest)
            }
            // Order means nothing inside a query but under a limit.
            LogicalPlan::Sort(s) if s.fetch.is_none() => self.block(&s.input)?,
            LogicalPlan::Sort(s) => {
                let input = self.block(&s.input)?;
                let t = self.alias();
                let order = self.order_by(&s.expr, &[(t.as_str(), s.input.schema())])?;
                let items = Self::passthrough(&t, s.input.schema().fields().len(), 0);
                let n = s.fetch?;
                select(items, format!("{}{order} LIMIT {n}", from(&input, &t)))
            }
            LogicalPlan::Limit(l) => {
                use datafusion::logical_expr::{FetchType, SkipType};
                let (SkipType::Literal(skip), FetchType::Literal(fetch)) =
                    (l.get_skip_type().ok()?, l.get_fetch_type().ok()?)
                else {
                    return None;
                };
                // The rows a limit keeps depend on the order of a sort
                // right below it, which is rendered in the same `SELECT`;
                // the order of a sort further down is not kept.
                let (below, sort) = match l.input.as_ref() {
                    LogicalPlan::Sort(s) => (s.input.as_ref(), Some(s)),
                    other if ordered_below(other) => return None,
                    other => (other, None),
                };
                let input = self.block(below)?;
                let t = self.alias();
                let mut rest = from(&input, &t);
                // A sort's own fetch comes before the limit's offset.
                let fetch = match (fetch, sort.and_then(|s| s.fetch)) {
                    (Some(n), Some(f)) => Some(n.min(f.saturating_sub(skip))),
                    (None, Some(f)) => Some(f.saturating_sub(skip)),
                    (n, None) => n,
                };
                if let Some(s) = sort {
                    rest.push_str(&self.order_by(&s.expr, &[(t.as_str(), below.schema())])?);
                }
                if let Some(n) = fetch {
                    rest.push_str(&format!(" LIMIT {n}"));
                }
                if skip > 0 {
                    rest.push_str(&format!(" OFFSET {skip}"));
                }
                select(
                    Self::passthrough(&t, below.schema().fields().len(), 0),
                    rest,
                )
            }
            _ => return None,
        })
    }
}

/// A projection that gives back its input's columns as they are, in their
/// order (renamed or not): nothing to say in SQL.
fn is_identity(p: &datafusion::logical_expr::Projection) -> bool {
    let input = p.input.schema();
    p.expr.len() == input.fields().len()
        && p.expr.iter().enumerate().all(|(i, e)| {
            matches!(e.clone().unalias_nested().data, Expr::Column(c) if position(&[("", input)], &c) == Some(("", i)))
        })
}

/// Whether a sort sits below a node, through nodes that keep its order in
/// DataFusion (but not across a derived table in SQL).
fn ordered_below(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::Sort(_) => true,
        LogicalPlan::Projection(p) => ordered_below(&p.input),
        LogicalPlan::Filter(f) => ordered_below(&f.input),
        LogicalPlan::SubqueryAlias(a) => ordered_below(&a.input),
        LogicalPlan::Limit(l) => ordered_below(&l.input),
        _ => false,
    }
}

/// The one input column a column reference names: its input's alias and
/// its position there (`None` when it names none or more than one).
fn position<'a>(inputs: &[Input<'a>], c: &Column) -> Option<(&'a str, usize)> {
    let mut found = None;
    for (alias, schema) in inputs {
        for (i, (q, f)) in schema.iter().enumerate() {
            let same = f.name() == &c.name
                && match (&c.relation, q) {
                    (Some(a), Some(b)) => a.resolved_eq(b),
                    (Some(_), None) => false,
                    (None, _) => true,
                };
            if same {
                if found.is_some() {
                    return None;
                }
                found = Some((*alias, i));
            }
        }
    }
    found
}

/// One remote query over one PostgreSQL source, as a table whose columns
/// are the query's, by position (`c0`, `c1`, ...).
#[derive(Debug)]
pub struct RemoteQueryTable {
    source: SourceDef,
    pools: Arc<PgPools>,
    schema: SchemaRef,
    sql: String,
    /// The decimals the query returns must fit their Arrow types exactly
    /// (see [`exact_decimals`]).
    exact_decimals: bool,
}

/// Whether every decimal a pushed plan returns is a table's column or
/// computed without a division (sums, differences, products, min, max):
/// then PostgreSQL's value has no more digits than the type DataFusion
/// gives it from the catalog, unless the column changed at the source (a
/// column altered from numeric(12,2) to numeric(14,4) gave 1.23 for
/// 1.2345 through the cast to the catalog's type), and the decoder checks
/// that it fits (`PgScanExec::exact_decimals`). `avg` and `/` have more
/// digits by nature, and are cut to DataFusion's scale as before.
fn exact_decimals(plan: &LogicalPlan) -> bool {
    let cuts = |e: &Expr| match e {
        Expr::BinaryExpr(b) => b.op == Operator::Divide,
        Expr::AggregateFunction(f) => !matches!(f.func.name(), "sum" | "min" | "max" | "count"),
        Expr::WindowFunction(_) | Expr::ScalarFunction(_) => true,
        _ => false,
    };
    let found = plan.exists(|node| {
        let mut found = false;
        node.apply_expressions(|e| {
            found = e.exists(|e| Ok(cuts(e)))?;
            Ok(if found {
                TreeNodeRecursion::Stop
            } else {
                TreeNodeRecursion::Continue
            })
        })?;
        Ok(found)
    });
    // The walks never fail; if one did, nothing would be checked.
    !found.unwrap_or(true)
}

impl RemoteQueryTable {
    pub fn from_parts(
        source: SourceDef,
        pools: Arc<PgPools>,
        schema: SchemaRef,
        sql: String,
        exact_decimals: bool,
    ) -> RemoteQueryTable {
        RemoteQueryTable {
            source,
            pools,
            schema,
            sql,
            exact_decimals,
        }
    }

    pub fn exact_decimals(&self) -> bool {
        self.exact_decimals
    }

    pub fn source(&self) -> &SourceDef {
        &self.source
    }

    /// The pushed query (before the column casts the scan adds).
    pub fn sql(&self) -> &str {
        &self.sql
    }
}

#[async_trait]
impl TableProvider for RemoteQueryTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let (indices, schema) = crate::remote::projected(&self.schema, projection)?;
        let select: Vec<String> = indices
            .iter()
            .map(|&i| {
                let f = self.schema.field(i);
                // Checked when the subtree was pushed; a decoded plan could
                // still carry anything.
                let cast = castable(f.data_type()).ok_or_else(|| {
                    datafusion::error::DataFusionError::Plan(format!(
                        "source `{}`: column type {} cannot be read from a pushed query",
                        self.source.name,
                        f.data_type()
                    ))
                })?;
                let c = format!("q.{}", quote_ident(f.name()));
                Ok(match f.data_type() {
                    // Not cast to the catalog's numeric(p,s), which would
                    // round: the decoder checks that each value fits.
                    DataType::Decimal128(..) if self.exact_decimals => format!("{c}::numeric"),
                    DataType::Utf8 => crate::postgres::sql::text_read(&c, f),
                    _ => format!("{c}::{cast}"),
                })
            })
            .collect::<DfResult<_>>()?;
        let columns: Vec<String> = self
            .schema
            .fields()
            .iter()
            .map(|f| quote_ident(f.name()))
            .collect();
        let mut sql = format!(
            "SELECT {} FROM ({}) AS q({})",
            if select.is_empty() {
                "NULL".to_string()
            } else {
                select.join(", ")
            },
            self.sql,
            columns.join(", ")
        );
        if let Some(n) = limit {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        Ok(Arc::new(
            PgScanExec::new(self.source.clone(), self.pools.clone(), schema, sql)
                .exact_decimals(self.exact_decimals),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::catalog::{
        CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider, SchemaProvider,
    };
    use datafusion::execution::SessionStateBuilder;
    use datafusion::prelude::SessionContext;
    use datafusion::sql::sqlparser::ast;
    use quipu_catalog::{SourceKind, TableName};
    use std::ops::ControlFlow;

    /// A session over two tables of one PostgreSQL source `crm` (never
    /// connected to: only planned).
    fn session() -> SessionContext {
        let state = SessionStateBuilder::new()
            .with_default_features()
            .with_optimizer_rule(Arc::new(PushToSources::default()))
            .build();
        let ctx = SessionContext::new_with_state(state);
        let source = SourceDef {
            name: "crm".into(),
            kind: SourceKind::Postgres,
            options: [("dbname".to_string(), "crm".to_string())].into(),
        };
        let pools = Arc::new(PgPools::default());
        let schema = MemorySchemaProvider::new();
        let int = |n: &str| Field::new(n, DataType::Int64, false);
        let text = |n: &str| Field::new(n, DataType::Utf8, true);
        let tables = [
            (
                "customers",
                vec![
                    int("customer_id"),
                    text("email"),
                    text("city"),
                    text("segment"),
                ],
            ),
            (
                "orders",
                vec![
                    int("order_id"),
                    int("customer_id"),
                    text("channel"),
                    Field::new("total_usd", DataType::Decimal128(12, 2), false),
                ],
            ),
            (
                "order_items",
                vec![int("order_id"), int("line_no"), text("sku")],
            ),
        ];
        for (name, fields) in tables {
            let table = PgTable::from_parts(
                source.clone(),
                TableName::new("crm", "public", name),
                Arc::new(Schema::new(fields)),
                pools.clone(),
            );
            schema.register_table(name.into(), Arc::new(table)).unwrap();
        }
        let catalog = MemoryCatalogProvider::new();
        catalog.register_schema("public", Arc::new(schema)).unwrap();
        ctx.register_catalog("crm", Arc::new(catalog));
        ctx
    }

    /// The remote queries of a planned query.
    async fn pushed(ctx: &SessionContext, sql: &str) -> Vec<String> {
        let plan = ctx.sql(sql).await.unwrap().into_optimized_plan().unwrap();
        let mut out = vec![];
        plan.apply(|node| {
            if let LogicalPlan::TableScan(scan) = node
                && let Ok(p) = source_as_provider(&scan.source)
                && let Some(t) = p.as_ref().downcast_ref::<RemoteQueryTable>()
            {
                out.push(t.sql().to_string());
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        out
    }

    /// Checks that every qualified column of a query names a relation of
    /// the `FROM` of its own `SELECT` (PostgreSQL's `missing FROM-clause
    /// entry for table ...`), in the query and in each derived table.
    fn check_scopes(query: &ast::Query) -> Result<(), String> {
        use datafusion::sql::sqlparser::ast::{ObjectNamePart, TableFactor};
        let mut q = query.clone();
        let ast::SetExpr::Select(select) = q.body.as_mut() else {
            return Err(format!("not a SELECT: {query}"));
        };
        let blank = Box::new(parse("SELECT 1"));
        let mut visible: Vec<String> = vec![];
        for from in &mut select.from {
            let factors = std::iter::once(&mut from.relation)
                .chain(from.joins.iter_mut().map(|j| &mut j.relation));
            for factor in factors {
                match factor {
                    TableFactor::Table { name, alias, .. } => visible.push(match alias {
                        Some(a) => a.name.value.clone(),
                        None => match name.0.last() {
                            Some(ObjectNamePart::Identifier(i)) => i.value.clone(),
                            _ => return Err(format!("odd table name {name}")),
                        },
                    }),
                    TableFactor::Derived {
                        subquery, alias, ..
                    } => {
                        check_scopes(subquery)?;
                        *subquery = blank.clone();
                        if let Some(a) = alias {
                            visible.push(a.name.value.clone());
                        }
                    }
                    other => return Err(format!("unexpected relation {other}")),
                }
            }
        }
        let mut bad = None;
        let _ = ast::visit_expressions(&q, |e| {
            if let ast::Expr::CompoundIdentifier(parts) = e
                && !visible.contains(&parts[parts.len() - 2].value)
            {
                bad = Some(e.to_string());
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
        match bad {
            Some(e) => Err(format!("{e} names no relation in scope in: {query}")),
            None => Ok(()),
        }
    }

    fn parse(sql: &str) -> ast::Query {
        use datafusion::sql::sqlparser::{dialect::PostgreSqlDialect, parser::Parser};
        match Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0)
        {
            ast::Statement::Query(q) => *q,
            other => panic!("not a query: {other}"),
        }
    }

    #[test]
    fn the_scope_check_finds_the_unparsers_derived_projection() {
        // What DataFusion 55's unparser made of an unaliased join with a
        // filter (issue 17).
        let old = "SELECT count(1) FROM (SELECT FROM (SELECT \"customers\".\"customer_id\" \
                   FROM \"public\".\"customers\" WHERE (\"customers\".\"city\" = E'Lima')) AS \"derived_projection\" \
                   INNER JOIN \"public\".\"orders\" ON \"customers\".\"customer_id\" = \"orders\".\"customer_id\") \
                   AS \"derived_projection\"";
        let err = check_scopes(&parse(old)).unwrap_err();
        assert!(
            err.starts_with("\"customers\".\"customer_id\" names no relation"),
            "{err}"
        );
        check_scopes(&parse(
            "SELECT c.a, \"orders\".b FROM \"public\".\"orders\" JOIN (SELECT t.a FROM x AS t) AS c ON c.a = \"orders\".a",
        ))
        .unwrap();
    }

    /// Two tables of one source joined with and without aliases, filters
    /// on either side, outer joins, `USING`, `NATURAL`, anti-joins, limits:
    /// each plan is one remote query whose every column names a relation
    /// in scope.
    #[tokio::test]
    async fn single_source_joins_become_one_query_with_every_name_in_scope() {
        let ctx = session();
        for sql in [
            // Issue 17: table names as qualifiers, no aliases.
            "SELECT count(*) FROM crm.public.customers JOIN crm.public.orders \
             ON orders.customer_id = customers.customer_id WHERE customers.city = 'Lima'",
            // Unqualified unique column names, filters on both sides.
            "SELECT count(*) FROM crm.public.customers JOIN crm.public.orders \
             ON orders.customer_id = customers.customer_id WHERE city = 'Lima' AND channel = 'web'",
            "SELECT count(*) FROM crm.public.customers, crm.public.orders \
             WHERE orders.customer_id = customers.customer_id AND city = 'Lima'",
            "SELECT c.segment, sum(o.total_usd) AS revenue FROM crm.public.customers c \
             JOIN crm.public.orders o ON o.customer_id = c.customer_id WHERE c.city = 'Lima' GROUP BY c.segment",
            // Issue 22: anti-joins written as outer joins.
            "SELECT count(*) FROM crm.public.customers c LEFT JOIN crm.public.orders o \
             ON o.customer_id = c.customer_id WHERE o.order_id IS NULL",
            "SELECT count(*) FROM crm.public.customers LEFT JOIN crm.public.orders \
             ON orders.customer_id = customers.customer_id WHERE orders.order_id IS NULL",
            // Outer joins with filtered inputs.
            "SELECT c.customer_id, count(o.order_id) AS n FROM crm.public.customers c \
             LEFT JOIN crm.public.orders o ON o.customer_id = c.customer_id \
             WHERE c.customer_id <= 200 GROUP BY c.customer_id",
            "SELECT customers.customer_id, orders.order_id FROM crm.public.customers \
             RIGHT JOIN crm.public.orders ON orders.customer_id = customers.customer_id \
             WHERE orders.channel = 'web'",
            "SELECT customers.customer_id, orders.order_id FROM crm.public.customers \
             FULL JOIN crm.public.orders ON orders.customer_id = customers.customer_id \
             AND customers.city = 'Lima' AND orders.channel = 'web'",
            "SELECT count(*) FROM crm.public.customers JOIN crm.public.orders USING (customer_id) \
             WHERE city = 'Lima'",
            "SELECT count(*) FROM crm.public.customers NATURAL JOIN crm.public.orders WHERE city = 'Lima'",
            "SELECT city, count(*) FROM crm.public.customers \
             JOIN crm.public.orders ON orders.customer_id = customers.customer_id \
             JOIN crm.public.order_items ON order_items.order_id = orders.order_id \
             WHERE channel = 'web' GROUP BY city",
            // Limits, with and without an order.
            "SELECT o.order_id, c.email FROM crm.public.orders o JOIN crm.public.customers c \
             ON o.customer_id = c.customer_id WHERE c.customer_id < 20 LIMIT 7",
            "SELECT count(*) FROM (SELECT customer_id FROM crm.public.orders \
             ORDER BY total_usd DESC, order_id LIMIT 5 OFFSET 2) best \
             JOIN crm.public.customers c ON c.customer_id = best.customer_id",
        ] {
            let plan = ctx.sql(sql).await.unwrap().into_optimized_plan().unwrap();
            let text = plan.display_indent().to_string();
            assert!(!text.contains("Join"), "not pushed whole: {sql}\n{text}");
            let remote = pushed(&ctx, sql).await;
            assert_eq!(remote.len(), 1, "{sql}: {remote:?}");
            let q = parse(&remote[0]);
            if let Err(e) = check_scopes(&q) {
                panic!("{sql}\n{e}");
            }
        }
    }

    /// The pushed query keeps the plan's meaning where the unparser did
    /// not: an outer join's filtered input is filtered before the join,
    /// and a limit over a sort is taken in the sort's order.
    #[tokio::test]
    async fn filters_of_outer_join_inputs_and_sorted_limits_keep_their_place() {
        let ctx = session();
        let sql = "SELECT c.customer_id, o.order_id FROM crm.public.customers c \
                   LEFT JOIN crm.public.orders o ON o.customer_id = c.customer_id \
                   WHERE c.customer_id <= 200";
        let remote = pushed(&ctx, sql).await;
        let (_, on) = remote[0].split_once(" ON ").unwrap();
        assert!(!on.contains("200"), "{}", remote[0]);
        assert!(
            remote[0].contains("WHERE ((\"t0\".\"customer_id\" <= 200))"),
            "{}",
            remote[0]
        );

        let sql = "SELECT count(*) FROM (SELECT customer_id FROM crm.public.orders \
                   ORDER BY total_usd DESC, order_id LIMIT 5 OFFSET 2) best \
                   JOIN crm.public.customers c ON c.customer_id = best.customer_id";
        let remote = pushed(&ctx, sql).await;
        assert!(
            remote[0].contains("ORDER BY \"t1\".\"c1\" DESC NULLS FIRST, \"t1\".\"c2\" ASC NULLS LAST LIMIT 5 OFFSET 2"),
            "{}",
            remote[0]
        );
    }

    /// A limit whose rows depend on a sort it does not sit right on cannot
    /// be said in one `SELECT` (a derived table's order is not kept): the
    /// plan around it is not pushed whole, the join below the sort is, and
    /// the sort and the limit run in DataFusion.
    #[tokio::test]
    async fn a_limit_over_an_order_sql_cannot_keep_is_left_to_datafusion() {
        let ctx = session();
        // Before DataFusion's rules: a limit over a projection over a sort.
        let sql = "SELECT best.customer_id FROM (SELECT o.customer_id FROM crm.public.orders o \
                   JOIN crm.public.customers c ON c.customer_id = o.customer_id \
                   ORDER BY o.order_id LIMIT 3) best \
                   JOIN crm.public.customers c2 ON c2.customer_id = best.customer_id";
        let plan = ctx.sql(sql).await.unwrap().into_unoptimized_plan();
        let shape: Vec<String> = plan
            .display_indent()
            .to_string()
            .lines()
            .map(|l| l.trim().to_string())
            .collect();
        let at = shape
            .iter()
            .position(|l| l == "Limit: skip=0, fetch=3")
            .unwrap();
        assert_eq!(shape[at + 1], "Projection: o.customer_id", "{shape:#?}");
        assert!(shape[at + 2].starts_with("Sort: o.order_id"), "{shape:#?}");
        let out = PushToSources::default()
            .rewrite(plan, &datafusion::optimizer::OptimizerContext::new())
            .unwrap()
            .data;
        let text = out.display_indent().to_string();
        assert!(
            text.contains("Filter: c2.customer_id = best.customer_id"),
            "{text}"
        );
        assert!(
            text.contains("Limit: skip=0, fetch=3") && text.contains("Sort: o.order_id"),
            "{text}"
        );
        assert_eq!(
            text.matches("TableScan: __quipu_remote").count(),
            1,
            "{text}"
        );
    }
}
