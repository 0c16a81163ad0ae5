#include "collectors/redis/redis_parse.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>
#include <vector>

namespace dbpulse::collectors {
namespace {

std::optional<double> toNumber(std::string_view s) {
  if (s.empty()) return std::nullopt;
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

// "k1=v1,k2=v2" (INFO's keyspace, commandstats, errorstats, slaveN values) -> pairs.
std::vector<std::pair<std::string_view, std::string_view>> splitPairs(std::string_view s) {
  std::vector<std::pair<std::string_view, std::string_view>> out;
  while (!s.empty()) {
    const size_t comma = s.find(',');
    const std::string_view item = s.substr(0, comma);
    const size_t eq = item.find('=');
    if (eq != std::string_view::npos && eq > 0)
      out.emplace_back(item.substr(0, eq), item.substr(eq + 1));
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

std::string_view pairValue(const std::vector<std::pair<std::string_view, std::string_view>>& pairs,
                           std::string_view key) {
  for (const auto& [k, v] : pairs) {
    if (k == key) return v;
  }
  return {};
}

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// "db12" style keys: prefix followed by at least one digit and nothing else.
bool isNumbered(std::string_view key, std::string_view prefix) {
  if (!startsWith(key, prefix) || key.size() == prefix.size()) return false;
  return std::all_of(key.begin() + static_cast<std::ptrdiff_t>(prefix.size()), key.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

// Label values taken from the server (command names, error prefixes, client names) must be
// printable ASCII of bounded length: an error prefix comes from any Lua script's
// redis.error_reply() and could otherwise put bytes on /metrics that break a scrape.
std::string safeLabel(std::string_view v) {
  constexpr size_t kMaxLabel = 64;
  const bool ok = !v.empty() && v.size() <= kMaxLabel &&
                  std::all_of(v.begin(), v.end(), [](char c) { return c >= '!' && c <= '~'; });
  return ok ? std::string(v) : std::string("other");
}

// redis_exporter's type for its name, also where the name breaks a promtool lint rule for
// that type (a counter without _total, a gauge with _total): the tests accept those lint
// findings for the peers' names listed in collectors/metric_names.tsv.
enum class Kind {
  kGauge,
  kCounter,
};

struct FieldMetric {
  const char* field;
  const char* metric;
  Kind kind;
  double scale;
  const char* help;
};

// INFO field -> series. Names are redis_exporter's where it has them; the four *_time_sec
// fields are exported under redis_exporter's `_sec` names and, as before, under dbpulse_
// names with the `_seconds` base unit.
const FieldMetric kFieldMetrics[] = {
    // Server
    {"uptime_in_seconds", "redis_uptime_in_seconds", Kind::kGauge, 1,
     "Seconds since the Redis server started."},
    {"process_id", "redis_process_id", Kind::kGauge, 1, "Process id of the Redis server."},
    {"io_threads_active", "redis_io_threads_active", Kind::kGauge, 1,
     "1 while Redis I/O threads are active."},
    // Clients
    {"connected_clients", "redis_connected_clients", Kind::kGauge, 1,
     "Client connections (replicas excluded)."},
    {"blocked_clients", "redis_blocked_clients", Kind::kGauge, 1,
     "Clients blocked in BLPOP, XREAD, WAIT, ..."},
    {"tracking_clients", "redis_tracking_clients", Kind::kGauge, 1,
     "Clients with client-side caching tracking on."},
    {"clients_in_timeout_table", "redis_clients_in_timeout_table", Kind::kGauge, 1,
     "Blocked clients with a timeout."},
    {"maxclients", "redis_config_maxclients", Kind::kGauge, 1,
     "The maxclients setting: the connection limit."},
    {"client_recent_max_input_buffer", "redis_client_recent_max_input_buffer_bytes", Kind::kGauge,
     1, "Largest recent client input buffer."},
    {"client_recent_max_output_buffer", "redis_client_recent_max_output_buffer_bytes", Kind::kGauge,
     1, "Largest recent client output buffer."},
    {"cluster_connections", "redis_cluster_connections", Kind::kGauge, 1,
     "Cluster bus connections."},
    // Memory
    {"used_memory", "redis_memory_used_bytes", Kind::kGauge, 1, "Bytes allocated by Redis."},
    {"used_memory_rss", "redis_memory_used_rss_bytes", Kind::kGauge, 1,
     "Resident set size of Redis as seen by the OS."},
    {"used_memory_peak", "redis_memory_used_peak_bytes", Kind::kGauge, 1, "Peak of used_memory."},
    {"used_memory_overhead", "redis_memory_used_overhead_bytes", Kind::kGauge, 1,
     "Bytes used for server bookkeeping."},
    {"used_memory_startup", "redis_memory_used_startup_bytes", Kind::kGauge, 1,
     "Bytes used at startup."},
    {"used_memory_dataset", "redis_memory_used_dataset_bytes", Kind::kGauge, 1,
     "Bytes used by the dataset."},
    {"used_memory_lua", "redis_memory_used_lua_bytes", Kind::kGauge, 1,
     "Bytes used by the Lua engine."},
    {"used_memory_scripts", "redis_memory_used_scripts_bytes", Kind::kGauge, 1,
     "Bytes used by cached scripts."},
    {"maxmemory", "redis_memory_max_bytes", Kind::kGauge, 1,
     "The maxmemory setting (0 = no limit)."},
    {"maxmemory", "redis_config_maxmemory", Kind::kGauge, 1,
     "The maxmemory setting in bytes (0 = no limit)."},
    {"total_system_memory", "redis_total_system_memory_bytes", Kind::kGauge, 1,
     "Memory of the host Redis runs on."},
    {"number_of_cached_scripts", "redis_number_of_cached_scripts", Kind::kGauge, 1,
     "Cached Lua scripts."},
    {"mem_fragmentation_ratio", "redis_mem_fragmentation_ratio", Kind::kGauge, 1,
     "used_memory_rss / used_memory."},
    {"mem_fragmentation_bytes", "redis_mem_fragmentation_bytes", Kind::kGauge, 1,
     "used_memory_rss - used_memory."},
    {"mem_clients_slaves", "redis_mem_clients_slaves", Kind::kGauge, 1,
     "Bytes used by replica client buffers."},
    {"mem_clients_normal", "redis_mem_clients_normal", Kind::kGauge, 1,
     "Bytes used by normal client buffers."},
    {"mem_not_counted_for_evict", "redis_mem_not_counted_for_eviction_bytes", Kind::kGauge, 1,
     "Bytes not counted for eviction."},
    {"allocator_allocated", "redis_allocator_allocated_bytes", Kind::kGauge, 1,
     "Bytes allocated by the allocator."},
    {"allocator_active", "redis_allocator_active_bytes", Kind::kGauge, 1,
     "Bytes in the allocator's active pages."},
    {"allocator_resident", "redis_allocator_resident_bytes", Kind::kGauge, 1,
     "Bytes resident in the allocator."},
    {"allocator_frag_ratio", "redis_allocator_frag_ratio", Kind::kGauge, 1,
     "Allocator fragmentation ratio."},
    {"allocator_frag_bytes", "redis_allocator_frag_bytes", Kind::kGauge, 1,
     "Allocator fragmentation bytes."},
    {"allocator_rss_ratio", "redis_allocator_rss_ratio", Kind::kGauge, 1,
     "Allocator resident / active ratio."},
    {"allocator_rss_bytes", "redis_allocator_rss_bytes", Kind::kGauge, 1,
     "Allocator resident - active bytes."},
    {"lazyfree_pending_objects", "redis_lazyfree_pending_objects", Kind::kGauge, 1,
     "Objects waiting to be freed."},
    {"active_defrag_running", "redis_active_defrag_running", Kind::kGauge, 1,
     "1 while active defragmentation runs."},
    // Persistence
    {"loading", "redis_loading_dump_file", Kind::kGauge, 1, "1 while a dump file is being loaded."},
    {"rdb_changes_since_last_save", "redis_rdb_changes_since_last_save", Kind::kGauge, 1,
     "Changes since the last RDB save."},
    {"rdb_bgsave_in_progress", "redis_rdb_bgsave_in_progress", Kind::kGauge, 1,
     "1 while an RDB save runs."},
    {"rdb_last_save_time", "redis_rdb_last_save_timestamp_seconds", Kind::kGauge, 1,
     "Unix time of the last successful RDB save."},
    {"rdb_last_bgsave_time_sec", "dbpulse_redis_rdb_last_bgsave_duration_seconds", Kind::kGauge, 1,
     "Duration of the last RDB save (-1: none yet)."},
    {"rdb_current_bgsave_time_sec", "dbpulse_redis_rdb_current_bgsave_duration_seconds",
     Kind::kGauge, 1, "Duration of the running RDB save (-1: none)."},
    {"rdb_last_bgsave_time_sec", "redis_rdb_last_bgsave_duration_sec", Kind::kGauge, 1,
     "Duration of the last RDB save in seconds (-1: none yet)."},
    {"rdb_current_bgsave_time_sec", "redis_rdb_current_bgsave_duration_sec", Kind::kGauge, 1,
     "Duration of the running RDB save in seconds (-1: none)."},
    {"rdb_last_cow_size", "redis_rdb_last_cow_size_bytes", Kind::kGauge, 1,
     "Copy-on-write bytes of the last RDB save."},
    {"aof_enabled", "redis_aof_enabled", Kind::kGauge, 1, "1 when AOF is on."},
    {"aof_rewrite_in_progress", "redis_aof_rewrite_in_progress", Kind::kGauge, 1,
     "1 while an AOF rewrite runs."},
    {"aof_rewrite_scheduled", "redis_aof_rewrite_scheduled", Kind::kGauge, 1,
     "1 while an AOF rewrite is scheduled."},
    {"aof_last_rewrite_time_sec", "dbpulse_redis_aof_last_rewrite_duration_seconds", Kind::kGauge,
     1, "Duration of the last AOF rewrite (-1: none yet)."},
    {"aof_current_rewrite_time_sec", "dbpulse_redis_aof_current_rewrite_duration_seconds",
     Kind::kGauge, 1, "Duration of the running AOF rewrite (-1: none)."},
    {"aof_last_rewrite_time_sec", "redis_aof_last_rewrite_duration_sec", Kind::kGauge, 1,
     "Duration of the last AOF rewrite in seconds (-1: none yet)."},
    {"aof_current_rewrite_time_sec", "redis_aof_current_rewrite_duration_sec", Kind::kGauge, 1,
     "Duration of the running AOF rewrite in seconds (-1: none)."},
    {"aof_last_cow_size", "redis_aof_last_cow_size_bytes", Kind::kGauge, 1,
     "Copy-on-write bytes of the last AOF rewrite."},
    {"module_fork_in_progress", "redis_module_fork_in_progress", Kind::kGauge, 1,
     "1 while a module fork runs."},
    {"module_fork_last_cow_size", "redis_module_fork_last_cow_size", Kind::kGauge, 1,
     "Copy-on-write bytes of the last module fork."},
    // Stats
    {"total_connections_received", "redis_connections_received_total", Kind::kCounter, 1,
     "Connections accepted."},
    {"total_commands_processed", "redis_commands_processed_total", Kind::kCounter, 1,
     "Commands processed."},
    {"rejected_connections", "redis_rejected_connections_total", Kind::kCounter, 1,
     "Connections rejected because of maxclients."},
    {"total_net_input_bytes", "redis_net_input_bytes_total", Kind::kCounter, 1,
     "Bytes read from the network."},
    {"total_net_output_bytes", "redis_net_output_bytes_total", Kind::kCounter, 1,
     "Bytes written to the network."},
    {"expired_keys", "redis_expired_keys_total", Kind::kCounter, 1,
     "Keys removed because their TTL passed."},
    {"evicted_keys", "redis_evicted_keys_total", Kind::kCounter, 1,
     "Keys evicted because of maxmemory."},
    {"keyspace_hits", "redis_keyspace_hits_total", Kind::kCounter, 1, "Successful key lookups."},
    {"keyspace_misses", "redis_keyspace_misses_total", Kind::kCounter, 1, "Failed key lookups."},
    {"expired_stale_perc", "redis_expired_stale_percentage", Kind::kGauge, 1,
     "Estimated percentage of logically expired keys."},
    {"expired_time_cap_reached_count", "redis_expired_time_cap_reached_total", Kind::kGauge, 1,
     "Active expire cycles that stopped early."},
    {"pubsub_channels", "redis_pubsub_channels", Kind::kGauge, 1,
     "Pub/sub channels with subscribers."},
    {"pubsub_patterns", "redis_pubsub_patterns", Kind::kGauge, 1, "Pub/sub pattern subscriptions."},
    {"latest_fork_usec", "redis_latest_fork_seconds", Kind::kGauge, 1e-6,
     "Duration of the latest fork."},
    {"migrate_cached_sockets", "redis_migrate_cached_sockets_total", Kind::kGauge, 1,
     "Sockets open for MIGRATE."},
    {"slave_expires_tracked_keys", "redis_slave_expires_tracked_keys", Kind::kGauge, 1,
     "Keys tracked for expiry on a writable replica."},
    {"active_defrag_hits", "redis_defrag_hits", Kind::kGauge, 1,
     "Value reallocations by active defragmentation."},
    {"active_defrag_misses", "redis_defrag_misses", Kind::kGauge, 1,
     "Aborted value reallocations by active defragmentation."},
    {"active_defrag_key_hits", "redis_defrag_key_hits", Kind::kGauge, 1,
     "Keys actively defragmented."},
    {"active_defrag_key_misses", "redis_defrag_key_misses", Kind::kGauge, 1,
     "Keys skipped by active defragmentation."},
    {"tracking_total_keys", "redis_tracking_total_keys", Kind::kGauge, 1,
     "Keys tracked for client-side caching."},
    {"tracking_total_items", "redis_tracking_total_items", Kind::kGauge, 1,
     "Items tracked for client-side caching."},
    {"tracking_total_prefixes", "redis_tracking_total_prefixes", Kind::kGauge, 1,
     "Prefixes tracked for client-side caching."},
    {"unexpected_error_replies", "redis_unexpected_error_replies", Kind::kCounter, 1,
     "Unexpected error replies (AOF load, replication)."},
    {"total_error_replies", "redis_total_error_replies", Kind::kCounter, 1,
     "Error replies sent (counter)."},
    {"dump_payload_sanitizations", "redis_dump_payload_sanitizations", Kind::kCounter, 1,
     "Deep sanitizations of DUMP payloads (counter)."},
    {"total_reads_processed", "redis_total_reads_processed", Kind::kCounter, 1,
     "Read events processed (counter)."},
    {"total_writes_processed", "redis_total_writes_processed", Kind::kCounter, 1,
     "Write events processed (counter)."},
    {"io_threaded_reads_processed", "redis_io_threaded_reads_processed", Kind::kCounter, 1,
     "Reads processed by I/O threads (counter)."},
    {"io_threaded_writes_processed", "redis_io_threaded_writes_processed", Kind::kCounter, 1,
     "Writes processed by I/O threads (counter)."},
    // Replication
    {"connected_slaves", "redis_connected_slaves", Kind::kGauge, 1, "Connected replicas."},
    {"master_repl_offset", "redis_master_repl_offset", Kind::kGauge, 1,
     "Replication offset of this server."},
    {"second_repl_offset", "redis_second_repl_offset", Kind::kGauge, 1,
     "Offset up to which the previous replication id is accepted."},
    {"repl_backlog_active", "redis_repl_backlog_is_active", Kind::kGauge, 1,
     "1 while the replication backlog is active."},
    {"repl_backlog_size", "redis_replication_backlog_bytes", Kind::kGauge, 1,
     "Size of the replication backlog."},
    {"repl_backlog_first_byte_offset", "redis_repl_backlog_first_byte_offset", Kind::kGauge, 1,
     "First offset held in the replication backlog."},
    {"repl_backlog_histlen", "redis_repl_backlog_history_bytes", Kind::kGauge, 1,
     "Bytes of data in the replication backlog."},
    {"sync_full", "redis_replica_resyncs_full", Kind::kGauge, 1,
     "Full resynchronisations with replicas."},
    {"sync_partial_ok", "redis_replica_partial_resync_accepted", Kind::kGauge, 1,
     "Partial resync requests accepted."},
    {"sync_partial_err", "redis_replica_partial_resync_denied", Kind::kGauge, 1,
     "Partial resync requests denied."},
    {"master_last_io_seconds_ago", "redis_master_last_io_seconds_ago", Kind::kGauge, 1,
     "Seconds since the last interaction with the master (replicas)."},
    {"master_sync_in_progress", "redis_master_sync_in_progress", Kind::kGauge, 1,
     "1 while a replica syncs with its master."},
    {"slave_repl_offset", "redis_slave_repl_offset", Kind::kGauge, 1,
     "Replication offset of this replica."},
    // CPU
    {"used_cpu_sys", "redis_cpu_sys_seconds_total", Kind::kCounter, 1, "System CPU time of Redis."},
    {"used_cpu_user", "redis_cpu_user_seconds_total", Kind::kCounter, 1, "User CPU time of Redis."},
    {"used_cpu_sys_children", "redis_cpu_sys_children_seconds_total", Kind::kCounter, 1,
     "System CPU time of Redis's children."},
    {"used_cpu_user_children", "redis_cpu_user_children_seconds_total", Kind::kCounter, 1,
     "User CPU time of Redis's children."},
    {"used_cpu_sys_main_thread", "redis_cpu_sys_main_thread_seconds_total", Kind::kCounter, 1,
     "System CPU time of Redis's main thread."},
    {"used_cpu_user_main_thread", "redis_cpu_user_main_thread_seconds_total", Kind::kCounter, 1,
     "User CPU time of Redis's main thread."},
    // Cluster
    {"cluster_enabled", "redis_cluster_enabled", Kind::kGauge, 1, "1 when cluster mode is on."},
};

// "ok"/"up" style fields -> 1/0 gauges.
struct StatusMetric {
  const char* field;
  const char* good;
  const char* metric;
  const char* help;
};
const StatusMetric kStatusMetrics[] = {
    {"rdb_last_bgsave_status", "ok", "redis_rdb_last_bgsave_status",
     "1 when the last RDB save succeeded."},
    {"aof_last_bgrewrite_status", "ok", "redis_aof_last_bgrewrite_status",
     "1 when the last AOF rewrite succeeded."},
    {"aof_last_write_status", "ok", "redis_aof_last_write_status",
     "1 when the last AOF write succeeded."},
    {"master_link_status", "up", "redis_master_link_up",
     "1 while a replica's link to its master is up."},
};

void emit(SampleBatch& out, const char* name, Kind kind, const char* help, Labels labels,
          double value) {
  switch (kind) {
    case Kind::kGauge:
      out.gauge(name, help, std::move(labels), value);
      break;
    case Kind::kCounter:
      out.counter(name, help, std::move(labels), value);
      break;
  }
}

// "p99.9" -> "0.999": INFO's percentile names as redis_exporter's quantile label values.
std::optional<std::string> quantileLabel(std::string_view p) {
  if (p.size() < 2 || p[0] != 'p') return std::nullopt;
  auto v = toNumber(p.substr(1));
  if (!v || *v < 0 || *v > 100) return std::nullopt;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", *v / 100);
  return std::string(buf);
}

void keyspaceSamples(const RedisInfo& info, int databases, SampleBatch& out) {
  out.describe("redis_db_keys", MetricType::kGauge, "Keys in the database.");
  out.describe("redis_db_keys_expiring", MetricType::kGauge, "Keys with a TTL in the database.");
  out.describe("redis_db_avg_ttl_seconds", MetricType::kGauge,
               "Average TTL of the database's keys with a TTL (0 when none).");
  std::map<std::string, std::pair<double, double>> dbs;  // name -> keys, expires
  for (int i = 0; i < std::min(databases, 1024); ++i) dbs["db" + std::to_string(i)] = {0, 0};
  for (const auto& [key, value] : info.fields) {
    if (!isNumbered(key, "db")) continue;
    const auto pairs = splitPairs(value);
    auto keys = toNumber(pairValue(pairs, "keys"));
    if (!keys) continue;
    dbs[key] = {*keys, toNumber(pairValue(pairs, "expires")).value_or(0)};
    if (auto ttl = toNumber(pairValue(pairs, "avg_ttl"))) {
      out.add("redis_db_avg_ttl_seconds", Labels{{"db", key}}, *ttl / 1000.0);
    }
  }
  for (const auto& [db, kv] : dbs) {
    out.add("redis_db_keys", Labels{{"db", db}}, kv.first);
    out.add("redis_db_keys_expiring", Labels{{"db", db}}, kv.second);
  }
}

void commandSamples(const RedisInfo& info, SampleBatch& out) {
  static constexpr std::string_view kCmd = "cmdstat_";
  static constexpr std::string_view kErr = "errorstat_";
  static constexpr std::string_view kLat = "latency_percentiles_usec_";
  // Summed per label value: several odd names may all become "other".
  struct CommandTotals {
    double calls = 0;
    std::optional<double> usec, rejected, failed;
  };
  const auto addTo = [](std::optional<double>& to, std::optional<double> v) {
    if (v) to = to.value_or(0) + *v;
  };
  std::map<std::string, CommandTotals> commands;
  for (auto it = info.fields.lower_bound(kCmd);
       it != info.fields.end() && startsWith(it->first, kCmd); ++it) {
    const auto pairs = splitPairs(it->second);
    auto calls = toNumber(pairValue(pairs, "calls"));
    if (it->first.size() == kCmd.size() || !calls) continue;
    CommandTotals& t = commands[safeLabel(std::string_view(it->first).substr(kCmd.size()))];
    t.calls += *calls;
    addTo(t.usec, toNumber(pairValue(pairs, "usec")));
    addTo(t.rejected, toNumber(pairValue(pairs, "rejected_calls")));
    addTo(t.failed, toNumber(pairValue(pairs, "failed_calls")));
  }
  if (!commands.empty()) {
    out.describe("redis_commands_total", MetricType::kCounter, "Calls of the command.");
    out.describe("redis_commands_duration_seconds_total", MetricType::kCounter,
                 "Time spent executing the command.");
    out.describe("redis_commands_rejected_calls_total", MetricType::kCounter,
                 "Calls of the command rejected before execution (bad arity, ACL, OOM).");
    out.describe("redis_commands_failed_calls_total", MetricType::kCounter,
                 "Calls of the command that failed during execution.");
  }
  for (const auto& [cmd, t] : commands) {
    out.add("redis_commands_total", Labels{{"cmd", cmd}}, t.calls);
    if (t.usec)
      out.add("redis_commands_duration_seconds_total", Labels{{"cmd", cmd}}, *t.usec / 1e6);
    if (t.rejected)
      out.add("redis_commands_rejected_calls_total", Labels{{"cmd", cmd}}, *t.rejected);
    if (t.failed) out.add("redis_commands_failed_calls_total", Labels{{"cmd", cmd}}, *t.failed);
  }

  std::map<std::string, double> errors;
  for (auto it = info.fields.lower_bound(kErr);
       it != info.fields.end() && startsWith(it->first, kErr); ++it) {
    auto count = toNumber(pairValue(splitPairs(it->second), "count"));
    if (it->first.size() == kErr.size() || !count) continue;
    errors[safeLabel(std::string_view(it->first).substr(kErr.size()))] += *count;
  }
  if (!errors.empty()) {
    out.describe("redis_errors_total", MetricType::kCounter, "Error replies by error prefix.");
  }
  for (const auto& [err, count] : errors)
    out.add("redis_errors_total", Labels{{"err", err}}, count);

  bool described_lat = false;
  for (auto it = info.fields.lower_bound(kLat);
       it != info.fields.end() && startsWith(it->first, kLat); ++it) {
    // Percentiles cannot be summed: a command whose name is not a safe label is skipped.
    const std::string cmd(std::string_view(it->first).substr(kLat.size()));
    if (cmd.empty() || safeLabel(cmd) != cmd) continue;
    for (const auto& [p, value] : splitPairs(it->second)) {
      auto q = quantileLabel(p);
      auto v = toNumber(value);
      if (!q || !v) continue;
      if (!described_lat) {
        // Untyped: a summary needs _sum and _count, which INFO does not give.
        out.describe("redis_latency_percentiles_usec", MetricType::kUntyped,
                     "Latency percentiles of the command in microseconds, since the last "
                     "CONFIG RESETSTAT.");
        described_lat = true;
      }
      out.add("redis_latency_percentiles_usec", Labels{{"cmd", cmd}, {"quantile", *q}}, *v);
    }
  }
}

void replicaSamples(const RedisInfo& info, SampleBatch& out) {
  for (auto it = info.fields.lower_bound("slave");
       it != info.fields.end() && startsWith(it->first, "slave"); ++it) {
    if (!isNumbered(it->first, "slave")) continue;
    const auto pairs = splitPairs(it->second);
    Labels labels{{"slave_ip", safeLabel(pairValue(pairs, "ip"))},
                  {"slave_port", safeLabel(pairValue(pairs, "port"))},
                  {"slave_state", safeLabel(pairValue(pairs, "state"))}};
    if (auto offset = toNumber(pairValue(pairs, "offset"))) {
      out.gauge("redis_connected_slave_offset_bytes", "Replication offset of the replica.", labels,
                *offset);
    }
    if (auto lag = toNumber(pairValue(pairs, "lag"))) {
      out.gauge("redis_connected_slave_lag_seconds", "Seconds since the replica's last ack.",
                labels, *lag);
    }
  }
}

std::string commandName(const RedisReply& args) {
  if (args.type != RedisReply::Type::kArray || args.elements.empty() ||
      !args.elements[0].isText()) {
    return "unknown";
  }
  // Only the first argument, and only if it looks like a command name: anything else
  // would let a client's data leak into label values.
  std::string name;
  for (char c : args.elements[0].str) {
    if (name.size() >= 64) return "unknown";
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
                    c == '|' || c == '.';
    if (!ok) return "unknown";
    name += c;
  }
  return name.empty() ? "unknown" : name;
}

struct SlowEntry {
  int64_t id;
  double seconds;
  std::string command;
};

// Well-formed entries of a SLOWLOG GET reply: [id, unix time, duration usec, [args...], ...].
std::vector<SlowEntry> slowEntries(const RedisReply& entries) {
  std::vector<SlowEntry> out;
  if (entries.type != RedisReply::Type::kArray) return out;
  for (const auto& e : entries.elements) {
    if (e.type != RedisReply::Type::kArray || e.elements.size() < 4 ||
        e.elements[0].type != RedisReply::Type::kInteger ||
        e.elements[2].type != RedisReply::Type::kInteger) {
      continue;
    }
    out.push_back(SlowEntry{e.elements[0].integer, static_cast<double>(e.elements[2].integer) / 1e6,
                            commandName(e.elements[3])});
  }
  return out;
}

}  // namespace

std::string_view RedisInfo::get(std::string_view key) const {
  auto it = fields.find(key);
  return it == fields.end() ? std::string_view() : std::string_view(it->second);
}

std::optional<double> RedisInfo::number(std::string_view key) const {
  auto it = fields.find(key);
  if (it == fields.end()) return std::nullopt;
  return toNumber(it->second);
}

RedisInfo parseRedisInfo(std::string_view text) {
  RedisInfo info;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    const std::string_view key = line.substr(0, colon);
    if (key.find(' ') != std::string_view::npos) continue;
    info.fields.emplace(std::string(key), std::string(line.substr(colon + 1)));
  }
  return info;
}

void redisInfoToSamples(const RedisInfo& info, int databases, SampleBatch& out) {
  for (const auto& m : kFieldMetrics) {
    if (auto v = info.number(m.field)) emit(out, m.metric, m.kind, m.help, {}, *v * m.scale);
  }
  for (const auto& m : kStatusMetrics) {
    const std::string_view v = info.get(m.field);
    if (!v.empty()) out.gauge(m.metric, m.help, {}, v == m.good ? 1 : 0);
  }
  if (auto now_us = info.number("server_time_usec")) {
    if (auto up = info.number("uptime_in_seconds")) {
      out.gauge("redis_start_time_seconds", "Unix time at which the Redis server started.", {},
                std::floor(*now_us / 1e6 - *up));
    }
  }
  if (!info.get("redis_version").empty()) {
    out.gauge("redis_instance_info", "Facts about the Redis server in labels; always 1.",
              Labels{{"redis_version", info.get("redis_version")},
                     {"redis_build_id", info.get("redis_build_id")},
                     {"redis_mode", info.get("redis_mode")},
                     {"os", info.get("os")},
                     {"maxmemory_policy", info.get("maxmemory_policy")},
                     {"role", info.get("role")},
                     {"run_id", info.get("run_id")},
                     {"process_id", info.get("process_id")},
                     {"tcp_port", info.get("tcp_port")}},
              1);
  }
  keyspaceSamples(info, databases, out);
  commandSamples(info, out);
  replicaSamples(info, out);
}

std::optional<KeyspaceCounters> keyspaceCounters(const RedisInfo& info) {
  auto hits = info.number("keyspace_hits");
  auto misses = info.number("keyspace_misses");
  if (!hits || !misses) return std::nullopt;
  return KeyspaceCounters{std::string(info.get("run_id")), *hits, *misses};
}

double cacheHitRatio(const std::optional<KeyspaceCounters>& previous,
                     const KeyspaceCounters& current) {
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  if (!previous || previous->run_id != current.run_id) return kNaN;
  const double hits = current.hits - previous->hits;
  const double misses = current.misses - previous->misses;
  // Counters going backwards without a new run_id: CONFIG RESETSTAT.
  if (hits < 0 || misses < 0) return kNaN;
  if (hits + misses == 0) return kNaN;
  return hits / (hits + misses);
}

void summariseClientList(std::string_view text, size_t max_names, SampleBatch& out) {
  static constexpr const char* kAgeBuckets[] = {"0-1m", "1m-1h", "1h-1d", "1d+"};
  std::map<std::string, std::array<double, 4>> by_name;
  double pubsub = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string_view name, age_text, sub, psub;
    bool has_id = false;
    while (!line.empty()) {
      const size_t sp = line.find(' ');
      const std::string_view field = line.substr(0, sp);
      line.remove_prefix(sp == std::string_view::npos ? line.size() : sp + 1);
      const size_t eq = field.find('=');
      if (eq == std::string_view::npos) continue;
      const std::string_view k = field.substr(0, eq), v = field.substr(eq + 1);
      if (k == "id")
        has_id = true;
      else if (k == "name")
        name = v;
      else if (k == "age")
        age_text = v;
      else if (k == "sub")
        sub = v;
      else if (k == "psub")
        psub = v;
    }
    auto age = toNumber(age_text);
    if (!has_id || !age) continue;
    const int bucket = *age < 60 ? 0 : *age < 3600 ? 1 : *age < 86400 ? 2 : 3;
    auto& counts = by_name[name.empty() ? std::string("unnamed") : safeLabel(name)];
    counts[static_cast<size_t>(bucket)] += 1;
    if (toNumber(sub).value_or(0) > 0 || toNumber(psub).value_or(0) > 0) pubsub += 1;
  }

  // Keep the most common names; the rest (a client that sets unique names per
  // connection) fold into "other" so cardinality stays bounded.
  std::vector<std::pair<std::string, std::array<double, 4>>> names(by_name.begin(), by_name.end());
  auto total = [](const std::array<double, 4>& a) { return a[0] + a[1] + a[2] + a[3]; };
  std::stable_sort(names.begin(), names.end(),
                   [&](const auto& a, const auto& b) { return total(a.second) > total(b.second); });
  std::map<std::string, std::array<double, 4>> kept;
  for (size_t i = 0; i < names.size(); ++i) {
    auto& dst = kept[i < max_names ? names[i].first : std::string("other")];
    for (size_t b = 0; b < 4; ++b) dst[b] += names[i].second[b];
  }
  out.describe("dbpulse_redis_clients", MetricType::kGauge,
               "Redis client connections by client name and connection age (CLIENT LIST).");
  for (const auto& [name, counts] : kept) {
    for (size_t b = 0; b < 4; ++b) {
      if (counts[b] > 0)
        out.add("dbpulse_redis_clients", Labels{{"name", name}, {"age", kAgeBuckets[b]}},
                counts[b]);
    }
  }
  out.gauge("dbpulse_redis_pubsub_clients",
            "Redis client connections subscribed to at least one channel or pattern.", {}, pubsub);
}

void foldSlowlog(const RedisReply& entries, bool restarted, size_t max_commands,
                 SlowlogState& state) {
  const std::vector<SlowEntry> list = slowEntries(entries);
  int64_t newest = -1;
  for (const auto& e : list) newest = std::max(newest, e.id);
  if (!state.last_id && !restarted) {
    state.last_id = newest;  // baseline: -1 when the log is empty
    return;
  }
  const int64_t after = restarted ? -1 : *state.last_id;
  int64_t counted = 0;
  for (const auto& e : list) {
    if (e.id <= after) continue;
    ++counted;
    std::string key = e.command;
    if (!state.by_command.count(key) && state.by_command.size() >= max_commands) key = "other";
    auto& t = state.by_command[key];
    t.count += 1;
    t.seconds += e.seconds;
  }
  if (newest > after) {
    // Ids are consecutive: entries between `after` and the oldest one returned were
    // trimmed (slowlog-max-len) or not fetched before this run could read them.
    const int64_t logged = newest - after;
    if (logged > counted) state.unseen += static_cast<double>(logged - counted);
  }
  state.last_id = std::max(after, newest);
}

void slowlogToSamples(const SlowlogState& state, SampleBatch& out) {
  out.describe("dbpulse_redis_slowlog_entries_total", MetricType::kCounter,
               "Slow log entries seen since dbpulse started, by command name.");
  out.describe("dbpulse_redis_slowlog_duration_seconds_total", MetricType::kCounter,
               "Execution time of the slow log entries seen since dbpulse started.");
  for (const auto& [cmd, t] : state.by_command) {
    out.add("dbpulse_redis_slowlog_entries_total", Labels{{"cmd", cmd}}, t.count);
    out.add("dbpulse_redis_slowlog_duration_seconds_total", Labels{{"cmd", cmd}}, t.seconds);
  }
  out.counter("dbpulse_redis_slowlog_unseen_entries_total",
              "Slow log entries trimmed from Redis's slow log before dbpulse could read them "
              "(raise slowlog-max-len or shorten the interval).",
              {}, state.unseen);
}

std::optional<int64_t> newestSlowlogId(const RedisReply& entries) {
  std::optional<int64_t> newest;
  for (const auto& e : slowEntries(entries)) newest = std::max(newest.value_or(e.id), e.id);
  return newest;
}

void newestSlowlogToSamples(const RedisReply& entries, SampleBatch& out) {
  const std::vector<SlowEntry> list = slowEntries(entries);
  if (list.empty()) return;
  const auto newest = std::max_element(list.begin(), list.end(),
                                       [](const auto& a, const auto& b) { return a.id < b.id; });
  out.gauge("redis_slowlog_last_id", "Id of the newest slow log entry.", {},
            static_cast<double>(newest->id));
  out.gauge("redis_last_slow_execution_duration_seconds",
            "Execution time of the newest slow log entry.", {}, newest->seconds);
}

void latencyLatestToSamples(const RedisReply& reply, SampleBatch& out) {
  if (reply.type != RedisReply::Type::kArray) return;
  bool described = false;
  for (const RedisReply& e : reply.elements) {
    // [event name, time of the latest spike, its latency in ms, the all-time max in ms]
    if (e.type != RedisReply::Type::kArray || e.elements.size() < 3 || !e.elements[0].isText() ||
        e.elements[1].type != RedisReply::Type::kInteger ||
        e.elements[2].type != RedisReply::Type::kInteger) {
      continue;
    }
    if (!described) {
      out.describe("redis_latency_spike_last", MetricType::kGauge,
                   "Unix time of the latest latency spike of the event.");
      out.describe("redis_latency_spike_duration_seconds", MetricType::kGauge,
                   "Duration of the latest latency spike of the event.");
      described = true;
    }
    const Labels labels{{"event_name", safeLabel(e.elements[0].str)}};
    out.add("redis_latency_spike_last", labels, static_cast<double>(e.elements[1].integer));
    out.add("redis_latency_spike_duration_seconds", labels,
            static_cast<double>(e.elements[2].integer) / 1000.0);
  }
}

}  // namespace dbpulse::collectors
