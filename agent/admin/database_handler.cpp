
#include "agent/admin/database_handler.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "agent/admin/responses.h"
#include "agent/advisor.h"
#include "agent/core/sample_store.h"
#include "agent/pipeline.h"
#include "collectors/postgres/locks_collector.h"
#include "collectors/postgres/size_collector.h"
#include "collectors/postgres/statements_collector.h"

namespace dbpulse::admin {
namespace {

// Holds the advisor gate for one request, when it was free.
struct GateHold {
  explicit GateHold(AdvisorGate& g) : gate(g), held(g.tryEnter()) {}
  ~GateHold() {
    if (held) gate.leave();
  }
  AdvisorGate& gate;
  const bool held;
};

void writeSuggestionCounts(SampleStore& store, const IndexSuggestions& s) {
  SampleBatch b;
  exportSuggestionCounts(s, b);
  // The same source as the hourly `advisor` job: the newest run's counts replace the last.
  store.write("advisor", b, std::chrono::hours(3));
}

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
                                const std::vector<collectors::TopStatement>& statements,
                                const std::vector<collectors::BlockedSession>& blocked_sessions) {
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
  for (const auto& st : statements) {
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

  json blocked = json::array();
  for (const auto& b : blocked_sessions) {
    blocked.push_back({{"pid", b.pid},
                       {"blocking_pids", b.blocking_pids},
                       {"wait_seconds", number(b.wait_seconds)},
                       {"datname", b.datname},
                       {"user", b.usename},
                       {"lock_mode", b.lock_mode},
                       {"query", b.query}});
  }

  json body{
      {"pg_up", singleOrNull(snap, "pg_up")},
      {"connections", conns},
      {"cache_hit_ratio", cache},
      {"longest_transaction_seconds", singleOrNull(snap, "dbpulse_pg_longest_transaction_seconds")},
      {"top_statements", top},
      {"blocked_sessions", blocked}};
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string databaseSizeJson(const collectors::SizeReport* size) {
  json body{{"database", nullptr},
            {"databases", json::array()},
            {"tables", json::array()},
            {"indexes", json::array()}};
  if (size == nullptr)
    return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  const collectors::SizeReport& report = *size;
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

HttpResponse DatabaseHandler::metrics(const HttpRequest&) const {
  auto p = view_.pipeline();
  using collectors::BlockedSession;
  using collectors::TopStatement;
  const auto top = p ? p->details<std::vector<TopStatement>>("statements") : std::nullopt;
  const auto blocked = p ? p->details<std::vector<BlockedSession>>("locks") : std::nullopt;
  return HttpResponse::json(
      200, databaseMetricsJson(*view_.store().snapshot(), top ? *top : std::vector<TopStatement>{},
                               blocked ? *blocked : std::vector<BlockedSession>{}));
}

HttpResponse DatabaseHandler::size(const HttpRequest&) const {
  auto p = view_.pipeline();
  const auto report = p ? p->details<collectors::SizeReport>("size") : std::nullopt;
  return HttpResponse::json(200, databaseSizeJson(report ? &*report : nullptr));
}

HttpResponse DatabaseHandler::indexSuggestions(const HttpRequest&) const {
  GateHold busy(*advisor_gate_);
  if (!busy.held) return tooBusy("an advisor run is in progress; retry shortly", "5");
  const Config cfg = view_.config();
  auto result = dbpulse::suggestIndexes(advisorOptions(cfg), {});
  if (!result.ok()) return statusError(result.status());
  writeSuggestionCounts(view_.store(), *result);
  HttpResponse r = HttpResponse::json(200, suggestionsJson(*result));
  advisor_gate_->publish(std::move(*result), toMillis(std::chrono::system_clock::now()));
  return r;
}

HttpResponse DatabaseHandler::analyzeQuery(const HttpRequest& request) const {
  const auto body = nlohmann::json::parse(request.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return HttpResponse::error(400, "invalid_json",
                               "the body must be a JSON object: {\"query\": \"SELECT ...\", "
                               "\"analyze\": false}");
  }
  if (!body.contains("query") || !body["query"].is_string() ||
      body["query"].get<std::string>().empty()) {
    return HttpResponse::error(400, "invalid_request", "\"query\" must be a non-empty string");
  }
  if (body.contains("analyze") && !body["analyze"].is_boolean()) {
    return HttpResponse::error(400, "invalid_request", "\"analyze\" must be true or false");
  }
  for (const auto& [key, value] : body.items()) {
    if (key != "query" && key != "analyze") {
      return HttpResponse::error(400, "invalid_request",
                                 "unknown field \"" + key + "\" (query, analyze)");
    }
  }
  const Config cfg = view_.config();
  const bool analyze = body.value("analyze", false);
  if (analyze && !cfg.advisor.allow_analyze) {
    return HttpResponse::error(403, "analyze_disabled",
                               "executing statements is switched off ([advisor] allow_analyze = "
                               "false); ask for the plan alone (\"analyze\": false)");
  }
  GateHold busy(*advisor_gate_);
  if (!busy.held) return tooBusy("an advisor run is in progress; retry shortly", "5");
  auto result =
      dbpulse::analyzeQuery(advisorOptions(cfg), body["query"].get<std::string>(), analyze);
  if (!result.ok()) {
    const Status& s = result.status();
    // What the query itself causes is the caller's problem (4xx); the server's state is a 503.
    if (s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kPermissionDenied) {
      return HttpResponse::error(400, "query_rejected", s.message());
    }
    if (s.code() == StatusCode::kDeadlineExceeded) {
      return HttpResponse::error(400, "query_timeout",
                                 s.message() + " (statement_timeout " +
                                     formatDuration(cfg.postgres.statement_timeout) + ")");
    }
    return statusError(s);
  }
  nlohmann::json out{{"analyzed", analyze}, {"findings", result->findings}};
  out["plan"] = nlohmann::json::parse(result->plan_json, nullptr, false);
  return HttpResponse::json(
      200, out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

}  // namespace dbpulse::admin
