#include "collectors/postgres/connections_collector.h"

#include <algorithm>
#include <map>

#include "collectors/clients/postgres/result_reader.h"
#include "collectors/clients/postgres/sql_session.h"

namespace dbpulse::collectors {

// Row kinds: 'state' (one per database x state, zero-filled like postgres_exporter so
// dashboards see every state), 'app' (per database and application_name), 'summary'
// (server-wide figures in named columns). Only client backends count: autovacuum and
// walsenders do not use connection slots that the chat server competes for.
const char* const kConnectionsQuery = R"SQL(
WITH act AS (
  SELECT datname, state, application_name, xact_start, wait_event_type, pid
  FROM pg_stat_activity
  WHERE backend_type = 'client backend'
), states(state) AS (
  VALUES ('active'), ('idle'), ('idle in transaction'), ('idle in transaction (aborted)'),
         ('fastpath function call'), ('disabled')
)
SELECT 'state' AS kind, d.datname::text AS datname, s.state AS state, ''::text AS app,
       count(a.pid)::float8 AS v1,
       COALESCE(max(extract(epoch FROM now() - a.xact_start)), 0)::float8 AS v2
  FROM pg_database d CROSS JOIN states s
  LEFT JOIN act a ON a.datname = d.datname AND a.state = s.state
 WHERE d.datallowconn
 GROUP BY d.datname, s.state
UNION ALL
SELECT 'app', COALESCE(datname::text, ''), '', COALESCE(application_name, ''), count(*), 0
  FROM act GROUP BY 2, 4
UNION ALL
SELECT 'clients', '', '', '', count(*),
       COALESCE(max(extract(epoch FROM now() - xact_start)), 0)
  FROM act
UNION ALL
SELECT 'waiting', '', '', '',
       count(*) FILTER (WHERE wait_event_type = 'Lock'),
       -- pg_blocking_pids() takes the lock manager's locks: call it only for waiters.
       count(*) FILTER (WHERE CASE WHEN wait_event_type = 'Lock'
                                   THEN cardinality(pg_blocking_pids(pid)) > 0
                                   ELSE false END)
  FROM act
UNION ALL
SELECT 'settings', '', '', '', current_setting('max_connections')::float8,
       current_setting('superuser_reserved_connections')::float8
)SQL";

Status parseConnectionRows(const PgRows& rows, SampleBatch& out) {
  const int c_kind = rows.column("kind"), c_db = rows.column("datname"),
            c_state = rows.column("state"), c_app = rows.column("app"), c_v1 = rows.column("v1"),
            c_v2 = rows.column("v2");
  if (std::min({c_kind, c_db, c_state, c_app, c_v1, c_v2}) < 0) {
    return internalError("connections: unexpected result columns");
  }
  // postgres_exporter's name and type (promtool's lint reserves _count for histograms; the
  // tests accept that for the peers' names, see collectors/metric_names.tsv).
  out.describe("pg_stat_activity_count", MetricType::kGauge,
               "Client connections by database and state.");
  out.describe("pg_stat_activity_max_tx_duration", MetricType::kGauge,
               "Age in seconds of the oldest open transaction by database and state.");

  struct App {
    std::string datname, app;
    double count;
  };
  std::vector<App> apps;
  double clients = 0, longest_xact = 0, waiting = 0, blocked = 0, idle_in_xact = 0;
  double max_connections = -1, reserved = 0;

  bool seen_clients = false, seen_waiting = false, seen_settings = false;
  for (const auto& row : rows.rows) {
    if (row.size() != rows.columns.size()) {
      return internalError("connections: row with " + std::to_string(row.size()) +
                           " fields, expected " + std::to_string(rows.columns.size()));
    }
    const std::string kind = row[c_kind].value_or("");
    double v1 = 0, v2 = 0;
    if (!pgutil::toDouble(row[c_v1], v1) || !pgutil::toDouble(row[c_v2], v2)) {
      return internalError("connections: non-numeric value in row of kind '" + kind + "'");
    }
    const std::string datname = row[c_db].value_or("");
    const std::string state = row[c_state].value_or("");
    if (kind == "state") {
      out.add("pg_stat_activity_count", Labels{{"datname", datname}, {"state", state}}, v1);
      out.add("pg_stat_activity_max_tx_duration", Labels{{"datname", datname}, {"state", state}},
              v2);
      if (state.rfind("idle in transaction", 0) == 0) idle_in_xact += v1;
    } else if (kind == "app") {
      apps.push_back(App{datname, row[c_app].value_or(""), v1});
    } else if (kind == "clients") {
      seen_clients = true;
      clients = v1;
      longest_xact = v2;
    } else if (kind == "waiting") {
      seen_waiting = true;
      waiting = v1;
      blocked = v2;
    } else if (kind == "settings") {
      seen_settings = true;
      max_connections = v1;
      reserved = v2;
    } else {
      return internalError("connections: unexpected row kind '" + kind + "'");
    }
  }
  if (!seen_clients || !seen_waiting || !seen_settings || max_connections <= 0) {
    return internalError("connections: summary rows missing from the result");
  }

  std::sort(apps.begin(), apps.end(), [](const App& a, const App& b) {
    return a.count != b.count ? a.count > b.count
                              : std::tie(a.datname, a.app) < std::tie(b.datname, b.app);
  });
  // Applications past the top kMaxApplicationSeries are summed into "other" (merged with
  // a real application of that name, so each label set appears once).
  std::map<std::pair<std::string, std::string>, double> by_label;
  for (size_t i = 0; i < apps.size(); ++i) {
    by_label[{apps[i].datname, i < kMaxApplicationSeries ? apps[i].app : "other"}] += apps[i].count;
  }
  out.describe("dbpulse_pg_connections_by_application", MetricType::kGauge,
               "Client connections by database and application_name (top 20, rest as \"other\").");
  for (const auto& [key, n] : by_label) {
    out.add("dbpulse_pg_connections_by_application",
            Labels{{"datname", key.first}, {"application_name", key.second}}, n);
  }

  out.gauge("pg_settings_max_connections", "Server setting max_connections.", {}, max_connections);
  out.gauge("pg_settings_superuser_reserved_connections",
            "Server setting superuser_reserved_connections.", {}, reserved);
  out.gauge("dbpulse_pg_client_connections", "Client backends connected to the server.", {},
            clients);
  const double usable = std::max(1.0, max_connections - reserved);
  out.gauge("dbpulse_pg_connections_utilization_ratio",
            "Client connections / (max_connections - superuser_reserved_connections).", {},
            clients / usable);
  out.gauge("dbpulse_pg_idle_in_transaction_sessions",
            "Sessions idle inside an open transaction (including aborted ones).", {}, idle_in_xact);
  out.gauge("dbpulse_pg_longest_transaction_seconds",
            "Age in seconds of the oldest open transaction of any client.", {}, longest_xact);
  out.gauge("dbpulse_pg_waiting_sessions", "Sessions waiting for a lock.", {}, waiting);
  out.gauge("dbpulse_pg_blocked_sessions",
            "Sessions waiting for a lock held by another session (pg_blocking_pids).", {}, blocked);
  return okStatus();
}

Status ConnectionsCollector::collect(const CollectContext& /*ctx*/, SampleBatch& out) {
  auto rows = session_->query(kConnectionsQuery);
  const bool reachable = rows.ok() || rows.status().code() != StatusCode::kUnavailable;
  out.gauge("pg_up", "1 when the last connection attempt to PostgreSQL succeeded.", {},
            reachable ? 1 : 0);
  if (!rows.ok()) return rows.status();
  if (int v = session_->serverVersion(); v > 0) {
    out.gauge("dbpulse_pg_server_version_num", "server_version_num of the PostgreSQL server.", {},
              v);
  }
  return parseConnectionRows(rows.value(), out);
}

void ConnectionsCollector::cancel() { session_->cancel(); }

}  // namespace dbpulse::collectors
