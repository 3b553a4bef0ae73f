//! Logical and physical extension codecs for Quipu's live-source tables and
//! scan operators, composed with another codec (Ballista's) for everything
//! else. With them a plan that reads PostgreSQL or MongoDB can be sent to
//! the scheduler and its scans run on executors.
//!
//! The encoded form names the source and carries the remote query (SQL, or
//! collection, filter, projection and limit) and the column types; never
//! connection options or credentials. The decoding side looks the source up
//! in its own catalog and connects with its own pools, resolving secret
//! references locally.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{AggregateUDF, Extension, LogicalPlan, ScalarUDF, WindowUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use quipu_catalog::{SourceDef, SourceKind};
use serde::{Deserialize, Serialize};

use crate::catalog::QuipuCatalogList;
use crate::connector::{Connector, Encoded};

/// Starts every buffer we encode. A zero byte cannot start a protobuf
/// message (field number 0 is invalid), so it never collides with what the
/// inner codec writes.
const MAGIC: &[u8] = b"\0quipu2\0";
/// Starts an encoded `forecast()` / `backtest()` table (its query and
/// arguments: [`crate::forecast::encode`]).
const FORECAST_MAGIC: &[u8] = b"\0quipuF\0";

/// A node of a live source on the wire: which connector encoded it, and
/// what it wrote.
#[derive(Debug, Serialize, Deserialize)]
struct Tagged {
    kind: SourceKind,
    encoded: Encoded,
}

/// Starts the buffer of a materialized view's files (`CacheFiles`), which
/// any process reads by location alone.
const CACHE_MAGIC: &[u8] = b"\0quipu-cache1\0";

fn write(wire: &Tagged, buf: &mut Vec<u8>) -> Result<()> {
    buf.extend_from_slice(MAGIC);
    serde_json::to_writer(buf, wire).map_err(|e| DataFusionError::External(Box::new(e)))
}

fn read(buf: &[u8]) -> Option<Result<Tagged>> {
    let body = buf.strip_prefix(MAGIC)?;
    Some(
        serde_json::from_slice(body)
            .map_err(|e| DataFusionError::Plan(format!("cannot decode a Quipu plan node: {e}"))),
    )
}

/// The catalog and connectors a decoded node runs with.
#[derive(Debug, Clone)]
struct Resolver {
    catalogs: QuipuCatalogList,
}

impl Resolver {
    fn source(&self, name: &str) -> Result<SourceDef> {
        let shared = &self.catalogs.shared;
        let lookup = || {
            shared
                .store
                .source(name)
                .map_err(|e| DataFusionError::External(Box::new(e)))
        };
        let mut found = lookup()?;
        if found.is_none()
            && let Some(refresh) = shared.on_source_miss.get()
        {
            // A source added since this process last synced its catalog.
            refresh(name);
            found = lookup()?;
        }
        found.ok_or_else(|| {
            DataFusionError::Plan(format!(
                "source `{name}` is not in this process's catalog (dropped while the query ran?)"
            ))
        })
    }

    /// The first connector that encodes the node.
    fn encode(
        &self,
        encode: impl Fn(&dyn Connector) -> Option<Result<Encoded>>,
    ) -> Result<Option<Tagged>> {
        for connector in self.catalogs.shared.connectors.iter() {
            if let Some(encoded) = encode(connector.as_ref()) {
                return Ok(Some(Tagged {
                    kind: connector.kind(),
                    encoded: encoded?,
                }));
            }
        }
        Ok(None)
    }

    /// The connector that encoded the node, and the source it reads.
    fn decoder(&self, wire: &Tagged) -> Result<(&Arc<dyn Connector>, SourceDef)> {
        let source = self.source(&wire.encoded.source)?;
        if source.kind != wire.kind {
            return Err(DataFusionError::Plan(format!(
                "source `{}` is a {} source here, the plan was made for a {} source",
                source.name, source.kind, wire.kind
            )));
        }
        Ok((self.catalogs.shared.connectors.of(wire.kind), source))
    }

    fn encode_table(&self, node: &dyn TableProvider) -> Result<Option<Tagged>> {
        self.encode(|c| c.encode_table(node))
    }

    fn decode_table(&self, wire: Tagged, schema: SchemaRef) -> Result<Arc<dyn TableProvider>> {
        let (connector, source) = self.decoder(&wire)?;
        connector.decode_table(wire.encoded, schema, source)
    }

    fn encode_exec(&self, node: &dyn ExecutionPlan) -> Result<Option<Tagged>> {
        self.encode(|c| c.encode_exec(node))
    }

    fn decode_exec(&self, wire: Tagged) -> Result<Arc<dyn ExecutionPlan>> {
        let (connector, source) = self.decoder(&wire)?;
        connector.decode_exec(wire.encoded, source)
    }
}

/// Quipu's logical codec: live-source tables here, the rest to `inner`.
#[derive(Debug)]
pub struct QuipuLogicalCodec {
    resolver: Resolver,
    inner: Arc<dyn LogicalExtensionCodec>,
}

impl QuipuLogicalCodec {
    pub fn new(catalogs: QuipuCatalogList, inner: Arc<dyn LogicalExtensionCodec>) -> Self {
        QuipuLogicalCodec {
            resolver: Resolver { catalogs },
            inner,
        }
    }
}

impl LogicalExtensionCodec for QuipuLogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        if let Some(body) = buf.strip_prefix(CACHE_MAGIC) {
            let files: crate::catalog::cache::CacheFiles = serde_json::from_slice(body)
                .map_err(|e| DataFusionError::Plan(format!("cannot decode a cache scan: {e}")))?;
            return Ok(Arc::new(files.table()?));
        }
        if let Some(body) = buf.strip_prefix(FORECAST_MAGIC) {
            return crate::forecast::decode(body);
        }
        match read(buf) {
            Some(e) => self.resolver.decode_table(e?, schema),
            None => self
                .inner
                .try_decode_table_provider(buf, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        if let Some(cache) = (node.as_ref() as &dyn std::any::Any)
            .downcast_ref::<crate::catalog::cache::CacheTable>()
        {
            buf.extend_from_slice(CACHE_MAGIC);
            return serde_json::to_writer(buf, &cache.files)
                .map_err(|e| DataFusionError::External(Box::new(e)));
        }
        if let Some(body) = crate::forecast::encode(node.as_ref()) {
            buf.extend_from_slice(FORECAST_MAGIC);
            buf.extend_from_slice(&body?);
            return Ok(());
        }
        match self.resolver.encode_table(node.as_ref())? {
            Some(e) => write(&e, buf),
            None => self.inner.try_encode_table_provider(table_ref, node, buf),
        }
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.inner.try_encode_file_format(buf, node)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        match ours_decoded(name, buf) {
            Some(f) => Ok(f),
            None => self.inner.try_decode_udf(name, buf),
        }
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        match ours_encoded(node, buf) {
            true => Ok(()),
            false => self.inner.try_encode_udf(node, buf),
        }
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        match ours_decoded_udaf(name, buf) {
            Some(f) => Ok(f),
            None => self.inner.try_decode_udaf(name, buf),
        }
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        match ours_encoded_udaf(node, buf) {
            true => Ok(()),
            false => self.inner.try_encode_udaf(node, buf),
        }
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        self.inner.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udwf(node, buf)
    }
}

/// The mark a Quipu scalar function is encoded with: its name alone would
/// let a decoder take DataFusion's function of the same name (`concat`,
/// `upper`) from its registry, and a `quipu_*` function is in no registry
/// of a `quipu executor` process ("PhysicalExtensionCodec is not provided
/// for scalar function quipu_float8_div").
const OURS: &[u8] = b"quipu";

fn ours_encoded(node: &ScalarUDF, buf: &mut Vec<u8>) -> bool {
    marked(
        crate::session::scalar_functions(),
        node.name(),
        |f| f.name(),
        buf,
    )
}

fn ours_decoded(name: &str, buf: &[u8]) -> Option<Arc<ScalarUDF>> {
    found(crate::session::scalar_functions(), name, |f| f.name(), buf)
}

/// Quipu's aggregates travel marked too: no `quipu executor` registry
/// has them.
fn ours_encoded_udaf(node: &AggregateUDF, buf: &mut Vec<u8>) -> bool {
    marked(
        crate::session::aggregate_functions(),
        node.name(),
        |f| f.name(),
        buf,
    )
}

fn ours_decoded_udaf(name: &str, buf: &[u8]) -> Option<Arc<AggregateUDF>> {
    found(
        crate::session::aggregate_functions(),
        name,
        |f| f.name(),
        buf,
    )
}

/// Marks `buf` when `name` is one of `ours`.
fn marked<T>(ours: &[Arc<T>], name: &str, name_of: fn(&T) -> &str, buf: &mut Vec<u8>) -> bool {
    let is_ours = ours.iter().any(|f| name_of(f) == name);
    if is_ours {
        buf.extend_from_slice(OURS);
    }
    is_ours
}

/// The one of `ours` named `name`, when `buf` is marked.
fn found<T>(ours: &[Arc<T>], name: &str, name_of: fn(&T) -> &str, buf: &[u8]) -> Option<Arc<T>> {
    (buf == OURS)
        .then(|| ours.iter().find(|f| name_of(f) == name).cloned())
        .flatten()
}

/// Quipu's physical codec: live-source scans here, the rest to `inner`.
#[derive(Debug)]
pub struct QuipuPhysicalCodec {
    resolver: Resolver,
    inner: Arc<dyn PhysicalExtensionCodec>,
}

impl QuipuPhysicalCodec {
    pub fn new(catalogs: QuipuCatalogList, inner: Arc<dyn PhysicalExtensionCodec>) -> Self {
        QuipuPhysicalCodec {
            resolver: Resolver { catalogs },
            inner,
        }
    }
}

impl PhysicalExtensionCodec for QuipuPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match read(buf) {
            Some(e) => self.resolver.decode_exec(e?),
            None => self.inner.try_decode(buf, inputs, ctx, proto_converter),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        match self.resolver.encode_exec(node.as_ref())? {
            Some(e) => write(&e, buf),
            None => self.inner.try_encode(node, buf, proto_converter),
        }
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        match ours_decoded(name, buf) {
            Some(f) => Ok(f),
            None => self.inner.try_decode_udf(name, buf),
        }
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        match ours_encoded(node, buf) {
            true => Ok(()),
            false => self.inner.try_encode_udf(node, buf),
        }
    }

    fn try_decode_expr(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn datafusion::physical_expr::PhysicalExpr>],
        ctx: &datafusion::physical_expr_common::physical_expr::proto_decode::PhysicalExprDecodeCtx<
            '_,
        >,
    ) -> Result<Arc<dyn datafusion::physical_expr::PhysicalExpr>> {
        match crate::planning::checked_expr::decode(buf, inputs)
            .or_else(|| crate::planning::short_circuit::decode(buf, inputs))
        {
            Some(e) => e,
            None => self.inner.try_decode_expr(buf, inputs, ctx),
        }
    }

    fn try_encode_expr(
        &self,
        node: &Arc<dyn datafusion::physical_expr::PhysicalExpr>,
        buf: &mut Vec<u8>,
        ctx: &datafusion::physical_expr_common::physical_expr::proto_encode::PhysicalExprEncodeCtx<
            '_,
        >,
    ) -> Result<()> {
        match crate::planning::checked_expr::encode(node)
            .or_else(|| crate::planning::short_circuit::encode(node))
        {
            Some(ours) => {
                buf.extend_from_slice(&ours);
                Ok(())
            }
            None => self.inner.try_encode_expr(node, buf, ctx),
        }
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        match ours_decoded_udaf(name, buf) {
            Some(f) => Ok(f),
            None => self.inner.try_decode_udaf(name, buf),
        }
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        match ours_encoded_udaf(node, buf) {
            true => Ok(()),
            false => self.inner.try_encode_udaf(node, buf),
        }
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        self.inner.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udwf(node, buf)
    }
}

#[cfg(test)]
mod tests {
    //! Every shape of live-source table and scan survives the codecs, and
    //! what cannot be decoded says why. No source is contacted: the
    //! catalog knows the sources, nothing connects until a scan runs.

    use super::*;

    #[test]
    fn quipu_functions_travel_marked_and_come_back_as_ours() {
        for f in crate::session::scalar_functions() {
            let mut buf = vec![];
            assert!(ours_encoded(f, &mut buf), "{}", f.name());
            let back = ours_decoded(f.name(), &buf).expect("decoded");
            assert_eq!(back.name(), f.name());
        }
        // DataFusion's own functions go to the inner codec unmarked.
        let mut buf = vec![];
        assert!(!ours_encoded(
            &datafusion::functions::string::repeat(),
            &mut buf
        ));
        assert!(buf.is_empty());
        assert!(ours_decoded("concat", b"").is_none());
        for f in crate::session::aggregate_functions() {
            let mut buf = vec![];
            assert!(ours_encoded_udaf(f, &mut buf), "{}", f.name());
            let back = ours_decoded_udaf(f.name(), &buf).expect("decoded");
            assert_eq!(back.name(), f.name());
        }
    }
    use crate::mongo::pushdown::MongoQueryTable;
    use crate::mongo::{MongoScanExec, MongoTable};
    use crate::postgres::pushdown::RemoteQueryTable;
    use crate::postgres::{PgScanExec, PgTable};
    use crate::session::QuipuSession;
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use datafusion::physical_plan::displayable;
    use datafusion_proto::logical_plan::DefaultLogicalExtensionCodec;
    use datafusion_proto::physical_plan::{
        DefaultPhysicalExtensionCodec, DefaultPhysicalProtoConverter,
    };
    use mongodb::bson::doc;
    use quipu_catalog::TableName;

    struct Fixture {
        _dir: tempfile::TempDir,
        session: QuipuSession,
        crm: SourceDef,
        inventory: SourceDef,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let session = QuipuSession::open(dir.path()).unwrap();
        let def = |name: &str, kind, options: &[(&str, &str)]| {
            SourceDef::new(
                name,
                kind,
                options
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
            .unwrap()
        };
        let crm = def(
            "crm",
            SourceKind::Postgres,
            &[
                ("host", "db.invalid"),
                ("dbname", "crm"),
                ("password", "env:QUIPU_TEST_CRM_PASSWORD"),
            ],
        );
        let inventory = def(
            "inventory",
            SourceKind::Mongodb,
            &[("host", "mongo.invalid"), ("database", "inv")],
        );
        for s in [&crm, &inventory] {
            session.store().add_source(s, &[]).unwrap();
        }
        Fixture {
            _dir: dir,
            session,
            crm,
            inventory,
        }
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("amount", DataType::Decimal128(12, 2), true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("note", DataType::Utf8, true),
        ]))
    }

    fn physical(f: &Fixture) -> QuipuPhysicalCodec {
        QuipuPhysicalCodec::new(
            f.session.catalogs().clone(),
            Arc::new(DefaultPhysicalExtensionCodec {}),
        )
    }

    fn logical(f: &Fixture) -> QuipuLogicalCodec {
        QuipuLogicalCodec::new(
            f.session.catalogs().clone(),
            Arc::new(DefaultLogicalExtensionCodec {}),
        )
    }

    fn round_trip_exec(f: &Fixture, plan: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
        let codec = physical(f);
        let converter = DefaultPhysicalProtoConverter {};
        let mut buf = vec![];
        codec
            .try_encode(plan.clone(), &mut buf, &converter)
            .unwrap();
        let text = String::from_utf8_lossy(&buf);
        // Options never travel: neither the host nor the secret's reference.
        for option in ["db.invalid", "mongo.invalid", "QUIPU_TEST_CRM_PASSWORD"] {
            assert!(
                !text.contains(option),
                "{option} in an encoded plan: {text}"
            );
        }
        codec
            .try_decode(&buf, &[], &TaskContext::default(), &converter)
            .unwrap()
    }

    fn line(plan: &Arc<dyn ExecutionPlan>) -> String {
        displayable(plan.as_ref()).one_line().to_string()
    }

    #[test]
    fn every_postgres_scan_shape_round_trips() {
        let f = fixture();
        let pools: Arc<crate::postgres::PgPools> = Arc::default();
        let one = PgScanExec::new(
            f.crm.clone(),
            pools.clone(),
            schema(),
            "SELECT \"id\" FROM \"public\".\"orders\" WHERE \"note\"::text = E'O''Brien'".into(),
        );
        let ranges = PgScanExec::partitioned(
            f.crm.clone(),
            pools,
            schema(),
            (0..3)
                .map(|i| format!("SELECT 1 WHERE {i} = {i}"))
                .collect(),
        )
        .merged(true)
        .exact_decimals(true);
        for scan in [one, ranges] {
            let before: Arc<dyn ExecutionPlan> = Arc::new(scan);
            let decoded = round_trip_exec(&f, before.clone());
            let before = before.downcast_ref::<PgScanExec>().unwrap();
            let after = decoded.downcast_ref::<PgScanExec>().expect("a PgScanExec");
            assert_eq!(after.sqls(), before.sqls());
            assert_eq!(after.is_merged(), before.is_merged());
            assert_eq!(after.checks_decimals(), before.checks_decimals());
            assert_eq!(after.schema(), before.schema());
            assert_eq!(
                line(&decoded),
                displayable(before as &dyn ExecutionPlan)
                    .one_line()
                    .to_string()
            );
        }
    }

    #[test]
    fn every_mongo_scan_shape_round_trips() {
        let f = fixture();
        let clients: Arc<crate::mongo::MongoClients> = Arc::default();
        let scan = |filter, limit| {
            MongoScanExec::new(
                f.inventory.clone(),
                clients.clone(),
                "stock".into(),
                schema(),
                filter,
                doc! { "id": 1, "note": 1 },
                limit,
            )
        };
        let shapes = [
            scan(doc! { "id": { "$gt": 5i64 } }, Some(10)),
            scan(doc! {}, None).with_pipeline(
                vec![doc! { "$group": { "_id": "$note", "n": { "$sum": 1 } } }],
                Some(doc! { "n": 0 }),
            ),
            scan(doc! { "note": "x" }, None).with_ranges(
                vec![doc! { "_id": { "$lt": 5 } }, doc! { "_id": { "$gte": 5 } }],
                true,
            ),
        ];
        for scan in shapes {
            let before: Arc<dyn ExecutionPlan> = Arc::new(scan);
            let decoded = round_trip_exec(&f, before.clone());
            let before = before.downcast_ref::<MongoScanExec>().unwrap();
            let after = decoded
                .downcast_ref::<MongoScanExec>()
                .expect("a MongoScanExec");
            assert_eq!(after.collection(), before.collection());
            assert_eq!(after.filter(), before.filter());
            assert_eq!(after.limit(), before.limit());
            assert_eq!(after.pipeline(), before.pipeline());
            assert_eq!(after.default_row(), before.default_row());
            assert_eq!(after.ranges(), before.ranges());
            assert_eq!(after.is_merged(), before.is_merged());
            assert_eq!(after.schema(), before.schema());
        }
    }

    #[test]
    fn every_live_table_shape_round_trips() {
        let f = fixture();
        let codec = logical(&f);
        let reference = TableReference::bare("t");
        let round_trip = |table: Arc<dyn TableProvider>| {
            let mut buf = vec![];
            codec
                .try_encode_table_provider(&reference, table, &mut buf)
                .unwrap();
            codec
                .try_decode_table_provider(&buf, &reference, schema(), &TaskContext::default())
                .unwrap()
        };
        let pools: Arc<crate::postgres::PgPools> = Arc::default();
        let clients: Arc<crate::mongo::MongoClients> = Arc::default();
        let name = TableName::new("crm", "sales", "orders");
        let t = round_trip(Arc::new(
            PgTable::from_parts(f.crm.clone(), name.clone(), schema(), pools.clone())
                .with_partitions(Some(4)),
        ));
        let t = t.downcast_ref::<PgTable>().expect("a PgTable");
        assert_eq!((t.name(), t.partitions()), (&name, Some(4)));
        let sql = "SELECT q.\"id\" FROM (SELECT 1 AS \"id\") AS q";
        let t = round_trip(Arc::new(RemoteQueryTable::from_parts(
            f.crm.clone(),
            pools,
            schema(),
            sql.into(),
            true,
        )));
        let t = t
            .downcast_ref::<RemoteQueryTable>()
            .expect("a RemoteQueryTable");
        assert_eq!((t.sql(), t.exact_decimals()), (sql, true));
        let t = round_trip(Arc::new(
            MongoTable::from_parts(
                f.inventory.clone(),
                "stock".into(),
                schema(),
                clients.clone(),
            )
            .with_partitions(Some(2)),
        ));
        let t = t.downcast_ref::<MongoTable>().expect("a MongoTable");
        assert_eq!((t.collection(), t.partitions()), ("stock", Some(2)));
        let pipeline = vec![doc! { "$match": { "n": { "$gt": 1 } } }];
        let t = round_trip(Arc::new(MongoQueryTable::from_parts(
            f.inventory.clone(),
            clients,
            "stock".into(),
            schema(),
            pipeline.clone(),
            Some(doc! { "n": 0 }),
        )));
        let t = t
            .downcast_ref::<MongoQueryTable>()
            .expect("a MongoQueryTable");
        assert_eq!(t.pipeline(), pipeline.as_slice());
        assert_eq!(t.default_row(), Some(&doc! { "n": 0 }));
    }

    #[test]
    fn forecast_tables_travel_as_their_query() {
        use crate::forecast::{ForecastTable, Spec};
        let f = fixture();
        let codec = logical(&f);
        let reference = TableReference::bare("forecast()");
        for spec in [
            Spec::Forecast {
                horizon: 5,
                level: 0.8,
            },
            Spec::Backtest { holdout: 8 },
        ] {
            let sql = "SELECT week, category, revenue FROM t WHERE note = 'O''Brien'";
            let table = Arc::new(ForecastTable::new(sql.into(), spec));
            let mut buf = vec![];
            codec
                .try_encode_table_provider(&reference, table.clone(), &mut buf)
                .unwrap();
            let back = codec
                .try_decode_table_provider(
                    &buf,
                    &reference,
                    table.schema(),
                    &TaskContext::default(),
                )
                .unwrap();
            let back = back
                .downcast_ref::<ForecastTable>()
                .expect("a ForecastTable");
            assert_eq!((back.sql(), back.spec()), (sql, spec));
            assert_eq!(back.schema(), table.schema());
        }
    }

    #[test]
    fn what_cannot_be_decoded_says_why() {
        let f = fixture();
        let codec = physical(&f);
        let converter = DefaultPhysicalProtoConverter {};
        let decode = |buf: &[u8]| {
            codec
                .try_decode(buf, &[], &TaskContext::default(), &converter)
                .unwrap_err()
                .to_string()
        };
        let mut junk = MAGIC.to_vec();
        junk.extend_from_slice(b"{not json");
        assert!(decode(&junk).contains("cannot decode a Quipu plan node"));
        let scan = PgScanExec::new(f.crm.clone(), Arc::default(), schema(), "SELECT 1".into());
        let mut buf = vec![];
        codec
            .try_encode(Arc::new(scan), &mut buf, &converter)
            .unwrap();
        // The executor's catalog no longer has the source.
        f.session.store().drop_source("crm").unwrap();
        let err = decode(&buf);
        assert!(
            err.contains("source `crm` is not in this process's catalog"),
            "{err}"
        );
        // A source of another kind under the same name.
        let lake = SourceDef::new(
            "crm",
            SourceKind::Lake,
            [("url".to_string(), "memory://m/".to_string())].into(),
        )
        .unwrap();
        f.session.store().add_source(&lake, &[]).unwrap();
        let err = decode(&buf);
        assert!(err.contains("is a lake source here"), "{err}");
    }

    /// Arithmetic DataFusion merges into a file scan's projection still
    /// fails on overflow after the trip to an executor (it wrapped around
    /// there: protobuf drops `BinaryExpr`'s overflow flag, and a decoded
    /// scan cannot be rebuilt with other expressions).
    #[tokio::test]
    async fn checked_arithmetic_merged_into_a_file_scan_survives_the_codec() {
        use datafusion::physical_plan::collect;
        use datafusion_proto::physical_plan::AsExecutionPlan;
        use datafusion_proto::protobuf::PhysicalPlanNode;

        use datafusion::catalog::{
            CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList,
            MemorySchemaProvider,
        };

        let f = fixture();
        // Quipu's rules over a catalog that holds a plain Parquet table.
        let state = f.session.state();
        let catalogs = MemoryCatalogProviderList::new();
        let catalog = MemoryCatalogProvider::new();
        let public = state.config().options().catalog.default_schema.clone();
        catalog
            .register_schema(&public, Arc::new(MemorySchemaProvider::new()))
            .unwrap();
        let name = state.config().options().catalog.default_catalog.clone();
        catalogs.register_catalog(name, Arc::new(catalog));
        let state = datafusion::execution::SessionStateBuilder::new_from_existing(state)
            .with_catalog_list(Arc::new(catalogs))
            .build();
        let ctx = datafusion::prelude::SessionContext::new_with_state(state);
        let file = f._dir.path().join("t.parquet");
        ctx.sql(&format!(
            "COPY (SELECT * FROM (VALUES (CAST(1 AS BIGINT)), (9223372036854775807)) AS v(b)) \
             TO '{}' STORED AS PARQUET",
            file.display()
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
        ctx.register_parquet("t", file.to_str().unwrap(), Default::default())
            .await
            .unwrap();
        let codec = physical(&f);
        for (sql, answers) in [
            ("SELECT b * 2 AS x FROM t", false),
            ("SELECT b - 1 AS x FROM t", true),
        ] {
            let plan = ctx
                .sql(sql)
                .await
                .unwrap()
                .create_physical_plan()
                .await
                .unwrap();
            let shown = displayable(plan.as_ref()).indent(true).to_string();
            assert!(
                !shown.contains("ProjectionExec"),
                "the arithmetic is meant to be merged into the scan:\n{shown}"
            );
            let node = PhysicalPlanNode::try_from_physical_plan(plan, &codec).unwrap();
            let decoded = node
                .try_into_physical_plan(&ctx.task_ctx(), &codec)
                .unwrap();
            let result = collect(decoded, ctx.task_ctx()).await;
            match answers {
                true => {
                    let batches = result.unwrap();
                    let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                        .unwrap()
                        .to_string();
                    assert!(text.contains("9223372036854775806"), "{sql}: {text}");
                }
                false => {
                    let err = result.expect_err(sql).to_string();
                    assert!(err.contains("Overflow"), "{sql}: {err}");
                }
            }
        }
    }
}
