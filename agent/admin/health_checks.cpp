#include "agent/admin/health_checks.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "rules/evaluator.h"
#include "rules/promql_parser.h"

namespace dbpulse::admin {

const char* levelName(HealthLevel level) {
  switch (level) {
    case HealthLevel::kOk:
      return "ok";
    case HealthLevel::kWarn:
      return "warn";
    case HealthLevel::kCrit:
      return "crit";
    case HealthLevel::kNoData:
      break;
  }
  return "nodata";
}

namespace {

std::string printf1(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// 3 significant digits at most, no trailing zeros: 0.5, 12, 1.23, 123.
std::string plain(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e6) return printf1("%.0f", v);
  const double a = std::fabs(v);
  return printf1(a >= 100 ? "%.0f" : a >= 10 ? "%.1f" : "%.2f", v);
}

std::string scaled(double v, const char* const* suffixes, int n, double step) {
  int i = 0;
  while (std::fabs(v) >= step && i + 1 < n) {
    v /= step;
    ++i;
  }
  return plain(v) + suffixes[i];
}

}  // namespace

std::string formatValue(double v, Unit unit) {
  if (!std::isfinite(v)) return "n/a";
  switch (unit) {
    case Unit::kRatio: {
      const double pct = v * 100;
      return printf1(std::fabs(pct - std::round(pct)) < 0.05 ? "%.0f %%" : "%.1f %%", pct);
    }
    case Unit::kSeconds: {
      const double a = std::fabs(v);
      if (a == 0) return "0 s";
      if (a < 1e-3) return plain(v * 1e6) + " µs";
      if (a < 1) return plain(v * 1e3) + " ms";
      if (a < 120) return plain(v) + " s";
      if (a < 7200) return plain(v / 60) + " min";
      if (a < 172800) return plain(v / 3600) + " h";
      return plain(v / 86400) + " d";
    }
    case Unit::kBytes: {
      static const char* const kSuffix[] = {" B", " KiB", " MiB", " GiB", " TiB"};
      return scaled(v, kSuffix, 5, 1024);
    }
    case Unit::kPerSecond:
      return plain(v) + "/s";
    case Unit::kUpDown:
      return v >= 1 ? "up" : "down";
    case Unit::kCount: {
      static const char* const kSuffix[] = {"", "k", "M", "G", "T"};
      return std::fabs(v) < 1e4 ? plain(v) : scaled(v, kSuffix, 5, 1000);
    }
  }
  return plain(v);
}

HealthLevel classify(double v, const Thresholds& t) {
  if (std::isnan(v)) return HealthLevel::kNoData;
  if (t.lower_is_worse) {
    if (v <= t.crit) return HealthLevel::kCrit;
    if (v <= t.warn) return HealthLevel::kWarn;
    return HealthLevel::kOk;
  }
  if (v >= t.crit) return HealthLevel::kCrit;
  if (v >= t.warn) return HealthLevel::kWarn;
  return HealthLevel::kOk;
}

HealthCheck judge(const CheckSpec& spec, std::optional<double> value,
                  std::optional<double> fallback, std::optional<double> context) {
  HealthCheck c{spec.id, spec.title, HealthLevel::kNoData, value, "", ""};
  std::string ctx;
  if (context && std::isfinite(*context)) {
    ctx = spec.context_prefix + formatValue(*context, spec.context_unit);
  }
  if (value) {
    c.level = classify(*value, spec.thresholds);
    c.shown = formatValue(*value, spec.unit) + ctx;
    return c;
  }
  if (fallback) {
    c.level = spec.fallback_level.value_or(HealthLevel::kNoData);
    c.value = fallback;
    c.shown = formatValue(*fallback, spec.fallback_unit.value_or(spec.unit)) + ctx;
    c.note = spec.fallback_note;
    return c;
  }
  c.shown = "–";
  c.note = spec.missing_note;
  return c;
}

HealthCheck alertsCheck(size_t firing, size_t firing_critical, size_t pending) {
  HealthCheck c{"alerts", "Firing alerts", HealthLevel::kOk, static_cast<double>(firing), "", ""};
  c.level = firing_critical > 0 ? HealthLevel::kCrit
            : firing > 0        ? HealthLevel::kWarn
                                : HealthLevel::kOk;
  c.shown = std::to_string(firing);
  if (pending > 0) c.note = std::to_string(pending) + " pending";
  return c;
}

const std::vector<CheckSpec>& defaultCheckSpecs() {
  // Thresholds follow the shipped rule pack (rules/default/*.yml) where it has one: red is
  // where its alert would fire, amber a step before. Ratios need the same minimum traffic
  // as the rules before they get a verdict.
  static const std::vector<CheckSpec> specs = [] {
    std::vector<CheckSpec> s;
    CheckSpec up{"pg_up", "PostgreSQL up", "min(pg_up)", {0.5, 0.5, true}, Unit::kUpDown};
    up.missing_note = "not watched";
    s.push_back(up);
    CheckSpec conn{"connections",
                   "Connections",
                   "max(dbpulse_pg_connections_utilization_ratio)",
                   {0.75, 0.9, false},
                   Unit::kRatio};
    conn.context_expr = "max(dbpulse_pg_client_connections)";
    conn.context_prefix = " · clients ";
    s.push_back(conn);
    s.push_back({"blocked",
                 "Blocked sessions",
                 "max(dbpulse_pg_blocked_sessions)",
                 {1, 5, false},
                 Unit::kCount});
    s.push_back({"long_transactions",
                 "Longest transaction",
                 "max(dbpulse_pg_longest_transaction_seconds)",
                 {60, 300, false},
                 Unit::kSeconds});
    // Judged by how long the oldest idle-in-transaction session has been so (what holds
    // locks and blocks vacuum), not by the count: a busy workload passes through the state.
    CheckSpec idle{"idle_in_transaction",
                   "Idle in transaction (oldest)",
                   "max(pg_stat_activity_max_tx_duration{state=~\"idle in transaction.*\"})",
                   {10, 60, false},
                   Unit::kSeconds};
    idle.context_expr = "max(dbpulse_pg_idle_in_transaction_sessions)";
    idle.context_prefix = " · sessions ";
    idle.fallback_expr = "max(dbpulse_pg_idle_in_transaction_sessions)";
    idle.fallback_unit = Unit::kCount;
    idle.fallback_level = HealthLevel::kOk;
    idle.fallback_note = "sessions";
    s.push_back(idle);
    CheckSpec cache{"cache_hit",
                    "Cache hit ratio (worst database)",
                    "min(dbpulse_pg_cache_hit_ratio and on (datname) "
                    "(rate(pg_stat_database_blks_hit[5m]) + rate(pg_stat_database_blks_read[5m])) "
                    "> 100)",
                    {0.95, 0.8, true},
                    Unit::kRatio};
    cache.fallback_expr = "max(dbpulse_pg_cache_hit_ratio)";
    cache.fallback_note = "too little traffic to judge (< 100 blocks/s)";
    s.push_back(cache);
    CheckSpec lag{"replication_lag",
                  "Replication lag",
                  "max(dbpulse_pg_replication_replay_lag_seconds or "
                  "dbpulse_pg_replication_standby_replay_lag_seconds)",
                  {10, 30, false},
                  Unit::kSeconds};
    lag.missing_note = "no replicas";
    s.push_back(lag);
    s.push_back({"wraparound",
                 "Transaction-ID age",
                 "max(dbpulse_pg_database_xid_age)",
                 {5e8, 1e9, false},
                 Unit::kCount});
    CheckSpec dead{"dead_tuples",
                   "Dead tuples (worst table)",
                   "max(dbpulse_pg_table_dead_tuple_ratio and pg_stat_user_tables_n_dead_tup > "
                   "10000)",
                   {0.1, 0.2, false},
                   Unit::kRatio};
    dead.fallback_expr = "max(dbpulse_pg_table_dead_tuple_ratio)";
    dead.fallback_note = "fewer than 10,000 dead tuples in any table";
    s.push_back(dead);
    CheckSpec mem{"redis_memory",
                  "Redis memory",
                  "max(redis_memory_used_bytes / (redis_memory_max_bytes > 0))",
                  {0.8, 0.9, false},
                  Unit::kRatio};
    mem.fallback_expr = "max(redis_memory_used_bytes)";
    mem.fallback_note = "no maxmemory set";
    mem.fallback_unit = Unit::kBytes;
    mem.missing_note = "not watched";
    s.push_back(mem);
    s.push_back({"redis_evictions",
                 "Redis evictions",
                 "sum(rate(redis_evicted_keys_total[5m]))",
                 {1e-9, 10, false},
                 Unit::kPerSecond});
    CheckSpec rhit{"redis_hit",
                   "Redis hit ratio",
                   "min(dbpulse_redis_cache_hit_ratio and on () "
                   "sum(rate(redis_keyspace_hits_total[5m]) + "
                   "rate(redis_keyspace_misses_total[5m])) > 1)",
                   {0.9, 0.8, true},
                   Unit::kRatio};
    rhit.fallback_expr = "max(dbpulse_redis_cache_hit_ratio)";
    rhit.fallback_note = "too little traffic to judge (< 1 lookup/s)";
    s.push_back(rhit);
    CheckSpec err{"chat_errors",
                  "Chat server 5xx ratio",
                  "(sum(rate(http_requests_total{status_code=~\"5..\"}[5m])) or vector(0)) / "
                  "(sum(rate(http_requests_total[5m])) > 0.1)",
                  {0.01, 0.05, false},
                  Unit::kRatio};
    err.fallback_expr = "sum(rate(http_requests_total[5m]))";
    err.fallback_note = "too little traffic to judge (< 0.1 req/s)";
    err.fallback_unit = Unit::kPerSecond;
    err.missing_note = "no chat server metrics";
    s.push_back(err);
    CheckSpec p95{"chat_p95",
                  "Chat server p95",
                  "histogram_quantile(0.95, sum by (le) "
                  "(rate(http_request_duration_seconds_bucket[5m]))) and on () "
                  "sum(rate(http_request_duration_seconds_bucket{le=\"+Inf\"}[5m])) > 0.1",
                  {0.5, 1, false},
                  Unit::kSeconds};
    p95.fallback_expr = "sum(rate(http_request_duration_seconds_bucket{le=\"+Inf\"}[5m]))";
    p95.fallback_note = "too little traffic to judge (< 0.1 req/s)";
    p95.fallback_unit = Unit::kPerSecond;
    p95.missing_note = "no chat server metrics";
    s.push_back(p95);
    return s;
  }();
  return specs;
}

const std::vector<SparkSpec>& defaultSparkSpecs() {
  static const std::vector<SparkSpec> specs = {
      {"spark_connections", "Connections used", "max(dbpulse_pg_connections_utilization_ratio)",
       Unit::kRatio},
      {"spark_active", "Active sessions", "sum(pg_stat_activity_count{state=\"active\"})",
       Unit::kCount},
      // 3m: the statements collector runs once a minute by default, and a rate needs two
      // of its samples inside the window.
      {"spark_statements", "Statements/s", "sum(rate(dbpulse_pg_statements_calls_total[3m]))",
       Unit::kPerSecond},
      {"spark_cache_hit", "Cache hit ratio (all databases)",
       "sum(rate(pg_stat_database_blks_hit[1m])) / (sum(rate(pg_stat_database_blks_hit[1m])) + "
       "sum(rate(pg_stat_database_blks_read[1m])))",
       Unit::kRatio},
      {"spark_redis_memory", "Redis memory", "sum(redis_memory_used_bytes)", Unit::kBytes},
      {"spark_redis_hit", "Redis hit ratio", "max(dbpulse_redis_cache_hit_ratio)", Unit::kRatio},
      {"spark_chat_rps", "Chat requests/s", "sum(rate(http_requests_total[1m]))", Unit::kPerSecond},
      {"spark_chat_p95", "Chat p95",
       "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[1m])))",
       Unit::kSeconds},
  };
  return specs;
}

struct HealthChecker::Compiled {
  struct Check {
    rules::ExprPtr expr, fallback, context;
    std::string error;
  };
  std::vector<Check> checks;
  std::vector<rules::ExprPtr> sparks;  // null when it did not parse
};

namespace {

rules::ExprPtr compile(const std::string& text, std::string* error) {
  if (text.empty()) return nullptr;
  auto parsed = rules::parseExpr(text);
  if (!parsed.ok()) {
    if (error != nullptr) *error = parsed.status().message();
    return nullptr;
  }
  return std::move(parsed).value();
}

// The worst finite value of `expr` at `at_ms` (max, or min when `lowest`); nullopt when the
// expression has no (finite) result. A scalar counts as one value.
std::optional<double> worst(const rules::Expr* expr, const SampleStore& store, int64_t at_ms,
                            int64_t lookback_ms, bool lowest) {
  if (expr == nullptr) return std::nullopt;
  rules::EvalOptions o;
  o.lookback_ms = lookback_ms;
  auto r = rules::evaluate(*expr, store, at_ms, o);
  if (!r.ok()) return std::nullopt;
  if (r->type == rules::ValueType::kScalar) {
    return std::isfinite(r->scalar) ? std::optional<double>(r->scalar) : std::nullopt;
  }
  std::optional<double> out;
  for (const auto& e : r->vector) {
    if (!std::isfinite(e.value)) continue;
    if (!out || (lowest ? e.value < *out : e.value > *out)) out = e.value;
  }
  return out;
}

}  // namespace

HealthChecker::HealthChecker(std::vector<CheckSpec> checks, std::vector<SparkSpec> sparks)
    : checks_(std::move(checks)), sparks_(std::move(sparks)), compiled_(new Compiled) {
  for (const auto& c : checks_) {
    Compiled::Check k;
    k.expr = compile(c.expr, &k.error);
    k.fallback = compile(c.fallback_expr, &k.error);
    k.context = compile(c.context_expr, &k.error);
    compiled_->checks.push_back(std::move(k));
  }
  for (const auto& s : sparks_) compiled_->sparks.push_back(compile(s.expr, nullptr));
}

HealthChecker::HealthChecker() : HealthChecker(defaultCheckSpecs(), defaultSparkSpecs()) {}

HealthChecker::~HealthChecker() = default;

std::vector<HealthCheck> HealthChecker::evaluate(const SampleStore& store, int64_t now_ms,
                                                 int64_t lookback_ms) const {
  std::vector<HealthCheck> out;
  out.reserve(checks_.size());
  for (size_t i = 0; i < checks_.size(); ++i) {
    const CheckSpec& spec = checks_[i];
    const Compiled::Check& k = compiled_->checks[i];
    const bool lowest = spec.thresholds.lower_is_worse;
    auto value = worst(k.expr.get(), store, now_ms, lookback_ms, lowest);
    auto fallback =
        value ? std::nullopt : worst(k.fallback.get(), store, now_ms, lookback_ms, lowest);
    auto context = worst(k.context.get(), store, now_ms, lookback_ms, false);
    HealthCheck c = judge(spec, value, fallback, context);
    if (!k.error.empty()) c.note = "check not evaluated: " + k.error;
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<SparkSeries> HealthChecker::sparklines(const SampleStore& store, int64_t now_ms,
                                                   int64_t span_ms, int points,
                                                   int64_t lookback_ms) const {
  std::vector<SparkSeries> out;
  points = std::max(points, 2);
  const int64_t step = span_ms / (points - 1);
  for (size_t i = 0; i < sparks_.size(); ++i) {
    SparkSeries s{sparks_[i].id, sparks_[i].title, sparks_[i].unit, {}};
    const rules::Expr* expr = compiled_->sparks[i].get();
    for (int p = 0; p < points && expr != nullptr; ++p) {
      const int64_t t = now_ms - span_ms + p * step;
      if (auto v = worst(expr, store, t, lookback_ms, false)) s.points.push_back({t, *v});
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace dbpulse::admin
