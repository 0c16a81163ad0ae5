// buildPipeline without servers: which collectors a config schedules, which client each kind
// gets (sessions are made but never connect: the scheduler is not started), and the
// details providers the admin API finds by name.

#include "agent/pipeline.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "collectors/postgres/locks_collector.h"
#include "collectors/postgres/size_collector.h"
#include "collectors/postgres/statements_collector.h"
#include "fakes/fake_clock.h"

namespace dbpulse {
namespace {

using collectors::ClientKind;
using collectors::PgSession;

constexpr const char* kPostgresDsn = "host=127.0.0.1 port=1 dbname=pipeline_test user=u";
constexpr const char* kBouncerDsn = "host=127.0.0.1 port=2 dbname=pgbouncer user=stats";

class PipelineTest : public ::testing::Test {
 protected:
  Config load(const std::string& toml) {
    const LoadResult r = loadConfigString(
        "[postgres]\ndsn = \"" + std::string(kPostgresDsn) + "\"\n" + toml, "t.toml", {});
    std::string errors;
    for (const auto& e : r.errors) errors += e.toString() + "\n";
    EXPECT_TRUE(r.config) << errors;
    return r.config ? *r.config : Config{};
  }

  std::shared_ptr<Pipeline> build(const Config& config,
                                  std::shared_ptr<PgSession> shared = nullptr) {
    return buildPipeline(config, store_, clock_, std::make_shared<AdvisorGate>(),
                         std::move(shared));
  }

  static std::set<std::string> scheduledJobs(const Pipeline& p) {
    std::set<std::string> names;
    for (const auto& s : p.scheduler->status()) names.insert(s.name);
    return names;
  }

  fakes::FakeClock clock_;
  SampleStore store_{clock_};
};

// Everything on that needs no extra server setting: the PostgreSQL collectors, redis (its
// default address) and process; pgbouncer and companion wait for their settings.
TEST_F(PipelineTest, DefaultConfigSchedulesTheCollectorsThatHaveTheirClient) {
  auto p = build(load(""));
  const std::set<std::string> expected = {"connections", "statements", "indexes", "cache",
                                          "stats",       "tables",     "size",    "locks",
                                          "replication", "redis",      "process", "advisor"};
  EXPECT_EQ(p->collectors, expected);
  EXPECT_EQ(scheduledJobs(*p), expected);
  EXPECT_EQ(p->clients.count(ClientKind::kPgbouncerConsole), 0u);
}

TEST_F(PipelineTest, PgbouncerAndCompanionRunOnceTheirServersAreConfigured) {
  auto p = build(load("[pgbouncer]\ndsn = \"" + std::string(kBouncerDsn) +
                      "\"\n[companion]\nmetrics_url = \"http://127.0.0.1:1/metrics\"\n"));
  EXPECT_EQ(p->collectors.count("pgbouncer"), 1u);
  EXPECT_EQ(p->collectors.count("companion"), 1u);
  // The pgbouncer collector got the console session, not a PostgreSQL group's.
  ASSERT_EQ(p->clients.count(ClientKind::kPgbouncerConsole), 1u);
  const PgSession* console = p->clients.at(ClientKind::kPgbouncerConsole).get<PgSession>();
  ASSERT_NE(console, nullptr);
  EXPECT_NE(console->redactedDsn().find("port=2"), std::string::npos) << console->redactedDsn();
  for (const auto& [group, session] : p->postgres) {
    EXPECT_NE(session->redactedDsn().find("port=1"), std::string::npos) << group;
  }
}

TEST_F(PipelineTest, DisabledCollectorsAreNotScheduledAndTheirClientsNotMade) {
  std::string toml = "[pgbouncer]\ndsn = \"" + std::string(kBouncerDsn) + "\"\n";
  for (const auto& entry : collectors::catalog()) {
    if (entry.name != "cache") {
      toml += "[collectors." + entry.name + "]\nenabled = false\n";
    }
  }
  auto p = build(load(toml));
  EXPECT_EQ(p->collectors, (std::set<std::string>{"cache", "advisor"}));
  EXPECT_EQ(p->postgres.size(), 1u);
  EXPECT_EQ(p->postgres.count("fast"), 1u);
  EXPECT_TRUE(p->clients.empty()) << "no pgbouncer console without the pgbouncer collector";
}

TEST_F(PipelineTest, NoPostgresCollectorNoSessionNoAdvisor) {
  std::string toml;
  for (const auto& entry : collectors::catalog()) {
    if (entry.client == ClientKind::kPostgres) {
      toml += "[collectors." + entry.name + "]\nenabled = false\n";
    }
  }
  auto p = build(load(toml));
  EXPECT_TRUE(p->postgres.empty());
  EXPECT_EQ(p->collectors, (std::set<std::string>{"redis", "process"}));
}

// A PostgreSQL collector gets the session of its configured group: one per group.
TEST_F(PipelineTest, PostgresCollectorsShareTheirGroupsSession) {
  auto p = build(load("[collectors.cache]\ngroup = \"own\"\n[agent]\nleader_election = true\n"));
  EXPECT_EQ(p->postgres.size(), 3u);
  for (const char* g : {"fast", "slow", "own"}) EXPECT_EQ(p->postgres.count(g), 1u) << g;
  // Only leader-only collectors use "slow" and "own"; "fast" serves `connections` too.
  std::set<const PgSession*> leader(p->leader_sessions.begin(), p->leader_sessions.end());
  EXPECT_EQ(leader, (std::set<const PgSession*>{p->postgres.at("slow").get(),
                                                p->postgres.at("own").get()}));
}

// `group` is a PostgreSQL setting: on another kind of collector it makes no session.
TEST_F(PipelineTest, AGroupOnANonPostgresCollectorMakesNoSession) {
  auto p = build(load("[collectors.redis]\ngroup = \"cachegroup\"\n[pgbouncer]\ndsn = \"" +
                      std::string(kBouncerDsn) + "\"\n[collectors.pgbouncer]\ngroup = \"b\"\n"));
  EXPECT_EQ(p->postgres.size(), 2u);
  EXPECT_EQ(p->postgres.count("cachegroup") + p->postgres.count("b"), 0u);
  EXPECT_EQ(p->collectors.count("redis") + p->collectors.count("pgbouncer"), 2u);
}

TEST_F(PipelineTest, TheElectorsSessionServesTheLocalGroup) {
  collectors::PgSessionOptions o;
  o.dsn = kPostgresDsn;
  auto shared = std::make_shared<PgSession>(o);
  auto p = build(load(""), shared);
  EXPECT_EQ(p->shared_session, shared);
  EXPECT_EQ(p->postgres.at("fast"), shared);
  EXPECT_NE(p->postgres.at("slow"), shared);
}

TEST_F(PipelineTest, DetailsProvidersAreFoundByCollectorName) {
  auto p = build(load(""));
  EXPECT_EQ(p->details_providers.size(), 3u);
  EXPECT_TRUE(p->details<std::vector<collectors::TopStatement>>("statements"));
  EXPECT_TRUE(p->details<std::vector<collectors::BlockedSession>>("locks"));
  EXPECT_TRUE(p->details<collectors::SizeReport>("size"));
  // Another type, a collector without details, an unknown name: nothing.
  EXPECT_FALSE(p->details<collectors::SizeReport>("statements"));
  EXPECT_FALSE(p->details<collectors::SizeReport>("cache"));
  EXPECT_FALSE(p->details<collectors::SizeReport>("nope"));

  auto off = build(load("[collectors.statements]\nenabled = false\n"));
  EXPECT_FALSE(off->details<std::vector<collectors::TopStatement>>("statements"));
  EXPECT_TRUE(off->details<collectors::SizeReport>("size"));
}

}  // namespace
}  // namespace dbpulse
