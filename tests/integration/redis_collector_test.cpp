// The redis collector against a real redis-server: through the dbpulse binary's /metrics
// (series, hit ratio, restart recovery, AUTH) and in-process through RedisCollector /
// RedisSession (reconnects without leaking sockets, slow log, client summary).

#include "collectors/redis/redis_collector.h"

#include <dirent.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "collectors/catalog.h"
#include "collectors/clients/redis/redis_session.h"
#include "integration/harness/harness.h"

namespace dbpulse::testing {
namespace {

using namespace std::chrono_literals;
using collectors::RedisCollector;
using collectors::RedisCollectorOptions;
using collectors::RedisReply;
using collectors::RedisSession;
using collectors::RedisSessionOptions;

constexpr auto kStartup = 15s;
constexpr auto kSeries = 15s;

// dbpulse with only the redis collector, every `interval`, against `address`. `redis_extra`
// goes into the [redis] section (e.g. password_file).
std::string configFor(const DbpulseProcess& agent, const std::string& address,
                      const std::string& redis_extra = "", const std::string& interval = "300ms") {
  std::string c = "[agent]\nlisten = \"" + agent.listenAddress() + "\"\nstate_dir = \"" +
                  agent.stateDir().string() + "\"\nlog_format = \"text\"\n\n[redis]\naddress = \"" +
                  address + "\"\n" + redis_extra + "\n";
  for (const auto& entry : collectors::catalog()) {
    if (entry.name == "redis") {
      c += "[collectors.redis]\ninterval = \"" + interval + "\"\ntimeout = \"250ms\"\n";
    } else {
      c += "[collectors." + entry.name + "]\nenabled = false\n";
    }
  }
  return c;
}

bool near(std::optional<double> v, double expected) {
  return v.has_value() && std::fabs(*v - expected) < 1e-9;
}

int openFds() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  while (::readdir(d) != nullptr) ++n;
  ::closedir(d);
  return n;
}

collectors::CollectContext contextFor(std::chrono::milliseconds timeout = 2000ms) {
  return collectors::CollectContext{
      std::chrono::system_clock::now(), std::chrono::steady_clock::now() + timeout, {}};
}

RedisSessionOptions sessionTo(const RedisServer& redis,
                              const std::string& client_name = "dbpulse") {
  RedisSessionOptions o;
  o.host = "127.0.0.1";
  o.port = redis.port();
  o.connect_timeout = 1000ms;
  o.command_timeout = 1000ms;
  o.client_name = client_name;
  return o;
}

std::optional<double> batchValue(const SampleBatch& b, const std::string& name,
                                 const Labels& labels = {}) {
  for (const auto& s : b.samples()) {
    if (s.name == name && s.labels == labels) return s.value;
  }
  return std::nullopt;
}

// The number in the reply of `redis.command` (integer replies come back as digits).
int64_t asInt(const std::string& s) { return std::stoll(s); }

// ---- through the binary --------------------------------------------------------------

TEST(RedisCollectorTest, ReportsRedisExporterSeriesOnMetrics) {
  if (!requireRedis()) return;
  RedisServer& redis = sharedRedis();
  redis.command({"SET", "itest:series:plain", "v"});
  redis.command({"SET", "itest:series:ttl", "v", "EX", "600"});
  // The chat server's pub/sub: one channel subscriber and one pattern subscriber, kept open.
  RedisSession channel_sub(sessionTo(redis, "chat-pubsub"));
  ASSERT_TRUE(channel_sub.command({"SUBSCRIBE", "itest:room:1"}).ok());
  RedisSession pattern_sub(sessionTo(redis, "chat-pubsub"));
  ASSERT_TRUE(pattern_sub.command({"PSUBSCRIBE", "itest:user:*"}).ok());

  DbpulseProcess agent;
  agent.start(configFor(agent, redis.address()));
  ASSERT_TRUE(agent.waitHealthy(kStartup));

  const auto has = [](const std::string& name, const LabelMap& labels = {}) {
    return [=](const std::string& text) { return sampleValue(text, name, labels).has_value(); };
  };
  const auto atLeast = [](const std::string& name, double min, const LabelMap& labels = {}) {
    return [=](const std::string& text) {
      auto v = sampleValue(text, name, labels);
      return v && *v >= min;
    };
  };
  const std::vector<std::pair<std::string, std::function<bool(const std::string&)>>> checks = {
      {"redis_up 1", [](const std::string& t) { return sampleValue(t, "redis_up") == 1.0; }},
      {"redis_connected_clients >= 3", atLeast("redis_connected_clients", 3)},
      {"redis_blocked_clients", has("redis_blocked_clients")},
      {"redis_memory_used_bytes > 0", atLeast("redis_memory_used_bytes", 1)},
      {"redis_memory_max_bytes", has("redis_memory_max_bytes")},
      {"redis_config_maxmemory", has("redis_config_maxmemory")},
      {"redis_config_io_threads >= 1", atLeast("redis_config_io_threads", 1)},
      {"redis_rdb_last_bgsave_duration_sec", has("redis_rdb_last_bgsave_duration_sec")},
      {"redis_keyspace_hits_total", has("redis_keyspace_hits_total")},
      {"redis_keyspace_misses_total", has("redis_keyspace_misses_total")},
      {"redis_evicted_keys_total", has("redis_evicted_keys_total")},
      {"redis_expired_keys_total", has("redis_expired_keys_total")},
      {"redis_rejected_connections_total", has("redis_rejected_connections_total")},
      {"redis_commands_processed_total > 0", atLeast("redis_commands_processed_total", 1)},
      {"redis_connected_slaves", has("redis_connected_slaves")},
      {"redis_db_keys{db0} >= 2", atLeast("redis_db_keys", 2, {{"db", "db0"}})},
      {"redis_db_keys_expiring{db0} >= 1", atLeast("redis_db_keys_expiring", 1, {{"db", "db0"}})},
      {"redis_db_keys{db15} (zero-filled)", has("redis_db_keys", {{"db", "db15"}})},
      {"redis_commands_total{set} >= 2", atLeast("redis_commands_total", 2, {{"cmd", "set"}})},
      {"redis_commands_duration_seconds_total{set}",
       has("redis_commands_duration_seconds_total", {{"cmd", "set"}})},
      {"dbpulse_redis_cache_hit_ratio", has("dbpulse_redis_cache_hit_ratio")},
      {"dbpulse_redis_ping_seconds > 0", atLeast("dbpulse_redis_ping_seconds", 1e-9)},
      {"redis_slowlog_length", has("redis_slowlog_length")},
      {"redis_pubsub_channels >= 1", atLeast("redis_pubsub_channels", 1)},
      {"redis_pubsub_patterns >= 1", atLeast("redis_pubsub_patterns", 1)},
      {"dbpulse_redis_pubsub_clients >= 2", atLeast("dbpulse_redis_pubsub_clients", 2)},
      {"dbpulse_redis_clients{chat-pubsub,0-1m} >= 2",
       atLeast("dbpulse_redis_clients", 2, {{"name", "chat-pubsub"}, {"age", "0-1m"}})},
      {"dbpulse_redis_clients{dbpulse,0-1m} == 1",
       [](const std::string& t) {
         return sampleValue(t, "dbpulse_redis_clients", {{"name", "dbpulse"}, {"age", "0-1m"}}) ==
                1.0;
       }},
      {"redis_instance_info{role=master}", has("redis_instance_info", {{"role", "master"}})},
      {"dbpulse_collector_success{redis} 1",
       [](const std::string& t) {
         return sampleValue(t, "dbpulse_collector_success", {{"collector", "redis"}}) == 1.0;
       }},
  };
  std::string scrape;
  const bool all = pollUntil(
      [&] {
        scrape = agent.metrics();
        for (const auto& [what, ok] : checks) {
          if (!ok(scrape)) return false;
        }
        return true;
      },
      kSeries, 100ms);
  if (!all) {
    std::string missing;
    for (const auto& [what, ok] : checks) {
      if (!ok(scrape)) missing += "\n  - " + what;
    }
    FAIL() << "never satisfied:" << missing << "\n--- scrape ---\n"
           << scrape << "\n--- log ---\n"
           << agent.logTail();
  }
  // Per-client series never appear: only the summary (a handful of series).
  EXPECT_LE(findSamples(scrape, "dbpulse_redis_clients").size(), 8u);

  if (!requirePromtool()) return;
  // The peers' names break some of promtool's naming rules (counters without _total):
  // dashboards need them as they are; every other finding fails.
  const auto lint = lintProblemsBesidesPeerNames(scrape);
  ASSERT_TRUE(lint.has_value()) << "promtool check metrics did not finish";
  EXPECT_EQ(*lint, "") << "promtool check metrics found problems:\n" << *lint;
}

// LATENCY LATEST under redis_exporter's names: a script that runs longer than
// latency-monitor-threshold is a "command" spike.
TEST(RedisCollectorTest, LatencySpikesAppearUnderRedisExporterNames) {
  if (!requireRedis()) return;
  RedisServer& redis = sharedRedis();
  redis.command({"CONFIG", "SET", "latency-monitor-threshold", "5"});
  redis.command({"EVAL", "local i = 0 while i < 5000000 do i = i + 1 end return i", "0"});
  DbpulseProcess agent;
  agent.start(configFor(agent, redis.address()));
  ASSERT_TRUE(agent.waitHealthy(kStartup));
  std::string scrape;
  const bool seen = agent.waitForMetrics(
      [](const std::string& t) {
        return sampleValue(t, "redis_latency_spike_duration_seconds", {{"event_name", "command"}})
                   .value_or(0) >= 0.005;
      },
      kStartup, "redis_latency_spike_duration_seconds{event_name=\"command\"} >= 5 ms", &scrape);
  redis.command({"CONFIG", "SET", "latency-monitor-threshold", "0"});
  redis.command({"LATENCY", "RESET"});
  ASSERT_TRUE(seen);
  EXPECT_GT(
      sampleValue(scrape, "redis_latency_spike_last", {{"event_name", "command"}}).value_or(0),
      1.6e9);
}

TEST(RedisCollectorTest, HitRatioFollowsAScriptedMixOfHitsAndMisses) {
  if (!requireRedis()) return;
  RedisServer& redis = sharedRedis();
  std::vector<std::string> hits_then_misses = {"MGET"};
  for (int i = 0; i < 30; ++i) {
    const std::string key = "itest:ratio:present:" + std::to_string(i);
    redis.command({"SET", key, "v"});
    hits_then_misses.push_back(key);
  }
  for (int i = 0; i < 10; ++i)
    hits_then_misses.push_back("itest:ratio:absent:" + std::to_string(i));

  DbpulseProcess agent;
  agent.start(configFor(agent, redis.address(), "", "1s"));
  ASSERT_TRUE(agent.waitHealthy(kStartup));
  // Two runs, so the next one has a previous run to take the difference from.
  ASSERT_TRUE(agent.waitForMetrics(
      [](const std::string& t) {
        auto runs = sampleValue(t, "dbpulse_collector_runs_total", {{"collector", "redis"}});
        return runs && *runs >= 2 && sampleValue(t, "redis_up") == 1.0;
      },
      kSeries, "two successful redis runs"));

  // One MGET of 30 present and 10 absent keys: 30 hits and 10 misses in one atomic command,
  // so they land between the same two runs (separate GETs could straddle a run).
  redis.command(hits_then_misses);
  ASSERT_TRUE(agent.waitForMetrics(
      [](const std::string& t) {
        return near(sampleValue(t, "dbpulse_redis_cache_hit_ratio"), 0.75);
      },
      kSeries, "dbpulse_redis_cache_hit_ratio 0.75 after 30 hits and 10 misses"));

  // Mostly misses now: 10 present, 30 absent.
  std::vector<std::string> mostly_misses = {"MGET"};
  for (int i = 0; i < 10; ++i) mostly_misses.push_back("itest:ratio:present:" + std::to_string(i));
  for (int i = 0; i < 30; ++i) mostly_misses.push_back("itest:ratio:gone:" + std::to_string(i));
  redis.command(mostly_misses);
  ASSERT_TRUE(agent.waitForMetrics(
      [](const std::string& t) {
        return near(sampleValue(t, "dbpulse_redis_cache_hit_ratio"), 0.25);
      },
      kSeries, "dbpulse_redis_cache_hit_ratio 0.25 after 10 hits and 30 misses"));

  // No lookups between two runs: the ratio is undefined (NaN), not a stale figure.
  ASSERT_TRUE(agent.waitForMetrics(
      [](const std::string& t) {
        auto v = sampleValue(t, "dbpulse_redis_cache_hit_ratio");
        return v && std::isnan(*v);
      },
      kSeries, "dbpulse_redis_cache_hit_ratio NaN without lookups"));
}

TEST(RedisCollectorTest, RedisRestartGivesUpZeroThenRecovers) {
  if (!requireRedis()) return;
  RedisServer redis;  // our own: this test stops it
  DbpulseProcess agent;
  agent.start(configFor(agent, redis.address()));
  ASSERT_TRUE(agent.waitHealthy(kStartup));
  ASSERT_TRUE(
      agent.waitForMetrics([](const std::string& t) { return sampleValue(t, "redis_up") == 1.0; },
                           kSeries, "redis_up 1"));

  redis.stop();
  ASSERT_TRUE(
      agent.waitForMetrics([](const std::string& t) { return sampleValue(t, "redis_up") == 0.0; },
                           kSeries, "redis_up 0 while Redis is down"));
  // The agent keeps answering, and says what happened.
  EXPECT_EQ(agent.get("/health").status, 200);
  const HttpResponse ready = agent.get("/health/ready");
  EXPECT_EQ(ready.status, 200) << ready.body;
  const auto body = nlohmann::json::parse(ready.body, nullptr, false);
  ASSERT_FALSE(body.is_discarded()) << ready.body;
  EXPECT_NE(body["collectors"]["redis"].value("error", "").find("Connection refused"),
            std::string::npos)
      << ready.body;

  redis.start();
  ASSERT_TRUE(agent.waitForMetrics(
      [](const std::string& t) {
        return sampleValue(t, "redis_up") == 1.0 && sampleValue(t, "redis_uptime_in_seconds");
      },
      kSeries, "redis_up 1 after Redis is back"));
  EXPECT_TRUE(agent.running());
}

TEST(RedisCollectorTest, AuthenticatesWithThePasswordFile) {
  if (!requireRedis()) return;
  RedisServer redis;
  DbpulseProcess agent;
  const std::string password = "s3cret-itest-pw";
  // The harness pings without a password, so the password is set once the server runs.
  redis.command({"CONFIG", "SET", "requirepass", password});
  writeFile(agent.dir() / "redis.pw", password + "\n");
  agent.start(configFor(agent, redis.address(),
                        "password_file = \"" + (agent.dir() / "redis.pw").string() + "\"\n"));
  ASSERT_TRUE(agent.waitHealthy(kStartup));
  ASSERT_TRUE(agent.waitForMetrics(
      [](const std::string& t) {
        return sampleValue(t, "redis_up") == 1.0 && sampleValue(t, "redis_memory_used_bytes");
      },
      kSeries, "redis_up 1 with AUTH"));
  EXPECT_EQ(agent.metrics().find(password), std::string::npos);
  EXPECT_EQ(agent.logTail(1 << 20).find(password), std::string::npos);
}

TEST(RedisCollectorTest, WrongOrMissingPasswordIsReportedAsSuch) {
  if (!requireRedis()) return;
  RedisServer redis;
  redis.command({"CONFIG", "SET", "requirepass", "right-pw"});

  DbpulseProcess wrong;
  writeFile(wrong.dir() / "redis.pw", "wrong-pw-itest");
  wrong.start(configFor(wrong, redis.address(),
                        "password_file = \"" + (wrong.dir() / "redis.pw").string() + "\"\n"));
  DbpulseProcess missing;
  missing.start(configFor(missing, redis.address()));
  ASSERT_TRUE(wrong.waitHealthy(kStartup));
  ASSERT_TRUE(missing.waitHealthy(kStartup));

  const auto errorOf = [](DbpulseProcess& agent) {
    const auto body = nlohmann::json::parse(agent.get("/health/ready").body, nullptr, false);
    if (body.is_discarded() || !body.contains("collectors") ||
        !body["collectors"].contains("redis")) {
      return std::string();
    }
    return body["collectors"]["redis"].value("error", std::string());
  };
  std::string wrong_error, missing_error;
  EXPECT_TRUE(pollUntil(
      [&] {
        wrong_error = errorOf(wrong);
        return wrong_error.find("AUTH rejected") != std::string::npos;
      },
      kSeries))
      << wrong_error;
  EXPECT_NE(wrong_error.find("permission_denied"), std::string::npos) << wrong_error;
  EXPECT_EQ(wrong_error.find("wrong-pw-itest"), std::string::npos) << wrong_error;
  EXPECT_TRUE(pollUntil(
      [&] {
        missing_error = errorOf(missing);
        return missing_error.find("requires a password") != std::string::npos;
      },
      kSeries))
      << missing_error;
  EXPECT_EQ(sampleValue(wrong.metrics(), "redis_up"), 0.0);
  EXPECT_EQ(sampleValue(missing.metrics(), "redis_up"), 0.0);
  EXPECT_EQ(wrong.logTail(1 << 20).find("wrong-pw-itest"), std::string::npos);
}

// ---- in-process ----------------------------------------------------------------------

TEST(RedisSessionTest, HundredForcedReconnectsLeakNoDescriptor) {
  if (!requireRedis()) return;
  RedisServer& redis = sharedRedis();
  RedisSession session(sessionTo(redis));
  auto first = session.command({"CLIENT", "ID"});
  ASSERT_TRUE(first.ok()) << first.status().toString();
  const int fds_before = openFds();
  const uint64_t connects_before = session.connectCount();

  for (int i = 0; i < 100; ++i) {
    auto id = session.command({"CLIENT", "ID"});
    ASSERT_TRUE(id.ok()) << "iteration " << i << ": " << id.status().toString();
    ASSERT_EQ(id->type, RedisReply::Type::kInteger);
    // Redis closes our connection; the session's next command must notice, free the old
    // socket and reconnect.
    ASSERT_EQ(asInt(redis.command({"CLIENT", "KILL", "ID", std::to_string(id->integer)})), 1);
  }
  auto last = session.command({"PING"});
  ASSERT_TRUE(last.ok()) << last.status().toString();
  EXPECT_EQ(last->str, "PONG");
  EXPECT_EQ(session.connectCount() - connects_before, 100u);
  EXPECT_EQ(openFds(), fds_before);
}

TEST(RedisSessionTest, FailedConnectsBackOffAndLeakNoDescriptor) {
  if (!requireRedis()) return;
  RedisServer redis;
  RedisSessionOptions o = sessionTo(redis);
  o.initial_backoff = 1ms;
  o.max_backoff = 1ms;
  RedisSession session(o);
  ASSERT_TRUE(session.command({"PING"}).ok());
  redis.stop();
  // The first failure frees the connection that was open while the server ran.
  ASSERT_FALSE(session.command({"PING"}).ok());
  EXPECT_FALSE(session.connected());
  const int fds_before = openFds();
  for (int i = 0; i < 100; ++i) {
    auto r = session.command({"PING"});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().toString();
    std::this_thread::sleep_for(2ms);  // let the 1 ms backoff pass: a real attempt each time
  }
  EXPECT_EQ(openFds(), fds_before);

  // With a long backoff, calls fail fast without touching the network.
  RedisSessionOptions slow = sessionTo(redis);
  slow.initial_backoff = 60s;
  RedisSession backing_off(slow);
  auto r1 = backing_off.command({"PING"});
  ASSERT_FALSE(r1.ok());
  redis.start();
  auto r2 = backing_off.command({"PING"});
  ASSERT_FALSE(r2.ok()) << "reconnected during the backoff";
  EXPECT_EQ(r2.status().message(), r1.status().message());  // same text: logged once
  EXPECT_TRUE(session.command({"PING"}).ok());
}

TEST(RedisSessionTest, DeadlineBoundsABlockedCommand) {
  if (!requireRedis()) return;
  RedisServer& redis = sharedRedis();
  RedisSession session(sessionTo(redis));
  const auto t0 = std::chrono::steady_clock::now();
  // BLPOP on an empty list blocks server-side for 5 s; our deadline is 200 ms away.
  auto r = session.command({"BLPOP", "itest:empty:list", "5"}, t0 + 200ms);
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().toString();
  EXPECT_LT(took, 1500ms);
  EXPECT_TRUE(session.command({"PING"}).ok());  // a fresh connection afterwards
}

TEST(RedisCollectorInProcessTest, SlowlogCountsNewEntriesByCommandNameOnly) {
  if (!requireRedis()) return;
  RedisServerOptions options;
  options.extra_args = {"--slowlog-log-slower-than", "0", "--slowlog-max-len", "1000"};
  RedisServer redis(options);
  RedisCollectorOptions o;
  o.session = sessionTo(redis);
  RedisCollector collector(o);

  SampleBatch baseline;
  ASSERT_TRUE(collector.collect(contextFor(), baseline).ok());
  EXPECT_FALSE(batchValue(baseline, "dbpulse_redis_slowlog_entries_total", {{"cmd", "set"}}));

  for (int i = 0; i < 3; ++i) {
    redis.command({"SET", "itest:slow:secret-key-" + std::to_string(i), "secret-value"});
  }
  SampleBatch after;
  ASSERT_TRUE(collector.collect(contextFor(), after).ok());
  EXPECT_EQ(batchValue(after, "dbpulse_redis_slowlog_entries_total", {{"cmd", "set"}}), 3.0);
  EXPECT_GT(*batchValue(after, "redis_slowlog_length"), 3.0);
  EXPECT_TRUE(batchValue(after, "redis_slowlog_last_id"));
  for (const auto& s : after.samples()) {
    for (const auto& l : s.labels.items()) {
      EXPECT_EQ(l.value.find("secret"), std::string::npos)
          << s.name << " carries an argument in label " << l.name;
    }
  }
  // The next run counts only what is new since.
  redis.command({"SET", "itest:slow:one-more", "x"});
  SampleBatch third;
  ASSERT_TRUE(collector.collect(contextFor(), third).ok());
  EXPECT_EQ(batchValue(third, "dbpulse_redis_slowlog_entries_total", {{"cmd", "set"}}), 4.0);
  EXPECT_EQ(batchValue(third, "dbpulse_redis_slowlog_unseen_entries_total"), 0.0);
}

TEST(RedisCollectorInProcessTest, KilledConnectionBetweenRunsIsInvisible) {
  if (!requireRedis()) return;
  RedisServer& redis = sharedRedis();
  RedisCollectorOptions o;
  o.session = sessionTo(redis);
  RedisCollector collector(o);
  int fds_before = -1;
  for (int i = 0; i < 20; ++i) {
    SampleBatch b;
    const Status s = collector.collect(contextFor(), b);
    ASSERT_TRUE(s.ok()) << "run " << i << ": " << s.toString();
    ASSERT_EQ(batchValue(b, "redis_up"), 1.0);
    if (i == 0) fds_before = openFds();  // one connection open from here on
    auto id = collector.session().command({"CLIENT", "ID"});
    ASSERT_TRUE(id.ok());
    redis.command({"CLIENT", "KILL", "ID", std::to_string(id->integer)});
  }
  EXPECT_EQ(openFds(), fds_before);
}

TEST(RedisCollectorInProcessTest, DownServerGivesUpZeroAndNaNRatioOnly) {
  if (!requireRedis()) return;
  RedisServer redis;
  RedisCollectorOptions o;
  o.session = sessionTo(redis);
  RedisCollector collector(o);
  SampleBatch up;
  ASSERT_TRUE(collector.collect(contextFor(), up).ok());
  redis.stop();
  SampleBatch down;
  const Status s = collector.collect(contextFor(), down);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.toString();
  EXPECT_EQ(batchValue(down, "redis_up"), 0.0);
  auto ratio = batchValue(down, "dbpulse_redis_cache_hit_ratio");
  ASSERT_TRUE(ratio);
  EXPECT_TRUE(std::isnan(*ratio));
  EXPECT_EQ(down.samples().size(), 2u);
}

}  // namespace
}  // namespace dbpulse::testing
