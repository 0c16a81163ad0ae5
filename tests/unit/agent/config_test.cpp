#include "agent/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "collectors/catalog.h"

namespace dbpulse {
namespace {

namespace fs = std::filesystem;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

constexpr const char* kPath = "dbpulse.toml";

LoadResult load(const std::string& text, const Environment& env = {}) {
  return loadConfigString(text, kPath, env);
}

std::string allErrors(const LoadResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.toString() + "\n";
  return out;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Loads text that must fail with exactly one error and returns it.
ConfigError singleError(const std::string& text, const Environment& env = {}) {
  const LoadResult r = load(text, env);
  EXPECT_FALSE(r.config.has_value());
  EXPECT_EQ(r.errors.size(), 1u) << allErrors(r);
  return r.errors.empty() ? ConfigError{} : r.errors.front();
}

// A scratch directory for secret files, removed after each test.
class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("dbpulse_config_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string writeFile(const std::string& name, const std::string& content) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }

  fs::path dir_;
};

// ---- valid configurations ----------------------------------------------------------

TEST(ConfigTest, FullConfigLoadsEveryValue) {
  const std::string text = R"(
[agent]
listen = "127.0.0.1:9999"
state_dir = "/tmp/dbpulse-state"
admin_token_file = ""
instance = "chat-7"
log_format = "text"
log_level = "debug"
leader_election = false
worker_threads = 3
http_threads = 8
max_request_body_bytes = 2048
request_timeout = "3s"

[postgres]
dsn = "host=db port=6432 dbname=chat user=mon"
password_file = ""
statement_timeout = "2s"
lock_timeout = "250ms"
connect_timeout = "4s"

[redis]
address = "[::1]:6380"
password_file = ""

[pgbouncer]
dsn = "host=pgb port=6432 dbname=pgbouncer"

[companion]
health_url = "http://127.0.0.1:3000/health"
metrics_url = "http://127.0.0.1:3000/metrics"
pid_file = "/run/chat.pid"
process_name = "node"

[collectors.connections]
enabled = false
interval = "30s"
timeout = "10s"

[collectors.size]
interval = "1h"

[rules]
files = ["rules/default/*.yml", "/etc/dbpulse/rules/*.yml"]
evaluation_interval = "30s"

[alertmanager]
urls = ["http://127.0.0.1:9093", "https://am.example:9093"]
resend_interval = "5m"

[maintenance]
enabled = false
window = "30 3 * * 0"
window_duration = "1h30m"
dry_run = true

[advisor]
hypopg = "require"
)";
  const LoadResult r = load(text);
  ASSERT_TRUE(r.config.has_value()) << allErrors(r);
  ASSERT_TRUE(r.errors.empty());
  const Config& c = *r.config;
  EXPECT_EQ(c.path, kPath);

  EXPECT_EQ(c.agent.listen, "127.0.0.1:9999");
  EXPECT_EQ(c.agent.listen_addr.host, "127.0.0.1");
  EXPECT_EQ(c.agent.listen_addr.port, 9999);
  EXPECT_EQ(c.agent.state_dir, "/tmp/dbpulse-state");
  EXPECT_EQ(c.agent.admin_token, "");
  EXPECT_EQ(c.agent.instance, "chat-7");
  EXPECT_EQ(c.agent.log_format, LogFormat::kText);
  EXPECT_EQ(c.agent.log_level, "debug");
  EXPECT_FALSE(c.agent.leader_election);
  EXPECT_EQ(c.agent.worker_threads, 3);
  EXPECT_EQ(c.agent.http_threads, 8);
  EXPECT_EQ(c.agent.max_request_body_bytes, 2048);
  EXPECT_EQ(c.agent.request_timeout, seconds(3));

  EXPECT_EQ(c.postgres.dsn, "host=db port=6432 dbname=chat user=mon");
  EXPECT_EQ(c.postgres.password, "");
  EXPECT_EQ(c.postgres.statement_timeout, seconds(2));
  EXPECT_EQ(c.postgres.lock_timeout, milliseconds(250));
  EXPECT_EQ(c.postgres.connect_timeout, seconds(4));

  EXPECT_EQ(c.redis.address, "[::1]:6380");
  EXPECT_EQ(c.redis.addr.host, "::1");
  EXPECT_EQ(c.redis.addr.port, 6380);

  EXPECT_EQ(c.pgbouncer.dsn, "host=pgb port=6432 dbname=pgbouncer");
  EXPECT_EQ(c.companion.health_url, "http://127.0.0.1:3000/health");
  EXPECT_EQ(c.companion.metrics_url, "http://127.0.0.1:3000/metrics");
  EXPECT_EQ(c.companion.pid_file, "/run/chat.pid");
  EXPECT_EQ(c.companion.process_name, "node");

  const CollectorSection& conn = c.collectors.at("connections");
  EXPECT_FALSE(conn.enabled);
  EXPECT_EQ(conn.interval, seconds(30));
  EXPECT_EQ(conn.timeout, seconds(10));
  const CollectorSection& size = c.collectors.at("size");
  EXPECT_TRUE(size.enabled);
  EXPECT_EQ(size.interval, hours(1));
  EXPECT_EQ(size.timeout, collectors::findCollector("size")->default_timeout);

  EXPECT_EQ(c.rules.files,
            (std::vector<std::string>{"rules/default/*.yml", "/etc/dbpulse/rules/*.yml"}));
  EXPECT_EQ(c.rules.evaluation_interval, seconds(30));
  EXPECT_EQ(c.alertmanager.urls,
            (std::vector<std::string>{"http://127.0.0.1:9093", "https://am.example:9093"}));
  EXPECT_EQ(c.alertmanager.resend_interval, minutes(5));
  EXPECT_FALSE(c.maintenance.enabled);
  EXPECT_EQ(c.maintenance.window, "30 3 * * 0");
  EXPECT_EQ(c.maintenance.window_duration, minutes(90));
  EXPECT_TRUE(c.maintenance.dry_run);
  EXPECT_EQ(c.advisor.hypopg, "require");
}

TEST(ConfigTest, EmptyConfigGivesDefaults) {
  const LoadResult r = load("");
  ASSERT_TRUE(r.config.has_value()) << allErrors(r);
  const Config& c = *r.config;
  EXPECT_EQ(c.agent.listen, "0.0.0.0:9470");
  EXPECT_EQ(c.agent.listen_addr.host, "0.0.0.0");
  EXPECT_EQ(c.agent.listen_addr.port, 9470);
  EXPECT_EQ(c.agent.state_dir, "/var/lib/dbpulse");
  EXPECT_EQ(c.agent.log_format, LogFormat::kJson);
  EXPECT_TRUE(c.agent.leader_election);
  EXPECT_FALSE(c.agent.instance.empty()) << "defaults to the host name";
  EXPECT_EQ(c.postgres.dsn, "host=127.0.0.1 port=5432 dbname=chat user=dbpulse");
  EXPECT_EQ(c.postgres.statement_timeout, seconds(5));
  EXPECT_EQ(c.redis.addr.host, "127.0.0.1");
  EXPECT_EQ(c.redis.addr.port, 6379);
  EXPECT_EQ(c.pgbouncer.dsn, "");
  EXPECT_EQ(c.rules.files, (std::vector<std::string>{"rules/default/*.yml"}));
  EXPECT_EQ(c.rules.evaluation_interval, seconds(15));
  EXPECT_TRUE(c.alertmanager.urls.empty());
  EXPECT_EQ(c.alertmanager.resend_interval, minutes(1));
  EXPECT_TRUE(c.maintenance.enabled);
  EXPECT_EQ(c.maintenance.window, "0 2 * * *");
  EXPECT_EQ(c.maintenance.window_duration, hours(2));
  EXPECT_FALSE(c.maintenance.dry_run);
  EXPECT_EQ(c.advisor.hypopg, "auto");
}

TEST(ConfigTest, EveryCatalogueCollectorHasDefaults) {
  const LoadResult r = load("[collectors.statements]\nenabled = false\n");
  ASSERT_TRUE(r.config.has_value()) << allErrors(r);
  const auto& cols = r.config->collectors;
  const std::vector<std::string> design_names = {
      "connections", "statements", "indexes",     "cache", "tables",  "size",
      "locks",       "pgbouncer",  "replication", "redis", "process", "companion"};
  EXPECT_EQ(cols.size(), collectors::catalog().size());
  for (const auto& name : design_names) {
    SCOPED_TRACE(name);
    ASSERT_EQ(cols.count(name), 1u);
    const auto* entry = collectors::findCollector(name);
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(cols.at(name).enabled, name != "statements");
    EXPECT_EQ(cols.at(name).interval, entry->default_interval);
    EXPECT_EQ(cols.at(name).timeout, entry->default_timeout);
    EXPECT_LE(entry->default_timeout, entry->default_interval);
  }
  EXPECT_EQ(knownCollectorNames().size(), collectors::catalog().size());
  // Size-type collectors are expensive: their default interval is minutes, not seconds.
  EXPECT_GE(cols.at("size").interval, minutes(1));
}

// ---- errors with positions ---------------------------------------------------------

TEST(ConfigErrorTest, ToStringHasFileLineColumn) {
  EXPECT_EQ((ConfigError{"a.toml", 3, 7, "boom"}).toString(), "a.toml:3:7: boom");
  EXPECT_EQ((ConfigError{"a.toml", 0, 0, "boom"}).toString(), "a.toml: boom");
}

TEST(ConfigTest, TypoInKeySuggestsTheRightOne) {
  const ConfigError e = singleError("[agent]\n  listn = \"127.0.0.1:1\"\n");
  EXPECT_EQ(e.file, kPath);
  EXPECT_EQ(e.line, 2);
  EXPECT_EQ(e.column, 3);
  EXPECT_TRUE(contains(e.message, "listn")) << e.message;
  EXPECT_TRUE(contains(e.message, "listen")) << e.message;
  EXPECT_TRUE(contains(e.toString(), "dbpulse.toml:2:3: ")) << e.toString();
}

TEST(ConfigTest, BadDurationPointsAtTheValue) {
  const ConfigError e = singleError("[postgres]\nstatement_timeout = \"15x\"\n");
  EXPECT_EQ(e.line, 2);
  EXPECT_EQ(e.column, 21);  // the opening quote of "15x"
  EXPECT_TRUE(contains(e.message, "postgres.statement_timeout")) << e.message;
  EXPECT_TRUE(contains(e.message, "15x")) << e.message;
}

TEST(ConfigTest, NonPositiveDurationIsRejected) {
  const ConfigError e = singleError("[rules]\nevaluation_interval = \"0s\"\n");
  EXPECT_EQ(e.line, 2);
  EXPECT_TRUE(contains(e.message, "greater than 0")) << e.message;
}

struct ErrorCase {
  const char* name;
  std::string text;
  int line;
  int column;
  std::vector<std::string> message_has;
};

TEST(ConfigTest, InvalidValuesAreRejectedWithTheirPosition) {
  const ErrorCase cases[] = {
      {"string for bool",
       "[agent]\nleader_election = \"yes\"\n",
       2,
       19,
       {"agent.leader_election", "true or false", "a string"}},
      {"int for string",
       "[agent]\ninstance = 5\n",
       2,
       12,
       {"agent.instance", "expected a string", "an integer"}},
      {"string for string list",
       "[rules]\nfiles = \"a.yml\"\n",
       2,
       9,
       {"rules.files", "an array of strings"}},
      {"int in string list", "[rules]\nfiles = [\"a\", 1]\n", 2, 9, {"rules.files", "an integer"}},
      {"number for duration",
       "[collectors.cache]\ninterval = 15\n",
       2,
       12,
       {"collectors.cache.interval", "duration"}},
      {"host without port",
       "[agent]\nlisten = \"localhost\"\n",
       2,
       10,
       {"agent.listen", "localhost", "missing port"}},
      {"port out of range",
       "[agent]\nlisten = \"1.2.3.4:99999\"\n",
       2,
       10,
       {"agent.listen", "0..65535"}},
      {"listen octet out of range",
       "[agent]\nlisten = \"999.1.1.1:80\"\n",
       2,
       10,
       {"agent.listen", "999.1.1.1", "not an IPv4 or IPv6 address"}},
      {"listen host name",
       "[agent]\nlisten = \"db.example:80\"\n",
       2,
       10,
       {"agent.listen", "not an IPv4 or IPv6 address"}},
      {"listen short ipv4",
       "[agent]\nlisten = \"1.2.3:80\"\n",
       2,
       10,
       {"agent.listen", "not an IPv4 or IPv6 address"}},
      {"port without host",
       "[redis]\naddress = \":80\"\n",
       2,
       11,
       {"redis.address", "missing host"}},
      {"log_format", "[agent]\nlog_format = \"xml\"\n", 2, 14, {"json", "text", "xml"}},
      {"hypopg", "[advisor]\nhypopg = \"maybe\"\n", 2, 10, {"auto", "require", "off"}},
      {"worker_threads zero", "[agent]\nworker_threads = 0\n", 2, 18, {"between 1 and"}},
      {"alertmanager url",
       "[alertmanager]\nurls = [\"127.0.0.1:9093\"]\n",
       2,
       8,
       {"not an http:// or https:// URL"}},
      {"cron fields", "[maintenance]\nwindow = \"0 2 * *\"\n", 2, 10, {"5 fields"}},
      {"section not a table", "agent = 5\n", 1, 1, {"[agent] must be a table"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const ConfigError e = singleError(c.text);
    EXPECT_EQ(e.line, c.line) << e.toString();
    EXPECT_EQ(e.column, c.column) << e.toString();
    for (const auto& part : c.message_has) {
      EXPECT_TRUE(contains(e.message, part)) << "missing '" << part << "' in: " << e.message;
    }
  }
}

TEST(ConfigTest, HttpLimitsAndAdminRateLimitKeys) {
  const LoadResult defaults = load("");
  ASSERT_TRUE(defaults.config.has_value()) << allErrors(defaults);
  EXPECT_EQ(defaults.config->agent.max_connections, 2048);
  EXPECT_EQ(defaults.config->agent.admin_rate_limit, 50);
  EXPECT_EQ(defaults.config->agent.admin_rate_burst, 100);

  const LoadResult r =
      load("[agent]\nmax_connections = 4000\nadmin_rate_limit = 0\nadmin_rate_burst = 5\n");
  ASSERT_TRUE(r.config.has_value()) << allErrors(r);
  EXPECT_EQ(r.config->agent.max_connections, 4000);
  EXPECT_EQ(r.config->agent.admin_rate_limit, 0);  // no limit
  EXPECT_EQ(r.config->agent.admin_rate_burst, 5);

  for (const char* bad :
       {"[agent]\nmax_connections = 8\n", "[agent]\nadmin_rate_limit = -1\n",
        "[agent]\nadmin_rate_burst = 0\n", "[agent]\nadmin_rate_limit = \"10/s\"\n"}) {
    const LoadResult e = load(bad);
    EXPECT_FALSE(e.config.has_value()) << bad;
  }
  const ConfigError e = singleError("[agent]\nmax_connections = 8\n");
  EXPECT_TRUE(contains(e.message, "between 16 and 65536")) << e.message;
}

TEST(ConfigTest, BracketedIpv6ListenIsAccepted) {
  const LoadResult r = load("[agent]\nlisten = \"[::1]:80\"\n");
  ASSERT_TRUE(r.config.has_value()) << allErrors(r);
  EXPECT_EQ(r.config->agent.listen_addr.host, "::1");
  EXPECT_EQ(r.config->agent.listen_addr.port, 80);
}

TEST(ConfigTest, LocalhostListenBindsTheLoopbackAddress) {
  const LoadResult r = load("[agent]\nlisten = \"localhost:80\"\n");
  ASSERT_TRUE(r.config.has_value()) << allErrors(r);
  EXPECT_EQ(r.config->agent.listen_addr.host, "127.0.0.1");
  EXPECT_EQ(r.config->agent.listen, "localhost:80");
}

TEST(ConfigTest, UnknownSectionIsRejected) {
  const ConfigError e = singleError("\n[agnet]\nlisten = \"1.2.3.4:5\"\n");
  EXPECT_EQ(e.line, 2);
  EXPECT_TRUE(contains(e.message, "unknown section [agnet]")) << e.message;
  EXPECT_TRUE(contains(e.message, "agent")) << e.message;

  const ConfigError far = singleError("[frobnicator]\n");
  EXPECT_EQ(far.line, 1);
  EXPECT_TRUE(contains(far.message, "known: agent")) << far.message;
}

TEST(ConfigTest, UnknownCollectorIsRejectedWithTheKnownNames) {
  const ConfigError typo = singleError("[collectors.conections]\nenabled = false\n");
  EXPECT_EQ(typo.line, 1);
  EXPECT_GT(typo.column, 0);
  EXPECT_TRUE(contains(typo.message, "unknown collector 'conections'")) << typo.message;
  EXPECT_TRUE(contains(typo.message, "connections")) << typo.message;

  const ConfigError other = singleError("# comment\n[collectors.mongodb]\n");
  EXPECT_EQ(other.line, 2);
  for (const auto& name : knownCollectorNames()) {
    EXPECT_TRUE(contains(other.message, name)) << other.message;
  }
}

TEST(ConfigTest, UnknownKeyInCollectorSection) {
  const ConfigError e = singleError("[collectors.locks]\nintervall = \"5s\"\n");
  EXPECT_EQ(e.line, 2);
  EXPECT_EQ(e.column, 1);
  EXPECT_TRUE(contains(e.message, "[collectors.locks]")) << e.message;
  EXPECT_TRUE(contains(e.message, "'interval'")) << e.message;
}

TEST(ConfigTest, TimeoutLongerThanIntervalIsRejected) {
  const ConfigError e =
      singleError("[collectors.connections]\ninterval = \"10s\"\ntimeout = \"20s\"\n");
  EXPECT_EQ(e.line, 3);
  EXPECT_EQ(e.column, 11);
  EXPECT_TRUE(contains(e.message, "collectors.connections.timeout")) << e.message;
  EXPECT_TRUE(contains(e.message, "must not exceed interval")) << e.message;
  EXPECT_TRUE(contains(e.message, "20s")) << e.message;
  EXPECT_TRUE(contains(e.message, "10s")) << e.message;

  const LoadResult equal =
      load("[collectors.connections]\ninterval = \"10s\"\ntimeout = \"10s\"\n");
  EXPECT_TRUE(equal.config.has_value()) << allErrors(equal);
}

// The default timeout is ours, not the operator's: an interval shorter than it shortens it
// instead of failing. A timeout the operator wrote (file or environment) is never changed.
TEST(ConfigTest, ShortIntervalShortensTheDefaultTimeout) {
  const LoadResult r = load("[collectors.connections]\ninterval = \"1s\"\n");
  ASSERT_TRUE(r.config.has_value()) << allErrors(r);
  EXPECT_EQ(r.config->collectors.at("connections").interval, seconds(1));
  EXPECT_EQ(r.config->collectors.at("connections").timeout, seconds(1));
  EXPECT_EQ(r.config->collectors.at("process").timeout, seconds(5)) << "others keep theirs";

  const LoadResult longer = load("[collectors.connections]\ninterval = \"1m\"\n");
  ASSERT_TRUE(longer.config.has_value()) << allErrors(longer);
  EXPECT_EQ(longer.config->collectors.at("connections").timeout, seconds(5));
}

TEST(ConfigTest, TimeoutFromEnvironmentLongerThanIntervalNamesTheVariable) {
  const ConfigError e = singleError("[collectors.connections]\ninterval = \"2s\"\n",
                                    {{"DBPULSE_COLLECTORS_CONNECTIONS_TIMEOUT", "3s"}});
  EXPECT_TRUE(contains(e.toString(), "DBPULSE_COLLECTORS_CONNECTIONS_TIMEOUT")) << e.toString();
  EXPECT_TRUE(contains(e.message, "must not exceed interval")) << e.message;
}

TEST(ConfigTest, IntervalBelowMinimumIsRejected) {
  const ConfigError e =
      singleError("[collectors.process]\ninterval = \"50ms\"\ntimeout = \"50ms\"\n");
  EXPECT_EQ(e.line, 2);
  EXPECT_TRUE(contains(e.message, "at least 100ms")) << e.message;
}

TEST(ConfigTest, EveryErrorIsReportedInLineOrder) {
  const std::string text =
      "[postgres]\n"                   // 1
      "statement_timeout = \"15x\"\n"  // 2
      "dsn = 5\n"                      // 3
      "\n"                             // 4
      "[agent]\n"                      // 5
      "log_format = \"xml\"\n"         // 6
      "listen = \"localhost\"\n"       // 7
      "bogus = 1\n"                    // 8
      "\n"                             // 9
      "[collectors.nope]\n"            // 10
      "\n"                             // 11
      "[maintenance]\n"                // 12
      "dry_run = \"no\"\n";            // 13
  const LoadResult r = load(text);
  EXPECT_FALSE(r.config.has_value());
  std::vector<int> lines;
  for (const auto& e : r.errors) lines.push_back(e.line);
  EXPECT_EQ(lines, (std::vector<int>{2, 3, 6, 7, 8, 10, 13})) << allErrors(r);
}

TEST(ConfigTest, TomlSyntaxErrorCarriesPosition) {
  const struct {
    const char* name;
    std::string text;
    int line;
  } cases[] = {
      {"missing value", "[agent]\nlisten =\n", 2},
      {"unclosed header", "# c\n\n[agent\nlisten = \"a:1\"\n", 3},
      {"unterminated string", "[postgres]\ndsn = \"host=x\n", 2},
      {"duplicate key", "[agent]\nlisten = \"a:1\"\nlisten = \"b:2\"\n", 3},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const ConfigError e = singleError(c.text);
    EXPECT_EQ(e.line, c.line) << e.toString();
    EXPECT_GT(e.column, 0) << e.toString();
    EXPECT_FALSE(e.message.empty());
  }
}

TEST(ConfigTest, MissingConfigFileIsAnError) {
  const LoadResult r = loadConfigFile("/nonexistent/dbpulse.toml", {});
  EXPECT_FALSE(r.config.has_value());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].file, "/nonexistent/dbpulse.toml");
}

// ---- environment overrides ---------------------------------------------------------

TEST(ConfigTest, EnvironmentOverridesFileValues) {
  const std::string text =
      "[postgres]\ndsn = \"host=file\"\n"
      "[agent]\nlisten = \"127.0.0.1:1\"\n"
      "[collectors.connections]\ninterval = \"20s\"\n";
  const Environment env = {
      {"DBPULSE_POSTGRES_DSN", "host=env dbname=chat"},
      {"DBPULSE_AGENT_LISTEN", "[::]:0"},
      {"DBPULSE_COLLECTORS_CONNECTIONS_INTERVAL", "45s"},
      {"DBPULSE_RULES_FILES", "a.yml,rules/*.yml,,/etc/x.yml"},
      {"DBPULSE_AGENT_LEADER_ELECTION", "false"},
      {"DBPULSE_AGENT_WORKER_THREADS", "5"},
      {"UNRELATED", "x"},
  };
  const LoadResult r = load(text, env);
  ASSERT_TRUE(r.config.has_value()) << allErrors(r);
  const Config& c = *r.config;
  EXPECT_EQ(c.postgres.dsn, "host=env dbname=chat");
  EXPECT_EQ(c.agent.listen, "[::]:0");
  EXPECT_EQ(c.agent.listen_addr.host, "::");
  EXPECT_EQ(c.agent.listen_addr.port, 0);
  EXPECT_EQ(c.collectors.at("connections").interval, seconds(45));
  EXPECT_EQ(c.collectors.at("process").interval, seconds(15)) << "other collectors untouched";
  EXPECT_EQ(c.rules.files, (std::vector<std::string>{"a.yml", "rules/*.yml", "/etc/x.yml"}));
  EXPECT_FALSE(c.agent.leader_election);
  EXPECT_EQ(c.agent.worker_threads, 5);
}

TEST(ConfigTest, BadEnvironmentValueNamesTheVariable) {
  const struct {
    const char* var;
    const char* value;
    const char* message_has;
  } cases[] = {
      {"DBPULSE_COLLECTORS_CONNECTIONS_INTERVAL", "15x", "15x"},
      {"DBPULSE_AGENT_LISTEN", "localhost", "missing port"},
      {"DBPULSE_AGENT_LEADER_ELECTION", "yes", "true or false"},
      {"DBPULSE_AGENT_WORKER_THREADS", "3x", "integer"},
      {"DBPULSE_AGENT_LOG_FORMAT", "xml", "xml"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.var);
    const ConfigError e = singleError("", {{c.var, c.value}});
    EXPECT_TRUE(contains(e.toString(), c.var)) << e.toString();
    EXPECT_TRUE(contains(e.message, c.message_has)) << e.message;
  }
}

// ---- *_file secrets ----------------------------------------------------------------

TEST_F(ConfigFileTest, PasswordFileIsReadWithoutTrailingNewline) {
  const std::string pg = writeFile("pg_password", "s3cret pass\n");
  const std::string redis = writeFile("redis_password", "r3dis\r\n");
  const std::string token = writeFile("token", "tok");
  const std::string text = "[postgres]\npassword_file = \"" + pg +
                           "\"\n[redis]\npassword_file = \"" + redis +
                           "\"\n[agent]\nadmin_token_file = \"" + token + "\"\n";
  const LoadResult r = load(text);
  ASSERT_TRUE(r.config.has_value()) << allErrors(r);
  EXPECT_EQ(r.config->postgres.password, "s3cret pass");
  EXPECT_EQ(r.config->postgres.password_file, pg);
  EXPECT_EQ(r.config->redis.password, "r3dis");
  EXPECT_EQ(r.config->agent.admin_token, "tok");
}

TEST_F(ConfigFileTest, MissingSecretFileIsAnErrorAtTheKey) {
  const std::string missing = (dir_ / "nope").string();
  const ConfigError e = singleError(
      "[agent]\ninstance = \"x\"\n\n[postgres]\n  password_file = \"" + missing + "\"\n");
  EXPECT_EQ(e.line, 5);
  EXPECT_EQ(e.column, 19);
  EXPECT_TRUE(contains(e.message, "postgres.password_file")) << e.message;
  EXPECT_TRUE(contains(e.message, missing)) << e.message;
}

TEST_F(ConfigFileTest, EmptySecretFileIsAnError) {
  const std::string empty = writeFile("empty", "\n");
  const ConfigError e = singleError("[redis]\npassword_file = \"" + empty + "\"\n");
  EXPECT_EQ(e.line, 2);
  EXPECT_TRUE(contains(e.message, "empty")) << e.message;
}

TEST_F(ConfigFileTest, SecretFileFromEnvironmentNamesTheVariable) {
  const std::string pg = writeFile("pg", "from-env\n");
  const LoadResult ok = load("", {{"DBPULSE_POSTGRES_PASSWORD_FILE", pg}});
  ASSERT_TRUE(ok.config.has_value()) << allErrors(ok);
  EXPECT_EQ(ok.config->postgres.password, "from-env");

  const ConfigError e =
      singleError("", {{"DBPULSE_POSTGRES_PASSWORD_FILE", (dir_ / "nope").string()}});
  EXPECT_TRUE(contains(e.toString(), "DBPULSE_POSTGRES_PASSWORD_FILE")) << e.toString();
  EXPECT_EQ(e.line, 0);
}

TEST_F(ConfigFileTest, LoadConfigFileReadsTheFile) {
  const std::string path =
      writeFile("dbpulse.toml", "[agent]\nlisten = \"127.0.0.1:0\"\nbad = 1\n");
  const LoadResult r = loadConfigFile(path, {});
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].toString().rfind(path + ":3:1: ", 0), 0u) << r.errors[0].toString();
}

// ---- parseHostPort -----------------------------------------------------------------

TEST(ParseHostPortTest, Table) {
  const struct {
    const char* text;
    bool ok;
    const char* host;
    int port;
  } cases[] = {
      {"127.0.0.1:9470", true, "127.0.0.1", 9470},
      {"0.0.0.0:0", true, "0.0.0.0", 0},
      {"localhost:65535", true, "localhost", 65535},
      {"[::1]:80", true, "::1", 80},
      {"[::]:9470", true, "::", 9470},
      {"db.example.com:05432", true, "db.example.com", 5432},
      {"localhost", false, "", 0},
      {"1.2.3.4:99999", false, "", 0},
      {"1.2.3.4:65536", false, "", 0},
      {"1.2.3.4:123456", false, "", 0},
      {":80", false, "", 0},
      {"host:", false, "", 0},
      {"host:-1", false, "", 0},
      {"host:8o", false, "", 0},
      {"host: 80", false, "", 0},
      {"::1:80", false, "", 0},
      {"[::1]", false, "", 0},
      {"[::1]80", false, "", 0},
      {"[::1:80", false, "", 0},
      {"[]:80", false, "", 0},
      {"", false, "", 0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string("\"") + c.text + "\"");
    const auto r = parseHostPort(c.text);
    ASSERT_EQ(r.ok(), c.ok) << r.status().toString();
    if (c.ok) {
      EXPECT_EQ(r->host, c.host);
      EXPECT_EQ(r->port, c.port);
    } else {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
      EXPECT_TRUE(contains(r.status().message(), std::string("\"") + c.text + "\""))
          << r.status().message();
    }
  }
}

}  // namespace
}  // namespace dbpulse
