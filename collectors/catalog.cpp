#include "collectors/catalog.h"

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

std::unique_ptr<Collector> makeConnections(const CollectorEnv& env) {
  if (env.postgres == nullptr) return nullptr;
  return std::make_unique<ConnectionsCollector>(*env.postgres);
}

std::unique_ptr<Collector> makeIndexes(const CollectorEnv& env) {
  if (env.postgres == nullptr) return nullptr;
  IndexesOptions options;
  if (env.top_n > 0) options.top_n = env.top_n;
  if (env.threshold.count() > 0) options.min_age = env.threshold;
  return std::make_unique<IndexesCollector>(*env.postgres, options);
}

std::unique_ptr<Collector> makeLocks(const CollectorEnv& env) {
  if (env.postgres == nullptr) return nullptr;
  return std::make_unique<LocksCollector>(*env.postgres, env.top_n);
}

std::unique_ptr<Collector> makeStatements(const CollectorEnv& env) {
  if (env.postgres == nullptr) return nullptr;
  StatementsOptions options;
  if (env.top_n > 0) options.top_n = env.top_n;
  if (env.threshold.count() > 0) options.long_running_threshold = env.threshold;
  return std::make_unique<StatementsCollector>(*env.postgres, options);
}

std::unique_ptr<Collector> makeCache(const CollectorEnv& env) {
  if (env.postgres == nullptr) return nullptr;
  return std::make_unique<CacheCollector>(*env.postgres, env.top_n);
}

std::unique_ptr<Collector> makeTables(const CollectorEnv& env) {
  if (env.postgres == nullptr) return nullptr;
  return std::make_unique<TablesCollector>(*env.postgres, env.top_n);
}

std::unique_ptr<Collector> makeStats(const CollectorEnv& env) {
  if (env.postgres == nullptr) return nullptr;
  return std::make_unique<StatsCollector>(*env.postgres, env.top_n);
}

std::unique_ptr<Collector> makeSize(const CollectorEnv& env) {
  if (env.postgres == nullptr) return nullptr;
  return std::make_unique<SizeCollector>(*env.postgres, env.top_n);
}

std::unique_ptr<Collector> makeReplication(const CollectorEnv& env) {
  if (env.postgres == nullptr) return nullptr;
  return std::make_unique<ReplicationCollector>(*env.postgres);
}

std::unique_ptr<Collector> makePgbouncer(const CollectorEnv& env) {
  // Scheduled only when [pgbouncer] dsn is set (the Agent then builds the console session).
  if (env.pgbouncer == nullptr) return nullptr;
  return std::make_unique<PgbouncerCollector>(*env.pgbouncer);
}

std::unique_ptr<Collector> makeProcess(const CollectorEnv& env) {
  ProcessCollectorOptions options;
  options.companion_pid_file = env.companion_pid_file;
  options.companion_process_name = env.companion_process_name;
  return std::make_unique<ProcessCollector>(options);
}

std::unique_ptr<Collector> makeRedis(const CollectorEnv& env) {
  RedisCollectorOptions options;
  options.session.host = env.redis_host;
  options.session.port = env.redis_port;
  options.session.password = env.redis_password;
  if (env.timeout.count() > 0) {
    options.session.command_timeout = env.timeout;
    if (env.timeout < options.session.connect_timeout) {
      options.session.connect_timeout = env.timeout;
    }
  }
  // Reconnect attempts at most every few intervals, never slower than 30 s.
  if (env.interval.count() > 0 && 4 * env.interval < options.session.max_backoff) {
    options.session.max_backoff = 4 * env.interval;
  }
  return std::make_unique<RedisCollector>(options);
}

std::unique_ptr<Collector> makeCompanion(const CollectorEnv& env) {
  if (env.companion_health_url.empty() && env.companion_metrics_url.empty()) return nullptr;
  CompanionCollectorOptions options;
  options.health_url = env.companion_health_url;
  options.metrics_url = env.companion_metrics_url;
  options.reexport = env.companion_reexport;
  if (env.timeout.count() > 0) options.timeout = env.timeout;
  return std::make_unique<CompanionCollector>(options);
}

}  // namespace

const std::vector<CatalogEntry>& catalog() {
  static const std::vector<CatalogEntry> kCatalog = {
      {"connections", "How full is PostgreSQL's connection table, and who holds it?",
       CollectorScope::kLocal, seconds(15), seconds(5), "fast", makeConnections},
      {"statements", "Which statements take the database's time?", CollectorScope::kDatabase,
       seconds(60), seconds(10), "fast", makeStatements},
      {"indexes", "Which indexes are unused, duplicate or invalid?", CollectorScope::kDatabase,
       minutes(5), seconds(10), "slow", makeIndexes},
      {"cache", "Is the working set in shared buffers?", CollectorScope::kDatabase, seconds(30),
       seconds(5), "fast", makeCache},
      {"stats", "How busy is the server? (postgres_exporter's pg_stat_*, pg_settings_*)",
       CollectorScope::kDatabase, seconds(15), seconds(5), "fast", makeStats},
      {"tables", "Which tables need VACUUM/ANALYZE?", CollectorScope::kDatabase, minutes(1),
       seconds(10), "slow", makeTables},
      {"size", "How big are databases, tables and indexes?", CollectorScope::kDatabase, minutes(10),
       seconds(30), "slow", makeSize},
      {"locks", "Who waits for whom?", CollectorScope::kDatabase, seconds(15), seconds(5), "fast",
       makeLocks},
      {"pgbouncer", "Is the pooler queueing clients?", CollectorScope::kLocal, seconds(15),
       seconds(5), "", makePgbouncer},
      {"replication", "How far behind are the replicas, and how much WAL do slots hold?",
       CollectorScope::kDatabase, seconds(15), seconds(5), "fast", makeReplication},
      {"redis", "Is Redis up, hitting and within memory?", CollectorScope::kLocal, seconds(15),
       seconds(5), "", makeRedis},
      {"process", "How much memory and CPU do dbpulse and the chat server use?",
       CollectorScope::kLocal, seconds(15), seconds(5), "", makeProcess},
      {"companion", "Is the chat server healthy, and what do its metrics say?",
       CollectorScope::kLocal, seconds(15), seconds(5), "", makeCompanion},
  };
  return kCatalog;
}

const CatalogEntry* findCollector(const std::string& name) {
  for (const auto& e : catalog()) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

}  // namespace dbpulse::collectors
