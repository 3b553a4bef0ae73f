//! PostgreSQL's display scale of numerics, for the PostgreSQL front door
//! (issue 22).
//!
//! A PostgreSQL `numeric` carries its own scale, value by value: a
//! quotient's and an average's are chosen per value
//! (`connectors/src/dialect/pg_numeric.rs`), `COALESCE(n, 0)` is `0` where
//! `n` is NULL and `1.000000` where it is 1, and `CAST('1.50' AS numeric)`
//! is `1.50`. An Arrow decimal has one scale per column, so Quipu's values
//! are PostgreSQL's but printed with the column's places
//! (`25.00000000000000000000` for PostgreSQL's `25.0000000000000000`).
//!
//! For each numeric column of a result whose places can vary this way,
//! [`annotate`] adds a hidden column to the statement's last projection
//! (to each input's, under a `UNION ALL`; under a `DISTINCT`, the largest
//! of equal rows'):
//! the places PostgreSQL would print each value with, computed from the
//! same operands. The front door takes the hidden columns off and prints
//! each value with its places (trailing zeros only are dropped, so a
//! value is never changed). It looks through `ORDER BY`, `LIMIT`, `WHERE`,
//! a subquery's alias, a view's query and both sides of a join; where the
//! places cannot be followed (a subquery's or a view's column read
//! through a window or a grouping), the column's are printed.
//!
//! It follows `/` of numerics, `avg` of integers and numerics (a hidden
//! `quipu_avg_scale` beside it in the aggregation, or over the same
//! window), `variance`, `var_pop`, `stddev` and `stddev_pop` of them (a
//! hidden `quipu_*_places` beside it in the aggregation), `+`, `-`, `*`, unary minus, `abs`, `sqrt`, `ln`, `log`,
//! `log10`, `exp`, `CASE` (an integer result has no places, as an
//! integer branch of a `UNION ALL` has none), `COALESCE`, `NULLIF`,
//! `GREATEST`, `LEAST`, and
//! casts to `numeric` without a scale (of text: the text's places; of
//! integers: none; of numerics: theirs; of doubles: their 15 significant
//! digits'; of a parameter: the places the
//! client sent it with, put in by the front door when it binds them).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::datatypes::FieldRef;
use datafusion::common::{Column, DFSchema, Result, TableReference};
use datafusion::logical_expr::expr::{AggregateFunction, Case};
use datafusion::logical_expr::{
    Aggregate, BinaryExpr, Distinct, Expr, ExprSchemable, Filter, Join, LogicalPlan, Operator,
    Projection, SubqueryAlias, TableScan, Union, Values, Window, WindowFunctionDefinition, lit,
};
use quipu_connectors::dialect::{
    extreme_places, float_numeric, pg_numeric, pg_numeric_log, pg_variance,
};

/// The name a hidden column of places starts with; the rest is the index
/// of the column it is for.
pub const HIDDEN: &str = "__quipu_places_";

/// The column a hidden column gives the places of, from its name.
pub fn places_for(name: &str) -> Option<usize> {
    name.strip_prefix(HIDDEN)?.parse().ok()
}

/// The plan with a hidden column of places for each numeric column of its
/// last projection (under its `ORDER BY` and `LIMIT`) whose places vary.
pub fn annotate(plan: LogicalPlan) -> Result<LogicalPlan> {
    Ok(match plan {
        LogicalPlan::Projection(p) => projection(p)?,
        other => beneath(other)?,
    })
}

/// A node a projection's columns pass through unchanged (an `ORDER BY`, a
/// `LIMIT`, a subquery's alias), with the projection below it annotated.
fn beneath(plan: LogicalPlan) -> Result<LogicalPlan> {
    Ok(match plan {
        LogicalPlan::Sort(mut s) => {
            s.input = Arc::new(annotate(Arc::unwrap_or_clone(s.input))?);
            LogicalPlan::Sort(s)
        }
        LogicalPlan::Limit(mut l) => {
            l.input = Arc::new(annotate(Arc::unwrap_or_clone(l.input))?);
            LogicalPlan::Limit(l)
        }
        LogicalPlan::SubqueryAlias(a) => {
            let input = annotate(Arc::unwrap_or_clone(a.input))?;
            LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(Arc::new(input), a.alias)?)
        }
        LogicalPlan::Union(u) => union(u)?,
        LogicalPlan::Values(v) => values(v)?,
        // A window keeps its input's columns, the hidden ones too; its
        // own come after them.
        LogicalPlan::Window(w) => {
            let input = annotate(Arc::unwrap_or_clone(w.input))?;
            LogicalPlan::Window(Window::try_new(w.window_expr, Arc::new(input))?)
        }
        LogicalPlan::Distinct(Distinct::All(input)) => distinct(input)?,
        // A filter keeps its input's columns, the hidden ones too (one over
        // an aggregation is a `HAVING`, whose averages' places
        // [`with_aggregate_places`] adds).
        LogicalPlan::Filter(f) if !matches!(f.input.as_ref(), LogicalPlan::Aggregate(_)) => {
            let input = annotate(Arc::unwrap_or_clone(f.input))?;
            LogicalPlan::Filter(Filter::try_new(f.predicate, Arc::new(input))?)
        }
        LogicalPlan::TableScan(scan) => view(scan)?,
        LogicalPlan::Join(j) => join(j)?,
        other => other,
    })
}

/// A join whose sides' hidden columns come up through it: the left's as
/// they are (its columns keep their places in the joined row), the
/// right's renamed for where its columns land (after all of the left's).
/// Only joins that give both sides' columns; others are left as they are.
fn join(j: Join) -> Result<LogicalPlan> {
    use datafusion::common::JoinType;
    if !matches!(
        j.join_type,
        JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full
    ) {
        return Ok(LogicalPlan::Join(j));
    }
    let left = annotate(LogicalPlan::clone(&j.left))?;
    let right = annotate(LogicalPlan::clone(&j.right))?;
    if !has_hidden(&left) && !has_hidden(&right) {
        return Ok(LogicalPlan::Join(j));
    }
    let offset = left.schema().fields().len();
    let right = match has_hidden(&right) {
        false => right,
        true => {
            let exprs = right
                .schema()
                .iter()
                .map(|(q, f)| {
                    let column = column(q, f);
                    match places_for(f.name()) {
                        Some(i) => column.alias(format!("{HIDDEN}{}", offset + i)),
                        None => column,
                    }
                })
                .collect();
            LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(right))?)
        }
    };
    Ok(LogicalPlan::Join(Join::try_new(
        Arc::new(left),
        Arc::new(right),
        j.on,
        j.filter,
        j.join_type,
        j.join_constraint,
        j.null_equality,
        j.null_aware,
    )?))
}

/// The hidden columns of places of `schema`, by the column each is for.
fn hidden_columns(schema: &DFSchema) -> HashMap<String, Expr> {
    let mut found = HashMap::new();
    for (q, f) in schema.iter() {
        if let Some(i) = places_for(f.name()) {
            let (iq, i_f) = schema.qualified_field(i);
            found.insert(Column::from((iq, i_f)).flat_name(), column(q, f));
        }
    }
    found
}

/// `e` without its alias.
fn unaliased(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(a) => a.expr.as_ref(),
        other => other,
    }
}

/// Whether `plan` gives hidden columns of places.
fn has_hidden(plan: &LogicalPlan) -> bool {
    plan.schema()
        .fields()
        .iter()
        .any(|f| places_for(f.name()).is_some())
}

/// The column `(q, f)` of a schema, as an expression.
fn column(q: Option<&TableReference>, f: &FieldRef) -> Expr {
    Expr::Column(Column::from((q, f)))
}

/// The single argument of an aggregate, when it is an integer or a
/// numeric of `schema`.
fn one_number(args: &[Expr], schema: &DFSchema) -> bool {
    matches!(args, [a] if a
        .get_type(schema)
        .is_ok_and(|t| pg_numeric::decimal_shape(&t).is_some()))
}

/// A scan of a view, as its query under the view's name when that query
/// has hidden columns (as DataFusion's analyzer inlines it later), so
/// that a view's quotients print with their places; any other scan as it
/// is.
fn view(scan: TableScan) -> Result<LogicalPlan> {
    let query = match scan.source.get_logical_plan() {
        Some(q) if scan.filters.is_empty() && scan.projection.is_none() => q.into_owned(),
        _ => return source_places(scan),
    };
    let annotated = annotate(query)?;
    if !has_hidden(&annotated) {
        return Ok(LogicalPlan::TableScan(scan));
    }
    Ok(LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(
        Arc::new(annotated),
        scan.table_name,
    )?))
}

/// A scan of a PostgreSQL table with a column of `numeric` without a
/// precision (read as `decimal(38,10)`, [`UNSCALED`]), under a projection
/// that adds each such column's places, PostgreSQL's own `scale(n)`
/// (pushed down with the scan): PostgreSQL prints each value of such a
/// column with the places it was stored with (`1.5`, `0.000001`,
/// `-123.456`), not 10. A `numeric(38,10)` column's are its 10. A source
/// with `pushdown=off`, and any other scan, is left as it is: the column's
/// 10 places print, as before.
fn source_places(scan: TableScan) -> Result<LogicalPlan> {
    // Only a source that is pushed down to can say: elsewhere `scale` is
    // the column's, and computing it would change nothing.
    let pg = datafusion::datasource::source_as_provider(&scan.source)
        .ok()
        .is_some_and(|p| {
            let p: &dyn std::any::Any = p.as_ref();
            p.downcast_ref::<quipu_connectors::postgres::PgTable>()
                .is_some_and(|t| t.pushdown())
        });
    let schema = scan.projected_schema.clone();
    if !pg
        || !scan.filters.is_empty()
        || !schema.fields().iter().any(|f| f.data_type() == &UNSCALED)
    {
        return Ok(LogicalPlan::TableScan(scan));
    }
    let mut exprs: Vec<Expr> = schema.iter().map(|(q, f)| column(q, f)).collect();
    for (j, (q, f)) in schema.iter().enumerate() {
        if f.data_type() == &UNSCALED {
            let places = pg_numeric::scale().call(vec![column(q, f)]);
            exprs.push(places.alias(format!("{HIDDEN}{j}")));
        }
    }
    Ok(LogicalPlan::Projection(Projection::try_new(
        exprs,
        Arc::new(LogicalPlan::TableScan(scan)),
    )?))
}

/// The type a PostgreSQL `numeric` without a precision is read as.
pub(crate) const UNSCALED: DataType = DataType::Decimal128(38, 10);

/// A `DISTINCT` (or a `UNION` without `ALL`) over rows with hidden
/// columns: the distinct visible rows, each with the largest places of
/// its duplicates (a hidden column under a plain `DISTINCT` would keep
/// `1.5` and `1.50` apart). PostgreSQL keeps the places of whichever
/// duplicate it meets first; duplicates almost always have the same.
fn distinct(input: Arc<LogicalPlan>) -> Result<LogicalPlan> {
    let annotated = annotate(LogicalPlan::clone(&input))?;
    let schema = annotated.schema().clone();
    let (mut keys, mut places) = (vec![], vec![]);
    for (q, f) in schema.iter() {
        let column = column(q, f);
        match places_for(f.name()) {
            Some(_) => {
                places.push(datafusion::functions_aggregate::expr_fn::max(column).alias(f.name()))
            }
            None => keys.push(column),
        }
    }
    if places.is_empty() {
        return Ok(LogicalPlan::Distinct(Distinct::All(input)));
    }
    Ok(LogicalPlan::Aggregate(Aggregate::try_new(
        Arc::new(annotated),
        keys,
        places,
    )?))
}

/// A `UNION ALL` whose inputs each carry the same hidden columns, in the
/// same order: an input's own where it has one for a column, else its
/// type's places. (A `UNION` that removes duplicates is a `DISTINCT` over
/// it: [`distinct`].)
fn union(u: Union) -> Result<LogicalPlan> {
    let visible = u.schema.fields().len();
    let inputs: Vec<LogicalPlan> = u
        .inputs
        .iter()
        .map(|i| annotate(LogicalPlan::clone(i)))
        .collect::<Result<_>>()?;
    let hidden = |plan: &LogicalPlan| -> HashMap<usize, Expr> {
        let schema = plan.schema();
        schema
            .iter()
            .filter_map(|(q, f)| {
                let i = places_for(f.name())?;
                Some((i, column(q, f)))
            })
            .collect()
    };
    let mut columns: Vec<usize> = inputs.iter().flat_map(|i| hidden(i).into_keys()).collect();
    // Branches of integers and numerics of other places (`SELECT n ...
    // UNION ALL SELECT 0`): each row has its branch's.
    columns.extend((0..visible).filter(|i| {
        let types: Vec<DataType> = inputs
            .iter()
            .map(|input| input.schema().field(*i).data_type().clone())
            .collect();
        numerics_meet(&types)
    }));
    columns.sort_unstable();
    columns.dedup();
    if columns.is_empty() {
        return Ok(LogicalPlan::Union(u));
    }
    let mut annotated = Vec::with_capacity(inputs.len());
    for input in inputs {
        let own = hidden(&input);
        let schema = input.schema().clone();
        let mut exprs: Vec<Expr> = (0..visible)
            .map(|j| {
                let (q, f) = schema.qualified_field(j);
                column(q, f)
            })
            .collect();
        for i in &columns {
            let places = match own.get(i) {
                Some(e) => e.clone(),
                None => type_places(&exprs[*i], &schema).unwrap_or(lit(0i32)),
            };
            exprs.push(places.alias(format!("{HIDDEN}{i}")));
        }
        annotated.push(Arc::new(LogicalPlan::Projection(Projection::try_new(
            exprs,
            Arc::new(input),
        )?)));
    }
    Ok(LogicalPlan::Union(Union::try_new_with_loose_types(
        annotated,
    )?))
}

/// A `VALUES` list whose numeric column's rows have places of their own
/// (`VALUES (1.5), (2)`: PostgreSQL prints `1.5` and `2`), with a hidden
/// column of each row's places (under a projection that names it so);
/// the column's type has the most.
fn values(mut v: Values) -> Result<LogicalPlan> {
    let empty = DFSchema::empty();
    let mut fields: Vec<(Option<TableReference>, FieldRef)> = v
        .schema
        .iter()
        .map(|(q, f)| (q.cloned(), Arc::clone(f)))
        .collect();
    let mut hidden: Vec<Vec<Expr>> = vec![vec![]; v.values.len()];
    let mut renamed: Vec<Expr> = vec![];
    for (j, field) in v.schema.fields().iter().enumerate() {
        if !matches!(field.data_type(), DataType::Decimal128(..)) {
            continue;
        }
        // Each row as written, before the planner's cast to the column's
        // type.
        let rows: Vec<&Expr> = v
            .values
            .iter()
            .map(|row| match &row[j] {
                Expr::Cast(datafusion::logical_expr::expr::Cast { expr, field: to })
                    if to.data_type() == field.data_type() =>
                {
                    expr.as_ref()
                }
                e => e,
            })
            .collect();
        if !varies(&rows, &empty, &HashMap::new()) {
            continue;
        }
        for (row, e) in hidden.iter_mut().zip(&rows) {
            let places = places_or_type(e, &empty, &HashMap::new()).unwrap_or(lit(0i32));
            row.push(Expr::Cast(datafusion::logical_expr::expr::Cast::new(
                Box::new(places),
                DataType::Int32,
            )));
        }
        // Named as DataFusion names a list's columns: binding a prepared
        // statement's parameters builds every `VALUES` list again
        // (`update_schema_data_type`), naming its columns so.
        let name = format!("column{}", fields.len() + 1);
        renamed.push(Expr::Column(Column::from_name(&name)).alias(format!("{HIDDEN}{j}")));
        fields.push((
            None,
            Arc::new(datafusion::arrow::datatypes::Field::new(
                name,
                DataType::Int32,
                true,
            )),
        ));
    }
    if renamed.is_empty() {
        return Ok(LogicalPlan::Values(v));
    }
    for (row, more) in v.values.iter_mut().zip(hidden) {
        row.extend(more);
    }
    let visible: Vec<Expr> = v.schema.iter().map(|(q, f)| column(q, f)).collect();
    v.schema = Arc::new(DFSchema::new_with_metadata(
        fields,
        v.schema.metadata().clone(),
    )?);
    Ok(LogicalPlan::Projection(Projection::try_new(
        visible.into_iter().chain(renamed).collect(),
        Arc::new(LogicalPlan::Values(v)),
    )?))
}

fn projection(p: Projection) -> Result<LogicalPlan> {
    let referenced: Vec<String> = p
        .expr
        .iter()
        .flat_map(|e| e.column_refs().into_iter().map(|c| c.name.clone()))
        .collect();
    let (input, mut found) = with_aggregate_places(&p.input, &referenced, "")?;
    // A projection below (the one an ORDER BY of other columns adds, a
    // subquery's): its hidden columns are passed up. (An aggregation and
    // its `HAVING` pass through as they are.)
    let input = beneath(input)?;
    let (input, values) = window_value_places(input, &referenced, "")?;
    found.extend(values);
    let schema = input.schema().clone();
    found.extend(hidden_columns(&schema));
    // A numeric read at a `numeric`'s 10 places whose own are not followed
    // (a group key, an aggregate of a source's column): its `scale`, which
    // a PostgreSQL source computes with the rest of the query when it is
    // pushed down (elsewhere it is the type's).
    for (q, f) in schema.iter() {
        let name = Column::from((q, f)).flat_name();
        if f.data_type() == &UNSCALED
            && places_for(f.name()).is_none()
            && !found.contains_key(&name)
        {
            found.insert(name, pg_numeric::scale().call(vec![column(q, f)]));
        }
    }
    let mut exprs = p.expr.clone();
    for (i, e) in p.expr.iter().enumerate() {
        let case_of_numerics = match unaliased(e) {
            Expr::Case(c) => {
                let types: Vec<DataType> = c
                    .when_then_expr
                    .iter()
                    .map(|(_, t)| t.as_ref())
                    .chain(c.else_expr.as_deref())
                    .filter_map(|t| t.get_type(&schema).ok())
                    .collect();
                numerics_meet(&types)
            }
            _ => false,
        };
        // A column whose places come from below (typed by its first
        // branch until the coercion, as the `CASE` above).
        let followed =
            matches!(unaliased(e), Expr::Column(c) if found.contains_key(&c.flat_name()));
        if !case_of_numerics
            && !followed
            && !matches!(
                e.get_type(&schema),
                Ok(DataType::Decimal128(..) | DataType::Decimal256(..))
            )
        {
            continue;
        }
        if let Some(places) = places(e, &schema, &found) {
            exprs.push(places.alias(format!("{HIDDEN}{i}")));
        }
    }
    Ok(LogicalPlan::Projection(Projection::try_new(
        exprs,
        Arc::new(input),
    )?))
}

/// `input` with a hidden `quipu_avg_scale` beside each `avg` of integers
/// or numerics that `referenced` names, and a hidden `max` of the places
/// of the terms beside each such `sum` whose terms' places vary, when
/// `input` is an aggregation (or a `HAVING` over one); and the column of
/// places of each, by the aggregate's column name. `tag` tells the hidden
/// columns of one pass from another's (`crate::text_forms`' from the
/// front door's).
fn with_aggregate_places(
    input: &Arc<LogicalPlan>,
    referenced: &[String],
    tag: &str,
) -> Result<(LogicalPlan, HashMap<String, Expr>)> {
    let none = || Ok(((**input).clone(), HashMap::new()));
    let (aggregate, having) = match input.as_ref() {
        LogicalPlan::Aggregate(a) => (a, None),
        LogicalPlan::Filter(f) => match f.input.as_ref() {
            LogicalPlan::Aggregate(a) => (a, Some(f.predicate.clone())),
            _ => return none(),
        },
        _ => return none(),
    };
    let mut aggr_expr = aggregate.aggr_expr.clone();
    let mut found = HashMap::new();
    let keys = aggregate.group_expr_len()?;
    // The aggregation's input with its own hidden columns (a source's
    // numerics without a precision: their `scale`), by the column each is
    // for, so that a `sum` and a group key of them that are not pushed
    // down have their values' places (they had the column's 10).
    let annotated = annotate((*aggregate.input).clone())?;
    let below = hidden_columns(annotated.schema());
    let mut reads_below = false;
    if !below.is_empty() && aggregate.group_expr.len() == keys {
        for (k, g) in aggregate.group_expr.iter().enumerate() {
            let Expr::Column(c) = unaliased(g) else {
                continue;
            };
            let Some(p) = below.get(&c.flat_name()) else {
                continue;
            };
            // Of equal keys' places the fewest (PostgreSQL shows the first
            // it meets; `1.5` of `1.5` and `1.50`, as a pushed grouping of
            // the table the tests read shows).
            let hidden = format!("{HIDDEN}{tag}key_{k}");
            let min = datafusion::functions_aggregate::min_max::min(p.clone());
            aggr_expr.push(min.alias(hidden.clone()));
            let (q, f) = aggregate.schema.qualified_field(k);
            found.insert(
                Column::from((q, f)).flat_name(),
                Expr::Column(Column::from_name(hidden)),
            );
            reads_below = true;
        }
    }
    // The places of an aggregate's argument: its own, else from the
    // input's hidden columns (then the aggregation reads the annotated
    // input).
    let mut own_or_below = |arg: &Expr| {
        places(arg, aggregate.input.schema(), &HashMap::new()).or_else(|| {
            let p = places(arg, annotated.schema(), &below);
            reads_below |= p.is_some();
            p
        })
    };
    for (k, e) in aggregate.aggr_expr.iter().enumerate() {
        let name = aggregate.schema.field(keys + k).name().clone();
        let Expr::AggregateFunction(AggregateFunction { func, params }) = unaliased(e) else {
            continue;
        };
        if !one_number(&params.args, aggregate.input.schema()) || !referenced.contains(&name) {
            continue;
        }
        let hidden = format!("{HIDDEN}{tag}aggregate_{k}");
        let scale = match (func.name(), pg_variance::places_of(func.name())) {
            ("avg", _) => Expr::AggregateFunction(AggregateFunction {
                func: Arc::new(pg_numeric::avg_scale()),
                params: params.clone(),
            }),
            // A variance or standard deviation: its own places
            // (`dialect/pg_variance.rs`).
            (_, Some(places)) => Expr::AggregateFunction(AggregateFunction {
                func: Arc::new(places),
                params: params.clone(),
            }),
            // The greatest (least) value's own places, where they follow
            // from the argument (a quotient, a cast) or from the input's
            // hidden columns (a source's numeric without a precision, in
            // an aggregation Quipu computes itself: they printed the
            // column's 10 places).
            (name @ ("max" | "min"), _) => match own_or_below(&params.args[0]) {
                Some(p) => hidden_aggregate(
                    Arc::new(extreme_places::extreme_places(name == "max")),
                    vec![params.args[0].clone(), p],
                    params,
                ),
                None => continue,
            },
            // A sum has the most places of its terms (PostgreSQL's
            // `add_var`): `sum(CAST(i AS numeric))` has none.
            ("sum", _) => match own_or_below(&params.args[0]) {
                Some(p) => hidden_aggregate(
                    datafusion::functions_aggregate::min_max::max_udaf(),
                    vec![p],
                    params,
                ),
                None => continue,
            },
            _ => continue,
        };
        let hidden = match existing(&aggr_expr, &scale) {
            Some(column) => column,
            None => {
                aggr_expr.push(scale.alias(hidden.clone()));
                hidden
            }
        };
        found.insert(name, Expr::Column(Column::from_name(hidden)));
    }
    if found.is_empty() {
        return none();
    }
    let input = match reads_below {
        true => Arc::new(annotated),
        false => aggregate.input.clone(),
    };
    let aggregate = LogicalPlan::Aggregate(Aggregate::try_new(
        input,
        aggregate.group_expr.clone(),
        aggr_expr,
    )?);
    let plan = match having {
        Some(predicate) => LogicalPlan::Filter(Filter::try_new(predicate, Arc::new(aggregate))?),
        None => aggregate,
    };
    Ok((plan, found))
}

/// The name of the hidden column among `exprs` that computes `hidden`
/// already (another pass's: `crate::text_forms` adds places for the
/// averages it prints, and the front door's pass for those it shows).
/// Two alike window functions under two names made DataFusion's common
/// subexpression rule leave one in a projection ("Physical plan does not
/// support logical expression WindowFunction").
fn existing(exprs: &[Expr], hidden: &Expr) -> Option<String> {
    exprs.iter().find_map(|e| match e {
        Expr::Alias(a) if a.expr.as_ref() == hidden => Some(a.name.clone()),
        _ => None,
    })
}

/// `func` of `args`, beside an aggregate of `params`: its `FILTER` and
/// nothing else (no `DISTINCT`, no `ORDER BY`).
fn hidden_aggregate(
    func: Arc<datafusion::logical_expr::AggregateUDF>,
    args: Vec<Expr>,
    params: &datafusion::logical_expr::expr::AggregateFunctionParams,
) -> Expr {
    Expr::AggregateFunction(AggregateFunction::new_udf(
        func,
        args,
        false,
        params.filter.clone(),
        vec![],
        None,
    ))
}

/// `plan`, a window over an input already given its hidden columns, with
/// a hidden window function over the same window beside each of these
/// that `referenced` names: an `avg` of integers or numerics, its
/// `quipu_avg_scale`; a `max` or `min`, `quipu_max_places`
/// (`quipu_min_places`); a `sum`, `lag`, `lead`, `first_value`,
/// `last_value` and `nth_value` whose argument's places vary (a source's
/// `numeric` without a precision, a quotient), the `max` of the places
/// for a `sum` (PostgreSQL's addition keeps the most), the same function
/// of the places for the others. They printed the column's places
/// (`sum(n) OVER (ORDER BY id)` of `1.5` was `1.5000000000`). The
/// places of each, by the window column's name.
fn window_value_places(
    plan: LogicalPlan,
    referenced: &[String],
    tag: &str,
) -> Result<(LogicalPlan, HashMap<String, Expr>)> {
    let LogicalPlan::Window(mut window) = plan else {
        return Ok((plan, HashMap::new()));
    };
    // Windows of other orders are stacked: each below first (its hidden
    // columns come up through the ones above as their input's).
    let (input, mut found) =
        window_value_places(Arc::unwrap_or_clone(window.input), referenced, tag)?;
    window.input = Arc::new(input);
    let input_schema = window.input.schema().clone();
    let below = hidden_columns(&input_schema);
    // Where this window's own columns begin in its (planned) schema.
    let offset = window.schema.fields().len() - window.window_expr.len();
    let mut window_expr = window.window_expr.clone();
    let below_found = found.len();
    for (k, e) in window.window_expr.iter().enumerate() {
        let name = window.schema.field(offset + k).name().clone();
        let Expr::WindowFunction(f) = unaliased(e) else {
            continue;
        };
        if !referenced.contains(&name) || found.contains_key(&name) {
            continue;
        }
        let arg_places = || {
            f.params
                .args
                .first()
                .and_then(|a| places(a, &input_schema, &below))
        };
        let mut hidden = f.as_ref().clone();
        match (&f.fun, f.fun.name()) {
            (WindowFunctionDefinition::AggregateUDF(_), "avg")
                if one_number(&f.params.args, &input_schema) =>
            {
                hidden.fun =
                    WindowFunctionDefinition::AggregateUDF(Arc::new(pg_numeric::avg_scale()));
            }
            (WindowFunctionDefinition::AggregateUDF(_), "sum") => {
                let Some(p) = arg_places() else {
                    continue;
                };
                hidden.fun = WindowFunctionDefinition::AggregateUDF(
                    datafusion::functions_aggregate::min_max::max_udaf(),
                );
                hidden.params.args = vec![p];
            }
            // The greatest (least) value's own places (over a sliding
            // frame, `quipu_max_places` keeps the frame's rows).
            (WindowFunctionDefinition::AggregateUDF(_), name @ ("max" | "min")) => {
                let Some(p) = arg_places() else {
                    continue;
                };
                hidden.fun = WindowFunctionDefinition::AggregateUDF(Arc::new(
                    extreme_places::extreme_places(name == "max"),
                ));
                hidden.params.args = vec![f.params.args[0].clone(), p];
            }
            (
                WindowFunctionDefinition::WindowUDF(_),
                name @ ("first_value" | "last_value" | "nth_value" | "lag" | "lead"),
            ) => {
                // A default's places may differ from the argument's
                // type's too: `lag(total, 1, 0)` of a `numeric(12,2)` is
                // `0` in its first row, not `0.00`.
                let defaulted = matches!(name, "lag" | "lead") && f.params.args.len() > 2;
                let Some(p) = arg_places().or_else(|| {
                    defaulted
                        .then(|| type_places(&f.params.args[0], &input_schema))
                        .flatten()
                }) else {
                    continue;
                };
                let mut args = f.params.args.clone();
                args[0] = p;
                // `lag(n, 1, 0)`: the default's places (an integer's 0).
                if let Some(default) = args.get_mut(2) {
                    match places_or_type(default, &input_schema, &below) {
                        Some(d) => *default = d,
                        None => continue,
                    }
                }
                hidden.params.args = args;
            }
            _ => continue,
        }
        let hidden = Expr::WindowFunction(Box::new(hidden));
        let column = match existing(&window_expr, &hidden) {
            Some(column) => column,
            None => {
                let column = format!("{HIDDEN}{tag}window_{}", found.len());
                window_expr.push(hidden.alias(column.clone()));
                column
            }
        };
        found.insert(name, Expr::Column(Column::from_name(column)));
    }
    if found.len() == below_found {
        // The schema is the input's columns and then its own: computed
        // again where the input gained hidden columns.
        let plan = LogicalPlan::Window(window);
        return Ok((plan.recompute_schema()?, found));
    }
    Ok((
        LogicalPlan::Window(Window::try_new(window_expr, window.input)?),
        found,
    ))
}

/// The places of an integer or numeric by its type alone (`None`: not a
/// number these follow).
fn type_places(e: &Expr, schema: &DFSchema) -> Option<Expr> {
    match e.get_type(schema).ok()? {
        DataType::Null => Some(lit(0i32)),
        t => pg_numeric::decimal_shape(&t).map(|(_, s)| lit(s as i32)),
    }
}

/// The places of `e`, followed or by its type.
fn places_or_type(e: &Expr, schema: &DFSchema, avg: &HashMap<String, Expr>) -> Option<Expr> {
    places(e, schema, avg).or_else(|| type_places(e, schema))
}

/// The places PostgreSQL gives each value of `e`, where they can differ
/// from its type's, following the columns of `found` (an aggregate's or a
/// window's hidden places, [`aggregate_places`]): for a numeric turned
/// into text (`crate::text_forms`).
pub(crate) fn value_places(
    e: &Expr,
    schema: &DFSchema,
    found: &HashMap<String, Expr>,
) -> Option<Expr> {
    places(e, schema, found)
}

/// `input` (a projection's) with hidden columns of places beside the
/// aggregates or window functions `referenced` names whose places
/// PostgreSQL chooses per value (`avg`, `variance`, a `sum`, `max` or
/// `min` of such values), when it is an aggregation or a window; and the
/// column of places of each, by the aggregate's column name. For
/// `crate::text_forms`, which prints them so (its hidden columns are
/// tagged `text_`, apart from the front door's).
pub(crate) fn aggregate_places(
    input: &Arc<LogicalPlan>,
    referenced: &[String],
) -> Result<(LogicalPlan, HashMap<String, Expr>)> {
    // Windows over an aggregation (`avg(x) OVER ()` beside `avg(x)`):
    // the aggregation's hidden columns come up through them.
    fn below_windows(
        plan: &Arc<LogicalPlan>,
        referenced: &[String],
    ) -> Result<(LogicalPlan, HashMap<String, Expr>)> {
        match plan.as_ref() {
            LogicalPlan::Window(w) => {
                let (input, found) = below_windows(&w.input, referenced)?;
                let mut w = w.clone();
                w.input = Arc::new(input);
                Ok((LogicalPlan::Window(w).recompute_schema()?, found))
            }
            _ => with_aggregate_places(plan, referenced, "text_"),
        }
    }
    let (plan, mut found) = below_windows(input, referenced)?;
    let (plan, windows) = window_value_places(plan, referenced, "text_")?;
    found.extend(windows);
    Ok((plan, found))
}

/// The places PostgreSQL prints each value of `e` with, where they can
/// differ from its type's (`None`: its type's).
fn places(e: &Expr, schema: &DFSchema, avg: &HashMap<String, Expr>) -> Option<Expr> {
    let of = |x: &Expr| places_or_type(x, schema, avg);
    let numeric = |x: &Expr| {
        x.get_type(schema)
            .is_ok_and(|t| matches!(t, DataType::Decimal128(..)))
    };
    match e {
        Expr::Alias(a) => places(&a.expr, schema, avg),
        Expr::Column(c) => avg.get(&c.flat_name()).cloned(),
        // A parameter the client declared `numeric`: the places it is sent
        // with (`$1::numeric`, undeclared, is a cast, below).
        Expr::Placeholder(_) if numeric(e) => Some(pg_numeric::param_scale().call(vec![e.clone()])),
        Expr::Negative(x) => places(x, schema, avg),
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (l, r) = (of(left)?, of(right)?);
            match op {
                Operator::Divide if numeric(left) || numeric(right) => {
                    Some(pg_numeric::div_scale_udf().call(vec![
                        left.as_ref().clone(),
                        right.as_ref().clone(),
                        l,
                        r,
                    ]))
                }
                Operator::Plus | Operator::Minus | Operator::Modulo
                    if places(left, schema, avg).is_some()
                        || places(right, schema, avg).is_some() =>
                {
                    Some(larger(l, r))
                }
                Operator::Multiply
                    if places(left, schema, avg).is_some()
                        || places(right, schema, avg).is_some() =>
                {
                    Some(l + r)
                }
                _ => None,
            }
        }
        Expr::Case(c) => {
            let results: Vec<&Expr> = c
                .when_then_expr
                .iter()
                .map(|(_, t)| t.as_ref())
                .chain(c.else_expr.as_deref())
                .collect();
            if !varies(&results, schema, avg) {
                return None;
            }
            let mut when_then = vec![];
            for (w, t) in &c.when_then_expr {
                when_then.push((w.clone(), Box::new(of(t)?)));
            }
            let else_expr = match &c.else_expr {
                Some(e) => Some(Box::new(of(e)?)),
                None => None,
            };
            Some(Expr::Case(Case::new(c.expr.clone(), when_then, else_expr)))
        }
        Expr::ScalarFunction(f) => {
            let args: Vec<&Expr> = f.args.iter().collect();
            match f.name() {
                "abs" => places(args.first()?, schema, avg),
                // A double shown as an exact numeric (`crate::rounding`):
                // its 15 significant digits.
                float_numeric::FLOAT_NUMERIC if args.len() == 3 => {
                    Some(pg_numeric::text_scale().call(vec![args[0].clone()]))
                }
                // An exact quotient (`crate::rounding`): as `a / b` below.
                pg_numeric::DIV if args.len() == 3 => Some(pg_numeric::div_scale_udf().call(vec![
                    args[0].clone(),
                    args[1].clone(),
                    of(args[0])?,
                    of(args[1])?,
                ])),
                "sqrt" if numeric(args.first()?) => {
                    let x = args.first()?;
                    Some(pg_numeric::sqrt_scale_udf().call(vec![(*x).clone(), of(x)?]))
                }
                "nullif" => places(args.first()?, schema, avg),
                name if numeric(e) && pg_numeric_log::kind_of(name).is_some() => {
                    let kind = pg_numeric_log::kind_of(name)?;
                    let mut call: Vec<Expr> = args.iter().map(|a| (*a).clone()).collect();
                    for a in &args {
                        call.push(of(a)?);
                    }
                    Some(pg_numeric_log::places_udf(kind).call(call))
                }
                "coalesce" if varies(&args, schema, avg) => {
                    let mut when_then = vec![];
                    for a in &args {
                        when_then.push((Box::new((*a).clone().is_not_null()), Box::new(of(a)?)));
                    }
                    Some(Expr::Case(Case::new(None, when_then, None)))
                }
                name @ ("greatest" | "least") if varies(&args, schema, avg) => {
                    // PostgreSQL keeps the first of equal values.
                    let op = if name == "greatest" {
                        Operator::Gt
                    } else {
                        Operator::Lt
                    };
                    let (first, rest) = args.split_first()?;
                    let mut value = (*first).clone();
                    let mut scale = of(first)?;
                    for a in rest {
                        let takes = (*a).clone().is_not_null().and(value.clone().is_null().or(
                            Expr::BinaryExpr(BinaryExpr::new(
                                Box::new((*a).clone()),
                                op,
                                Box::new(value.clone()),
                            )),
                        ));
                        let pick = |then: Expr, otherwise: Expr| {
                            Expr::Case(Case::new(
                                None,
                                vec![(Box::new(takes.clone()), Box::new(then))],
                                Some(Box::new(otherwise)),
                            ))
                        };
                        scale = pick(of(a)?, scale);
                        value = pick((*a).clone(), value);
                    }
                    Some(scale)
                }
                _ => None,
            }
        }
        // `numeric` without a scale is planned as decimal(38,10); a value
        // keeps the places it had.
        Expr::Cast(c) if *c.field.data_type() == DataType::Decimal128(38, 10) => {
            if let Expr::Placeholder(_) = c.expr.as_ref() {
                return Some(pg_numeric::param_scale().call(vec![c.expr.as_ref().clone()]));
            }
            // A double's 15 significant digits (`crate::rounding`).
            if let Expr::ScalarFunction(f) = c.expr.as_ref()
                && f.name() == float_numeric::FLOAT_NUMERIC
            {
                return Some(pg_numeric::text_scale().call(vec![f.args[0].clone()]));
            }
            match c.expr.get_type(schema).ok()? {
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                    Some(pg_numeric::text_scale().call(vec![c.expr.as_ref().clone()]))
                }
                t if pg_numeric::decimal_shape(&t).is_some() => of(&c.expr),
                // A double's 15 significant digits.
                t if t.is_floating() => {
                    Some(pg_numeric::text_scale().call(vec![c.expr.as_ref().clone()]))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// Whether the exact numbers `types` (an integer or a numeric each, or
/// NULL) meet in a numeric whose values' places differ: DataFusion types a
/// `CASE` or a `UNION` by its first branch until its coercion casts them
/// all to the numeric (`CASE WHEN q = 0 THEN 0 ELSE n END`: PostgreSQL
/// prints the 0 without places).
fn numerics_meet(types: &[DataType]) -> bool {
    let mut scales = vec![];
    for t in types {
        match t {
            DataType::Null => {}
            DataType::Decimal128(_, s) => scales.push(*s),
            t if t.is_integer() => scales.push(0),
            _ => return false,
        }
    }
    types.iter().any(|t| matches!(t, DataType::Decimal128(..)))
        && scales.windows(2).any(|w| w[0] != w[1])
}

/// Whether `exprs`' places can differ from value to value: one is
/// followed, or their types' places differ.
fn varies(exprs: &[&Expr], schema: &DFSchema, avg: &HashMap<String, Expr>) -> bool {
    let numeric = exprs.iter().any(|e| {
        e.get_type(schema)
            .is_ok_and(|t| matches!(t, DataType::Decimal128(..)))
    });
    if !numeric {
        return false;
    }
    let mut types = vec![];
    for e in exprs {
        if places(e, schema, avg).is_some() {
            return true;
        }
        match e.get_type(schema) {
            Ok(t) if t == DataType::Null || pg_numeric::decimal_shape(&t).is_some() => {
                types.push(t)
            }
            _ => return false,
        }
    }
    numerics_meet(&types)
}

/// The larger of two places.
fn larger(a: Expr, b: Expr) -> Expr {
    Expr::Case(Case::new(
        None,
        vec![(Box::new(a.clone().gt_eq(b.clone())), Box::new(a))],
        Some(Box::new(b)),
    ))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use futures::TryStreamExt;

    /// The result of `sql` with its hidden columns, as a table.
    async fn table(sql: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let engine = crate::engine::Engine::open(dir.path()).unwrap();
        let session = engine.client().with_numeric_places();
        let out = session.sql_one(sql).await.unwrap();
        let batches: Vec<_> = out.stream.try_collect().await.unwrap();
        pretty_format_batches(&batches).unwrap().to_string()
    }

    /// PostgreSQL prints 1.00000000000000000000 and 0.33333333333333333333
    /// (20 places) for the average and the quotient, and 0 for the
    /// COALESCE; a column's own places need no hidden column (`x + 1`).
    /// Under an ORDER BY of a column not selected, the places come up
    /// through the projection that sorts. (The `VALUES` column is an
    /// `integer`, as PostgreSQL's, so its average has 20 places; the
    /// shown quotient is exact, a decimal256 of 38 places,
    /// `crate::rounding`.)
    #[tokio::test]
    async fn hidden_columns_hold_postgresqls_places() {
        let t = table(
            "SELECT avg(x) AS a, sum(x) / 3.0 AS q, COALESCE(CAST(NULL AS numeric(10,2)), 0) AS c, \
             x + 1 AS k FROM (VALUES (1), (2), (2)) AS v(x) GROUP BY x ORDER BY x LIMIT 1",
        )
        .await;
        let want = "\
+------------------------+------------------------------------------+------+---+------------------+------------------+------------------+
| a                      | q                                        | c    | k | __quipu_places_0 | __quipu_places_1 | __quipu_places_2 |
+------------------------+------------------------------------------+------+---+------------------+------------------+------------------+
| 1.00000000000000000000 | 0.33333333333333333333000000000000000000 | 0.00 | 2 | 20               | 20               | 0                |
+------------------------+------------------------------------------+------+---+------------------+------------------+------------------+";
        assert_eq!(t, want);
    }

    /// Each input of a `UNION ALL` gives its rows' places (PostgreSQL
    /// prints 0.33333333333333333333, 1.5 and 2); `DISTINCT` and `UNION`
    /// keep one row of equal ones, with its places (the same without the
    /// 2, and the 1.5 once).
    /// A whole number written as a `CASE` result or a `UNION ALL` branch
    /// beside a numeric has no places (PostgreSQL prints `0`, not
    /// `0.00`).
    #[tokio::test]
    async fn whole_numbers_beside_numerics_keep_no_places() {
        let case = table(
            "SELECT CASE WHEN x = 1 THEN 0 ELSE CAST(x AS numeric(5,2)) END AS c \
             FROM (VALUES (1), (2)) AS v(x) ORDER BY x",
        )
        .await;
        assert!(case.contains("| 0.00 | 0                |"), "{case}");
        assert!(case.contains("| 2.00 | 2                |"), "{case}");
        let union = table(
            "SELECT * FROM (SELECT CAST(1.5 AS numeric(5,2)) AS u UNION ALL SELECT 0) AS q \
             ORDER BY u",
        )
        .await;
        assert!(union.contains("| 0.00 | 0                |"), "{union}");
        assert!(union.contains("| 1.50 | 2                |"), "{union}");
    }

    #[tokio::test]
    async fn set_operations_carry_each_rows_places() {
        let inputs = |union: &str| {
            format!(
                "SELECT CAST(1 AS numeric(5,0)) / 3 AS q {union} \
                 SELECT CAST(1.5 AS numeric(5,1)) {union} SELECT CAST(1.5 AS numeric(5,1))"
            )
        };
        let all = table(&format!(
            "SELECT * FROM ({}) AS u ORDER BY q",
            inputs("UNION ALL")
        ))
        .await;
        let distinct = table(&format!(
            "SELECT DISTINCT q FROM ({}) AS u ORDER BY q",
            inputs("UNION")
        ))
        .await;
        let rows = |ones: usize| {
            let line = "+------------------------+------------------+";
            let mut t = vec![
                line,
                "| q                      | __quipu_places_0 |",
                line,
                "| 0.33333333333333333333 | 20               |",
            ];
            t.extend(std::iter::repeat_n(
                "| 1.50000000000000000000 | 1                |",
                ones,
            ));
            t.push(line);
            t.join("\n")
        };
        assert_eq!(all, rows(2));
        assert_eq!(distinct, rows(1));
    }

    /// Subqueries' quotients and averages read through a join: PostgreSQL
    /// prints 0.25000000000000000000 and 0.50000000000000000000 (20
    /// places), and 1.5000000000000000 and 3.0000000000000000.
    #[tokio::test]
    async fn joined_subquerys_columns_carry_their_places() {
        let t = table(
            "SELECT k.x, k.q, a.m FROM \
             (SELECT x, CAST(x AS numeric(5,0)) / 4 AS q FROM (VALUES (1), (2)) AS k0(x)) AS k \
             JOIN (SELECT g, avg(v) AS m FROM (VALUES (1, 1), (1, 2), (2, 3)) AS t(g, v) GROUP BY g) AS a \
             ON a.g = k.x WHERE k.x > 0 ORDER BY k.x",
        )
        .await;
        let want = "\
+---+------------------------+------------------------+------------------+------------------+
| x | q                      | m                      | __quipu_places_1 | __quipu_places_2 |
+---+------------------------+------------------------+------------------+------------------+
| 1 | 0.25000000000000000000 | 1.50000000000000000000 | 20               | 16               |
| 2 | 0.50000000000000000000 | 3.00000000000000000000 | 20               | 16               |
+---+------------------------+------------------------+------------------+------------------+";
        assert_eq!(t, want);
    }

    /// A view's quotient, read through a filter: PostgreSQL prints
    /// 0.50000000000000000000 and 1.5000000000000000.
    #[tokio::test]
    async fn a_views_columns_carry_their_places() {
        let dir = tempfile::tempdir().unwrap();
        let engine = crate::engine::Engine::open(dir.path()).unwrap();
        let admin = engine.client();
        for sql in [
            "CREATE SCHEMA shop",
            "CREATE VIEW shop.v AS SELECT x, CAST(x AS numeric(5,0)) / 2 AS q \
             FROM (VALUES (1), (3)) AS t(x)",
        ] {
            admin.sql(sql).await.unwrap();
        }
        let session = engine.client().with_numeric_places();
        let out = session
            .sql_one("SELECT q FROM shop.v WHERE x > 0 ORDER BY q")
            .await
            .unwrap();
        let batches: Vec<_> = out.stream.try_collect().await.unwrap();
        let want = "\
+------------------------+------------------+
| q                      | __quipu_places_0 |
+------------------------+------------------+
| 0.50000000000000000000 | 20               |
| 1.50000000000000000000 | 16               |
+------------------------+------------------+";
        assert_eq!(pretty_format_batches(&batches).unwrap().to_string(), want);
    }

    /// A window's average and a logarithm of a numeric: PostgreSQL prints
    /// 1.00000000000000000000, 1.5000000000000000, 2.0000000000000000 and
    /// 0.0000000000000000, 0.6931471805599453 (twice). (The values are
    /// bigints: the average's column has 19 places.)
    #[tokio::test]
    async fn windows_and_logarithms_carry_their_places() {
        let t = table(
            "SELECT avg(x) OVER (ORDER BY x ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS w, \
             ln(CAST(x AS numeric)) AS l FROM (VALUES (1), (2), (2)) AS v(x) ORDER BY x",
        )
        .await;
        let want = "\
+------------------------+--------------------------------+------------------+------------------+
| w                      | l                              | __quipu_places_0 | __quipu_places_1 |
+------------------------+--------------------------------+------------------+------------------+
| 1.00000000000000000000 | 0.0000000000000000000000000000 | 20               | 16               |
| 1.50000000000000000000 | 0.6931471805599453000000000000 | 16               | 16               |
| 2.00000000000000000000 | 0.6931471805599453000000000000 | 16               | 16               |
+------------------------+--------------------------------+------------------+------------------+";
        assert_eq!(t, want);
    }
}
