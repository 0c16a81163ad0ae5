// GET / rendering cost: the operator's page is served from memory (the store's history, the
// collectors' last results, the advisor's last answer), never from the database. Measures
// what StatusPage::page does per view: the health checks and sparklines (PromQL over 15
// minutes of history) and the HTML, on a store shaped like the demo's after 15 minutes.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "agent/admin/health_checks.h"
#include "agent/admin/status_html.h"
#include "agent/advisor.h"
#include "agent/core/sample_store.h"

namespace {

using namespace dbpulse;

class StepClock final : public Clock {
 public:
  WallTime now() const override { return WallTime(std::chrono::milliseconds(ms)); }
  int64_t ms = 1'780'000'000'000;
};

constexpr int64_t kHistoryMs = 15 * 60'000;

// 15 minutes at one write per 15 s of: the database checks' series, 1,000 per-table series,
// Redis, and a chat server with 20 routes x 12 histogram buckets.
void fill(SampleStore& store, StepClock& clock) {
  for (int64_t t = 0; t <= kHistoryMs; t += 15'000) {
    SampleBatch b;
    const double n = static_cast<double>(t) / 1000;
    b.add("pg_up", {}, 1);
    b.add("dbpulse_pg_connections_utilization_ratio", {}, 0.2 + 0.01 * (t % 7));
    b.add("dbpulse_pg_client_connections", {}, 20);
    b.add("dbpulse_pg_blocked_sessions", {}, 0);
    b.add("dbpulse_pg_longest_transaction_seconds", {}, 1.5);
    b.add("dbpulse_pg_idle_in_transaction_sessions", {}, 0);
    b.add("pg_stat_activity_count", {{"datname", "chat"}, {"state", "active"}}, 3);
    b.add("dbpulse_pg_statements_calls_total", {}, 500 * n);
    for (const char* db : {"chat", "postgres"}) {
      b.add("dbpulse_pg_cache_hit_ratio", {{"datname", db}}, 0.99);
      b.add("pg_stat_database_blks_hit", {{"datname", db}}, 9900 * n);
      b.add("pg_stat_database_blks_read", {{"datname", db}}, 100 * n);
      b.add("dbpulse_pg_database_xid_age", {{"datname", db}}, 1e6);
    }
    for (int i = 0; i < 1000; ++i) {
      const std::string rel = "table_" + std::to_string(i);
      b.add(i < 500 ? "dbpulse_pg_table_dead_tuple_ratio" : "pg_stat_user_tables_n_dead_tup",
            {{"relname", rel}, {"schemaname", "public"}}, 0.01 * (i % 10));
    }
    b.add("redis_memory_used_bytes", {}, 5e7);
    b.add("redis_memory_max_bytes", {}, 1e9);
    b.add("redis_evicted_keys_total", {}, 0);
    b.add("dbpulse_redis_cache_hit_ratio", {}, 0.95);
    b.add("redis_keyspace_hits_total", {}, 95 * n);
    b.add("redis_keyspace_misses_total", {}, 5 * n);
    for (int r = 0; r < 20; ++r) {
      const std::string route = "/api/route" + std::to_string(r);
      b.add("http_requests_total", {{"route", route}, {"status_code", "200"}}, 10 * n);
      b.add("http_requests_total", {{"route", route}, {"status_code", "500"}}, 0.01 * n);
      const char* les[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                           "0.5",   "1",    "2.5",   "5",    "10",  "+Inf"};
      for (int k = 0; k < 12; ++k) {
        b.add("http_request_duration_seconds_bucket", {{"route", route}, {"le", les[k]}},
              10 * n * (k + 1) / 12);
      }
    }
    store.write("bench", b, std::chrono::hours(1));
    clock.ms += 15'000;
  }
}

admin::PageData pageData(int64_t now_ms) {
  admin::PageData d;
  d.instance = "bench";
  d.version = "bench";
  d.ready = true;
  d.admin = true;
  d.now_ms = now_ms;
  d.statements_on = d.advisor_on = d.size_on = true;
  for (int i = 0; i < 20; ++i) {
    collectors::TopStatement s;
    s.queryid = std::to_string(1000 + i);
    s.datname = "chat";
    s.query =
        "SELECT id, sender_id, body FROM messages WHERE conversation_id = $1 ORDER BY "
        "created_at DESC LIMIT $2 /* " +
        std::to_string(i) + " */";
    s.calls = 1000.0 * i;
    s.total_seconds = 3.0 * i;
    s.mean_seconds = 0.003;
    s.rows = 20.0 * i;
    d.statements.push_back(s);
  }
  auto published = std::make_shared<PublishedSuggestions>();
  CreateSuggestion c;
  c.schema = "public";
  c.table = "messages";
  c.columns = {"conversation_id", "created_at"};
  c.statement = "CREATE INDEX CONCURRENTLY ON public.messages (conversation_id, created_at);";
  c.estimated_improvement = 0.97;
  c.validated_with = "hypopg";
  published->suggestions.create.push_back(c);
  d.suggestions = published;
  d.size.datname = "chat";
  for (int i = 0; i < 50; ++i) {
    d.size.tables.push_back({"public", "table_" + std::to_string(i), 1e6, 1e5, 2e5, 1.3e6, false});
    d.size.indexes.push_back(
        {"public", "table_" + std::to_string(i), "idx_" + std::to_string(i), 2e5, false});
  }
  d.alerts_json = R"({"alerts":[]})";
  return d;
}

// One page view: checks, sparklines, HTML.
void BM_StatusPageRender(benchmark::State& state) {
  StepClock clock;
  SampleStore store(clock, SampleStoreOptions{100, kHistoryMs + 60'000});
  fill(store, clock);
  const admin::HealthChecker checker;
  const int points = static_cast<int>(state.range(0));
  size_t bytes = 0;
  for (auto _ : state) {
    admin::PageData d = pageData(clock.ms);
    d.checks = checker.evaluate(store, clock.ms, 5 * 60'000);
    d.spark_from_ms = clock.ms - kHistoryMs;
    d.spark_to_ms = clock.ms;
    d.sparks = checker.sparklines(store, clock.ms, kHistoryMs, points, 5 * 60'000);
    const std::string html = admin::renderStatusPage(d);
    bytes = html.size();
    benchmark::DoNotOptimize(html.data());
  }
  state.counters["sparkline_points"] = points;
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_StatusPageRender)->Arg(31)->Arg(91)->Unit(benchmark::kMillisecond);

}  // namespace
