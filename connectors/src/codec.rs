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

/// A node of a live source on the wire: which connector encoded it, and
/// what it wrote.
#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    kind: SourceKind,
    encoded: Encoded,
}

fn write(wire: &Wire, buf: &mut Vec<u8>) -> Result<()> {
    buf.extend_from_slice(MAGIC);
    serde_json::to_writer(buf, wire).map_err(|e| DataFusionError::External(Box::new(e)))
}

fn read(buf: &[u8]) -> Option<Result<Wire>> {
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
    ) -> Result<Option<Wire>> {
        for connector in self.catalogs.shared.connectors.iter() {
            if let Some(encoded) = encode(connector.as_ref()) {
                return Ok(Some(Wire {
                    kind: connector.kind(),
                    encoded: encoded?,
                }));
            }
        }
        Ok(None)
    }

    /// The connector that encoded the node, and the source it reads.
    fn decoder(&self, wire: &Wire) -> Result<(&Arc<dyn Connector>, SourceDef)> {
        let source = self.source(&wire.encoded.source)?;
        if source.kind != wire.kind {
            return Err(DataFusionError::Plan(format!(
                "source `{}` is a {} source here, the plan was made for a {} source",
                source.name, source.kind, wire.kind
            )));
        }
        Ok((self.catalogs.shared.connectors.of(wire.kind), source))
    }

    fn encode_table(&self, node: &dyn TableProvider) -> Result<Option<Wire>> {
        self.encode(|c| c.encode_table(node))
    }

    fn decode_table(&self, wire: Wire, schema: SchemaRef) -> Result<Arc<dyn TableProvider>> {
        let (connector, source) = self.decoder(&wire)?;
        connector.decode_table(wire.encoded, schema, source)
    }

    fn encode_exec(&self, node: &dyn ExecutionPlan) -> Result<Option<Wire>> {
        self.encode(|c| c.encode_exec(node))
    }

    fn decode_exec(&self, wire: Wire) -> Result<Arc<dyn ExecutionPlan>> {
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
        self.inner.try_decode_udf(name, buf)
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udf(node, buf)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        self.inner.try_decode_udaf(name, buf)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udaf(node, buf)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        self.inner.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udwf(node, buf)
    }
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
        self.inner.try_decode_udf(name, buf)
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udf(node, buf)
    }

    fn try_decode_expr(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn datafusion::physical_expr::PhysicalExpr>],
        ctx: &datafusion::physical_expr_common::physical_expr::proto_decode::PhysicalExprDecodeCtx<
            '_,
        >,
    ) -> Result<Arc<dyn datafusion::physical_expr::PhysicalExpr>> {
        self.inner.try_decode_expr(buf, inputs, ctx)
    }

    fn try_encode_expr(
        &self,
        node: &Arc<dyn datafusion::physical_expr::PhysicalExpr>,
        buf: &mut Vec<u8>,
        ctx: &datafusion::physical_expr_common::physical_expr::proto_encode::PhysicalExprEncodeCtx<
            '_,
        >,
    ) -> Result<()> {
        self.inner.try_encode_expr(node, buf, ctx)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        self.inner.try_decode_udaf(name, buf)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udaf(node, buf)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        self.inner.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udwf(node, buf)
    }
}
