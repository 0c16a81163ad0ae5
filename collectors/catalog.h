#pragma once
// The collector catalogue: every collector name dbpulse knows, what question it
// answers, its defaults, and how to build it. Adding a collector = its files +
// one line in catalog.cpp. Config validation reads its names and defaults; the README's
// collector table is kept by hand.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "collectors/collector.h"

namespace dbpulse::collectors {

class PgSession;

// What a factory may use: the collector's own settings and the shared clients.
// Pointers are null when that part is not configured.
struct CollectorEnv {
  // PostgreSQL session of this collector's group (see CatalogEntry::default_group).
  PgSession* postgres = nullptr;
  // Session to pgbouncer's admin console, when [pgbouncer] dsn is set.
  PgSession* pgbouncer = nullptr;

  // [collectors.NAME] options; 0 means "the collector's own default".
  int top_n = 0;
  std::chrono::milliseconds threshold{0};
  std::chrono::milliseconds interval{0};
  std::chrono::milliseconds timeout{0};

  // [redis]
  std::string redis_host;
  int redis_port = 0;
  std::string redis_password;

  // [companion]
  std::string companion_health_url;
  std::string companion_metrics_url;
  std::string companion_pid_file;
  std::string companion_process_name;
  bool companion_reexport = false;
};

enum class CollectorScope {
  // Database-wide facts, the same whichever agent asks: with leader election only the
  // elected leader runs it, so N sidecars on one database cost what one does.
  kDatabase,
  // Every agent runs it: facts about this host/pod (process, companion), or about what
  // this agent itself reaches: its PostgreSQL connection (connections, so pg_up is on every
  // agent), the pgbouncer and the Redis beside this chat server.
  kLocal,
};

struct CatalogEntry {
  std::string name;
  std::string answers;  // one line for docs and --help
  CollectorScope scope;
  std::chrono::milliseconds default_interval;
  std::chrono::milliseconds default_timeout;
  // Database collectors in one group share one PostgreSQL session (so dbpulse holds one
  // connection per group, however slow the server is); slow catalogue scans get their own
  // group so they never delay the cheap, frequent ones. Empty for non-database collectors.
  std::string default_group;
  // Every entry has one; it returns null when the collector is not configured.
  std::function<std::unique_ptr<Collector>(const CollectorEnv&)> make;
};

const std::vector<CatalogEntry>& catalog();
const CatalogEntry* findCollector(const std::string& name);

}  // namespace dbpulse::collectors
