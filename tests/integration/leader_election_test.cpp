// Leader election on a real PostgreSQL 15: electors in-process (lock taken, held, handed
// over, regained after the server killed the leader's session) and two real dbpulse
// sidecars on one database (one runs the database-wide collectors; SIGKILL it and the
// other takes over).

#include "agent/leader_election.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/core/clock.h"
#include "agent/core/sample_store.h"
#include "integration/harness/harness.h"

namespace dbpulse::testing {
namespace {

using namespace std::chrono_literals;

constexpr auto kWait = 15s;

std::optional<double> storeValue(const SampleStore& store, const std::string& name) {
  const auto snap = store.snapshot();
  const SnapshotFamily* fam = snap->family(name);
  if (fam == nullptr || fam->series.empty()) return std::nullopt;
  return fam->series[0].value;
}

class LeaderElectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!requirePostgres()) return;
    pg_ = &sharedPostgres();
    pg_->createDatabase("chat");
  }

  LeaderElectorOptions options() const {
    LeaderElectorOptions o;
    o.session.dsn = pg_->dsn("chat");
    o.session.max_backoff = 100ms;
    o.period = 100ms;
    return o;
  }

  // The backend pid holding the leader lock in `chat`, if any.
  std::optional<std::string> holder() {
    return pg_->queryValue(
        "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
        "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = 'chat' AND l.objid = " +
        std::to_string(kLeaderLockKey) + " AND l.objsubid = 1");
  }

  // The [agent] (plus `agent_extra`) and [postgres] sections of a sidecar on `chat`.
  std::string sidecarConfig(const DbpulseProcess& agent, const std::string& agent_extra) const {
    return "[agent]\nlisten = \"" + agent.listenAddress() + "\"\nstate_dir = \"" +
           agent.stateDir().string() + "\"\nlog_format = \"text\"\n" + agent_extra +
           "[postgres]\ndsn = \"" + pg_->dsn("chat") + "\"\n";
  }

  PgServer* pg_ = nullptr;
  SystemClock clock_;
};

TEST_F(LeaderElectionTest, OneLeadsTheOtherFollowsAndTakesOverWhenItStops) {
  SampleStore store_a(clock_), store_b(clock_);
  LeaderElector a(options(), store_a);
  LeaderElector b(options(), store_b);
  a.start();
  b.start();
  EXPECT_TRUE(a.isLeader());
  EXPECT_FALSE(b.isLeader());
  EXPECT_EQ(storeValue(store_a, "dbpulse_leader"), 1.0);
  EXPECT_EQ(storeValue(store_b, "dbpulse_leader"), 0.0);
  ASSERT_TRUE(holder().has_value()) << "the lock is visible in pg_locks";

  // Rounds go on: still exactly one leader, and the leader holds the lock once (not stacked).
  ASSERT_TRUE(
      pollUntil([&] { return storeValue(store_b, "dbpulse_leader_changes_total") == 0.0; }, 1s));
  EXPECT_EQ(pg_->queryValue("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                            "objid = " +
                            std::to_string(kLeaderLockKey)),
            "1");

  a.stop();
  EXPECT_FALSE(a.isLeader());
  // (The gauge is written just after the flag flips: wait for both.)
  EXPECT_TRUE(pollUntil(
      [&] { return b.isLeader() && storeValue(store_b, "dbpulse_leader") == 1.0; }, kWait))
      << "b takes over within a period";
  EXPECT_EQ(storeValue(store_a, "dbpulse_leader"), 0.0);
}

TEST_F(LeaderElectionTest, LeaderWhoseSessionIsKilledStepsDownAndRegainsTheLock) {
  SampleStore store(clock_);
  LeaderElector a(options(), store);
  a.start();
  ASSERT_TRUE(a.isLeader());
  const std::optional<std::string> pid = holder();
  ASSERT_TRUE(pid.has_value());
  pg_->exec("SELECT pg_terminate_backend(" + *pid + ")");
  // The round after the kill fails (connection lost: not leader), the next reconnects and
  // takes the lock again: two changes, and a new backend holds it.
  EXPECT_TRUE(pollUntil(
      [&] {
        const auto h = holder();
        return a.isLeader() && h && *h != *pid &&
               storeValue(store, "dbpulse_leader_changes_total") >= 3.0;
      },
      kWait))
      << "changes " << storeValue(store, "dbpulse_leader_changes_total").value_or(-1);
}

TEST_F(LeaderElectionTest, SidecarsShareOneLeaderThatHandsOverWhenKilled) {
  auto config = [&](const DbpulseProcess& agent) {
    return sidecarConfig(agent, "") +
           "[collectors.connections]\ninterval = \"300ms\"\ntimeout = \"250ms\"\n"
           "[collectors.cache]\ninterval = \"300ms\"\ntimeout = \"250ms\"\n"
           "[collectors.locks]\nenabled = false\n[collectors.statements]\nenabled = false\n"
           "[collectors.indexes]\nenabled = false\n[collectors.tables]\nenabled = false\n"
           "[collectors.size]\nenabled = false\n[collectors.replication]\nenabled = false\n"
           "[collectors.redis]\nenabled = false\n";
  };
  DbpulseProcess first, second;
  first.start(config(first));
  ASSERT_TRUE(first.waitReady(kWait));
  second.start(config(second));
  ASSERT_TRUE(second.waitReady(kWait)) << "a follower is ready: standby is not a failure";

  const auto leaderOf = [](const DbpulseProcess& agent) {
    return sampleValue(agent.metrics(), "dbpulse_leader");
  };
  EXPECT_EQ(leaderOf(first), 1.0);
  EXPECT_EQ(leaderOf(second), 0.0);
  // The leader runs the database-wide collector, the follower only the local ones.
  ASSERT_TRUE(first.waitForMetrics(
      [](const std::string& t) {
        return sampleValue(t, "dbpulse_collector_runs_total", {{"collector", "cache"}}) > 0;
      },
      kWait, "cache runs on the leader"));
  const std::string follower = second.metrics();
  EXPECT_EQ(sampleValue(follower, "pg_up"), 1.0) << "connections runs on every agent";
  EXPECT_FALSE(
      sampleValue(follower, "dbpulse_collector_runs_total", {{"collector", "cache"}}).has_value())
      << follower;
  const auto ready = nlohmann::json::parse(second.get("/health/ready").body);
  EXPECT_EQ(ready["leader"], false);
  EXPECT_EQ(ready["collectors"]["cache"]["standby"], true);
  EXPECT_NE(second.get("/").body.find("follower"), std::string::npos);

  ASSERT_TRUE(first.signal(SIGKILL));
  ASSERT_TRUE(first.process().waitExit(kWait).has_value());
  EXPECT_TRUE(second.waitForMetrics(
      [](const std::string& t) {
        return sampleValue(t, "dbpulse_leader") == 1.0 &&
               sampleValue(t, "dbpulse_collector_runs_total", {{"collector", "cache"}}) > 0;
      },
      kWait, "the follower takes over and runs cache"))
      << second.logTail();
  EXPECT_NE(second.logTail().find("now runs the database-wide collectors"), std::string::npos);
}

// The connection budget of many replicas: a follower holds one PostgreSQL connection (the
// leader lock shares the session of its `connections` collector), the leader at most three
// (that session, the slow group's, a short-lived one for the advisor or maintenance).
TEST_F(LeaderElectionTest, TwentySidecarsStayWithinTheConnectionBudget) {
  constexpr int kSidecars = 20;
  constexpr int kBudget = (kSidecars - 1) + 3;
  auto config = [&](const DbpulseProcess& agent) {
    return sidecarConfig(agent, "worker_threads = 2\n") +
           "[collectors.connections]\ninterval = \"1s\"\ntimeout = \"800ms\"\n"
           "[collectors.cache]\ninterval = \"1s\"\ntimeout = \"800ms\"\n"
           "[collectors.tables]\ninterval = \"1s\"\ntimeout = \"800ms\"\n"
           "[collectors.locks]\nenabled = false\n[collectors.statements]\nenabled = false\n"
           "[collectors.indexes]\nenabled = false\n[collectors.size]\nenabled = false\n"
           "[collectors.replication]\nenabled = false\n[collectors.redis]\nenabled = false\n"
           "[collectors.process]\nenabled = false\n";
  };
  std::vector<std::unique_ptr<DbpulseProcess>> agents;
  for (int i = 0; i < kSidecars; ++i) {
    agents.push_back(std::make_unique<DbpulseProcess>());
    agents.back()->start(config(*agents.back()));
  }
  for (auto& a : agents) ASSERT_TRUE(a->waitReady(30s)) << a->logTail();

  // The agent reporting dbpulse_leader 1, when exactly one does and the others report 0.
  auto soleLeader = [&]() -> std::optional<size_t> {
    std::optional<size_t> leader;
    for (size_t i = 0; i < agents.size(); ++i) {
      if (!agents[i]->running()) continue;
      const auto v = sampleValue(agents[i]->metrics(), "dbpulse_leader");
      if (!v) return std::nullopt;
      if (*v == 1.0) {
        if (leader) return std::nullopt;
        leader = i;
      }
    }
    return leader;
  };
  auto connections = [&] {
    return std::stoi(pg_->queryValue("SELECT count(*) FROM pg_stat_activity "
                                     "WHERE application_name = 'dbpulse' AND datname = 'chat'")
                         .value_or("-1"));
  };
  std::optional<size_t> leader;
  ASSERT_TRUE(pollUntil([&] { return (leader = soleLeader()).has_value(); }, kWait));
  // The leader's database-wide collectors (both session groups) have run twice.
  ASSERT_TRUE(agents[*leader]->waitForMetrics(
      [](const std::string& t) {
        return sampleValue(t, "dbpulse_collector_runs_total", {{"collector", "cache"}}) >= 2 &&
               sampleValue(t, "dbpulse_collector_runs_total", {{"collector", "tables"}}) >= 2;
      },
      kWait, "cache and tables run on the leader"));
  // Over a few rounds, every sample of pg_stat_activity stays within the budget.
  int most = 0;
  for (int i = 0; i < 12; ++i) {
    most = std::max(most, connections());
    std::this_thread::sleep_for(250ms);  // sampling over time, not waiting for a condition
  }
  EXPECT_LE(most, kBudget) << "dbpulse connections of " << kSidecars << " sidecars";
  EXPECT_GE(most, kSidecars) << "every sidecar holds a connection";
  std::printf("%d sidecars: at most %d dbpulse connections (budget %d)\n", kSidecars, most,
              kBudget);

  ASSERT_TRUE(agents[*leader]->signal(SIGKILL));
  ASSERT_TRUE(agents[*leader]->process().waitExit(kWait).has_value());
  const auto killed = std::chrono::steady_clock::now();
  std::optional<size_t> next;
  // One election round is 1 s (the shortest database collector interval); allow the
  // scrapes of 19 agents on a loaded machine on top.
  ASSERT_TRUE(pollUntil([&] { return (next = soleLeader()).has_value(); }, 3s))
      << "no single new leader within 3 s of the kill";
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - killed);
  std::printf("new leader %zu, %lld ms after the kill\n", *next,
              static_cast<long long>(took.count()));
  EXPECT_NE(*next, *leader);
  ASSERT_TRUE(agents[*next]->waitForMetrics(
      [](const std::string& t) {
        return sampleValue(t, "dbpulse_collector_runs_total", {{"collector", "tables"}}) >= 1;
      },
      kWait, "the new leader runs tables"));
  most = 0;
  for (int i = 0; i < 8; ++i) {
    most = std::max(most, connections());
    std::this_thread::sleep_for(250ms);
  }
  EXPECT_LE(most, kBudget - 1) << "19 sidecars after the kill";
}

}  // namespace
}  // namespace dbpulse::testing
