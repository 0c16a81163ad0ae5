#pragma once
// `redis`: is Redis up, hitting and within memory? (the chat server's cache, sessions and
// pub/sub). One connection, kept between runs; per run:
//   INFO all                    -> redis_exporter's series (see redis_parse.h), and
//                                  dbpulse_redis_cache_hit_ratio from the keyspace
//                                  counters' change since the previous run
//   PING x ping_samples         -> dbpulse_redis_ping_seconds (median round trip),
//                                  dbpulse_redis_ping_max_seconds
//   SLOWLOG LEN, SLOWLOG GET    -> redis_slowlog_length, redis_slowlog_last_id,
//                                  redis_last_slow_execution_duration_seconds, and the
//                                  entries newer than the last run folded into
//                                  dbpulse_redis_slowlog_entries_total{cmd} (command name only)
//   CLIENT LIST                 -> dbpulse_redis_clients{name,age}, dbpulse_redis_pubsub_clients
//   CONFIG GET databases (once) -> zero-filled redis_db_keys for empty databases
//   CONFIG GET io-threads (once) -> redis_config_io_threads
//   LATENCY LATEST              -> redis_latency_spike_last / _duration_seconds{event_name}
// plus redis_up: 1 when every step reached Redis, else 0 with only
// dbpulse_redis_cache_hit_ratio (NaN) beside it; the other series go stale.
//
// Cost on the Redis side, all on its main thread: INFO all is O(commands seen) (measured
// ~145 us per call on Redis 7.0 here, from its own commandstats), CLIENT LIST O(clients)
// (~10 us for 4 clients), PING and SLOWLOG LEN/GET 1 a few us; SLOWLOG GET n fetches only
// the entries logged since the last run (at most slowlog_fetch); LATENCY LATEST O(events).
// 8 round trips per run.
//
// A SLOWLOG, CLIENT or CONFIG command refused by the server (renamed, denied by an ACL)
// only drops its series (logged once); an INFO that is refused switches the collector off
// (FailedPrecondition "privilege_missing"). Failures reaching Redis return the session's
// Status (Unavailable, DeadlineExceeded, PermissionDenied). No exception escapes collect().
//
// Threading: per the Collector contract; cancel() may be called from any thread.

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "collectors/clients/redis/redis_session.h"
#include "collectors/collector.h"
#include "collectors/redis/redis_parse.h"

namespace dbpulse::collectors {

struct RedisCollectorOptions {
  RedisSessionOptions session;
  int ping_samples = 3;
  int slowlog_fetch = 128;        // most entries read per run (Redis's default max-len)
  size_t max_client_names = 20;   // dbpulse_redis_clients names before "other"
  size_t max_slow_commands = 50;  // dbpulse_redis_slowlog_* commands before "other"
};

class RedisCollector final : public Collector {
 public:
  explicit RedisCollector(RedisCollectorOptions options);
  ~RedisCollector() override;

  const std::string& name() const override { return name_; }
  Status collect(const CollectContext& ctx, SampleBatch& out) override;
  void cancel() override;

  // The session, for tests (connect counts, forced disconnects).
  RedisSession& session() { return *session_; }

 private:
  Status collectRun(const CollectContext& ctx, SampleBatch& run);
  // One command, checking cancel/shutdown first.
  Result<RedisReply> call(const CollectContext& ctx, const std::vector<std::string>& args);
  // Logs a refused optional command once per command.
  void noteRefused(const std::string& command, const std::string& error);

  const std::string name_ = "redis";
  const RedisCollectorOptions options_;
  std::unique_ptr<RedisSession> session_;
  std::atomic<bool> cancelled_{false};

  // State between runs; only collect() touches it (never concurrently with itself).
  std::optional<KeyspaceCounters> previous_keyspace_;
  std::string previous_run_id_;
  SlowlogState slowlog_;
  int databases_ = -1;   // -1: not asked yet; 0: unknown (CONFIG refused)
  int io_threads_ = -1;  // CONFIG GET io-threads, read once (-1: not yet, 0: refused)
  std::set<std::string> refused_;
};

}  // namespace dbpulse::collectors
