// What DBeaver and Metabase ask the PostgreSQL JDBC driver while they
// connect, browse and sync: every DatabaseMetaData call below, the
// ResultSetMetaData of each mapped type, and prepared statements with
// parameters of each type. Each call prints `ok <name> <rows or value>` or
// `fail <name> <message>`; the test (tests/it/clients.rs) reads the lines.
// Run as a single-file source: java -cp postgresql.jar JdbcSurface.java
import java.sql.*;
import java.util.concurrent.Callable;

public class JdbcSurface {
    static String env(String k) { return System.getenv(k); }

    interface Call { Object run() throws Exception; }

    static void check(String name, Call call) {
        try {
            Object out = call.run();
            System.out.println("ok " + name + " " + out);
        } catch (Exception e) {
            String m = String.valueOf(e.getMessage()).replace('\n', ' ');
            System.out.println("fail " + name + " " + m);
        }
    }

    // Reads every row and column of a result set (as tools do); returns
    // the row count, or the first column of matching rows with `grep`.
    static String rows(ResultSet rs, int column, String grep) throws SQLException {
        int n = 0;
        StringBuilder found = new StringBuilder();
        try (rs) {
            int cols = rs.getMetaData().getColumnCount();
            while (rs.next()) {
                n++;
                for (int i = 1; i <= cols; i++) rs.getObject(i);
                String v = column > 0 ? rs.getString(column) : null;
                if (grep != null && v != null && v.equals(grep)) found.append(v);
            }
        }
        return grep == null ? Integer.toString(n) : n + ":" + found;
    }

    // The named columns of every row, `a:b;` per row ("none" for no row).
    static String values(ResultSet rs, String... columns) throws SQLException {
        StringBuilder out = new StringBuilder();
        try (rs) {
            while (rs.next()) {
                for (int i = 0; i < columns.length; i++) {
                    out.append(i == 0 ? "" : ":").append(rs.getString(columns[i]));
                }
                out.append(';');
            }
        }
        return out.length() == 0 ? "none" : out.toString();
    }

    public static void main(String[] a) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + env("PORT") + "/" + env("DB");
        String schema = env("SCHEMA"), table = env("TABLE");
        try (Connection c = DriverManager.getConnection(url, env("USER"), env("PASSWORD"))) {
            DatabaseMetaData md = c.getMetaData();
            check("product", () -> md.getDatabaseProductName() + "/" + md.getDatabaseMajorVersion());
            check("catalog", () -> c.getCatalog());
            check("schema", () -> c.getSchema());
            check("getCatalogs", () -> rows(md.getCatalogs(), 1, env("DB")));
            check("getSchemas", () -> rows(md.getSchemas(), 1, schema));
            check("getSchemasPattern", () -> rows(md.getSchemas(null, schema), 1, schema));
            check("getTableTypes", () -> rows(md.getTableTypes(), 0, null));
            check("getTables", () -> rows(md.getTables(null, schema, "%", null), 3, table));
            check("getTablesTyped", () -> rows(md.getTables(null, schema, "%", new String[] {"TABLE", "VIEW"}), 3, table));
            check("getColumns", () -> rows(md.getColumns(null, schema, table, "%"), 3, table));
            check("getPrimaryKeys", () -> values(md.getPrimaryKeys(null, schema, table), "COLUMN_NAME", "KEY_SEQ", "PK_NAME"));
            check("getImportedKeys", () -> rows(md.getImportedKeys(null, schema, table), 0, null));
            check("getExportedKeys", () -> rows(md.getExportedKeys(null, schema, table), 0, null));
            check("getIndexInfo", () -> values(md.getIndexInfo(null, schema, table, false, true), "INDEX_NAME", "NON_UNIQUE", "ORDINAL_POSITION", "COLUMN_NAME"));
            check("getTypeInfo", () -> rows(md.getTypeInfo(), 1, "int8"));
            // The int8 row's JDBC type and precision, and an array type's.
            check("typeInfoInt8", () -> {
                StringBuilder sb = new StringBuilder();
                try (ResultSet rs = md.getTypeInfo()) {
                    while (rs.next()) {
                        String name = rs.getString("TYPE_NAME");
                        if (name.equals("int8") || name.equals("_int8")) {
                            sb.append(name).append(':').append(rs.getInt("DATA_TYPE")).append(':')
                              .append(rs.getInt("PRECISION")).append(';');
                        }
                    }
                }
                return sb.toString();
            });
            check("getFunctions", () -> rows(md.getFunctions(null, "pg_catalog", "abs"), 3, "abs"));
            check("getProcedures", () -> rows(md.getProcedures(null, schema, "%"), 0, null));
            check("getClientInfoProperties", () -> rows(md.getClientInfoProperties(), 0, null));
            check("getTablePrivileges", () -> rows(md.getTablePrivileges(null, schema, table), 0, null));
            check("getVersionColumns", () -> {
                StringBuilder sb = new StringBuilder();
                try (ResultSet rs = md.getVersionColumns(null, schema, table)) {
                    while (rs.next()) {
                        sb.append(rs.getString("COLUMN_NAME")).append(':').append(rs.getInt("DATA_TYPE"))
                          .append(':').append(rs.getString("TYPE_NAME")).append(';');
                    }
                }
                return sb.toString();
            });
            check("getBestRowIdentifier", () -> values(md.getBestRowIdentifier(null, schema, table, DatabaseMetaData.bestRowSession, true), "COLUMN_NAME", "TYPE_NAME"));
            check("getUDTs", () -> rows(md.getUDTs(null, schema, "%", null), 0, null));
            check("keywords", () -> md.getSQLKeywords().length() > 0);
            check("identifierQuote", () -> md.getIdentifierQuoteString());
            // ResultSetMetaData of the mapped types, and their values.
            check("types", () -> {
                try (Statement s = c.createStatement();
                     ResultSet rs = s.executeQuery(
                         "SELECT CAST(1 AS SMALLINT) AS i2, CAST(2 AS INT) AS i4, CAST(3 AS BIGINT) AS i8, "
                         + "CAST(1.5 AS REAL) AS f4, CAST(2.5 AS DOUBLE PRECISION) AS f8, CAST(12.34 AS NUMERIC(10,2)) AS n, "
                         + "'x' AS t, TRUE AS b, DATE '2024-02-29' AS d, TIMESTAMP '2024-02-29 12:34:56' AS ts, "
                         + "CAST('2024-02-29 12:34:56+00' AS TIMESTAMPTZ) AS tz")) {
                    ResultSetMetaData m = rs.getMetaData();
                    StringBuilder sb = new StringBuilder();
                    rs.next();
                    for (int i = 1; i <= m.getColumnCount(); i++) {
                        sb.append(m.getColumnLabel(i)).append(':').append(m.getColumnTypeName(i))
                          .append('=').append(rs.getString(i)).append(';');
                    }
                    return sb.toString();
                }
            });
            // Prepared statements with a parameter of each type.
            check("prepared", () -> {
                try (PreparedStatement ps = c.prepareStatement(
                         "SELECT CAST(? AS BIGINT) + 1, CAST(? AS TEXT) || '!', CAST(? AS DOUBLE PRECISION) * 2, "
                         + "CAST(? AS BOOLEAN), CAST(? AS DATE), CAST(? AS NUMERIC) + 1")) {
                    ps.setLong(1, 41);
                    ps.setString(2, "hi");
                    ps.setDouble(3, 1.25);
                    ps.setBoolean(4, true);
                    ps.setDate(5, Date.valueOf("2024-02-29"));
                    ps.setBigDecimal(6, new java.math.BigDecimal("1.50"));
                    StringBuilder sb = new StringBuilder();
                    for (int round = 0; round < 2; round++) {
                        try (ResultSet rs = ps.executeQuery()) {
                            rs.next();
                            sb.append(rs.getLong(1)).append(',').append(rs.getString(2)).append(',')
                              .append(rs.getDouble(3)).append(',').append(rs.getBoolean(4)).append(',')
                              .append(rs.getDate(5)).append(',').append(rs.getBigDecimal(6)).append(';');
                        }
                    }
                    return sb.toString();
                }
            });
            check("select", () -> {
                try (Statement s = c.createStatement();
                     ResultSet rs = s.executeQuery("SELECT count(*) FROM " + schema + "." + table)) {
                    rs.next();
                    return rs.getLong(1);
                }
            });
        }
    }
}
