#pragma once
// Pure functions of the redis collector: Redis replies in, samples out. No I/O, no clock;
// unit-tested with canned INFO / CLIENT LIST / SLOWLOG output.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "agent/core/sample.h"
#include "collectors/clients/redis/redis_reply.h"

namespace dbpulse::collectors {

// The fields of an `INFO` reply ("key:value" lines), across all sections. Section headers
// ("# Memory"), blank lines and lines without a ':' are skipped; "\r\n" and "\n" both end
// a line; the first occurrence of a key wins.
struct RedisInfo {
  std::map<std::string, std::string, std::less<>> fields;
  // "" when absent.
  std::string_view get(std::string_view key) const;
  // nullopt when absent or not a plain number.
  std::optional<double> number(std::string_view key) const;
};

RedisInfo parseRedisInfo(std::string_view text);

// INFO fields -> series under redis_exporter's names and labels: server/clients/memory/
// persistence/stats/replication/cpu gauges and counters, redis_instance_info, per-db
// redis_db_keys / redis_db_keys_expiring / redis_db_avg_ttl_seconds {db="db0"}, per-command
// redis_commands_total / redis_commands_duration_seconds_total / ..._rejected_calls_total /
// ..._failed_calls_total {cmd}, redis_errors_total{err}, redis_latency_percentiles_usec
// {cmd,quantile}, redis_connected_slave_{offset_bytes,lag_seconds}. Fields this Redis
// version lacks are simply not reported. `databases` > 0 zero-fills db0..db(N-1) (INFO
// omits empty databases); 0 reports only the databases INFO lists.
void redisInfoToSamples(const RedisInfo& info, int databases, SampleBatch& out);

// The keyspace lookup counters of one INFO, and the server incarnation they belong to.
struct KeyspaceCounters {
  std::string run_id;  // changes when Redis restarts (counters start again at 0)
  double hits = 0;
  double misses = 0;
};
std::optional<KeyspaceCounters> keyspaceCounters(const RedisInfo& info);

// dbpulse_redis_cache_hit_ratio: hits / (hits + misses) over the lookups made between the
// previous run and this one. NaN when that is undefined: no previous run, Redis restarted
// in between (other run_id or counters went backwards), or no lookups at all in between
// (a ratio of 0/0 — an idle cache is neither hitting nor missing; rules comparing the
// ratio are false on NaN, so an idle cache raises no "hit ratio low" alert).
double cacheHitRatio(const std::optional<KeyspaceCounters>& previous,
                     const KeyspaceCounters& current);

// CLIENT LIST summarised without per-client series: dbpulse_redis_clients{name,age}
// counts connections by client name (the `max_names` most common names; the rest are
// summed as name="other", connections without a name as name="unnamed") and by age
// bucket (age="0-1m", "1m-1h", "1h-1d", "1d+"), and dbpulse_redis_pubsub_clients counts
// connections subscribed to at least one channel or pattern. Malformed lines are skipped.
void summariseClientList(std::string_view text, size_t max_names, SampleBatch& out);

// Slow log bookkeeping between runs. Only the command name (first argument, lower-cased)
// of an entry is ever kept; its arguments are never read into a sample or a log line.
struct SlowlogTotals {
  double count = 0;
  double seconds = 0;
};
struct SlowlogState {
  std::optional<int64_t> last_id;  // newest entry id seen; nullopt before the first run
  std::map<std::string, SlowlogTotals, std::less<>> by_command;  // cumulative
  double unseen = 0;  // entries logged and trimmed before a run could read them
};

// Folds the entries of a `SLOWLOG GET n` reply that are newer than state.last_id into the
// cumulative totals. The first call (no last_id) only records the newest id: entries from
// before dbpulse started are not counted (a restarted agent would count them twice).
// `restarted` (Redis restarted since the last call) counts every entry, all of them being
// newer. At most `max_commands` distinct names are tracked; more are summed as "other".
// An id gap larger than the entries returned is added to `unseen`.
void foldSlowlog(const RedisReply& entries, bool restarted, size_t max_commands,
                 SlowlogState& state);

// dbpulse_redis_slowlog_entries_total{cmd}, dbpulse_redis_slowlog_duration_seconds_total
// {cmd}, dbpulse_redis_slowlog_unseen_entries_total.
void slowlogToSamples(const SlowlogState& state, SampleBatch& out);

// The id of the newest well-formed entry of a SLOWLOG GET reply; nullopt when none.
std::optional<int64_t> newestSlowlogId(const RedisReply& entries);

// redis_slowlog_last_id and redis_last_slow_execution_duration_seconds from the newest
// entry of a SLOWLOG GET reply (nothing when the log is empty or malformed).
void newestSlowlogToSamples(const RedisReply& entries, SampleBatch& out);

// redis_exporter's redis_latency_spike_last{event_name} (Unix time of the latest spike) and
// redis_latency_spike_duration_seconds{event_name} (its duration) from a LATENCY LATEST
// reply: one entry per event the latency monitor recorded (none while
// latency-monitor-threshold is 0). Malformed entries are skipped.
void latencyLatestToSamples(const RedisReply& reply, SampleBatch& out);

}  // namespace dbpulse::collectors
