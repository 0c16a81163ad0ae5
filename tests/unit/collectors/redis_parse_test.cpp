#include "collectors/redis/redis_parse.h"

#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

namespace dbpulse::collectors {
namespace {

// The value of name{labels} in the batch, or nullopt.
std::optional<double> valueOf(const SampleBatch& b, const std::string& name,
                              const Labels& labels = {}) {
  for (const auto& s : b.samples()) {
    if (s.name == name && s.labels == labels) return s.value;
  }
  return std::nullopt;
}

size_t countOf(const SampleBatch& b, const std::string& name) {
  size_t n = 0;
  for (const auto& s : b.samples()) n += s.name == name ? 1 : 0;
  return n;
}

std::optional<MetricType> typeOf(const SampleBatch& b, const std::string& name) {
  auto it = b.families().find(name);
  if (it == b.families().end()) return std::nullopt;
  return it->second.type;
}

// A trimmed `INFO all` of Redis 7.0 as sent on the wire (\r\n line ends).
const char* const kInfo7 =
    "# Server\r\n"
    "redis_version:7.0.15\r\n"
    "redis_build_id:ae4d7c971a948f0\r\n"
    "redis_mode:standalone\r\n"
    "os:Linux 6.1.0 x86_64\r\n"
    "process_id:4242\r\n"
    "run_id:fe1d8251296544da2e939e1aee4cec4afd6b91fe\r\n"
    "tcp_port:6379\r\n"
    "server_time_usec:1700000100500000\r\n"
    "uptime_in_seconds:100\r\n"
    "executable:/usr/bin/redis-server\r\n"
    "config_file:\r\n"
    "\r\n"
    "# Clients\r\n"
    "connected_clients:7\r\n"
    "maxclients:10000\r\n"
    "blocked_clients:2\r\n"
    "\r\n"
    "# Memory\r\n"
    "used_memory:965776\r\n"
    "used_memory_human:943.14K\r\n"
    "maxmemory:268435456\r\n"
    "maxmemory_policy:allkeys-lru\r\n"
    "mem_fragmentation_ratio:1.25\r\n"
    "\r\n"
    "# Persistence\r\n"
    "rdb_last_bgsave_status:ok\r\n"
    "aof_last_write_status:err\r\n"
    "rdb_last_bgsave_time_sec:-1\r\n"
    "\r\n"
    "# Stats\r\n"
    "total_commands_processed:1234\r\n"
    "rejected_connections:3\r\n"
    "expired_keys:11\r\n"
    "evicted_keys:5\r\n"
    "keyspace_hits:300\r\n"
    "keyspace_misses:100\r\n"
    "pubsub_channels:4\r\n"
    "pubsub_patterns:1\r\n"
    "latest_fork_usec:2500\r\n"
    "total_error_replies:9\r\n"
    "expired_time_cap_reached_count:0\r\n"
    "\r\n"
    "# Replication\r\n"
    "role:master\r\n"
    "connected_slaves:1\r\n"
    "slave0:ip=10.0.0.2,port=6380,state=online,offset=5000,lag=1\r\n"
    "\r\n"
    "# CPU\r\n"
    "used_cpu_sys:1.500000\r\n"
    "\r\n"
    "# Commandstats\r\n"
    "cmdstat_get:calls=30,usec=150,usec_per_call=5.00,rejected_calls=1,failed_calls=2\r\n"
    "cmdstat_config|get:calls=2,usec=20,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n"
    "\r\n"
    "# Errorstats\r\n"
    "errorstat_ERR:count=4\r\n"
    "errorstat_WRONGTYPE:count=1\r\n"
    "\r\n"
    "# Latencystats\r\n"
    "latency_percentiles_usec_get:p50=4.015,p99=5.023,p99.9=12.031\r\n"
    "\r\n"
    "# Keyspace\r\n"
    "db0:keys=40,expires=10,avg_ttl=5000\r\n"
    "db3:keys=2,expires=0,avg_ttl=0\r\n";

TEST(RedisInfoParseTest, SplitsFieldsAcrossSections) {
  const RedisInfo info = parseRedisInfo(kInfo7);
  EXPECT_EQ(info.get("redis_version"), "7.0.15");
  EXPECT_EQ(info.get("os"), "Linux 6.1.0 x86_64");
  EXPECT_EQ(info.get("executable"), "/usr/bin/redis-server");
  EXPECT_EQ(info.get("config_file"), "");
  EXPECT_TRUE(info.fields.count("config_file"));
  EXPECT_EQ(info.number("connected_clients"), 7);
  EXPECT_EQ(info.number("used_memory_human"), std::nullopt);  // "943.14K" is not a number
  EXPECT_EQ(info.number("no_such_field"), std::nullopt);
  EXPECT_FALSE(info.fields.count("# Server"));
}

struct InfoLineCase {
  const char* name;
  std::string text;
  const char* key;
  std::optional<std::string> value;  // nullopt: the key must be absent
};

TEST(RedisInfoParseTest, HandlesOddLines) {
  const InfoLineCase cases[] = {
      {"unix line ends", "a:1\nb:2\n", "b", "2"},
      {"no newline at end", "a:1\r\nb:2", "b", "2"},
      {"value containing colons", "executable:C:/redis:x\r\n", "executable", "C:/redis:x"},
      {"empty value", "config_file:\r\n", "config_file", ""},
      {"line without colon is skipped", "garbage line\r\nb:2\r\n", "garbage line", std::nullopt},
      {"leading colon is skipped", ":5\r\n", "", std::nullopt},
      {"comment that looks like a field", "#x:1\r\n", "#x", std::nullopt},
      {"key with a space is skipped", "a b:1\r\n", "a b", std::nullopt},
      {"first occurrence wins", "a:1\r\na:2\r\n", "a", "1"},
      {"lone carriage return is kept in the value", "a:1\r\r\n", "a", "1\r"},
      {"blank lines only", "\r\n\r\n\n", "a", std::nullopt},
      {"empty input", "", "a", std::nullopt},
      {"NUL inside a value", std::string("a:x\0y\r\n", 7), "a", std::string("x\0y", 3)},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const RedisInfo info = parseRedisInfo(c.text);
    auto it = info.fields.find(c.key);
    if (!c.value) {
      EXPECT_EQ(it, info.fields.end());
    } else {
      ASSERT_NE(it, info.fields.end());
      EXPECT_EQ(it->second, *c.value);
    }
  }
}

TEST(RedisInfoToSamplesTest, UsesRedisExporterNamesAndTypes) {
  SampleBatch b;
  redisInfoToSamples(parseRedisInfo(kInfo7), 0, b);
  struct Expect {
    const char* name;
    double value;
    MetricType type;
  };
  const Expect expects[] = {
      {"redis_connected_clients", 7, MetricType::kGauge},
      {"redis_blocked_clients", 2, MetricType::kGauge},
      {"redis_config_maxclients", 10000, MetricType::kGauge},
      {"redis_memory_used_bytes", 965776, MetricType::kGauge},
      {"redis_memory_max_bytes", 268435456, MetricType::kGauge},
      {"redis_mem_fragmentation_ratio", 1.25, MetricType::kGauge},
      {"redis_keyspace_hits_total", 300, MetricType::kCounter},
      {"redis_keyspace_misses_total", 100, MetricType::kCounter},
      {"redis_evicted_keys_total", 5, MetricType::kCounter},
      {"redis_expired_keys_total", 11, MetricType::kCounter},
      {"redis_rejected_connections_total", 3, MetricType::kCounter},
      {"redis_commands_processed_total", 1234, MetricType::kCounter},
      {"redis_connected_slaves", 1, MetricType::kGauge},
      {"redis_pubsub_channels", 4, MetricType::kGauge},
      {"redis_pubsub_patterns", 1, MetricType::kGauge},
      {"redis_latest_fork_seconds", 0.0025, MetricType::kGauge},
      {"redis_cpu_sys_seconds_total", 1.5, MetricType::kCounter},
      {"redis_uptime_in_seconds", 100, MetricType::kGauge},
      {"redis_start_time_seconds", 1700000000, MetricType::kGauge},
      {"redis_rdb_last_bgsave_status", 1, MetricType::kGauge},
      {"redis_aof_last_write_status", 0, MetricType::kGauge},
      {"dbpulse_redis_rdb_last_bgsave_duration_seconds", -1, MetricType::kGauge},
      {"redis_rdb_last_bgsave_duration_sec", -1, MetricType::kGauge},
      // redis_exporter's types, also where its names break promtool's lint rules.
      {"redis_total_error_replies", 9, MetricType::kCounter},
      {"redis_expired_time_cap_reached_total", 0, MetricType::kGauge},
  };
  for (const auto& e : expects) {
    SCOPED_TRACE(e.name);
    auto v = valueOf(b, e.name);
    ASSERT_TRUE(v.has_value());
    EXPECT_DOUBLE_EQ(*v, e.value);
    EXPECT_EQ(typeOf(b, e.name), e.type);
  }
  // Human-readable duplicates and unmapped fields produce nothing.
  EXPECT_EQ(countOf(b, "redis_used_memory_human"), 0u);
  for (const auto& [name, info] : b.families()) {
    EXPECT_FALSE(info.help.empty()) << name;
    EXPECT_TRUE(name.rfind("redis_", 0) == 0 || name.rfind("dbpulse_redis_", 0) == 0) << name;
  }
}

TEST(RedisInfoToSamplesTest, ReportsInstanceInfoLabels) {
  SampleBatch b;
  redisInfoToSamples(parseRedisInfo(kInfo7), 0, b);
  ASSERT_EQ(countOf(b, "redis_instance_info"), 1u);
  const Sample* s = nullptr;
  for (const auto& x : b.samples()) {
    if (x.name == "redis_instance_info") s = &x;
  }
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->value, 1);
  EXPECT_EQ(s->labels.get("redis_version"), "7.0.15");
  EXPECT_EQ(s->labels.get("role"), "master");
  EXPECT_EQ(s->labels.get("maxmemory_policy"), "allkeys-lru");
  EXPECT_EQ(s->labels.get("run_id"), "fe1d8251296544da2e939e1aee4cec4afd6b91fe");
}

TEST(RedisInfoToSamplesTest, PerDatabaseKeysWithOptionalZeroFill) {
  SampleBatch listed;
  redisInfoToSamples(parseRedisInfo(kInfo7), 0, listed);
  EXPECT_EQ(valueOf(listed, "redis_db_keys", {{"db", "db0"}}), 40);
  EXPECT_EQ(valueOf(listed, "redis_db_keys_expiring", {{"db", "db0"}}), 10);
  EXPECT_EQ(valueOf(listed, "redis_db_avg_ttl_seconds", {{"db", "db0"}}), 5);
  EXPECT_EQ(valueOf(listed, "redis_db_keys", {{"db", "db3"}}), 2);
  EXPECT_EQ(countOf(listed, "redis_db_keys"), 2u);

  SampleBatch filled;
  redisInfoToSamples(parseRedisInfo(kInfo7), 16, filled);
  EXPECT_EQ(countOf(filled, "redis_db_keys"), 16u);
  EXPECT_EQ(valueOf(filled, "redis_db_keys", {{"db", "db1"}}), 0);
  EXPECT_EQ(valueOf(filled, "redis_db_keys", {{"db", "db3"}}), 2);
  EXPECT_EQ(countOf(filled, "redis_db_keys_expiring"), 16u);
}

TEST(RedisInfoToSamplesTest, PerCommandErrorAndLatencySeries) {
  SampleBatch b;
  redisInfoToSamples(parseRedisInfo(kInfo7), 0, b);
  EXPECT_EQ(valueOf(b, "redis_commands_total", {{"cmd", "get"}}), 30);
  EXPECT_DOUBLE_EQ(*valueOf(b, "redis_commands_duration_seconds_total", {{"cmd", "get"}}), 150e-6);
  EXPECT_EQ(valueOf(b, "redis_commands_rejected_calls_total", {{"cmd", "get"}}), 1);
  EXPECT_EQ(valueOf(b, "redis_commands_failed_calls_total", {{"cmd", "get"}}), 2);
  EXPECT_EQ(valueOf(b, "redis_commands_total", {{"cmd", "config|get"}}), 2);
  EXPECT_EQ(typeOf(b, "redis_commands_total"), MetricType::kCounter);
  EXPECT_EQ(valueOf(b, "redis_errors_total", {{"err", "ERR"}}), 4);
  EXPECT_EQ(valueOf(b, "redis_errors_total", {{"err", "WRONGTYPE"}}), 1);
  EXPECT_EQ(valueOf(b, "redis_latency_percentiles_usec", {{"cmd", "get"}, {"quantile", "0.5"}}),
            4.015);
  EXPECT_EQ(valueOf(b, "redis_latency_percentiles_usec", {{"cmd", "get"}, {"quantile", "0.999"}}),
            12.031);
  EXPECT_EQ(valueOf(b, "redis_connected_slave_lag_seconds",
                    {{"slave_ip", "10.0.0.2"}, {"slave_port", "6380"}, {"slave_state", "online"}}),
            1);
}

TEST(RedisInfoToSamplesTest, MalformedStatLinesAreSkipped) {
  const char* text =
      "cmdstat_:calls=1,usec=1\r\n"                          // no command name
      "cmdstat_get:usec=5\r\n"                               // no calls
      "cmdstat_set:calls=x,usec=5\r\n"                       // calls not a number
      "cmdstat_del:calls=3\r\n"                              // usec missing: calls still reported
      "errorstat_ERR:count=\r\n"                             // empty count
      "dbx:keys=1\r\n"                                       // not db<N>
      "db1:expires=3\r\n"                                    // no keys
      "db2:keys=5,,=,expires\r\n"                            // junk pairs around a good one
      "latency_percentiles_usec_get:p50=a,q99=1,p999=2\r\n"  // all bad
      "slave0:ip=1.2.3.4\r\n"                                // no offset/lag
      "used_memory:12abc\r\n";                               // trailing junk
  SampleBatch b;
  redisInfoToSamples(parseRedisInfo(text), 0, b);
  EXPECT_EQ(countOf(b, "redis_commands_total"), 1u);
  EXPECT_EQ(valueOf(b, "redis_commands_total", {{"cmd", "del"}}), 3);
  EXPECT_EQ(countOf(b, "redis_commands_duration_seconds_total"), 0u);
  EXPECT_EQ(countOf(b, "redis_errors_total"), 0u);
  EXPECT_EQ(countOf(b, "redis_db_keys"), 1u);
  EXPECT_EQ(valueOf(b, "redis_db_keys", {{"db", "db2"}}), 5);
  EXPECT_EQ(countOf(b, "redis_latency_percentiles_usec"), 0u);
  EXPECT_EQ(countOf(b, "redis_connected_slave_lag_seconds"), 0u);
  EXPECT_EQ(countOf(b, "redis_memory_used_bytes"), 0u);
  EXPECT_EQ(countOf(b, "redis_instance_info"), 0u);  // no redis_version
}

TEST(RedisInfoToSamplesTest, ServerChosenLabelValuesAreKeptPrintable) {
  // An error prefix comes from any script's redis.error_reply(): bytes that are not
  // printable ASCII, or a very long prefix, are reported as err="other".
  // Both odd prefixes become "other", summed into one series.
  const std::string text =
      "errorstat_\xff\xfe"
      "BAD:count=2\r\n"
      "errorstat_" +
      std::string(100, 'E') +
      ":count=3\r\n"
      "errorstat_MYERR:count=1\r\n"
      "latency_percentiles_usec_\xff:p50=1\r\n";
  SampleBatch b;
  redisInfoToSamples(parseRedisInfo(text), 0, b);
  EXPECT_EQ(valueOf(b, "redis_errors_total", {{"err", "MYERR"}}), 1);
  EXPECT_EQ(valueOf(b, "redis_errors_total", {{"err", "other"}}), 5);
  EXPECT_EQ(countOf(b, "redis_errors_total"), 2u);
  EXPECT_EQ(countOf(b, "redis_latency_percentiles_usec"), 0u);
  for (const auto& s : b.samples()) {
    for (const auto& l : s.labels.items()) {
      EXPECT_LE(l.value.size(), 64u);
      for (char c : l.value) EXPECT_TRUE(c >= ' ' && c <= '~') << s.name;
    }
  }
}

TEST(RedisInfoToSamplesTest, OlderRedisWithoutNewFieldsReportsWhatItHas) {
  // Redis 5: no server_time_usec, no errorstats/latencystats, cmdstat without
  // rejected/failed calls.
  const char* text =
      "# Server\r\nredis_version:5.0.14\r\nuptime_in_seconds:9\r\n"
      "# Stats\r\nkeyspace_hits:1\r\nkeyspace_misses:0\r\n"
      "# Commandstats\r\ncmdstat_get:calls=1,usec=3,usec_per_call=3.00\r\n";
  SampleBatch b;
  redisInfoToSamples(parseRedisInfo(text), 0, b);
  EXPECT_EQ(valueOf(b, "redis_uptime_in_seconds"), 9);
  EXPECT_EQ(countOf(b, "redis_start_time_seconds"), 0u);
  EXPECT_EQ(valueOf(b, "redis_commands_total", {{"cmd", "get"}}), 1);
  EXPECT_EQ(countOf(b, "redis_commands_rejected_calls_total"), 0u);
}

// ---- hit ratio -----------------------------------------------------------------------

TEST(CacheHitRatioTest, DeltasBetweenRuns) {
  struct Case {
    const char* name;
    std::optional<KeyspaceCounters> previous;
    KeyspaceCounters current;
    double expect;  // NaN = undefined
  };
  const double nan = std::nan("");
  const Case cases[] = {
      {"first run", std::nullopt, {"r1", 300, 100}, nan},
      {"30 hits 10 misses", KeyspaceCounters{"r1", 300, 100}, {"r1", 330, 110}, 0.75},
      {"only hits", KeyspaceCounters{"r1", 0, 0}, {"r1", 5, 0}, 1.0},
      {"only misses", KeyspaceCounters{"r1", 0, 0}, {"r1", 0, 5}, 0.0},
      {"no lookups between runs", KeyspaceCounters{"r1", 300, 100}, {"r1", 300, 100}, nan},
      {"restart (new run_id)", KeyspaceCounters{"r1", 300, 100}, {"r2", 310, 100}, nan},
      {"CONFIG RESETSTAT (counters back)", KeyspaceCounters{"r1", 300, 100}, {"r1", 3, 1}, nan},
      {"lifetime ratio is ignored", KeyspaceCounters{"r1", 1000, 0}, {"r1", 1000, 10}, 0.0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const double got = cacheHitRatio(c.previous, c.current);
    if (std::isnan(c.expect)) {
      EXPECT_TRUE(std::isnan(got)) << got;
    } else {
      EXPECT_DOUBLE_EQ(got, c.expect);
    }
  }
}

TEST(CacheHitRatioTest, CountersComeFromInfo) {
  auto k = keyspaceCounters(parseRedisInfo(kInfo7));
  ASSERT_TRUE(k.has_value());
  EXPECT_EQ(k->hits, 300);
  EXPECT_EQ(k->misses, 100);
  EXPECT_EQ(k->run_id, "fe1d8251296544da2e939e1aee4cec4afd6b91fe");
  EXPECT_FALSE(keyspaceCounters(parseRedisInfo("keyspace_hits:1\r\n")).has_value());
}

// ---- CLIENT LIST ---------------------------------------------------------------------

std::string client(int id, const std::string& name, int age, int sub = 0, int psub = 0) {
  return "id=" + std::to_string(id) + " addr=127.0.0.1:5" + std::to_string(id) +
         " laddr=127.0.0.1:6379 fd=8 name=" + name + " age=" + std::to_string(age) +
         " idle=0 flags=N db=0 sub=" + std::to_string(sub) + " psub=" + std::to_string(psub) +
         " ssub=0 multi=-1 qbuf=0 cmd=client|list user=default resp=2\n";
}

TEST(ClientListTest, CountsByNameAndAgeBucket) {
  const std::string text = client(1, "chat-api", 5) + client(2, "chat-api", 59) +
                           client(3, "chat-api", 60) + client(4, "chat-pubsub", 4000, 2) +
                           client(5, "", 90000, 0, 1) + client(6, "dbpulse", 0);
  SampleBatch b;
  summariseClientList(text, 20, b);
  EXPECT_EQ(valueOf(b, "dbpulse_redis_clients", {{"name", "chat-api"}, {"age", "0-1m"}}), 2);
  EXPECT_EQ(valueOf(b, "dbpulse_redis_clients", {{"name", "chat-api"}, {"age", "1m-1h"}}), 1);
  EXPECT_EQ(valueOf(b, "dbpulse_redis_clients", {{"name", "chat-pubsub"}, {"age", "1h-1d"}}), 1);
  EXPECT_EQ(valueOf(b, "dbpulse_redis_clients", {{"name", "unnamed"}, {"age", "1d+"}}), 1);
  EXPECT_EQ(valueOf(b, "dbpulse_redis_clients", {{"name", "dbpulse"}, {"age", "0-1m"}}), 1);
  // Empty buckets are not reported.
  EXPECT_EQ(valueOf(b, "dbpulse_redis_clients", {{"name", "chat-api"}, {"age", "1d+"}}),
            std::nullopt);
  EXPECT_EQ(valueOf(b, "dbpulse_redis_pubsub_clients"), 2);
}

TEST(ClientListTest, RareNamesFoldIntoOther) {
  std::string text;
  for (int i = 0; i < 5; ++i) text += client(i, "pool", 1);
  for (int i = 0; i < 3; ++i) text += client(10 + i, "worker", 1);
  for (int i = 0; i < 50; ++i) text += client(100 + i, "uniq" + std::to_string(i), 1);
  SampleBatch b;
  summariseClientList(text, 2, b);
  EXPECT_EQ(valueOf(b, "dbpulse_redis_clients", {{"name", "pool"}, {"age", "0-1m"}}), 5);
  EXPECT_EQ(valueOf(b, "dbpulse_redis_clients", {{"name", "worker"}, {"age", "0-1m"}}), 3);
  EXPECT_EQ(valueOf(b, "dbpulse_redis_clients", {{"name", "other"}, {"age", "0-1m"}}), 50);
  EXPECT_EQ(countOf(b, "dbpulse_redis_clients"), 3u);
}

TEST(ClientListTest, OverlongClientNamesFoldIntoOther) {
  SampleBatch b;
  summariseClientList(client(1, std::string(200, 'n'), 1), 20, b);
  EXPECT_EQ(valueOf(b, "dbpulse_redis_clients", {{"name", "other"}, {"age", "0-1m"}}), 1);
}

TEST(ClientListTest, MalformedLinesAreSkipped) {
  const std::string text = "garbage\n" + std::string("id=1 name=x age=notanumber\n") +
                           "name=noid age=5\n" + "\r\n" + client(7, "ok", 3);
  SampleBatch b;
  summariseClientList(text, 20, b);
  EXPECT_EQ(countOf(b, "dbpulse_redis_clients"), 1u);
  EXPECT_EQ(valueOf(b, "dbpulse_redis_clients", {{"name", "ok"}, {"age", "0-1m"}}), 1);
  EXPECT_EQ(valueOf(b, "dbpulse_redis_pubsub_clients"), 0);
}

// ---- SLOWLOG -------------------------------------------------------------------------

RedisReply entry(int64_t id, int64_t usec, std::vector<std::string> args) {
  std::vector<RedisReply> a;
  for (auto& s : args) a.push_back(RedisReply::string(std::move(s)));
  return RedisReply::array({RedisReply::integerReply(id), RedisReply::integerReply(1700000000),
                            RedisReply::integerReply(usec), RedisReply::array(std::move(a)),
                            RedisReply::string("127.0.0.1:5555"), RedisReply::string("")});
}

// SLOWLOG GET returns the newest first.
RedisReply slowlog(std::vector<RedisReply> entries) {
  return RedisReply::array(std::move(entries));
}

TEST(SlowlogTest, FirstRunOnlySetsTheBaseline) {
  SlowlogState st;
  foldSlowlog(slowlog({entry(7, 20000, {"KEYS", "*"})}), false, 50, st);
  EXPECT_EQ(st.last_id, 7);
  EXPECT_TRUE(st.by_command.empty());
  EXPECT_EQ(st.unseen, 0);

  SlowlogState empty;
  foldSlowlog(slowlog({}), false, 50, empty);
  EXPECT_EQ(empty.last_id, -1);
}

TEST(SlowlogTest, CountsOnlyNewEntriesByCommandName) {
  SlowlogState st;
  st.last_id = 7;
  foldSlowlog(slowlog({entry(10, 3000, {"get", "user:secret-token"}), entry(9, 1000, {"GET", "k"}),
                       entry(8, 500000, {"KEYS", "session:*"}), entry(7, 999, {"get", "old"})}),
              false, 50, st);
  EXPECT_EQ(st.last_id, 10);
  ASSERT_EQ(st.by_command.size(), 2u);
  EXPECT_EQ(st.by_command.at("get").count, 2);
  EXPECT_DOUBLE_EQ(st.by_command.at("get").seconds, 0.004);
  EXPECT_EQ(st.by_command.at("keys").count, 1);
  EXPECT_EQ(st.unseen, 0);

  // Nothing new: nothing changes.
  foldSlowlog(slowlog({entry(10, 3000, {"get", "x"})}), false, 50, st);
  EXPECT_EQ(st.by_command.at("get").count, 2);

  SampleBatch b;
  slowlogToSamples(st, b);
  for (const auto& s : b.samples()) {
    for (const auto& l : s.labels.items()) {
      EXPECT_EQ(l.value.find("secret"), std::string::npos) << "an argument leaked into a label";
      EXPECT_EQ(l.value.find("session"), std::string::npos);
    }
  }
  EXPECT_EQ(valueOf(b, "dbpulse_redis_slowlog_entries_total", {{"cmd", "get"}}), 2);
  EXPECT_EQ(valueOf(b, "dbpulse_redis_slowlog_entries_total", {{"cmd", "keys"}}), 1);
  EXPECT_DOUBLE_EQ(*valueOf(b, "dbpulse_redis_slowlog_duration_seconds_total", {{"cmd", "keys"}}),
                   0.5);
  EXPECT_EQ(valueOf(b, "dbpulse_redis_slowlog_unseen_entries_total"), 0);
}

TEST(SlowlogTest, GapsCountAsUnseenAndRestartCountsEverything) {
  SlowlogState st;
  st.last_id = 10;
  // 20 entries logged since (11..30), only the newest 2 returned.
  foldSlowlog(slowlog({entry(30, 10, {"hgetall", "h"}), entry(29, 10, {"hgetall", "h"})}), false,
              50, st);
  EXPECT_EQ(st.by_command.at("hgetall").count, 2);
  EXPECT_EQ(st.unseen, 18);
  EXPECT_EQ(st.last_id, 30);

  // Redis restarted: ids start again at 0, every entry is new.
  foldSlowlog(slowlog({entry(1, 10, {"del", "a"}), entry(0, 10, {"del", "b"})}), true, 50, st);
  EXPECT_EQ(st.by_command.at("del").count, 2);
  EXPECT_EQ(st.last_id, 1);
  EXPECT_EQ(st.unseen, 18);
}

TEST(SlowlogTest, SuspiciousCommandNamesAndShapesAreContained) {
  SlowlogState st;
  st.last_id = -1;
  foldSlowlog(slowlog({entry(0, 1, {"get key with spaces"}), entry(1, 1, {}),
                       entry(2, 1, {std::string(200, 'a')}), entry(3, 1, {"client|list"}),
                       RedisReply::string("not an entry"),
                       RedisReply::array({RedisReply::string("1"), RedisReply::integerReply(2)})}),
              false, 50, st);
  EXPECT_EQ(st.by_command.at("unknown").count, 3);
  EXPECT_EQ(st.by_command.at("client|list").count, 1);
  EXPECT_EQ(st.by_command.size(), 2u);
}

TEST(SlowlogTest, DistinctCommandsAreCapped) {
  SlowlogState st;
  st.last_id = -1;
  std::vector<RedisReply> list;
  for (int i = 0; i < 10; ++i) list.push_back(entry(i, 1, {"cmd" + std::to_string(i)}));
  foldSlowlog(slowlog(std::move(list)), false, 4, st);
  EXPECT_EQ(st.by_command.size(), 5u);  // 4 names + other
  EXPECT_EQ(st.by_command.at("other").count, 6);
}

TEST(SlowlogTest, NewestEntryFigures) {
  const RedisReply r = slowlog({entry(12, 250000, {"keys", "*"}), entry(11, 1, {"get", "a"})});
  EXPECT_EQ(newestSlowlogId(r), 12);
  SampleBatch b;
  newestSlowlogToSamples(r, b);
  EXPECT_EQ(valueOf(b, "redis_slowlog_last_id"), 12);
  EXPECT_DOUBLE_EQ(*valueOf(b, "redis_last_slow_execution_duration_seconds"), 0.25);

  SampleBatch none;
  newestSlowlogToSamples(slowlog({}), none);
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(newestSlowlogId(RedisReply::error("ERR")), std::nullopt);
}

TEST(RedisLatencyTest, LatestSpikesUnderRedisExporterNames) {
  const RedisReply reply = RedisReply::array({
      RedisReply::array({RedisReply::string("command"), RedisReply::integerReply(1700000000),
                         RedisReply::integerReply(250), RedisReply::integerReply(900)}),
      RedisReply::array({RedisReply::string("fork")}),  // malformed: skipped
      RedisReply::string("junk"),
  });
  SampleBatch b;
  latencyLatestToSamples(reply, b);
  EXPECT_EQ(valueOf(b, "redis_latency_spike_last", {{"event_name", "command"}}), 1700000000);
  EXPECT_DOUBLE_EQ(*valueOf(b, "redis_latency_spike_duration_seconds", {{"event_name", "command"}}),
                   0.25);
  EXPECT_EQ(countOf(b, "redis_latency_spike_last"), 1u);
  EXPECT_EQ(typeOf(b, "redis_latency_spike_last"), MetricType::kGauge);

  SampleBatch none;
  latencyLatestToSamples(RedisReply::array({}), none);
  EXPECT_TRUE(none.empty());
}

}  // namespace
}  // namespace dbpulse::collectors
