//! Pushdown of sorts with a limit (top-k) and of aggregates to MongoDB, as
//! aggregation pipelines, where the pipeline gives exactly the rows Quipu
//! would compute itself. Only for sources with `pipelines=on`: on
//! SecantusDB, the server measured, the guards below made the pipelines
//! slower than reading the documents (docs/benchmarks.md).
//!
//! Exactness rests on reading each field the way Quipu's reader does: a
//! value that the reader would turn into NULL (an Int64 column holding a
//! string, a missing field) is NULL in the pipeline too, through
//! [`value_expr`], and filters are rewritten as `$expr` conditions over
//! those values with SQL's NULL rules ([`exact_filter`]). A plan that uses
//! anything else (another aggregate, DISTINCT, a computed key, a filter
//! that cannot be said exactly) is left to DataFusion, which still pushes
//! filters, projections and plain limits through the scan.
//!
//! - Top-k: `ORDER BY cols LIMIT n` over one collection becomes `$match`,
//!   `$addFields` (the values and a null rank per key, so NULLS FIRST/LAST
//!   match SQL rather than MongoDB's nulls-lowest order), `$sort`,
//!   `$limit n`, `$project`. DataFusion's sort and filters stay above and
//!   re-check the n rows.
//! - Aggregates: `GROUP BY` plain columns with `count(*)`, `count(col)`,
//!   `sum` of integers, `min` and `max` becomes `$match`, `$group`,
//!   `$project`. `sum` carries a companion count so that a group with no
//!   value sums to NULL as in SQL (MongoDB says 0), and an aggregate
//!   without GROUP BY over no documents still answers one row. `avg` and
//!   sums of floats are not pushed (the order of additions changes the
//!   last bits).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::Session;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchemaRef, TableReference};
use datafusion::datasource::{TableProvider, TableType, provider_as_source};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    BinaryExpr, Expr, LogicalPlan, LogicalPlanBuilder, Operator, SortExpr, TableScan,
    expr::{AggregateFunction, Cast, InList},
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};
use datafusion::physical_plan::ExecutionPlan;
use mongodb::bson::{Bson, Document, doc};
use quipu_catalog::SourceDef;

use crate::mongo::{
    MongoClients, MongoScanExec, MongoTable, bson_value, filter_to_mongo, projection_of,
};

/// The optimizer rule (added to every Quipu session after DataFusion's).
#[derive(Debug, Default)]
pub struct PushToMongo {
    /// Names the replacement scans `__quipu_mongo_N` (unique in a plan).
    counter: AtomicUsize,
}

impl OptimizerRule for PushToMongo {
    fn name(&self) -> &str {
        "quipu_push_to_mongodb"
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
            let replaced = match &node {
                LogicalPlan::Aggregate(_) => self.aggregate(&node)?,
                LogicalPlan::Sort(s) if s.fetch.is_some() => self.top_k(&node)?,
                _ => None,
            };
            Ok(match replaced {
                Some(p) => Transformed::new(p, true, TreeNodeRecursion::Jump),
                None => Transformed::no(node),
            })
        })
    }
}

/// What sits under a pushable node: the collection's scan and every filter
/// on the way down (all of which must be said exactly).
struct Below<'a> {
    scan: &'a TableScan,
    table: &'a MongoTable,
    filters: Vec<&'a Expr>,
}

/// Walks down plain-column projections, filters and aliases to a MongoDB
/// scan that allows pushdown.
fn below(mut plan: &LogicalPlan) -> Option<Below<'_>> {
    let mut filters = vec![];
    loop {
        match plan {
            LogicalPlan::Projection(p) if p.expr.iter().all(|e| matches!(e, Expr::Column(_))) => {
                plan = &p.input
            }
            LogicalPlan::Filter(f) => {
                filters.extend(split_conjunction(&f.predicate));
                plan = &f.input;
            }
            LogicalPlan::SubqueryAlias(a) => plan = &a.input,
            LogicalPlan::TableScan(scan) => {
                let table = mongo_table(scan)?;
                if !table.source().pipelines() || scan.fetch.is_some() {
                    return None;
                }
                filters.extend(scan.filters.iter());
                return Some(Below {
                    scan,
                    table,
                    filters,
                });
            }
            _ => return None,
        }
    }
}

/// The MongoDB table behind `scan`, borrowed from the scan's own source.
fn mongo_table(scan: &TableScan) -> Option<&MongoTable> {
    scan.source
        .as_ref()
        .downcast_ref::<datafusion::datasource::DefaultTableSource>()?
        .table_provider
        .as_ref()
        .downcast_ref::<MongoTable>()
}

impl Below<'_> {
    /// The collection's field `name` and its type.
    fn field(&self, name: &str) -> Option<(String, DataType)> {
        let schema = self.table.schema();
        let f = schema.field_with_name(name).ok()?;
        Some((f.name().clone(), f.data_type().clone()))
    }

    /// The `$match` stage for all the filters, or None when one of them
    /// cannot be said exactly. The plain query (which can use an index)
    /// comes first; the exact `$expr` settles what it cannot.
    fn exact_match(&self) -> Option<Vec<Document>> {
        if self.filters.is_empty() {
            return Some(vec![]);
        }
        let schema = self.table.schema();
        let mut plain: Vec<Bson> = vec![];
        let mut exact: Vec<Bson> = vec![];
        for f in &self.filters {
            exact.push(exact_filter(f, self)?);
            if let Some(d) = filter_to_mongo(f, &schema) {
                plain.push(Bson::Document(d));
            }
        }
        plain.push(Bson::Document(doc! { "$expr": { "$and": exact } }));
        Some(vec![doc! { "$match": { "$and": plain } }])
    }
}

/// A field name that is safe as a field path: `$name` would otherwise be
/// read as a nested path (`a.b`) or a variable (`$$x`).
fn path(name: &str) -> Option<Bson> {
    let plain = !name.is_empty() && !name.contains('.') && !name.starts_with('$');
    plain.then(|| Bson::String(format!("${name}")))
}

/// An aggregation expression giving what Quipu's reader builds from field
/// `name` of Arrow type `t` (see `mongo::build`): NULL where the reader
/// gives NULL. None for types it does not mirror.
pub(crate) fn value_expr(name: &str, t: &DataType) -> Option<Bson> {
    let v = path(name)?;
    let kind = doc! { "$type": v.clone() };
    let of = |types: &[&str]| doc! { "$in": [kind.clone(), types.to_vec()] };
    let switch = |branches: Vec<(Document, Bson)>| {
        let branches: Vec<Bson> = branches
            .into_iter()
            .map(|(case, then)| Bson::Document(doc! { "case": case, "then": then }))
            .collect();
        Bson::Document(doc! { "$switch": { "branches": branches, "default": Bson::Null } })
    };
    Some(match t {
        DataType::Int64 => switch(vec![
            (
                of(&["int", "long"]),
                Bson::Document(doc! { "$toLong": v.clone() }),
            ),
            // An integral double reads as an integer (`as_i64`). `$cond`
            // evaluates only its chosen branch, so `$trunc` and `$toLong`
            // never see a non-number, NaN or a value out of range (which
            // would fail the query; the reader gives NULL for NaN and
            // infinities).
            (
                doc! { "$eq": [kind.clone(), "double"] },
                Bson::Document(doc! { "$cond": [
                    { "$and": [
                        { "$gte": [v.clone(), crate::mongo::I64_MIN_F] },
                        { "$lt": [v.clone(), crate::mongo::I64_END_F] },
                        { "$eq": [v.clone(), { "$trunc": [v.clone(), 0] }] },
                    ] },
                    { "$toLong": v.clone() },
                    Bson::Null,
                ] }),
            ),
        ]),
        DataType::Float64 => switch(vec![(
            of(&["int", "long", "double"]),
            Bson::Document(doc! { "$toDouble": v.clone() }),
        )]),
        DataType::Boolean => switch(vec![(of(&["bool"]), v.clone())]),
        DataType::Timestamp(TimeUnit::Millisecond, _) => switch(vec![(of(&["date"]), v.clone())]),
        // Text: strings as they are, ObjectIds as hex (as the reader).
        // Other values in a text column (a document outside the inference
        // sample) are not mirrored: the reader writes them as extended
        // JSON, so a plan grouping or ordering by such a column is only
        // pushed when the values are strings or ObjectIds; anything else
        // reads as NULL here. Documented in docs/sources.md.
        DataType::Utf8 => switch(vec![
            (of(&["string"]), v.clone()),
            (
                of(&["objectId"]),
                Bson::Document(doc! { "$toString": v.clone() }),
            ),
        ]),
        _ => return None,
    })
}

/// `e` as an aggregation expression that is true exactly where SQL's
/// predicate is TRUE (false where it is FALSE or NULL).
fn exact_filter(e: &Expr, at: &Below) -> Option<Bson> {
    let column = |e: &Expr| match e {
        Expr::Column(c) => at.field(&c.name),
        _ => None,
    };
    let not_null = |v: &Bson| Bson::Document(doc! { "$ne": [v.clone(), Bson::Null] });
    let literal = |v: Bson| Bson::Document(doc! { "$literal": v });
    Some(match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            // With NULL read as false, AND and OR keep SQL's answer in a
            // WHERE clause (NOT would not, and is not pushed).
            Operator::And => {
                Bson::Document(doc! { "$and": [exact_filter(left, at)?, exact_filter(right, at)?] })
            }
            Operator::Or => {
                Bson::Document(doc! { "$or": [exact_filter(left, at)?, exact_filter(right, at)?] })
            }
            _ => {
                let ((name, t), op, lit) = match (column(left), column(right)) {
                    (Some(f), None) => (f, *op, right.as_ref()),
                    (None, Some(f)) => (f, op.swap()?, left.as_ref()),
                    _ => return None,
                };
                let Expr::Literal(value, _) = lit else {
                    return None;
                };
                let value = bson_value(value, &t)?;
                let v = value_expr(&name, &t)?;
                let mop = crate::mongo::comparison_op(op)?;
                let mut cmp = Document::new();
                cmp.insert(mop, vec![v.clone(), literal(value)]);
                Bson::Document(doc! { "$and": [not_null(&v), cmp] })
            }
        },
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) => {
            let (name, t) = column(expr)?;
            let v = value_expr(&name, &t)?;
            // A NULL in the list never makes the predicate TRUE.
            let items = list
                .iter()
                .filter(|i| !matches!(i, Expr::Literal(s, _) if s.is_null()))
                .map(|i| match i {
                    Expr::Literal(s, _) => bson_value(s, &t),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?;
            Bson::Document(
                doc! { "$and": [not_null(&v), { "$in": [v, literal(Bson::Array(items))] }] },
            )
        }
        Expr::IsNull(inner) => {
            let (name, t) = column(inner)?;
            Bson::Document(doc! { "$eq": [value_expr(&name, &t)?, Bson::Null] })
        }
        Expr::IsNotNull(inner) => {
            let (name, t) = column(inner)?;
            not_null(&value_expr(&name, &t)?)
        }
        _ => return None,
    })
}

impl PushToMongo {
    fn alias(&self) -> String {
        format!(
            "__quipu_mongo_{}",
            self.counter.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// `ORDER BY cols LIMIT n` over one collection: the scan returns the n
    /// first rows in that order; the sort above stays (it re-sorts n rows).
    fn top_k(&self, node: &LogicalPlan) -> DfResult<Option<LogicalPlan>> {
        let LogicalPlan::Sort(sort) = node else {
            return Ok(None);
        };
        let Some(n) = sort.fetch else {
            return Ok(None);
        };
        let Some(at) = below(&sort.input) else {
            return Ok(None);
        };
        let Some(mut stages) = at.exact_match() else {
            return Ok(None);
        };
        let mut keys = Document::new();
        let mut ranks = Document::new();
        let mut order = Document::new();
        for (
            i,
            SortExpr {
                expr,
                asc,
                nulls_first,
            },
        ) in sort.expr.iter().enumerate()
        {
            let Some((name, t)) = (match expr {
                Expr::Column(c) => at.field(&c.name),
                _ => None,
            }) else {
                return Ok(None);
            };
            let Some(v) = value_expr(&name, &t) else {
                return Ok(None);
            };
            // The null rank first: 0 for values and 1 for NULL sorts NULLs
            // last, ascending.
            ranks.insert(
                format!("__quipu_n{i}"),
                doc! { "$cond": [{ "$eq": [format!("$__quipu_k{i}"), Bson::Null] }, 1, 0] },
            );
            keys.insert(format!("__quipu_k{i}"), v);
            order.insert(format!("__quipu_n{i}"), if *nulls_first { -1 } else { 1 });
            order.insert(format!("__quipu_k{i}"), if *asc { 1 } else { -1 });
        }
        let schema = at.scan.projected_schema.clone();
        if schema.fields().iter().any(|f| path(f.name()).is_none()) {
            return Ok(None);
        }
        let project = projection_of(schema.as_arrow());
        // The values first, then their NULL ranks from them (each value is
        // computed once per document).
        stages.push(doc! { "$addFields": keys });
        stages.push(doc! { "$addFields": ranks });
        stages.push(doc! { "$sort": order });
        stages.push(doc! { "$limit": n as i64 });
        stages.push(doc! { "$project": project });
        let fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        let scan = self.query_scan(&at, fields, stages, None, &schema)?;
        // Replace only the scan: the filters, projections and sort above
        // stay and see the same columns.
        let input = replace_scan(&sort.input, at.scan, scan)?;
        Ok(Some(LogicalPlan::Sort(datafusion::logical_expr::Sort {
            input: Arc::new(input),
            ..sort.clone()
        })))
    }

    /// An aggregate over one collection whose groups and aggregates
    /// MongoDB computes exactly.
    fn aggregate(&self, node: &LogicalPlan) -> DfResult<Option<LogicalPlan>> {
        let LogicalPlan::Aggregate(agg) = node else {
            return Ok(None);
        };
        let Some(at) = below(&agg.input) else {
            return Ok(None);
        };
        let Some(mut stages) = at.exact_match() else {
            return Ok(None);
        };
        let column = |e: &Expr| match e {
            Expr::Column(c) => at.field(&c.name),
            _ => None,
        };
        let out = agg.schema.clone();
        // Each column's value is computed once per document, in a `$project`
        // before the `$group` (an expression costs a Python server ~20 µs
        // per document, so computing it twice shows).
        let mut values = Document::new();
        let mut names: Vec<String> = vec![];
        let mut value_of = |name: String, t: DataType| -> Option<Bson> {
            let i = match names.iter().position(|n| *n == name) {
                Some(i) => i,
                None => {
                    values.insert(format!("__quipu_v{}", names.len()), value_expr(&name, &t)?);
                    names.push(name);
                    names.len() - 1
                }
            };
            Some(Bson::String(format!("$__quipu_v{i}")))
        };
        let mut id = Document::new();
        let mut group = Document::new();
        let mut project = doc! { "_id": 0 };
        let mut default_row = Document::new();
        // Output columns read in another type than the plan's.
        let mut wire: std::collections::HashMap<usize, DataType> = Default::default();
        let groups = agg.group_expr.len();
        for (i, g) in agg.group_expr.iter().enumerate() {
            let Some(v) = column(g).and_then(|(name, t)| value_of(name, t)) else {
                return Ok(None);
            };
            id.insert(format!("k{i}"), v);
            project.insert(format!("c{i}"), format!("$_id.k{i}"));
        }
        for (j, a) in agg.aggr_expr.iter().enumerate() {
            let i = groups + j;
            let a = match a {
                Expr::Alias(al) => al.expr.as_ref(),
                other => other,
            };
            let Expr::AggregateFunction(AggregateFunction { func, params }) = a else {
                return Ok(None);
            };
            if params.distinct
                || params.filter.is_some()
                || !params.order_by.is_empty()
                || params.args.len() != 1
            {
                return Ok(None);
            }
            let arg = &params.args[0];
            let mut value = |ok: &dyn Fn(&DataType) -> bool| {
                column(arg)
                    .filter(|(_, t)| ok(t))
                    .and_then(|(name, t)| value_of(name, t))
            };
            let (c, n) = (format!("a{j}"), format!("n{j}"));
            match func.name() {
                "count" => {
                    let counted = match arg {
                        Expr::Literal(s, _) if !s.is_null() => Bson::Int32(1),
                        _ => match value(&|_| true) {
                            Some(v) => {
                                Bson::Document(doc! { "$cond": [{ "$eq": [v, Bson::Null] }, 0, 1] })
                            }
                            None => return Ok(None),
                        },
                    };
                    group.insert(c.clone(), doc! { "$sum": counted });
                    project.insert(format!("c{i}"), format!("${c}"));
                    default_row.insert(format!("c{i}"), 0i64);
                }
                "sum" => {
                    // `sum` of a bigint is a numeric (`float_literals`):
                    // MongoDB sums the longs, the scan reads a long and
                    // casts it.
                    let v = match arg {
                        Expr::Cast(Cast { expr, field })
                            if matches!(field.data_type(), DataType::Decimal128(..)) =>
                        {
                            wire.insert(i, DataType::Int64);
                            column(expr)
                                .filter(|(_, t)| *t == DataType::Int64)
                                .and_then(|(name, t)| value_of(name, t))
                        }
                        _ => value(&|t| *t == DataType::Int64),
                    };
                    let Some(v) = v else {
                        return Ok(None);
                    };
                    group.insert(c.clone(), doc! { "$sum": v.clone() });
                    group.insert(
                        n.clone(),
                        doc! { "$sum": { "$cond": [{ "$eq": [v, Bson::Null] }, 0, 1] } },
                    );
                    project.insert(
                        format!("c{i}"),
                        doc! { "$cond": [{ "$eq": [format!("${n}"), 0] }, Bson::Null, format!("${c}")] },
                    );
                }
                name @ ("min" | "max") => {
                    let Some(v) = value(&|_| true) else {
                        return Ok(None);
                    };
                    let mut acc = Document::new();
                    acc.insert(format!("${name}"), v);
                    group.insert(c.clone(), acc);
                    project.insert(format!("c{i}"), format!("${c}"));
                }
                _ => return Ok(None),
            }
        }
        let mut stage = doc! { "_id": if id.is_empty() { Bson::Null } else { Bson::Document(id) } };
        stage.extend(group);
        if values.is_empty() {
            values.insert("_id", 1);
        }
        stages.push(doc! { "$project": values });
        stages.push(doc! { "$group": stage });
        stages.push(doc! { "$project": project });
        let fields: Vec<Field> = out
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let t = wire.get(&i).unwrap_or(f.data_type()).clone();
                Field::new(format!("c{i}"), t, true)
            })
            .collect();
        let default_row = (groups == 0).then_some(default_row);
        let scan = self.query_scan(&at, fields, stages, default_row, &out)?;
        Ok(Some(scan))
    }

    /// A scan of one pipeline, its columns relabelled as `out`'s.
    fn query_scan(
        &self,
        at: &Below,
        fields: Vec<Field>,
        pipeline: Vec<Document>,
        default_row: Option<Document>,
        out: &DFSchemaRef,
    ) -> DfResult<LogicalPlan> {
        let table = Arc::new(MongoQueryTable {
            source: at.table.source().clone(),
            clients: at.table.clients().clone(),
            collection: at.table.collection().to_string(),
            schema: Arc::new(Schema::new(fields.clone())),
            pipeline,
            default_row,
        });
        let alias = self.alias();
        let labels: Vec<Expr> = out
            .iter()
            .zip(&fields)
            .map(|((qualifier, f), inner)| {
                let mut c = Expr::Column(Column::new(
                    Some(TableReference::bare(alias.as_str())),
                    inner.name(),
                ));
                // A column read in another type than the plan's (a sum of
                // longs for a numeric sum).
                if inner.data_type() != f.data_type() {
                    c = Expr::Cast(Cast::new(Box::new(c), f.data_type().clone()));
                }
                match qualifier {
                    Some(q) => c.alias_qualified(Some(q.clone()), f.name()),
                    None => c.alias(f.name()),
                }
            })
            .collect();
        LogicalPlanBuilder::scan(alias.as_str(), provider_as_source(table), None)?
            .project(labels)?
            .build()
    }
}

/// `plan` with the scan `old` replaced by `new` (same columns).
fn replace_scan(plan: &LogicalPlan, old: &TableScan, new: LogicalPlan) -> DfResult<LogicalPlan> {
    let mut new = Some(new);
    plan.clone()
        .transform_up(|node| match &node {
            LogicalPlan::TableScan(s) if s == old => match new.take() {
                Some(n) => Ok(Transformed::yes(n)),
                None => Ok(Transformed::no(node)),
            },
            _ => Ok(Transformed::no(node)),
        })
        .map(|t| t.data)
}

/// One aggregation pipeline over one collection, as a table whose columns
/// are the pipeline's output fields.
#[derive(Debug)]
pub struct MongoQueryTable {
    source: SourceDef,
    clients: Arc<MongoClients>,
    collection: String,
    schema: SchemaRef,
    pipeline: Vec<Document>,
    default_row: Option<Document>,
}

impl MongoQueryTable {
    pub fn from_parts(
        source: SourceDef,
        clients: Arc<MongoClients>,
        collection: String,
        schema: SchemaRef,
        pipeline: Vec<Document>,
        default_row: Option<Document>,
    ) -> MongoQueryTable {
        MongoQueryTable {
            source,
            clients,
            collection,
            schema,
            pipeline,
            default_row,
        }
    }

    pub fn source(&self) -> &SourceDef {
        &self.source
    }

    pub fn collection(&self) -> &str {
        &self.collection
    }

    pub fn pipeline(&self) -> &[Document] {
        &self.pipeline
    }

    pub fn default_row(&self) -> Option<&Document> {
        self.default_row.as_ref()
    }
}

#[async_trait]
impl TableProvider for MongoQueryTable {
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
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        // The reader picks the projected fields by name from each output
        // document, so the pipeline stays as pushed.
        let (_, schema) = crate::remote::projected(&self.schema, projection)?;
        Ok(Arc::new(
            MongoScanExec::new(
                self.source.clone(),
                self.clients.clone(),
                self.collection.clone(),
                schema,
                Document::new(),
                Document::new(),
                None,
            )
            .with_pipeline(self.pipeline.clone(), self.default_row.clone()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_refuse_names_mongodb_would_read_as_paths() {
        assert_eq!(path("qty"), Some(Bson::String("$qty".into())));
        assert_eq!(path("a.b"), None);
        assert_eq!(path("$where"), None);
        assert_eq!(path(""), None);
        assert!(value_expr("qty", &DataType::Int64).is_some());
        assert!(
            value_expr(
                "tags",
                &DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
            )
            .is_none()
        );
    }
}
