// The catalogue against its readers: the config loader accepts and stores every option an
// entry declares, the README documents each one, and each factory builds from a client of its
// entry's kind and from nothing else.

#include "collectors/catalog.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "agent/config.h"
#include "agent/pipeline.h"  // PgSession, as the pipeline uses it

namespace dbpulse {
namespace {

using collectors::CatalogEntry;
using collectors::Client;
using collectors::ClientKind;
using collectors::CollectorOption;

std::string allErrors(const LoadResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.toString() + "\n";
  return out;
}

// A valid value of `option` in TOML, and what the loader stores for it.
std::pair<std::string, int64_t> sampleValue(const CollectorOption& option) {
  if (option.kind == CollectorOption::Kind::kCount) return {"7", 7};
  return {"\"3s\"", 3000};
}

TEST(CatalogTest, EveryOptionIsLoadedIntoItsCollectorsSection) {
  int options = 0;
  for (const CatalogEntry& entry : collectors::catalog()) {
    for (const CollectorOption& option : entry.options) {
      ++options;
      EXPECT_FALSE(option.meaning.empty()) << entry.name << "." << option.key;
      const auto [text, stored] = sampleValue(option);
      const LoadResult r = loadConfigString(
          "[collectors." + entry.name + "]\n" + option.key + " = " + text + "\n", "t.toml", {});
      ASSERT_TRUE(r.config) << entry.name << "." << option.key << ": " << allErrors(r);
      const auto& set = r.config->collectors.at(entry.name).options;
      ASSERT_EQ(set.count(option.key), 1u) << entry.name << "." << option.key;
      EXPECT_EQ(set.at(option.key), stored) << entry.name << "." << option.key;
    }
  }
  EXPECT_GT(options, 0) << "the catalogue declares no option at all";
}

// README: "every collector has these keys" -- also one that does not read them.
TEST(CatalogTest, EveryCollectorAcceptsEveryOption) {
  for (const CatalogEntry& entry : collectors::catalog()) {
    for (const CatalogEntry& other : collectors::catalog()) {
      for (const CollectorOption& option : other.options) {
        const LoadResult r = loadConfigString("[collectors." + entry.name + "]\n" + option.key +
                                                  " = " + sampleValue(option).first + "\n",
                                              "t.toml", {});
        EXPECT_TRUE(r.config) << entry.name << "." << option.key << ": " << allErrors(r);
      }
    }
  }
}

TEST(CatalogTest, OptionsComeFromTheEnvironmentToo) {
  const LoadResult r = loadConfigString("", "t.toml",
                                        {{"DBPULSE_COLLECTORS_STATEMENTS_THRESHOLD", "2s"},
                                         {"DBPULSE_COLLECTORS_INDEXES_TOP_N", "9"}});
  ASSERT_TRUE(r.config) << allErrors(r);
  EXPECT_EQ(r.config->collectors.at("statements").options.at("threshold"), 2000);
  EXPECT_EQ(r.config->collectors.at("indexes").options.at("top_n"), 9);
  EXPECT_TRUE(r.config->collectors.at("cache").options.empty());
}

TEST(CatalogTest, AnInvalidOptionValueIsRejectedAtItsPosition) {
  const LoadResult r = loadConfigString(
      "[collectors.statements]\ntop_n = 0\n[collectors.indexes]\nthreshold = \"0s\"\n", "t.toml",
      {});
  ASSERT_EQ(r.errors.size(), 2u) << allErrors(r);
  EXPECT_EQ(r.errors[0].toString(),
            "t.toml:2:9: collectors.statements.top_n: must be between 1 and 10000, got 0");
  EXPECT_EQ(r.errors[1].toString(),
            "t.toml:4:13: collectors.indexes.threshold: must be greater than 0");
}

// One key, one meaning of its type: the loader validates it the same way in every section.
TEST(CatalogTest, AnOptionKeyHasOneKindAcrossEntries) {
  std::map<std::string, CollectorOption::Kind> kinds;
  for (const CatalogEntry& entry : collectors::catalog()) {
    for (const CollectorOption& option : entry.options) {
      auto [it, added] = kinds.emplace(option.key, option.kind);
      EXPECT_TRUE(added || it->second == option.kind) << entry.name << "." << option.key;
    }
  }
}

TEST(CatalogTest, EveryOptionIsAKnownConfigKey) {
  const auto keys = knownConfigKeys();
  for (const CatalogEntry& entry : collectors::catalog()) {
    for (const CollectorOption& option : entry.options) {
      EXPECT_NE(std::find(keys.begin(), keys.end(), "collectors.NAME." + option.key), keys.end())
          << option.key;
    }
  }
}

// The README's collector table has a row per collector, and that row names its options.
TEST(CatalogTest, ReadmeCollectorTableNamesEveryCollectorAndItsOptions) {
  std::ifstream in(std::string(DBPULSE_SOURCE_DIR) + "/README.md");
  std::stringstream ss;
  ss << in.rdbuf();
  std::map<std::string, std::string> rows;
  std::istringstream lines(ss.str());
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("| `", 0) != 0) continue;
    const size_t end = line.find('`', 3);
    if (end != std::string::npos) rows[line.substr(3, end - 3)] += line;
  }
  for (const CatalogEntry& entry : collectors::catalog()) {
    auto it = rows.find(entry.name);
    if (it == rows.end()) {
      ADD_FAILURE() << "no README table row for " << entry.name;
      continue;
    }
    for (const CollectorOption& option : entry.options) {
      EXPECT_NE(it->second.find("`" + option.key + "`"), std::string::npos)
          << "README row of " << entry.name << " does not name `" << option.key << "`";
    }
  }
}

TEST(CatalogTest, PostgresCollectorsAndOnlyTheyHaveADefaultGroup) {
  for (const CatalogEntry& entry : collectors::catalog()) {
    EXPECT_EQ(entry.client == ClientKind::kPostgres, !entry.default_group.empty()) << entry.name;
  }
}

// A client of each kind, as the agent's registry makes them (sessions do not connect yet).
Client clientOf(ClientKind kind) {
  switch (kind) {
    case ClientKind::kPostgres:
    case ClientKind::kPgbouncerConsole: {
      collectors::PgSessionOptions o;
      o.dsn = "host=127.0.0.1 port=1 dbname=x";
      return Client(std::make_shared<collectors::PgSession>(o));
    }
    case ClientKind::kRedis:
      return Client(
          std::make_shared<collectors::RedisServer>(collectors::RedisServer{"127.0.0.1", 1, ""}));
    case ClientKind::kCompanion: {
      collectors::CompanionServer c;
      c.metrics_url = "http://127.0.0.1:1/metrics";
      return Client(std::make_shared<collectors::CompanionServer>(c));
    }
  }
  return {};
}

// The C++ type a kind's client has (both PostgreSQL kinds hand over a PgSession: the
// registry keeps them apart).
int clientType(ClientKind kind) {
  return kind == ClientKind::kRedis ? 1 : kind == ClientKind::kCompanion ? 2 : 0;
}

TEST(CatalogTest, EachFactoryBuildsFromAClientOfItsKindOnly) {
  const ClientKind kinds[] = {ClientKind::kPostgres, ClientKind::kPgbouncerConsole,
                              ClientKind::kRedis, ClientKind::kCompanion};
  for (const CatalogEntry& entry : collectors::catalog()) {
    ASSERT_TRUE(entry.make) << entry.name;
    collectors::CollectorEnv env;
    env.settings.interval = entry.default_interval;
    env.settings.timeout = entry.default_timeout;
    env.client = clientOf(entry.client);
    auto collector = entry.make(env);
    ASSERT_NE(collector, nullptr) << entry.name << " with a client of its kind";
    EXPECT_EQ(collector->name(), entry.name);
    // `process` also reports dbpulse itself: it runs without the chat server.
    if (entry.name == "process") continue;
    env.client = Client();
    EXPECT_EQ(entry.make(env), nullptr) << entry.name << " without a client";
    for (ClientKind other : kinds) {
      if (clientType(other) == clientType(entry.client)) continue;
      env.client = clientOf(other);
      EXPECT_EQ(entry.make(env), nullptr) << entry.name << " with another kind's client";
    }
  }
}

}  // namespace
}  // namespace dbpulse
