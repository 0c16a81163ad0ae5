#pragma once
// The collector catalogue: every collector name dbpulse knows, what question it answers,
// its defaults, the [collectors.NAME] options it reads beyond the common ones, the kind of
// client it needs and how to build it. The config loader takes the names, defaults and
// option keys from it; the agent's pipeline builds from it, handing each factory its own
// section's settings and a client of its kind. `answers` and option meanings are for the
// reader: the README's collector table is kept by hand (tests check that it names every
// collector and option).
//
// Adding a collector over an existing kind of server = its files + one row in catalog.cpp
// (+ its README row and its names in metric_names.tsv, which tests check); a new kind of
// server adds a ClientKind, its client and one registration in agent/pipeline.cpp.

#include <any>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "collectors/collector.h"

namespace dbpulse::collectors {

// The kind of server a collector talks to, and so the client its factory gets (see
// CollectorEnv::client; the agent makes it, one registration per kind):
enum class ClientKind {
  kPostgres,          // PgSession of the collector's session group, on [postgres] dsn
  kPgbouncerConsole,  // PgSession on pgbouncer's admin console; none without [pgbouncer] dsn
  kRedis,             // RedisServer: where Redis is; the collector keeps its own connection
  kCompanion,         // CompanionServer: the chat server beside us (HTTP and its process)
};

// The client of kind kRedis ([redis]).
struct RedisServer {
  std::string host;
  int port = 0;
  std::string password;
};

// The client of kind kCompanion ([companion]): the chat server's HTTP endpoints and how to
// find its process.
struct CompanionServer {
  std::string health_url;
  std::string metrics_url;
  bool reexport = false;  // its series on dbpulse's /metrics too
  std::string pid_file;
  std::string process_name;
};

// What a registration made for a factory: a shared_ptr to the kind's client type, or
// nothing when that server is not configured.
class Client {
 public:
  Client() = default;
  template <typename T>
  explicit Client(std::shared_ptr<T> client) : held_(std::move(client)) {}
  // The client when it is a T, else null.
  template <typename T>
  T* get() const {
    const auto* p = std::any_cast<std::shared_ptr<T>>(&held_);
    return p != nullptr ? p->get() : nullptr;
  }
  bool empty() const { return !held_.has_value(); }

 private:
  std::any held_;
};

// A [collectors.NAME] key beyond the common ones (enabled, interval, timeout, group).
struct CollectorOption {
  enum class Kind {
    kCount,     // an integer, 1..10000
    kDuration,  // a duration string, greater than 0
  };
  std::string key;
  Kind kind;
  std::string meaning;  // what it sets for this collector, and its default
};

// A collector's [collectors.NAME] section as its factory sees it.
struct CollectorSettings {
  std::chrono::milliseconds interval{0};
  std::chrono::milliseconds timeout{0};
  // The options set in the config, by key: a count, or a duration in milliseconds.
  std::map<std::string, int64_t> options;

  // 0 when the option is not set (the collector's default applies).
  int count(const std::string& key) const;
  std::chrono::milliseconds duration(const std::string& key) const;
};

// What a factory gets: its own section's settings and the client of its entry's kind.
struct CollectorEnv {
  CollectorSettings settings;
  Client client;
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
  std::string answers;  // the question it answers, in one line
  CollectorScope scope;
  std::chrono::milliseconds default_interval;
  std::chrono::milliseconds default_timeout;
  ClientKind client;
  // kPostgres collectors in one group share one PostgreSQL session (so dbpulse holds one
  // connection per group, however slow the server is); slow catalogue scans get their own
  // group so they never delay the cheap, frequent ones. Empty for other kinds.
  std::string default_group;
  std::vector<CollectorOption> options;
  // Returns null when the collector is not configured (e.g. its client is missing).
  std::function<std::unique_ptr<Collector>(const CollectorEnv&)> make;
};

const std::vector<CatalogEntry>& catalog();
const CatalogEntry* findCollector(const std::string& name);

// The collector that reports whether a server of this kind is up (pg_up: connections), for
// the scheduler to run at once when another job finds the server unreachable; "" where the
// kind's only collector reports it itself (redis_up, dbpulse_companion_up, pgbouncer_up).
std::string upProbe(ClientKind kind);

}  // namespace dbpulse::collectors
