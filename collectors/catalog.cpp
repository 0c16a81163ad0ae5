#include "collectors/catalog.h"

#include "agent/core/duration.h"
#include "collectors/clients/postgres/pg_session.h"
#include "collectors/companion/companion_collector.h"
#include "collectors/postgres/cache_collector.h"
#include "collectors/postgres/connections_collector.h"
#include "collectors/postgres/indexes_collector.h"
#include "collectors/postgres/locks_collector.h"
#include "collectors/postgres/pgbouncer_collector.h"
#include "collectors/postgres/replication_collector.h"
#include "collectors/postgres/size_collector.h"
#include "collectors/postgres/statements_collector.h"
#include "collectors/postgres/stats_collector.h"
#include "collectors/postgres/tables_collector.h"
#include "collectors/process/process_collector.h"
#include "collectors/redis/redis_collector.h"

namespace dbpulse::collectors {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using Kind = CollectorOption::Kind;

PgSession* postgres(const CollectorEnv& env) { return env.client.get<PgSession>(); }

std::unique_ptr<Collector> makeConnections(const CollectorEnv& env) {
  if (postgres(env) == nullptr) return nullptr;
  return std::make_unique<ConnectionsCollector>(*postgres(env));
}

std::unique_ptr<Collector> makeIndexes(const CollectorEnv& env) {
  if (postgres(env) == nullptr) return nullptr;
  IndexesOptions options;
  if (int n = env.settings.count("top_n"); n > 0) options.top_n = n;
  if (auto age = env.settings.duration("threshold"); age.count() > 0) options.min_age = age;
  return std::make_unique<IndexesCollector>(*postgres(env), options);
}

std::unique_ptr<Collector> makeLocks(const CollectorEnv& env) {
  if (postgres(env) == nullptr) return nullptr;
  return std::make_unique<LocksCollector>(*postgres(env), env.settings.count("top_n"));
}

std::unique_ptr<Collector> makeStatements(const CollectorEnv& env) {
  if (postgres(env) == nullptr) return nullptr;
  StatementsOptions options;
  if (int n = env.settings.count("top_n"); n > 0) options.top_n = n;
  if (auto t = env.settings.duration("threshold"); t.count() > 0) {
    options.long_running_threshold = t;
  }
  return std::make_unique<StatementsCollector>(*postgres(env), options);
}

std::unique_ptr<Collector> makeCache(const CollectorEnv& env) {
  if (postgres(env) == nullptr) return nullptr;
  return std::make_unique<CacheCollector>(*postgres(env), env.settings.count("top_n"));
}

std::unique_ptr<Collector> makeTables(const CollectorEnv& env) {
  if (postgres(env) == nullptr) return nullptr;
  return std::make_unique<TablesCollector>(*postgres(env), env.settings.count("top_n"));
}

std::unique_ptr<Collector> makeStats(const CollectorEnv& env) {
  if (postgres(env) == nullptr) return nullptr;
  return std::make_unique<StatsCollector>(*postgres(env), env.settings.count("top_n"));
}

std::unique_ptr<Collector> makeSize(const CollectorEnv& env) {
  if (postgres(env) == nullptr) return nullptr;
  return std::make_unique<SizeCollector>(*postgres(env), env.settings.count("top_n"));
}

std::unique_ptr<Collector> makeReplication(const CollectorEnv& env) {
  if (postgres(env) == nullptr) return nullptr;
  return std::make_unique<ReplicationCollector>(*postgres(env));
}

std::unique_ptr<Collector> makePgbouncer(const CollectorEnv& env) {
  // The console session exists only when [pgbouncer] dsn is set.
  if (postgres(env) == nullptr) return nullptr;
  return std::make_unique<PgbouncerCollector>(*postgres(env));
}

std::unique_ptr<Collector> makeProcess(const CollectorEnv& env) {
  ProcessCollectorOptions options;
  if (const auto* companion = env.client.get<CompanionServer>()) {
    options.companion_pid_file = companion->pid_file;
    options.companion_process_name = companion->process_name;
  }
  return std::make_unique<ProcessCollector>(options);
}

std::unique_ptr<Collector> makeRedis(const CollectorEnv& env) {
  const auto* redis = env.client.get<RedisServer>();
  if (redis == nullptr) return nullptr;
  RedisCollectorOptions options;
  options.session.host = redis->host;
  options.session.port = redis->port;
  options.session.password = redis->password;
  const milliseconds timeout = env.settings.timeout;
  if (timeout.count() > 0) {
    options.session.command_timeout = timeout;
    if (timeout < options.session.connect_timeout) options.session.connect_timeout = timeout;
  }
  // Reconnect attempts at most every few intervals, never slower than 30 s.
  const milliseconds interval = env.settings.interval;
  if (interval.count() > 0 && 4 * interval < options.session.max_backoff) {
    options.session.max_backoff = 4 * interval;
  }
  return std::make_unique<RedisCollector>(options);
}

std::unique_ptr<Collector> makeCompanion(const CollectorEnv& env) {
  const auto* companion = env.client.get<CompanionServer>();
  if (companion == nullptr || (companion->health_url.empty() && companion->metrics_url.empty())) {
    return nullptr;
  }
  CompanionCollectorOptions options;
  options.health_url = companion->health_url;
  options.metrics_url = companion->metrics_url;
  options.reexport = companion->reexport;
  if (env.settings.timeout.count() > 0) options.timeout = env.settings.timeout;
  return std::make_unique<CompanionCollector>(options);
}

// The options of the collectors that read them. The loader accepts top_n and threshold in
// every [collectors.NAME] section (README: "every collector has these keys"); the others
// ignore them.
CollectorOption topN(std::string meaning) { return {"top_n", Kind::kCount, std::move(meaning)}; }
CollectorOption threshold(std::string meaning) {
  return {"threshold", Kind::kDuration, std::move(meaning)};
}

}  // namespace

const std::vector<CatalogEntry>& catalog() {
  using C = ClientKind;
  using S = CollectorScope;
  auto n = [](int v) { return std::to_string(v); };
  static const std::vector<CatalogEntry> kCatalog = {
      {"connections",
       "How full is PostgreSQL's connection table, and who holds it?",
       S::kLocal,
       seconds(15),
       seconds(5),
       C::kPostgres,
       "fast",
       {},
       makeConnections},
      {"statements",
       "Which statements take the database's time?",
       S::kDatabase,
       seconds(60),
       seconds(10),
       C::kPostgres,
       "fast",
       {topN("statements exported, by time since the previous run (default " +
             n(kDefaultStatementsTopN) + ")"),
        threshold("running longer than this counts as long-running (default " +
                  formatDuration(kDefaultLongRunningThreshold) + ")")},
       makeStatements},
      {"indexes",
       "Which indexes are unused, duplicate or invalid?",
       S::kDatabase,
       minutes(5),
       seconds(10),
       C::kPostgres,
       "slow",
       {topN("indexes (by size) and tables (by sequential reads) exported (default " +
             n(kDefaultIndexesTopN) + ")"),
        threshold("an index without a scan while observed this long is unused, here and for "
                  "the index advisor (default " +
                  formatDuration(kDefaultUnusedIndexMinAge) + ")")},
       makeIndexes},
      {"cache",
       "Is the working set in shared buffers?",
       S::kDatabase,
       seconds(30),
       seconds(5),
       C::kPostgres,
       "fast",
       {topN("tables with their own hit ratios (default " + n(kDefaultCacheTopTables) + ")")},
       makeCache},
      {"stats",
       "How busy is the server? (postgres_exporter's pg_stat_*, pg_settings_*)",
       S::kDatabase,
       seconds(15),
       seconds(5),
       C::kPostgres,
       "fast",
       {topN("tables with pg_stat_user_tables_* series (default " + n(kDefaultStatsTopTables) +
             ")")},
       makeStats},
      {"tables",
       "Which tables need VACUUM/ANALYZE?",
       S::kDatabase,
       minutes(1),
       seconds(10),
       C::kPostgres,
       "slow",
       {topN("tables and indexes exported per ranking (default " + n(kDefaultTablesTopN) + ")")},
       makeTables},
      {"size",
       "How big are databases, tables and indexes?",
       S::kDatabase,
       minutes(10),
       seconds(30),
       C::kPostgres,
       "slow",
       {topN("largest tables exported; the admin API has all (default " + n(kDefaultSizeTopN) +
             ")")},
       makeSize},
      {"locks",
       "Who waits for whom?",
       S::kDatabase,
       seconds(15),
       seconds(5),
       C::kPostgres,
       "fast",
       {topN("blocked sessions kept with details for the admin API (default " +
             n(kDefaultBlockedDetails) + ")")},
       makeLocks},
      {"pgbouncer",
       "Is the pooler queueing clients?",
       S::kLocal,
       seconds(15),
       seconds(5),
       C::kPgbouncerConsole,
       "",
       {},
       makePgbouncer},
      {"replication",
       "How far behind are the replicas, and how much WAL do slots hold?",
       S::kDatabase,
       seconds(15),
       seconds(5),
       C::kPostgres,
       "fast",
       {},
       makeReplication},
      {"redis",
       "Is Redis up, hitting and within memory?",
       S::kLocal,
       seconds(15),
       seconds(5),
       C::kRedis,
       "",
       {},
       makeRedis},
      {"process",
       "How much memory and CPU do dbpulse and the chat server use?",
       S::kLocal,
       seconds(15),
       seconds(5),
       C::kCompanion,
       "",
       {},
       makeProcess},
      {"companion",
       "Is the chat server healthy, and what do its metrics say?",
       S::kLocal,
       seconds(15),
       seconds(5),
       C::kCompanion,
       "",
       {},
       makeCompanion},
  };
  return kCatalog;
}

int CollectorSettings::count(const std::string& key) const {
  auto it = options.find(key);
  return it == options.end() ? 0 : static_cast<int>(it->second);
}

std::chrono::milliseconds CollectorSettings::duration(const std::string& key) const {
  auto it = options.find(key);
  return milliseconds(it == options.end() ? 0 : it->second);
}

std::string upProbe(ClientKind kind) { return kind == ClientKind::kPostgres ? "connections" : ""; }

const CatalogEntry* findCollector(const std::string& name) {
  for (const auto& e : catalog()) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

}  // namespace dbpulse::collectors
