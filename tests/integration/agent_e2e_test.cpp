// End-to-end: the real dbpulse binary against a real PostgreSQL 15, scraped over HTTP.
// Contracts checked here are DESIGN.md's CLI, HTTP and metrics sections.

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "integration/harness/harness.h"
#include "test_util/gunzip.h"

namespace dbpulse::testing {
namespace {

using namespace std::chrono_literals;

constexpr auto kStartup = 15s;
// Collectors run every 500 ms; allow many intervals before calling a series missing.
constexpr auto kFirstSeries = 20s;
constexpr auto kOutageNoticed = 10s;
constexpr auto kRecovery = 15s;
constexpr auto kShutdownBound = 10s;  // DESIGN.md: SIGTERM/SIGINT exit within 10 s

// A named condition on a scrape; a failed wait reports the ones still unmet.
struct Check {
  std::string what;
  std::function<bool(const std::string&)> holds;
};

std::vector<std::string> unmet(const std::vector<Check>& checks, const std::string& text) {
  std::vector<std::string> missing;
  for (const Check& check : checks) {
    if (!check.holds(text)) missing.push_back(check.what);
  }
  return missing;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += "\n  - " + item;
  return out;
}

Check valueIs(const std::string& name, const LabelMap& labels, double expected) {
  std::string what = name;
  for (const auto& [k, v] : labels) what += " " + k + "=" + v;
  return {what + " == " + std::to_string(expected),
          [=](const std::string& text) { return sampleValue(text, name, labels) == expected; }};
}

Check valueSatisfies(const std::string& name, const LabelMap& labels, const std::string& how,
                     std::function<bool(double)> ok) {
  std::string what = name;
  for (const auto& [k, v] : labels) what += " " + k + "=" + v;
  return {what + " " + how, [=](const std::string& text) {
            const std::optional<double> value = sampleValue(text, name, labels);
            return value && ok(*value);
          }};
}

double sumOf(const std::string& text, const std::string& name, const LabelMap& labels) {
  double sum = 0;
  for (const ExpositionSample& sample : findSamples(text, name, labels)) sum += sample.value;
  return sum;
}

class AgentE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!requirePostgres()) return;
    pg_ = &sharedPostgres();
    pg_->createDatabase("chat");

    // The "chat server" beside the agent, found through its pid file.
    ProcessOptions companion;
    companion.argv = {"sleep", "300"};
    companion_ = std::make_unique<ChildProcess>(companion);
    writeFile(companionPidFile(), std::to_string(companion_->pid()) + "\n");
  }

  std::filesystem::path companionPidFile() const { return agent_.dir() / "companion.pid"; }

  struct AgentConfig {
    int pg_port = 0;  // 0: the shared server
    std::string interval = "500ms";
    std::string timeout = "400ms";
    bool process_collector = true;
    std::string connect_timeout = "5s";
  };

  // By default both collectors every 500 ms, PostgreSQL = the shared server's `chat`.
  std::string config(const AgentConfig& c) const {
    const int port = c.pg_port != 0 ? c.pg_port : pg_->port();
    return R"([agent]
listen = ")" +
           agent_.listenAddress() + R"("
state_dir = ")" +
           agent_.stateDir().string() + R"("
instance = "e2e"
log_format = "text"

[postgres]
dsn = "host=127.0.0.1 port=)" +
           std::to_string(port) + R"( dbname=chat user=postgres"
statement_timeout = "2s"
connect_timeout = ")" +
           c.connect_timeout + R"("

[companion]
pid_file = ")" +
           companionPidFile().string() + R"("

# No Redis here (redis_collector_test.cpp covers it): `once` would exit 1 on redis_up 0.
[collectors.redis]
enabled = false

[collectors.connections]
enabled = true
interval = ")" +
           c.interval + R"("
timeout = ")" +
           c.timeout + R"("

[collectors.process]
enabled = )" +
           (c.process_collector ? "true" : "false") + R"(
interval = ")" +
           c.interval + R"("
timeout = ")" +
           c.timeout + R"("
)";
  }
  std::string config() const { return config(AgentConfig{}); }

  void startAgent() {
    agent_.start(config());
    ASSERT_TRUE(agent_.waitHealthy(kStartup));
  }

  ::testing::AssertionResult waitFor(const std::vector<Check>& checks,
                                     std::chrono::milliseconds timeout,
                                     std::string* last = nullptr) {
    std::string text;
    ::testing::AssertionResult result = agent_.waitForMetrics(
        [&](const std::string& scrape) { return unmet(checks, scrape).empty(); }, timeout,
        "the checks below", &text);
    if (last != nullptr) *last = text;
    if (!result) result << "\nunmet:" << joined(unmet(checks, text));
    return result;
  }

  PgServer* pg_ = nullptr;
  DbpulseProcess agent_;
  std::unique_ptr<ChildProcess> companion_;
};

TEST_F(AgentE2ETest, ExportsPostgresProcessAndCollectorMetricsThatPromtoolAccepts) {
  // An idle session in `chat`, so there is a connection series for it.
  PgClient chat_session = pg_->connect("chat");
  ASSERT_NO_FATAL_FAILURE(startAgent());

  const double started = nowSeconds();
  std::vector<Check> checks = {
      valueIs("pg_up", {}, 1),
      {"pg_stat_activity_count{datname=\"chat\"} summed over states >= 1",
       [](const std::string& text) {
         return sumOf(text, "pg_stat_activity_count", {{"datname", "chat"}}) >= 1;
       }},
      {"pg_stat_activity_count{datname=\"chat\",state=\"idle\"} >= 1",
       [](const std::string& text) {
         return sumOf(text, "pg_stat_activity_count", {{"datname", "chat"}, {"state", "idle"}}) >=
                1;
       }},
      valueIs("pg_settings_max_connections", {}, 50),  // the harness starts PG with 50
      valueSatisfies("dbpulse_pg_connections_utilization_ratio", {}, "in (0, 1]",
                     [](double v) { return v > 0 && v <= 1; }),
      valueSatisfies("dbpulse_process_resident_memory_bytes", {{"process", "dbpulse"}}, "> 0",
                     [](double v) { return v > 0; }),
      valueSatisfies("dbpulse_process_resident_memory_bytes", {{"process", "companion"}}, "> 0",
                     [](double v) { return v > 0; }),
  };
  for (const std::string collector : {"connections", "process"}) {
    const LabelMap labels = {{"collector", collector}};
    checks.push_back(valueIs("dbpulse_collector_success", labels, 1));
    checks.push_back(valueSatisfies("dbpulse_collector_duration_seconds", labels,
                                    "in [0, 0.4] (the collector timeout)",
                                    [](double v) { return v >= 0 && v <= 0.4; }));
    checks.push_back(valueSatisfies("dbpulse_collector_last_run_timestamp_seconds", labels,
                                    "within a minute of the test's clock", [started](double v) {
                                      return v > started - 60 && v < nowSeconds() + 60;
                                    }));
    checks.push_back(valueSatisfies("dbpulse_collector_errors_total", labels, ">= 0",
                                    [](double v) { return v >= 0; }));
  }
  std::string scrape;
  ASSERT_TRUE(waitFor(checks, kFirstSeries, &scrape));

  EXPECT_TRUE(agent_.waitReady(5s));

  // Prometheus always sends Accept-Encoding: gzip; the same exposition comes back encoded.
  const HttpResponse gz =
      httpRequest("GET", agent_.baseUrl() + "/metrics", "", {{"Accept-Encoding", "gzip"}});
  ASSERT_EQ(gz.status, 200);
  EXPECT_EQ(gz.header("Content-Encoding"), "gzip");
  EXPECT_EQ(gz.header("Vary"), "Accept-Encoding");
  const std::optional<std::string> decoded = gunzip(gz.body);
  ASSERT_TRUE(decoded.has_value()) << "not a gzip body";
  EXPECT_LT(gz.body.size() * 3, decoded->size()) << "the exposition compresses well";
  EXPECT_EQ(sampleValue(*decoded, "pg_up", {}), 1.0);
  const HttpResponse plain = agent_.get("/metrics");
  EXPECT_EQ(plain.header("Content-Encoding"), "");
  EXPECT_EQ(sampleValue(plain.body, "pg_up", {}), 1.0);

  if (!requirePromtool()) return;
  // The peers' names break some of promtool's naming rules (counters without _total):
  // dashboards need them as they are; every other finding fails.
  const auto lint = lintProblemsBesidesPeerNames(scrape);
  ASSERT_TRUE(lint.has_value()) << "promtool check metrics did not finish";
  EXPECT_EQ(*lint, "") << "promtool check metrics found problems:\n"
                       << *lint << "\n--- scrape ---\n"
                       << scrape;
}

TEST_F(AgentE2ETest, UnknownPathAnswers404WithJsonError) {
  ASSERT_NO_FATAL_FAILURE(startAgent());
  const HttpResponse response = agent_.get("/no/such/path");
  EXPECT_EQ(response.status, 404) << response.body;
  const nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
  ASSERT_FALSE(body.is_discarded()) << "not JSON: " << response.body;
  EXPECT_TRUE(body.contains("error") && body["error"].is_string()) << response.body;
  EXPECT_TRUE(body.contains("code") && body["code"].is_string()) << response.body;
}

TEST_F(AgentE2ETest, PgUpDropsToZeroWhenPostgresStopsAndRecovers) {
  ASSERT_NO_FATAL_FAILURE(startAgent());
  ASSERT_TRUE(waitFor({valueIs("pg_up", {}, 1)}, kFirstSeries));

  pg_->stop();
  // The process collector does not depend on PostgreSQL and keeps succeeding.
  EXPECT_TRUE(waitFor({valueIs("pg_up", {}, 0),
                       valueIs("dbpulse_collector_success", {{"collector", "connections"}}, 0),
                       valueIs("dbpulse_collector_success", {{"collector", "process"}}, 1)},
                      kOutageNoticed));
  EXPECT_TRUE(agent_.running()) << agent_.logTail();
  EXPECT_EQ(agent_.get("/health").status, 200);

  pg_->start();
  EXPECT_TRUE(waitFor({valueIs("pg_up", {}, 1),
                       valueIs("dbpulse_collector_success", {{"collector", "connections"}}, 1)},
                      kRecovery));
  EXPECT_TRUE(agent_.running()) << agent_.logTail();
}

TEST_F(AgentE2ETest, ReportsPgUpZeroWhenPostgresIsUnreachableFromTheStart) {
  // A port where nothing listens: connection refused on every attempt.
  AgentConfig unreachable;
  unreachable.pg_port = freeLoopbackPort();
  agent_.start(config(unreachable));
  ASSERT_TRUE(agent_.waitHealthy(kStartup));
  EXPECT_TRUE(
      waitFor({valueIs("pg_up", {}, 0),
               valueSatisfies("dbpulse_process_resident_memory_bytes", {{"process", "dbpulse"}},
                              "> 0", [](double v) { return v > 0; })},
              kFirstSeries));
  EXPECT_EQ(agent_.get("/health").status, 200);
}

TEST_F(AgentE2ETest, ReadyIsServiceUnavailableWithJsonUntilTheFirstCycleFinishes) {
  // PostgreSQL "up but stuck": connections are accepted by the kernel and never answered,
  // so the first connections run cannot finish before its timeout.
  SilentListener stuck;
  // Only the blocked collector, with a timeout far beyond the few ms this check needs (and
  // beyond how long a loaded CI machine takes to start the agent: with the default 5 s the
  // connect gave up first and the agent was rightly ready).
  AgentConfig blocked;
  blocked.pg_port = stuck.port();
  blocked.interval = "120s";
  blocked.timeout = "60s";
  blocked.connect_timeout = "60s";
  blocked.process_collector = false;
  agent_.start(config(blocked));
  ASSERT_TRUE(agent_.waitHealthy(kStartup));
  const HttpResponse ready = agent_.get("/health/ready");
  EXPECT_EQ(ready.status, 503) << ready.body;
  const nlohmann::json body = nlohmann::json::parse(ready.body, nullptr, false);
  EXPECT_FALSE(body.is_discarded()) << "not JSON: " << ready.body;
}

TEST_F(AgentE2ETest, SigtermExitsWithCodeZeroWithinTenSeconds) {
  ASSERT_NO_FATAL_FAILURE(startAgent());
  ASSERT_TRUE(waitFor({valueIs("pg_up", {}, 1)}, kFirstSeries));
  const auto sent = std::chrono::steady_clock::now();
  const std::optional<int> code = agent_.terminate(kShutdownBound);
  ASSERT_TRUE(code.has_value()) << "still running " << kShutdownBound.count()
                                << " s after SIGTERM\n"
                                << agent_.logTail();
  EXPECT_EQ(*code, 0) << agent_.logTail();
  EXPECT_LT(std::chrono::steady_clock::now() - sent, kShutdownBound);
}

TEST_F(AgentE2ETest, SigintExitsWithCodeZeroWithinTenSeconds) {
  ASSERT_NO_FATAL_FAILURE(startAgent());
  ASSERT_TRUE(waitFor({valueIs("pg_up", {}, 1)}, kFirstSeries));
  ASSERT_TRUE(agent_.signal(SIGINT));
  const std::optional<int> code = agent_.process().waitExit(kShutdownBound);
  ASSERT_TRUE(code.has_value()) << "still running after SIGINT\n" << agent_.logTail();
  EXPECT_EQ(*code, 0) << agent_.logTail();
}

TEST_F(AgentE2ETest, OncePrintsPrometheusTextWithPgUpAndExitsZero) {
  const auto path = agent_.writeConfig(config());
  const CommandResult result =
      runDbpulse({"once", "--config", path.string(), "--format", "prometheus"}, 30s);
  ASSERT_EQ(result.exit_code, 0) << result.describe();
  EXPECT_EQ(sampleValue(result.out, "pg_up"), 1.0) << result.describe();
  EXPECT_TRUE(
      sampleValue(result.out, "dbpulse_process_resident_memory_bytes", {{"process", "dbpulse"}}))
      << result.describe();
}

TEST_F(AgentE2ETest, OnceWithJsonFormatPrintsValidJson) {
  const auto path = agent_.writeConfig(config());
  const CommandResult result =
      runDbpulse({"once", "--config", path.string(), "--format", "json"}, 30s);
  ASSERT_EQ(result.exit_code, 0) << result.describe();
  const nlohmann::json parsed = nlohmann::json::parse(result.out, nullptr, false);
  EXPECT_FALSE(parsed.is_discarded()) << "stdout is not JSON:\n" << result.describe();
}

}  // namespace
}  // namespace dbpulse::testing
