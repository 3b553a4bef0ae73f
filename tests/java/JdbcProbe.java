// What DBeaver and Metabase do through the PostgreSQL JDBC driver: connect,
// read DatabaseMetaData, run a prepared statement with a parameter. Run as
// a single-file source by tests/it/pgwire.rs (java -cp postgresql.jar
// JdbcProbe.java); prints key=value lines.
import java.sql.*;

public class JdbcProbe {
    static String env(String name) {
        return System.getenv(name);
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + env("PORT") + "/quipu";
        try (Connection c = DriverManager.getConnection(url, env("USER_NAME"), env("USER_PW"))) {
            DatabaseMetaData md = c.getMetaData();
            System.out.println("product=" + md.getDatabaseProductName() + " " + md.getDatabaseProductVersion());
            StringBuilder schemas = new StringBuilder();
            try (ResultSet rs = md.getSchemas()) {
                while (rs.next()) schemas.append(rs.getString("TABLE_SCHEM")).append(",");
            }
            System.out.println("schemas=" + schemas);
            StringBuilder tables = new StringBuilder();
            try (ResultSet rs = md.getTables(null, env("SCHEMA"), "%", null)) {
                while (rs.next())
                    tables.append(rs.getString("TABLE_NAME")).append(":").append(rs.getString("TABLE_TYPE")).append(",");
            }
            System.out.println("tables=" + tables);
            StringBuilder cols = new StringBuilder();
            try (ResultSet rs = md.getColumns(null, env("SCHEMA"), env("TABLE"), "%")) {
                while (rs.next()) cols.append(rs.getString("COLUMN_NAME")).append(",");
            }
            System.out.println("columns=" + cols);
            try (PreparedStatement ps = c.prepareStatement(env("QUERY"))) {
                ps.setLong(1, Long.parseLong(env("PARAM")));
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    System.out.println("query=" + rs.getString(1));
                }
            }
        }
    }
}
