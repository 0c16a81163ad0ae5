#include "agent/database_views.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "agent/core/sample_store.h"
#include "collectors/postgres/locks_collector.h"
#include "collectors/postgres/size_collector.h"
#include "collectors/postgres/statements_collector.h"

namespace dbpulse {
namespace {

using nlohmann::json;

// NaN/Inf are not JSON: an undefined ratio (no traffic yet) becomes null.
json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

std::optional<double> single(const Snapshot& snap, const char* name) {
  const SnapshotFamily* f = snap.family(name);
  if (f == nullptr || f->series.empty()) return std::nullopt;
  return f->series.front().value;
}

json singleOrNull(const Snapshot& snap, const char* name) {
  auto v = single(snap, name);
  return v ? number(*v) : json(nullptr);
}

}  // namespace

std::string databaseMetricsJson(const Snapshot& snap,
                                const collectors::StatementsCollector* statements,
                                const collectors::LocksCollector* locks) {
  json conns = json::object();
  json by_state = json::object();
  if (const SnapshotFamily* f = snap.family("pg_stat_activity_count")) {
    for (const auto& s : f->series) {
      by_state[std::string(s.labels.get("datname"))][std::string(s.labels.get("state"))] =
          number(s.value);
    }
  }
  conns["by_database_and_state"] = by_state;
  conns["client_connections"] = singleOrNull(snap, "dbpulse_pg_client_connections");
  conns["max_connections"] = singleOrNull(snap, "pg_settings_max_connections");
  conns["utilization_ratio"] = singleOrNull(snap, "dbpulse_pg_connections_utilization_ratio");
  conns["idle_in_transaction"] = singleOrNull(snap, "dbpulse_pg_idle_in_transaction_sessions");
  conns["waiting"] = singleOrNull(snap, "dbpulse_pg_waiting_sessions");
  conns["blocked"] = singleOrNull(snap, "dbpulse_pg_blocked_sessions");

  json cache = json::object();
  if (const SnapshotFamily* f = snap.family("dbpulse_pg_cache_hit_ratio")) {
    for (const auto& s : f->series) cache[std::string(s.labels.get("datname"))] = number(s.value);
  }

  json top = json::array();
  if (statements != nullptr) {
    for (const auto& st : statements->topStatements()) {
      top.push_back({{"queryid", st.queryid},
                     {"datname", st.datname},
                     {"user", st.user},
                     {"query", st.query},
                     {"calls", number(st.calls)},
                     {"total_seconds", number(st.total_seconds)},
                     {"mean_seconds", number(st.mean_seconds)},
                     {"max_seconds", number(st.max_seconds)},
                     {"rows", number(st.rows)},
                     {"recent_calls", number(st.recent_calls)},
                     {"recent_seconds", number(st.recent_seconds)}});
    }
  }

  json blocked = json::array();
  if (locks != nullptr) {
    for (const auto& b : locks->latestBlocked()) {
      blocked.push_back({{"pid", b.pid},
                         {"blocking_pids", b.blocking_pids},
                         {"wait_seconds", number(b.wait_seconds)},
                         {"datname", b.datname},
                         {"user", b.usename},
                         {"lock_mode", b.lock_mode},
                         {"query", b.query}});
    }
  }

  json body{{"pg_up", singleOrNull(snap, "pg_up")},
            {"connections", conns},
            {"cache_hit_ratio", cache},
            {"longest_transaction_seconds",
             singleOrNull(snap, "dbpulse_pg_longest_transaction_seconds")},
            {"top_statements", top},
            {"blocked_sessions", blocked}};
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string databaseSizeJson(const collectors::SizeCollector* size) {
  json body{{"database", nullptr},
            {"databases", json::array()},
            {"tables", json::array()},
            {"indexes", json::array()}};
  if (size == nullptr) return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  const auto report = size->latest();
  body["database"] = report.datname;
  for (const auto& d : report.databases) {
    body["databases"].push_back({{"datname", d.datname}, {"bytes", number(d.bytes)}});
  }
  for (const auto& t : report.tables) {
    body["tables"].push_back({{"schema", t.schemaname},
                              {"table", t.relname},
                              {"total_bytes", number(t.total_bytes)},
                              {"heap_bytes", number(t.heap_bytes)},
                              {"toast_bytes", number(t.toast_bytes)},
                              {"indexes_bytes", number(t.indexes_bytes)},
                              {"estimated", t.estimated}});
  }
  for (const auto& i : report.indexes) {
    body["indexes"].push_back({{"schema", i.schemaname},
                               {"table", i.relname},
                               {"index", i.indexrelname},
                               {"bytes", number(i.bytes)},
                               {"estimated", i.estimated}});
  }
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace dbpulse
