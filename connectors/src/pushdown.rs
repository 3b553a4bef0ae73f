//! Whole-subtree pushdown: the logical optimizer rule that turns every
//! largest part of a plan that reads one PostgreSQL source only (joins,
//! aggregates, filters, projections over its tables) into one remote query.
//!
//! It runs after DataFusion's own rules, so filters and projections that
//! sit above a subtree have already been pushed into it. The subtree is
//! unparsed by DataFusion's unparser (PostgreSQL dialect); the resulting
//! AST's table names are rewritten from Quipu's (`crm.orders`) to the
//! remote ones (`"public"."orders"`), and the query is wrapped as
//! `SELECT q.c0::type, ... FROM (...) AS q(c0, ...)` so its columns come
//! back in exactly the Arrow types DataFusion planned for them.
//!
//! Only what means the same on both sides is pushed: a short list of
//! functions and aggregates, no string ordering (collations differ), no
//! decimal division (rounding differs), no intervals. Everything else stays
//! in DataFusion, above a smaller pushed subtree; a plan the unparser
//! cannot render is left as it was. A `Sort` at the top of a subtree stays
//! in DataFusion too (a subquery's order is not kept by SQL).
//!
//! datafusion-federation's `VirtualExecutionPlan` is not serialisable (see
//! DESIGN.md), so the rule is ours. MongoDB sorts and aggregates are pushed
//! by `mongo_pushdown`.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
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
use datafusion::sql::sqlparser::ast::{self, Ident, ObjectName, ObjectNamePart};
use datafusion::sql::unparser::Unparser;
use datafusion::sql::unparser::dialect::PostgreSqlDialect;
use quipu_catalog::SourceDef;

use crate::postgres::{PgPools, PgScanExec, PgTable};
use crate::remote_sql::quote_ident;

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
                return Ok(Transformed::no(node));
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
            && crate::sources::options_key(ta.source()) == crate::sources::options_key(tb.source()))
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
            // See `isolate_outer_join_inputs`: an unaliased filtered scan
            // under an outer join cannot be given its own subquery.
            if j.join_type != JoinType::Inner && (filtered_scan(&j.left) || filtered_scan(&j.right))
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

/// A scan with filters (or a filter right on a scan) without an alias.
fn filtered_scan(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::TableScan(t) => !t.filters.is_empty(),
        LogicalPlan::Filter(f) => matches!(f.input.as_ref(), LogicalPlan::TableScan(_)),
        _ => false,
    }
}

/// The unparser moves the filters of a join's input scans into the join's
/// `ON` clause, which for an outer join does not filter the preserved side
/// (a `LEFT JOIN` kept every customer although `WHERE c.customer_id <= 200`
/// was pushed to the customers scan). A projection between the alias and
/// the scan makes the unparser render the input as a subquery with its own
/// `WHERE`.
fn isolate_outer_join_inputs(plan: LogicalPlan) -> DfResult<LogicalPlan> {
    let isolate = |input: &Arc<LogicalPlan>| -> DfResult<Arc<LogicalPlan>> {
        if let LogicalPlan::SubqueryAlias(a) = input.as_ref()
            && let LogicalPlan::TableScan(scan) = a.input.as_ref()
            && !scan.filters.is_empty()
        {
            let columns: Vec<Expr> = scan
                .projected_schema
                .iter()
                .map(|(q, f)| Expr::Column(Column::new(q.cloned(), f.name())))
                .collect();
            let projected = LogicalPlanBuilder::from(a.input.as_ref().clone())
                .project(columns)?
                .build()?;
            let alias = datafusion::logical_expr::SubqueryAlias::try_new(
                Arc::new(projected),
                a.alias.clone(),
            )?;
            return Ok(Arc::new(LogicalPlan::SubqueryAlias(alias)));
        }
        Ok(Arc::clone(input))
    };
    plan.transform_up(|node| match node {
        LogicalPlan::Join(j) if j.join_type != JoinType::Inner => {
            let (left, right) = (isolate(&j.left)?, isolate(&j.right)?);
            let join = datafusion::logical_expr::Join { left, right, ..j };
            Ok(Transformed::yes(LogicalPlan::Join(join)))
        }
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
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
        if matches!(n, LogicalPlan::Join(_) | LogicalPlan::Aggregate(_)) {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
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
    Some(match t {
        DataType::Boolean => "boolean".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "integer".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float32 => "real".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Decimal128(p, s) if *s >= 0 && s <= &(*p as i8) => format!("numeric({p},{s})"),
        DataType::Utf8 => "text".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(TimeUnit::Microsecond, None) => "timestamp".into(),
        DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) if tz.as_ref() == "UTC" => {
            "timestamptz".into()
        }
        DataType::Binary => "bytea".into(),
        _ => return None,
    })
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
                | ScalarValue::Float64(_)
                | ScalarValue::Decimal128(..)
                | ScalarValue::Date32(_)
        )
        // PostgreSQL text cannot hold NUL: such a filter is evaluated here.
        || matches!(v, ScalarValue::Utf8(Some(s)) if !s.contains('\0'))
}

/// Whether every name the unparser would print (columns, aliases, table
/// qualifiers, the remote tables' names) can be quoted safely by it; see
/// `remote_sql::ident_ok`. A plan with another name is not pushed.
fn idents_ok(plan: &LogicalPlan, remote: &HashMap<Vec<String>, Vec<String>>) -> bool {
    use crate::remote_sql::ident_ok;
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
        let good = match e {
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
                    (is_number(&from) && is_number(to))
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
/// the unparser cannot render the subtree.
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
    let original = plan.schema().clone();
    // An explicit top projection fixes the remote query's column order
    // (the unparser may list an aggregate's columns in another order).
    let plan = &isolate_outer_join_inputs(fold_scan_filters(plan.clone())?)?;
    let ordered: Vec<Expr> = plan
        .schema()
        .iter()
        .enumerate()
        .map(|(i, (q, f))| Expr::Column(Column::new(q.cloned(), f.name())).alias(format!("c{i}")))
        .collect();
    let plan = &if matches!(plan, LogicalPlan::Projection(_)) {
        // The unparser keeps a projection's order (and would wrap a second
        // projection in a derived table).
        plan.clone()
    } else {
        LogicalPlanBuilder::from(plan.clone())
            .project(ordered)?
            .build()?
    };
    let mut statement = match Unparser::new(&PostgreSqlDialect {}).plan_to_sql(plan) {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!("not pushing a subtree the unparser cannot render: {e}");
            return Ok(None);
        }
    };
    let remote = |parts: &[Ident]| -> Option<Vec<Ident>> {
        let key: Vec<String> = parts.iter().map(|i| i.value.clone()).collect();
        names
            .get(&key)
            .map(|r| r.iter().map(|p| Ident::with_quote('"', p)).collect())
    };
    let _ = ast::visit_relations_mut(&mut statement, |name: &mut ObjectName| {
        let parts: Option<Vec<Ident>> = name
            .0
            .iter()
            .map(|p| match p {
                ObjectNamePart::Identifier(i) => Some(i.clone()),
                ObjectNamePart::Function(_) => None,
            })
            .collect();
        if let Some(new) = parts.and_then(|p| remote(&p)) {
            *name = ObjectName::from(new);
        }
        ControlFlow::<()>::Continue(())
    });
    let _ = ast::visit_expressions_mut(&mut statement, |e: &mut ast::Expr| {
        if let ast::Expr::CompoundIdentifier(parts) = e
            && parts.len() >= 2
            && let Some(mut new) = remote(&parts[..parts.len() - 1])
        {
            new.push(parts[parts.len() - 1].clone());
            *parts = new;
        }
        ControlFlow::<()>::Continue(())
    });

    // Literals quoted by our own rules, never by sqlparser's `Display`.
    let Some(sql) = crate::remote_sql::render_unparsed(statement) else {
        return Ok(None);
    };
    let out = &original;
    let fields: Vec<Field> = out
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| Field::new(format!("c{i}"), f.data_type().clone(), f.is_nullable()))
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

/// Folds a `Filter` that sits right on a scan into the scan's own filters.
/// DataFusion keeps such filters to re-check what a scan pushed as
/// `Inexact`; inside one remote query both are exact, and the unparser
/// would render the `Filter` with the table's name where the query uses
/// an alias ("invalid reference to FROM-clause entry").
fn fold_scan_filters(plan: LogicalPlan) -> DfResult<LogicalPlan> {
    plan.transform_up(|node| {
        let LogicalPlan::Filter(f) = &node else {
            return Ok(Transformed::no(node));
        };
        let LogicalPlan::TableScan(scan) = f.input.as_ref() else {
            return Ok(Transformed::no(node));
        };
        let mut filters = scan.filters.clone();
        for e in datafusion::logical_expr::utils::split_conjunction(&f.predicate) {
            if !filters.contains(e) {
                filters.push(e.clone());
            }
        }
        let scan = datafusion::logical_expr::TableScan {
            filters,
            ..scan.clone()
        };
        Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
    })
    .map(|t| t.data)
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
/// 1.2345 through the cast to the catalog's type). `avg` and `/` have more
/// digits by nature, and are cut to DataFusion's scale as before.
fn exact_decimals(plan: &LogicalPlan) -> bool {
    let mut exact = true;
    let _ = plan.apply(|node| {
        let _ = node.apply_expressions(|e| {
            e.apply(|e| {
                let divides = match e {
                    Expr::BinaryExpr(b) => b.op == Operator::Divide,
                    Expr::AggregateFunction(f) => {
                        !matches!(f.func.name(), "sum" | "min" | "max" | "count")
                    }
                    Expr::WindowFunction(_) | Expr::ScalarFunction(_) => true,
                    _ => false,
                };
                exact &= !divides;
                Ok(if exact {
                    TreeNodeRecursion::Continue
                } else {
                    TreeNodeRecursion::Stop
                })
            })
        });
        Ok(if exact {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    exact
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
        let (indices, schema) = crate::remote_sql::projected(&self.schema, projection)?;
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
                    // A value that the cast would round fails the query,
                    // naming the column (the text is not constant, so
                    // PostgreSQL only evaluates it for such a row).
                    DataType::Decimal128(..) if self.exact_decimals => format!(
                        "CASE WHEN {c} IS NULL OR {c}::{cast} = {c} THEN {c}::{cast} \
                         ELSE ('quipu: a value (' || {c}::text || ') does not fit {cast}, \
                         its type in the catalog: a column changed at the source; run \
                         `quipu catalog refresh {}`')::numeric END",
                        self.source.name.replace('\'', "")
                    ),
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
        Ok(Arc::new(PgScanExec::new(
            self.source.clone(),
            self.pools.clone(),
            schema,
            sql,
        )))
    }
}
