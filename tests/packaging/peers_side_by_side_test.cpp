// dbpulse side by side with the exporters it stands in for (issue #8): postgres_exporter
// 0.11 and redis_exporter 1.45 (Debian's packages) watch the same PostgreSQL database and
// the same Redis as one dbpulse. One real Prometheus scrapes the two exporters, another
// scrapes dbpulse; both load the upstream alert rules. The upstream artifacts are copies
// under tests/reference/upstream (see its README for their source and commit):
//   - every query of postgres_mixin's postgres-overview dashboard and of redis_exporter's
//     two Grafana dashboards returns data from dbpulse wherever it returns data from the
//     exporters, with the dashboards' template variables resolved on each side as Grafana
//     does (label_values), and every variable that resolves on the exporters resolves on
//     dbpulse;
//   - postgres_mixin's and redis-mixin's alert and recording rules load into dbpulse's own
//     rule engine without an error; every series selector in them that has data from the
//     exporters has data from dbpulse; and an alert expression that holds on the
//     exporters' data holds on dbpulse's.
// The job names are the scrape config's choice, not the exporter's: each Prometheus names
// its PostgreSQL job "postgres" and its Redis job "redis", as the upstream files assume
// (postgres-overview's instance variable reads up{job=~"postgres.*"}, redis-mixin selects
// job="redis"); the dbpulse side scrapes the one dbpulse under both names.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "integration/chat_server_stub.h"
#include "integration/harness/harness.h"

namespace dbpulse::testing {
namespace {

using namespace std::chrono_literals;

const std::filesystem::path kUpstream =
    std::filesystem::path(DBPULSE_SOURCE_DIR) / "tests/reference/upstream";
constexpr std::string_view kPostgresExporter = "/usr/bin/prometheus-postgres-exporter";
constexpr std::string_view kRedisExporter = "/usr/bin/prometheus-redis-exporter";
const std::vector<std::string> kDashboards = {
    "postgres_mixin-postgres-overview.json",
    "redis_exporter-grafana_prometheus_redis_dashboard.json",
    "redis-mixin-redis-overview.json",
};
const std::vector<std::string> kRuleFiles = {
    "postgres_mixin-alerts.yml",
    "redis-mixin-alerts.yml",
    "redis-mixin-rules.yml",
};

struct Variable {
  std::string name;
  std::string match;  // label_values(match, label); empty: label_values(label)
  std::string label;
};

struct Dashboard {
  std::string file;
  std::vector<Variable> variables;  // in the dashboard's order (later ones use earlier ones)
  std::vector<std::pair<std::string, std::string>> queries;  // where, expr
};

Dashboard loadDashboard(const std::string& file) {
  Dashboard out{file, {}, {}};
  const auto d = nlohmann::json::parse(readFile(kUpstream / file));
  if (d.contains("templating")) {
    for (const auto& v : d["templating"]["list"]) {
      if (v.value("type", "") != "query") continue;
      std::string q =
          v["query"].is_object() ? v["query"].value("query", "") : v["query"].get<std::string>();
      std::smatch m;
      if (std::regex_match(q, m, std::regex(R"(\s*label_values\((.*),\s*(\w+)\s*\)\s*)"))) {
        out.variables.push_back({v["name"].get<std::string>(), m[1], m[2]});
      } else if (std::regex_match(q, m, std::regex(R"(\s*label_values\(\s*(\w+)\s*\)\s*)"))) {
        out.variables.push_back({v["name"].get<std::string>(), "", m[1]});
      } else {
        ADD_FAILURE() << file << ": variable " << v["name"] << " is not label_values(): " << q;
      }
    }
  }
  std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& panels) {
    for (const auto& p : panels) {
      if (p.contains("panels")) walk(p["panels"]);
      if (!p.contains("targets")) continue;
      for (const auto& t : p["targets"]) {
        const std::string expr = t.value("expr", "");
        if (expr.empty()) continue;
        out.queries.push_back(
            {file + " panel '" + p.value("title", "") + "' " + t.value("refId", ""), expr});
      }
    }
  };
  if (d.contains("panels")) walk(d["panels"]);
  if (d.contains("rows")) {
    for (const auto& r : d["rows"]) walk(r["panels"]);
  }
  return out;
}

// Grafana's substitution of a variable's value (and of its built-in intervals).
std::string substitute(std::string expr, const std::map<std::string, std::string>& values) {
  expr = std::regex_replace(expr, std::regex(R"(\$__(rate_)?interval)"), "1m");
  for (const auto& [name, value] : values) {
    for (const std::string& form : {"${" + name + "}", "[[" + name + "]]", "$" + name}) {
      for (std::size_t at = expr.find(form); at != std::string::npos;
           at = expr.find(form, at + value.size())) {
        // "$db" must not replace the start of "$dbname".
        const std::size_t end = at + form.size();
        if (form[0] == '$' && form[1] != '{' && end < expr.size() &&
            (std::isalnum(static_cast<unsigned char>(expr[end])) || expr[end] == '_')) {
          at = end - value.size();
          continue;
        }
        expr.replace(at, form.size(), value);
      }
    }
  }
  return expr;
}

// The series selectors of an expression: every metric name followed by {...}.
std::vector<std::string> selectors(const std::string& expr) {
  std::vector<std::string> out;
  const std::regex sel(R"(([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{[^}]*\})");
  for (std::sregex_iterator it(expr.begin(), expr.end(), sel), end; it != end; ++it) {
    out.push_back(it->str());
  }
  return out;
}

class SideBySide {
 public:
  SideBySide() {
    PgServer& pg = sharedPostgres();
    pg.createDatabase("peers");
    sql_ = std::make_unique<PgClient>(pg.dsn("peers"));
    sql_->exec("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
    sql_->exec("CREATE TABLE IF NOT EXISTS orders(id int PRIMARY KEY, state text)");
    sql_->exec(
        "INSERT INTO orders SELECT g, 'new' FROM generate_series(1, 5000) g "
        "ON CONFLICT DO NOTHING");
    RedisServer& redis = sharedRedis();
    redis_ = &redis;
    redis.command({"CONFIG", "SET", "maxmemory", "268435456"});

    ProcessOptions pe;
    pe.argv = {std::string(kPostgresExporter),
               "--web.listen-address=127.0.0.1:" + std::to_string(pg_exporter_port_),
               "--log.level=warn"};
    pe.env["DATA_SOURCE_NAME"] = pg.dsn("peers") + " sslmode=disable";
    pe.log_file = dir_ / "postgres_exporter.log";
    pg_exporter_ = std::make_unique<ChildProcess>(pe);

    ProcessOptions re;
    re.argv = {std::string(kRedisExporter), "--redis.addr=redis://" + redis.address(),
               "--web.listen-address=127.0.0.1:" + std::to_string(redis_exporter_port_)};
    re.log_file = dir_ / "redis_exporter.log";
    redis_exporter_ = std::make_unique<ChildProcess>(re);

    chat_.set("/health", {200, "application/json", R"({"status":"ok"})", 0ms});
    chat_.set("/metrics", {200, "text/plain; version=0.0.4", "up_stub 1\n", 0ms});
    std::string config = "[agent]\nlisten = \"" + agent_.listenAddress() + "\"\nstate_dir = \"" +
                         agent_.stateDir().string() + "\"\n";
    config += "[postgres]\ndsn = \"" + pg.dsn("peers") + "\"\n";
    config += "[redis]\naddress = \"" + redis.address() + "\"\n";
    for (const char* c : {"connections", "statements", "cache", "stats", "tables", "size",
                          "indexes", "locks", "replication", "redis", "process", "companion"}) {
      config += std::string("[collectors.") + c + "]\ninterval = \"1s\"\n";
    }
    config += "[rules]\nfiles = [";
    for (std::size_t i = 0; i < kRuleFiles.size(); ++i) {
      config += (i ? ", \"" : "\"") + (kUpstream / kRuleFiles[i]).string() + "\"";
    }
    config += "]\nevaluation_interval = \"1s\"\n";
    agent_.start(config);

    PrometheusOptions peers, ours;
    peers.jobs = {{"postgres", {"127.0.0.1:" + std::to_string(pg_exporter_port_)}},
                  {"redis", {"127.0.0.1:" + std::to_string(redis_exporter_port_)}}};
    const std::string agent_target = "127.0.0.1:" + std::to_string(agent_.port());
    ours.jobs = {{"postgres", {agent_target}}, {"redis", {agent_target}}};
    for (const auto& f : kRuleFiles) {
      peers.rule_files.push_back(kUpstream / f);
      ours.rule_files.push_back(kUpstream / f);
    }
    peers.scrape_interval = ours.scrape_interval = "1s";
    peers.scrape_timeout = ours.scrape_timeout = "900ms";
    exporters_ = std::make_unique<PrometheusServer>(peers);
    dbpulse_ = std::make_unique<PrometheusServer>(ours);
  }

  DbpulseProcess& agent() { return agent_; }
  PrometheusServer& exporters() { return *exporters_; }
  PrometheusServer& dbpulse() { return *dbpulse_; }

  // Some work between two rounds of queries, so that counters move on both sides.
  void traffic() {
    sql_->exec("UPDATE orders SET state = 'paid' WHERE id % 50 = 0");
    sql_->exec("SELECT count(*) FROM orders WHERE state = 'new'");
    sql_->exec("DELETE FROM orders WHERE id > 4990");
    sql_->exec("INSERT INTO orders SELECT g, 'new' FROM generate_series(4991, 5000) g");
    redis_->command({"SET", "session:1", "v", "EX", "600"});
    redis_->command({"GET", "session:1"});
    redis_->command({"GET", "missing"});
  }

  // Both Prometheus servers have scraped every target at least three times (so rate()
  // and irate() have two points on both sides).
  [[nodiscard]] bool waitForScrapes() {
    return pollUntil(
        [&] {
          std::string error;
          const std::string q = "min(count_over_time(up[5m])) >= 3 and min(up) == 1";
          return exporters_->seriesCount(q, &error) == 1 && dbpulse_->seriesCount(q, &error) == 1;
        },
        60s, 500ms);
  }

  std::string logs() {
    return "postgres_exporter: " + readFile(dir_ / "postgres_exporter.log") +
           "\nredis_exporter: " + readFile(dir_ / "redis_exporter.log");
  }

 private:
  TempDir dir_{"dbpulse-peers-"};
  int pg_exporter_port_ = freeLoopbackPort();
  int redis_exporter_port_ = freeLoopbackPort();
  std::unique_ptr<PgClient> sql_;
  RedisServer* redis_ = nullptr;
  std::unique_ptr<ChildProcess> pg_exporter_, redis_exporter_;
  ChatServerStub chat_;
  DbpulseProcess agent_;
  std::unique_ptr<PrometheusServer> exporters_, dbpulse_;
};

bool havePeers() {
  return requirePostgres() && requireRedis() &&
         requireBinary(std::filesystem::path(kPrometheusBinary), "prometheus") &&
         requireBinary(std::filesystem::path(kPostgresExporter), "prometheus-postgres-exporter") &&
         requireBinary(std::filesystem::path(kRedisExporter), "prometheus-redis-exporter");
}

// Resolves a dashboard's variables on one Prometheus, in order, as Grafana does: the
// first value (the test database "peers" for a database variable, when it is offered).
std::map<std::string, std::string> resolve(PrometheusServer& p, const Dashboard& d,
                                           std::vector<std::string>* unresolved) {
  std::map<std::string, std::string> values;
  for (const auto& v : d.variables) {
    const auto options = p.labelValues(substitute(v.match, values), v.label);
    if (options.empty()) {
      unresolved->push_back(v.name);
      values[v.name] = "__none__";
      continue;
    }
    values[v.name] = options.front();
    for (const auto& o : options) {
      if (o == "peers") values[v.name] = o;
    }
  }
  return values;
}

TEST(PeersSideBySide, UpstreamDashboardsGetDataFromDbpulseWhereTheyGetItFromTheExporters) {
  if (!havePeers()) return;
  SideBySide env;
  ASSERT_TRUE(env.agent().waitReady(20s));
  ASSERT_TRUE(env.waitForScrapes()) << env.logs();
  std::vector<Dashboard> dashboards;
  for (const auto& f : kDashboards) dashboards.push_back(loadDashboard(f));

  std::vector<std::string> problems;
  std::size_t compared = 0, with_data = 0;
  auto round = [&] {
    env.traffic();
    problems.clear();
    compared = with_data = 0;
    for (const auto& d : dashboards) {
      std::vector<std::string> unresolved_peers, unresolved_ours;
      const auto peer_values = resolve(env.exporters(), d, &unresolved_peers);
      const auto our_values = resolve(env.dbpulse(), d, &unresolved_ours);
      for (const auto& name : unresolved_ours) {
        if (std::find(unresolved_peers.begin(), unresolved_peers.end(), name) ==
            unresolved_peers.end()) {
          problems.push_back(d.file + ": variable $" + name + " resolves on the exporters only");
        }
      }
      for (const auto& [where, expr] : d.queries) {
        std::string error;
        const int theirs = env.exporters().seriesCount(substitute(expr, peer_values), &error);
        const int ours = env.dbpulse().seriesCount(substitute(expr, our_values), &error);
        ++compared;
        if (theirs > 0) ++with_data;
        if (ours < 0) {
          problems.push_back(where + ": rejected: " + error + "\n  " + expr);
        } else if (theirs > 0 && ours == 0) {
          problems.push_back(where + ": data from the exporters, none from dbpulse\n  " +
                             substitute(expr, our_values));
        }
      }
    }
    return problems.empty();
  };
  // rate() and irate() need two scrapes of a counter that moved on both sides.
  if (!pollUntil(round, 60s, 2s)) round();
  std::string all;
  for (const auto& p : problems) all += p + "\n";
  EXPECT_TRUE(problems.empty()) << problems.size() << " of " << compared << " queries ("
                                << with_data << " with data from the exporters):\n"
                                << all << env.logs();
  EXPECT_GT(with_data, 30u) << "the exporters side should have data for most queries";
}

TEST(PeersSideBySide, UpstreamAlertRulesLoadAndSeeTheSameDataOnDbpulse) {
  if (!havePeers()) return;
  SideBySide env;
  ASSERT_TRUE(env.agent().waitReady(20s));
  ASSERT_TRUE(env.waitForScrapes()) << env.logs();

  // dbpulse's own engine loaded every upstream rule, without an error.
  const HttpResponse rules = httpGet(env.agent().baseUrl() + "/admin/rules", 5s);
  ASSERT_EQ(rules.status, 200) << rules.body << rules.error;
  const auto j = nlohmann::json::parse(rules.body);
  std::size_t loaded = 0, upstream = 0;
  for (const auto& g : j["groups"]) {
    for (const auto& r : g["rules"]) {
      ++loaded;
      EXPECT_NE(r.value("health", "ok"), "err") << r.dump();
    }
  }
  std::vector<std::pair<std::string, std::string>> exprs;  // name, expr
  for (const auto& f : kRuleFiles) {
    const auto doc = nlohmann::json::parse(readFile(kUpstream / f));
    for (const auto& g : doc["groups"]) {
      for (const auto& r : g["rules"]) {
        ++upstream;
        exprs.push_back({r.value("alert", r.value("record", "")), r["expr"].get<std::string>()});
      }
    }
  }
  EXPECT_EQ(loaded, upstream) << rules.body;

  std::vector<std::string> problems;
  auto round = [&] {
    env.traffic();
    problems.clear();
    for (const auto& [name, expr] : exprs) {
      std::string error;
      for (const auto& s : selectors(expr)) {
        const int theirs = env.exporters().seriesCount(s, &error);
        const int ours = env.dbpulse().seriesCount(s, &error);
        if (theirs > 0 && ours <= 0) {
          problems.push_back(name + ": " + s + " has data from the exporters, none from dbpulse");
        }
      }
      const int theirs = env.exporters().seriesCount(expr, &error);
      const int ours = env.dbpulse().seriesCount(expr, &error);
      if (theirs > 0 && ours <= 0) {
        problems.push_back(name + ": holds on the exporters' data, not on dbpulse's");
      }
    }
    for (const auto& h : env.dbpulse().ruleHealth()) {
      if (h.find(" err") != std::string::npos) problems.push_back("Prometheus on dbpulse: " + h);
    }
    return problems.empty();
  };
  if (!pollUntil(round, 60s, 2s)) round();
  std::string all;
  for (const auto& p : problems) all += p + "\n";
  EXPECT_TRUE(problems.empty()) << all << env.logs();
}

}  // namespace
}  // namespace dbpulse::testing
