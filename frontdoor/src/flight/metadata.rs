//! Metadata calls: `GetCatalogs`, `GetDbSchemas`, `GetTables` (with
//! schemas), `GetTableTypes`, `GetSqlInfo` and `GetXdbcTypeInfo`, answered
//! from the token session's own catalog list (so a user sees only granted
//! sources), and the `FlightInfo` of each (its ticket is the command).

use std::sync::Arc;

use arrow_flight::error::FlightError;
use arrow_flight::sql::metadata::{
    SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::{
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetTables, Nullable, ProstMessageExt,
    Searchable, SqlInfo, XdbcDataType,
};
use arrow_flight::{FlightDescriptor, FlightEndpoint, FlightInfo, Ticket};
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::datasource::TableType;
use datafusion::prelude::SessionContext;
use prost::Message;
use tonic::{Request, Response, Status};

use super::service::QuipuFlightSql;

impl QuipuFlightSql {
    /// The `FlightInfo` of a metadata command: its ticket is the command.
    pub(super) fn describe<M: ProstMessageExt>(
        &self,
        request: Request<FlightDescriptor>,
        schema: &Schema,
        command: &M,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        self.user(&request)?;
        self.info(
            schema,
            command.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    pub(super) fn info(
        &self,
        schema: &Schema,
        ticket: Vec<u8>,
        descriptor: FlightDescriptor,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        self.info_endpoints(schema, vec![ticket], descriptor)
    }

    /// A `FlightInfo` with one endpoint per ticket.
    pub(super) fn info_endpoints(
        &self,
        schema: &Schema,
        tickets: Vec<Vec<u8>>,
        descriptor: FlightDescriptor,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        let mut info = FlightInfo::new()
            .try_with_schema(schema)
            .map_err(|e| Status::internal(e.to_string()))?
            .with_descriptor(descriptor);
        for ticket in tickets {
            info = info.with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)));
        }
        Ok(Response::new(info))
    }
}

pub(super) fn sql_info() -> &'static SqlInfoData {
    static DATA: std::sync::OnceLock<SqlInfoData> = std::sync::OnceLock::new();
    DATA.get_or_init(|| {
        let mut b = SqlInfoDataBuilder::new();
        b.append(SqlInfo::FlightSqlServerName, "Quipu");
        b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        b.append(SqlInfo::FlightSqlServerArrowVersion, "1.5");
        b.append(SqlInfo::FlightSqlServerReadOnly, true);
        b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
        b.build().expect("static SQL info")
    })
}

pub(super) fn xdbc_info() -> &'static XdbcTypeInfoData {
    static DATA: std::sync::OnceLock<XdbcTypeInfoData> = std::sync::OnceLock::new();
    DATA.get_or_init(|| {
        let mut b = XdbcTypeInfoDataBuilder::new();
        for (name, t, size) in [
            ("BOOLEAN", XdbcDataType::XdbcBit, Some(1)),
            ("INTEGER", XdbcDataType::XdbcInteger, Some(32)),
            ("BIGINT", XdbcDataType::XdbcBigint, Some(64)),
            ("DOUBLE", XdbcDataType::XdbcDouble, Some(64)),
            ("DECIMAL", XdbcDataType::XdbcDecimal, Some(38)),
            ("VARCHAR", XdbcDataType::XdbcVarchar, None),
            ("DATE", XdbcDataType::XdbcDate, None),
            ("TIMESTAMP", XdbcDataType::XdbcTimestamp, None),
        ] {
            b.append(XdbcTypeInfo {
                type_name: name.into(),
                data_type: t,
                column_size: size,
                literal_prefix: matches!(t, XdbcDataType::XdbcVarchar).then(|| "'".into()),
                literal_suffix: matches!(t, XdbcDataType::XdbcVarchar).then(|| "'".into()),
                create_params: None,
                nullable: Nullable::NullabilityNullable,
                case_sensitive: matches!(t, XdbcDataType::XdbcVarchar),
                searchable: Searchable::Full,
                unsigned_attribute: Some(false),
                fixed_prec_scale: matches!(t, XdbcDataType::XdbcDecimal),
                auto_increment: Some(false),
                local_type_name: Some(name.into()),
                minimum_scale: None,
                maximum_scale: None,
                sql_data_type: t,
                datetime_subcode: None,
                num_prec_radix: Some(10),
                interval_precision: None,
            });
        }
        b.build().expect("static type info")
    })
}

/// A metadata call's one batch, under its schema.
pub(super) type Answer = (Arc<Schema>, std::result::Result<RecordBatch, FlightError>);

/// `GetCatalogs`: the catalogs the session sees.
pub(super) fn catalogs(ctx: &SessionContext, query: CommandGetCatalogs) -> Answer {
    let mut b = query.into_builder();
    for c in ctx.catalog_names() {
        b.append(c);
    }
    (b.schema(), b.build())
}

/// `GetDbSchemas`: the schemas of every catalog the session sees.
pub(super) fn schemas(ctx: &SessionContext, query: CommandGetDbSchemas) -> Answer {
    let mut b = query.into_builder();
    for c in ctx.catalog_names() {
        if let Some(cat) = ctx.catalog(&c) {
            for s in cat.schema_names() {
                b.append(&c, s);
            }
        }
    }
    (b.schema(), b.build())
}

/// `GetTables`: the tables and views of the catalogs the session sees
/// (of the one asked for), with their Arrow schemas.
pub(super) async fn tables(
    ctx: &SessionContext,
    query: CommandGetTables,
) -> std::result::Result<Answer, Status> {
    let wanted_catalog = query.catalog.clone();
    let mut b = query.into_builder();
    for c in ctx.catalog_names() {
        if wanted_catalog.as_ref().is_some_and(|w| w != &c) {
            continue;
        }
        let Some(cat) = ctx.catalog(&c) else { continue };
        for s in cat.schema_names() {
            let Some(schema) = cat.schema(&s) else {
                continue;
            };
            for t in schema.table_names() {
                let table: Option<Arc<dyn TableProvider>> = schema.table(&t).await.ok().flatten();
                let Some(table) = table else { continue };
                let kind = match table.table_type() {
                    TableType::View => "VIEW",
                    TableType::Temporary => "LOCAL TEMPORARY",
                    TableType::Base => "TABLE",
                };
                b.append(&c, &s, &t, kind, table.schema().as_ref())
                    .map_err(Status::from)?;
            }
        }
    }
    Ok((b.schema(), b.build()))
}
