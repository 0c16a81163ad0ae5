// The Grafana dashboards against real data: a real Prometheus scrapes the real dbpulse
// binary, which watches a real PostgreSQL (pg_stat_statements), Redis and a stand-in chat
// server; every query of every panel and variable in dashboards/*.json (with Grafana's
// variables replaced: $instance and $datname by ".*", $__rate_interval by 1m) must be
// accepted by Prometheus and return at least one series — except the few listed below
// whose data needs what this setup has not got (replicas, pgbouncer, a cgroup limit, a
// switched-off collector). A wrong metric or label name, a typo in a selector or an
// aggregation that drops everything shows up as an empty panel here.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "agent/core/text.h"
#include "integration/chat_server_stub.h"
#include "integration/harness/harness.h"

namespace dbpulse::testing {
namespace {

using namespace std::chrono_literals;

// Queries that stay empty here, and why.
const std::vector<std::string> kNoDataHere = {
    "dbpulse_pg_replication_",    // a standalone server: no replica, no slot
    "pgbouncer_",                 // no [pgbouncer] dsn
    "dbpulse_cgroup_memory_",     // the test may run outside a cgroup v2 limit
    "dbpulse_collector_enabled",  // the table of switched-off collectors
};

struct Query {
  std::string where;
  std::string expr;
};

std::vector<Query> dashboardQueries() {
  std::vector<Query> out;
  const std::filesystem::path dir = std::filesystem::path(DBPULSE_SOURCE_DIR) / "dashboards";
  auto substitute = [](std::string e) {
    e = std::regex_replace(e, std::regex(R"(\$__rate_interval)"), "1m");
    e = std::regex_replace(e, std::regex(R"(\$\{?(instance|datname)\}?)"), ".*");
    return e;
  };
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    const auto d = nlohmann::json::parse(text.str());
    const std::string name = entry.path().filename().string();
    for (const auto& v : d["templating"]["list"]) {
      if (v.value("type", "") != "query") continue;
      std::smatch m;
      const std::string q = v["query"]["query"].get<std::string>();
      if (std::regex_match(q, m, std::regex(R"(label_values\((.*),\s*\w+\))"))) {
        out.push_back({name + " variable " + v["name"].get<std::string>(), substitute(m[1])});
      }
    }
    std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& panels) {
      for (const auto& p : panels) {
        if (p.contains("panels")) walk(p["panels"]);
        if (!p.contains("targets")) continue;
        for (const auto& t : p["targets"]) {
          out.push_back({name + " panel '" + p["title"].get<std::string>() + "' " +
                             t["refId"].get<std::string>(),
                         substitute(t["expr"].get<std::string>())});
        }
      }
    };
    walk(d["panels"]);
  }
  return out;
}

bool expectedEmpty(const std::string& expr) {
  for (const auto& k : kNoDataHere) {
    if (expr.find(k) != std::string::npos) return true;
  }
  return false;
}

TEST(DashboardsLive, EveryQueryReturnsDataFromARealAgent) {
  if (!requirePostgres() || !requireRedis() ||
      !requireBinary(std::filesystem::path(kPrometheusBinary), "prometheus")) {
    return;
  }
  const std::vector<Query> queries = dashboardQueries();
  ASSERT_GT(queries.size(), 50u);

  PgServer& pg = sharedPostgres();
  pg.createDatabase("dashboards");
  PgClient sql(pg.dsn("dashboards"));
  sql.exec("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
  sql.exec("CREATE TABLE IF NOT EXISTS t(a int)");
  sql.exec("INSERT INTO t SELECT generate_series(1, 2000)");
  sql.exec("DELETE FROM t WHERE a % 3 = 0");
  RedisServer& redis = sharedRedis();
  // A maxmemory, so "memory used vs maxmemory" has its limit line (this test binary's
  // own Redis: nothing else sees the setting).
  redis.command({"CONFIG", "SET", "maxmemory", "268435456"});

  ChatServerStub chat;
  chat.set("/health", {200, "application/json", R"({"status":"ok"})", 0ms});
  chat.set("/metrics", {200, "text/plain; version=0.0.4", "up_stub 1\n", 0ms});
  DbpulseProcess agent;
  writeFile(agent.dir() / "chat.pid", std::to_string(::getpid()) + "\n");
  const int dead_alertmanager = freeLoopbackPort();
  std::string config = "[agent]\nlisten = \"" + agent.listenAddress() + "\"\nstate_dir = \"" +
                       agent.stateDir().string() + "\"\nleader_election = true\n";
  config += "[postgres]\ndsn = \"" + pg.dsn("dashboards") + "\"\n";
  config += "[redis]\naddress = \"" + redis.address() + "\"\n";
  config += "[companion]\nhealth_url = \"" + chat.url("/health") + "\"\nmetrics_url = \"" +
            chat.url("/metrics") + "\"\npid_file = \"" + (agent.dir() / "chat.pid").string() +
            "\"\n";
  for (const char* c : {"connections", "statements", "cache", "stats", "tables", "size", "indexes",
                        "locks", "replication", "redis", "process", "companion"}) {
    config += std::string("[collectors.") + c + "]\ninterval = \"1s\"\n";
  }
  config += "[rules]\nfiles = [\"" + std::string(DBPULSE_SOURCE_DIR) +
            "/rules/default/*.yml\"]\nevaluation_interval = \"1s\"\n";
  // An Alertmanager that is not there: notifications fail, the outbox fills,
  // DbpulseAlertmanagerDown goes pending (so ALERTS has a series).
  config +=
      "[alertmanager]\nurls = [\"http://127.0.0.1:" + std::to_string(dead_alertmanager) + "\"]\n";
  agent.start(config);
  ASSERT_TRUE(agent.waitReady(20s));
  // One maintenance run (dry run: plans, runs nothing), so its "last run" series exists.
  const HttpResponse optimize =
      httpPost(agent.baseUrl() + "/admin/database/optimize", R"({"dry_run": true})");
  ASSERT_EQ(optimize.status, 202) << optimize.body << optimize.error;
  PrometheusServer prometheus(scrapeOne("dbpulse", "127.0.0.1:" + std::to_string(agent.port())));

  std::vector<std::string> problems;
  auto check = [&](bool final_round) {
    problems.clear();
    // Traffic between rounds: statements, cache lookups and misses.
    sql.exec("SELECT count(*) FROM t WHERE a > 10");
    redis.command({"SET", "k", "v"});
    redis.command({"GET", "k"});
    redis.command({"GET", "missing"});
    for (const Query& q : queries) {
      std::string error;
      const int n = prometheus.seriesCount(q.expr, &error);
      if (n < 0) {
        problems.push_back(q.where + ": rejected by Prometheus: " + error + "\n  " + q.expr);
      } else if (n == 0 && !expectedEmpty(q.expr)) {
        problems.push_back(q.where + ": no data\n  " + q.expr);
      }
    }
    if (final_round) return true;
    return problems.empty();
  };
  // rate() needs two scrapes of a counter that moved; give it a few rounds.
  const bool ok = pollUntil([&] { return check(false); }, 25s, 1s);
  if (!ok) check(true);
  std::string all;
  for (const auto& p : problems) all += p + "\n";
  EXPECT_TRUE(problems.empty()) << problems.size() << " of " << queries.size()
                                << " dashboard queries fail:\n"
                                << all;
}

// Issue #8: a dashboard's irate() over a dbpulse counter scraped more often than its
// collector runs was flat most of the time (each collector value was stored at several
// scrape times). With the collection timestamp on counters, every step sees the last
// increase: here a 500 ms scrape over a collector that runs every 2 s.
TEST(DashboardsLive, IrateOverACounterScrapedFasterThanItsCollectorIsNeverFlat) {
  if (!requireBinary(std::filesystem::path(kPrometheusBinary), "prometheus")) return;
  DbpulseProcess agent;
  std::string config = "[agent]\nlisten = \"" + agent.listenAddress() + "\"\nstate_dir = \"" +
                       agent.stateDir().string() + "\"\n";
  for (const char* c : {"connections", "statements", "cache", "stats", "tables", "size", "indexes",
                        "locks", "replication", "redis", "companion"}) {
    config += std::string("[collectors.") + c + "]\nenabled = false\n";
  }
  config += "[collectors.process]\ninterval = \"2s\"\n";
  agent.start(config);
  ASSERT_TRUE(agent.waitReady(20s));
  PrometheusServer prometheus(scrapeOne("dbpulse", "127.0.0.1:" + std::to_string(agent.port())));
  const std::string counter = "dbpulse_collector_runs_total{collector=\"process\"}";
  std::string error;
  ASSERT_TRUE(pollUntil([&] { return prometheus.seriesCount(counter, &error) == 1; }, 20s))
      << error;
  const double start = nowSeconds();
  // Enough for 6 collector runs and 24 scrapes.
  ASSERT_TRUE(pollUntil([&] { return nowSeconds() > start + 13; }, 20s, 500ms));
  const std::vector<double> irate =
      prometheus.rangeValues("irate(" + counter + "[5s])", start + 5, nowSeconds() - 1, 0.5);
  ASSERT_GE(irate.size(), 12u);
  int flat = 0;
  for (double v : irate) flat += v == 0 ? 1 : 0;
  EXPECT_EQ(flat, 0) << flat << " of " << irate.size() << " steps flat";
  for (double v : irate) EXPECT_NEAR(v, 0.5, 0.2) << "one run per 2 s";
}

}  // namespace
}  // namespace dbpulse::testing
