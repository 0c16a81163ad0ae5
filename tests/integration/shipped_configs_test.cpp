// The configs we ship load without a single warning: the demo's (packaging/demo/
// dbpulse.toml), the Debian package's (packaging/debian/dbpulse.toml) and the Kubernetes
// ConfigMap's (packaging/kubernetes/dbpulse-sidecar.yaml), each with the shipped rule
// pack. Only what cannot work on a test machine is changed: the listen address, the state
// directory, the secret files' directory and the rule pack's install path (the repository's
// rules/default instead of /usr/share/dbpulse). `dbpulse check-config` must print nothing
// but OK, and the daemon must load the config and the rule pack without a warning (a rule
// that looks back further than [agent] history used to warn in the demo's own config).
// Warnings about the absent servers (PostgreSQL, Redis) are the environment's, not the
// config's, and are not counted.

#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "integration/harness/harness.h"

namespace dbpulse::testing {
namespace {

using namespace std::chrono_literals;

const std::filesystem::path kSource = DBPULSE_SOURCE_DIR;
const std::string kRulePack = (kSource / "rules/default/*.yml").string();

void replaceAll(std::string& text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

// The value of `key = "..."` in the TOML text replaced by `value` (every occurrence).
void setString(std::string& toml, const std::string& key, const std::string& value) {
  std::istringstream in(toml);
  std::string out, line;
  while (std::getline(in, line)) {
    const size_t start = line.find_first_not_of(' ');
    if (start != std::string::npos && line.compare(start, key.size() + 3, key + " = ") == 0) {
      const size_t open = line.find('"', start);
      const size_t close = line.find('"', open + 1);
      if (open != std::string::npos && close != std::string::npos) {
        line = line.substr(0, open + 1) + value + line.substr(close);
      }
    }
    out += line + "\n";
  }
  toml = out;
}

// The ConfigMap's `dbpulse.toml: |` block, unindented.
std::string configMapToml(const std::string& yaml) {
  std::istringstream in(yaml);
  std::string line, out;
  bool inside = false;
  while (std::getline(in, line)) {
    if (!inside) {
      inside = line == "  dbpulse.toml: |";
      continue;
    }
    if (!line.empty() && line.rfind("    ", 0) != 0) break;
    out += (line.empty() ? "" : line.substr(4)) + "\n";
  }
  return out;
}

// Log lines at warn level or above, in dbpulse's text or JSON log format.
std::vector<std::string> warnings(const std::string& log) {
  std::vector<std::string> found;
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    bool bad = false;
    for (const char* level : {"warning", "warn", "error", "critical"}) {
      bad |= line.find(std::string(" ") + level + " ") != std::string::npos ||
             line.find(std::string("\"level\":\"") + level + "\"") != std::string::npos;
    }
    // The absent servers of a test machine (the configs name real ones).
    for (const char* environmental :
         {"leader election:", "collector ", "alertmanager", "postgres", "redis"}) {
      if (bad && line.find(environmental) != std::string::npos) bad = false;
    }
    if (bad) found.push_back(line);
  }
  return found;
}

class ShippedConfigsTest : public ::testing::Test {
 protected:
  // Adapts the machine-specific paths of `toml`, then checks it both ways.
  void expectNoWarnings(std::string toml) {
    replaceAll(toml, "/usr/share/dbpulse/rules/default/*.yml", kRulePack);
    replaceAll(toml, "/var/run/secrets/dbpulse/", (agent_.dir() / "secrets/").string());
    setString(toml, "listen", agent_.listenAddress());
    setString(toml, "state_dir", agent_.stateDir().string());
    ASSERT_NE(toml.find(kRulePack), std::string::npos) << "no rule pack in\n" << toml;
    std::filesystem::create_directories(agent_.dir() / "secrets");
    for (const char* secret : {"admin-token", "pg-password"}) {
      writeFile(agent_.dir() / "secrets" / secret, "test-secret-value\n");
      std::filesystem::permissions(
          agent_.dir() / "secrets" / secret,
          std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    }
    const auto path = agent_.writeConfig(toml);

    const CommandResult check = runDbpulse({"check-config", path.string()}, 30s);
    EXPECT_EQ(check.exit_code, 0) << check.describe();
    EXPECT_EQ(check.out, path.string() + ": OK\n") << check.describe();
    EXPECT_EQ(check.err, "") << check.describe();

    agent_.start(toml);
    std::string log;
    ASSERT_TRUE(pollUntil(
        [&] {
          log = readFile(agent_.logPath());
          return log.find(" rules in ") != std::string::npos;
        },
        20s))
        << "the rule pack was not loaded:\n"
        << agent_.logTail();
    EXPECT_EQ(log.find("no rules"), std::string::npos) << log;
    EXPECT_TRUE(agent_.waitHealthy(15s));
    log = readFile(agent_.logPath());
    const auto found = warnings(log);
    EXPECT_TRUE(found.empty()) << found.size() << " warning(s), the first: " << found.front()
                               << "\n\nlog:\n"
                               << log;
  }

  DbpulseProcess agent_;
};

TEST_F(ShippedConfigsTest, DemoConfigLoadsWithoutWarnings) {
  std::string toml = readFile(kSource / "packaging/demo/dbpulse.toml");
  replaceAll(toml, "@RULES_DIR@/*.yml", kRulePack);
  replaceAll(toml, "@DEMO_DIR@", agent_.dir().path().string());
  for (const char* port : {"@PG_PORT@", "@REDIS_PORT@", "@CHAT_PORT@", "@AM_PORT@"}) {
    replaceAll(toml, port, std::to_string(freeLoopbackPort()));
  }
  replaceAll(toml, "@DBPULSE_PORT@", std::to_string(agent_.port()));
  ASSERT_FALSE(std::regex_search(toml, std::regex("@[A-Z_]+@")))
      << "a placeholder run.sh does not fill:\n"
      << toml;
  expectNoWarnings(toml);
}

TEST_F(ShippedConfigsTest, DebianPackageConfigLoadsWithoutWarnings) {
  expectNoWarnings(readFile(kSource / "packaging/debian/dbpulse.toml"));
}

TEST_F(ShippedConfigsTest, KubernetesConfigMapLoadsWithoutWarnings) {
  const std::string toml =
      configMapToml(readFile(kSource / "packaging/kubernetes/dbpulse-sidecar.yaml"));
  ASSERT_NE(toml.find("[agent]"), std::string::npos) << "no dbpulse.toml in the ConfigMap";
  expectNoWarnings(toml);
}

}  // namespace
}  // namespace dbpulse::testing
