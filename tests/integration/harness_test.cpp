// Self-tests of the integration harness: if these fail, no other integration test result
// means anything.

#include "integration/harness/harness.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <string>

namespace dbpulse::testing {
namespace {

using namespace std::chrono_literals;

// True when `pid` no longer exists, or exists only as a zombie waiting for a reaper that
// is not ours (container init processes do not always reap).
bool goneOrZombie(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string line;
  std::getline(stat, line);
  const std::size_t close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() || line[close + 2] == 'Z';
}

// Sets or unsets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

ProcessOptions shell(const std::string& script) {
  ProcessOptions options;
  options.argv = {"/bin/sh", "-c", script};
  return options;
}

TEST(ChildProcessTest, ReportsExitCode) {
  ChildProcess child(shell("exit 3"));
  EXPECT_EQ(child.waitExit(5s), 3);
  EXPECT_FALSE(child.alive());
  EXPECT_FALSE(child.signal(SIGTERM));
}

TEST(ChildProcessTest, ReportsDeathBySignalAs128PlusSignal) {
  ChildProcess child(shell("exec sleep 300"));
  EXPECT_TRUE(child.alive());
  EXPECT_EQ(child.waitExit(50ms), std::nullopt);
  ASSERT_TRUE(child.signal(SIGKILL));
  EXPECT_EQ(child.waitExit(5s), 128 + SIGKILL);
}

TEST(ChildProcessTest, WritesStdoutAndStderrToItsLogAndPassesEnvironment) {
  ProcessOptions options = shell("echo \"out $GREETING\"; echo err >&2");
  options.env = {{"GREETING", "hello"}};
  ChildProcess child(options);
  ASSERT_EQ(child.waitExit(5s), 0);
  EXPECT_NE(child.log().find("out hello"), std::string::npos) << child.log();
  EXPECT_NE(child.log().find("err"), std::string::npos) << child.log();
}

TEST(ChildProcessTest, DropsEnvironmentVariablesByPrefix) {
  ScopedEnv leaked("DBPULSE_POSTGRES_DSN", "host=nowhere");
  ProcessOptions options = shell("echo \"[${DBPULSE_POSTGRES_DSN:-unset}]\"");
  options.env_remove_prefixes = {"DBPULSE_"};
  ChildProcess child(options);
  ASSERT_EQ(child.waitExit(5s), 0);
  EXPECT_NE(child.log().find("[unset]"), std::string::npos) << child.log();
}

TEST(ChildProcessTest, ThrowsWhenTheProgramDoesNotExist) {
  ProcessOptions options;
  options.argv = {"/nonexistent/dbpulse-no-such-program"};
  EXPECT_THROW(ChildProcess child(options), HarnessError);
}

TEST(ChildProcessTest, DestructorStopsAndReapsTheChild) {
  pid_t pid = 0;
  {
    ChildProcess child(shell("exec sleep 300"));
    pid = child.pid();
    ASSERT_TRUE(child.alive());
  }
  // Reaped by us, so not even a zombie is left.
  EXPECT_NE(::kill(pid, 0), 0);
}

TEST(ChildProcessTest, DestructorKillsAChildIgnoringSigtermAndItsProcessGroup) {
  TempDir dir;
  const auto pid_file = dir / "grandchild.pid";
  pid_t grandchild = 0;
  {
    ProcessOptions options =
        shell("trap '' TERM; sleep 300 & echo $! > " + pid_file.string() + "; wait");
    options.stop_grace = 200ms;
    ChildProcess child(options);
    ASSERT_TRUE(pollUntil([&] { return !readFile(pid_file).empty(); }, 5s));
    grandchild = std::stoi(readFile(pid_file));
    ASSERT_FALSE(goneOrZombie(grandchild));
  }
  EXPECT_TRUE(pollUntil([&] { return goneOrZombie(grandchild); }, 5s));
}

TEST(RunCommandTest, CapturesStdoutStderrStdinAndExitCode) {
  RunOptions options;
  options.stdin_text = "from stdin";
  const CommandResult result =
      runCommand({"/bin/sh", "-c", "cat; echo; echo oops >&2; exit 4"}, 5s, options);
  EXPECT_EQ(result.exit_code, 4) << result.describe();
  EXPECT_EQ(result.out, "from stdin\n");
  EXPECT_EQ(result.err, "oops\n");
}

TEST(RunCommandTest, KillsAProgramThatOutlivesItsTimeout) {
  const auto started = std::chrono::steady_clock::now();
  const CommandResult result = runCommand({"sleep", "300"}, 200ms);
  EXPECT_EQ(result.exit_code, std::nullopt);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
}

TEST(PollUntilTest, ReturnsTrueOnceTheConditionHoldsAndFalseAtTheDeadline) {
  int calls = 0;
  EXPECT_TRUE(pollUntil([&] { return ++calls == 3; }, 5s, 1ms));
  EXPECT_EQ(calls, 3);
  const auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(pollUntil([] { return false; }, 100ms, 10ms));
  EXPECT_GE(std::chrono::steady_clock::now() - started, 100ms);
}

TEST(FreeLoopbackPortTest, ReturnsABindablePort) {
  const int port = freeLoopbackPort();
  ASSERT_GT(port, 0);
  ASSERT_LT(port, 65536);
  EXPECT_FALSE(canConnect(port, 200ms));
}

TEST(RequireBinaryTest, PresentBinaryPasses) { EXPECT_TRUE(requireBinary("/bin/sh", "dash")); }

TEST(RequireBinaryTest, MissingBinaryFailsInCiNamingThePackage) {
  ScopedEnv ci("CI", "true");
  EXPECT_FATAL_FAILURE((void)requireBinary("/nonexistent/promtool", "prometheus"),
                       "install the Debian package prometheus");
}

TEST(RequireBinaryTest, MissingBinarySkipsOutsideCi) {
  ScopedEnv ci("CI", nullptr);
  ::testing::TestPartResultArray results;
  bool present = true;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
    present = requireBinary("/nonexistent/promtool", "prometheus");
  }
  EXPECT_FALSE(present);
  ASSERT_EQ(results.size(), 1);
  EXPECT_TRUE(results.GetTestPartResult(0).skipped());
  EXPECT_NE(std::string(results.GetTestPartResult(0).message()).find("prometheus"),
            std::string::npos);
}

TEST(HttpClientTest, ReturnsStatusZeroWhenNothingListens) {
  const HttpResponse response =
      httpGet("http://127.0.0.1:" + std::to_string(freeLoopbackPort()) + "/health", 2s);
  EXPECT_EQ(response.status, 0);
  EXPECT_FALSE(response.error.empty());
}

TEST(ExpositionTest, FindsSamplesByNameAndLabelSubset) {
  const std::string text =
      "# HELP pg_up Whether PostgreSQL is reachable.\n"
      "# TYPE pg_up gauge\n"
      "pg_up 1\n"
      "pg_upx 7\n"
      "dbpulse_process_resident_memory_bytes{process=\"dbpulse\",pid=\"1\"} 1.5e+07\n"
      "dbpulse_process_resident_memory_bytes{process=\"companion\"} 2048 1700000000000\n"
      "odd{path=\"a\\\"b\\\\c\"} +Inf\n"
      "bad{unterminated=\"x} 1\n";
  EXPECT_EQ(sampleValue(text, "pg_up"), 1.0);
  EXPECT_EQ(sampleValue(text, "dbpulse_process_resident_memory_bytes", {{"process", "dbpulse"}}),
            1.5e7);
  EXPECT_EQ(sampleValue(text, "dbpulse_process_resident_memory_bytes", {{"process", "companion"}}),
            2048.0);
  EXPECT_EQ(sampleValue(text, "dbpulse_process_resident_memory_bytes", {{"process", "x"}}),
            std::nullopt);
  EXPECT_EQ(findSamples(text, "dbpulse_process_resident_memory_bytes").size(), 2u);
  EXPECT_EQ(sampleValue(text, "odd", {{"path", "a\"b\\c"}}),
            std::numeric_limits<double>::infinity());
  EXPECT_EQ(sampleValue(text, "bad"), std::nullopt);
  EXPECT_EQ(sampleValue(text, "missing"), std::nullopt);
}

TEST(PgServerTest, StartsAcceptsQueriesStopsAndRestartsOnTheSamePort) {
  if (!requirePostgres()) return;
  PgServer& pg = sharedPostgres();
  EXPECT_EQ(pg.queryValue("SELECT 1 + 1"), "2");
  EXPECT_EQ(pg.queryValue("SHOW shared_preload_libraries"), "pg_stat_statements");
  EXPECT_EQ(pg.queryValue("SHOW server_version_num")->substr(0, 2), "15");

  const int port = pg.port();
  pg.stop();
  EXPECT_FALSE(pg.running());
  EXPECT_THROW(pg.connect(), HarnessError);

  pg.start();
  EXPECT_TRUE(pg.running());
  EXPECT_EQ(pg.port(), port);
  EXPECT_EQ(pg.queryValue("SELECT 'back'"), "back");
}

TEST(PgServerTest, CreatesDatabasesIdempotentlyAndShowsOpenConnections) {
  if (!requirePostgres()) return;
  PgServer& pg = sharedPostgres();
  pg.createDatabase("harness_db");
  pg.createDatabase("harness_db");
  PgClient client = pg.connect("harness_db");
  const int backend = client.backendPid();
  EXPECT_EQ(
      pg.queryValue("SELECT datname FROM pg_stat_activity WHERE pid = " + std::to_string(backend)),
      "harness_db");
  EXPECT_THROW(client.exec("SELECT * FROM no_such_table"), HarnessError);
  EXPECT_EQ(client.queryValue("SELECT current_database()"), "harness_db");
}

TEST(PgServerTest, RunsAsThePostgresUserWhenTestsRunAsRoot) {
  if (!requirePostgres()) return;
  if (!runningAsRoot()) GTEST_SKIP() << "only meaningful as root";
  PgServer& pg = sharedPostgres();
  const std::optional<OsUser> postgres = lookupOsUser("postgres");
  ASSERT_TRUE(postgres);
  const std::string pid_line = readFile(pg.dataDir() / "postmaster.pid");
  const pid_t postmaster = std::stoi(pid_line);
  std::ifstream status("/proc/" + std::to_string(postmaster) + "/status");
  std::string line;
  std::optional<uid_t> uid;
  while (std::getline(status, line)) {
    if (line.rfind("Uid:", 0) == 0) uid = static_cast<uid_t>(std::stoul(line.substr(4)));
  }
  EXPECT_EQ(uid, postgres->uid);
}

TEST(RedisServerTest, AnswersPingAndCommandsAndRestartsOnTheSamePort) {
  if (!requireRedis()) return;
  RedisServer& redis = sharedRedis();
  EXPECT_TRUE(redis.ping());
  EXPECT_EQ(redis.command({"SET", "k", "v"}), "OK");
  EXPECT_EQ(redis.command({"GET", "k"}), "v");
  EXPECT_EQ(redis.command({"INCR", "n"}), "1");
  EXPECT_THROW(redis.command({"NOSUCHCOMMAND"}), HarnessError);

  const int port = redis.port();
  redis.stop();
  EXPECT_FALSE(redis.ping(200ms));
  redis.start();
  EXPECT_EQ(redis.port(), port);
  EXPECT_TRUE(redis.ping());
}

}  // namespace
}  // namespace dbpulse::testing
