// The admin API's route table and handlers through HttpServer::handle(), with a fake
// AgentView: no sockets, no agent, no database.
#include "agent/admin/admin_api.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agent/advisor.h"
#include "agent/core/sample_store.h"
#include "agent/pipeline.h"
#include "exporters/prometheus/exposition.h"
#include "rules/rule_manager.h"
#include "test_util/gunzip.h"

namespace dbpulse::admin {
namespace {

class FakeView final : public AgentView {
 public:
  FakeView() : store_(clock_), rules_(store_, clock_) {}

  std::shared_ptr<Pipeline> pipeline() const override { return pipeline_; }
  bool isLeader() const override { return leader_; }
  bool electionOn() const override { return election_; }
  Config config() const override { return config_; }
  std::string boundHost() const override { return bound_host_; }
  std::shared_ptr<MaintenanceEngine> maintenance() const override { return nullptr; }
  rules::RuleManager& rules() const override { return rules_; }
  SampleStore& store() const override { return store_; }
  std::vector<ConfigError> reloadFromFile() override {
    ++reloads_;
    return reload_errors_;
  }

  SystemClock clock_;
  mutable SampleStore store_;
  mutable rules::RuleManager rules_;
  std::shared_ptr<Pipeline> pipeline_;
  bool leader_ = true;
  bool election_ = false;
  Config config_;
  std::string bound_host_ = "127.0.0.1";
  std::vector<ConfigError> reload_errors_;
  int reloads_ = 0;
};

struct Api {
  Api() : exposition(view.store_), api(view, view.clock_, exposition, gate) { api.install(http); }

  HttpResponse call(const std::string& method, const std::string& path,
                    const std::string& body = "", const std::string& authorization = "") {
    HttpRequest r;
    r.method = method;
    r.path = path;
    r.body = body;
    r.authorization = authorization;
    r.remote_addr = "127.0.0.1";
    return http.handle(r);
  }

  FakeView view;
  exporters::Exposition exposition;
  std::shared_ptr<AdvisorGate> gate = std::make_shared<AdvisorGate>();
  AdminApi api;
  HttpServer http;
};

std::string codeOf(const HttpResponse& r) {
  const auto j = nlohmann::json::parse(r.body, nullptr, false);
  return j.is_object() ? j.value("code", "") : "";
}

std::string header(const HttpResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

TEST(AdminApiTest, WithoutATokenOnlyALoopbackListenerAnswers) {
  Api a;
  EXPECT_EQ(a.call("GET", "/admin/rules").status, 200);
  a.view.bound_host_ = "0.0.0.0";
  const auto r = a.call("GET", "/admin/rules");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(codeOf(r), "forbidden");
  // The public routes stay open.
  EXPECT_EQ(a.call("GET", "/health").status, 200);
}

TEST(AdminApiTest, ATokenIsRequiredAndCheckedWhenConfigured) {
  Api a;
  a.view.bound_host_ = "0.0.0.0";
  a.view.config_.agent.admin_token = "s3cret";
  auto r = a.call("GET", "/admin/alerts");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(header(r, "WWW-Authenticate"), "Bearer");
  EXPECT_EQ(a.call("GET", "/admin/alerts", "", "Bearer wrong").status, 401);
  EXPECT_EQ(a.call("GET", "/admin/alerts", "", "Bearer s3cret").status, 200);
}

TEST(AdminApiTest, AdminCallsAreRateLimitedPerClient) {
  Api a;
  a.view.config_.agent.admin_rate_limit = 1;
  a.view.config_.agent.admin_rate_burst = 2;
  EXPECT_EQ(a.call("GET", "/admin/rules").status, 200);
  EXPECT_EQ(a.call("GET", "/admin/rules").status, 200);
  const auto r = a.call("GET", "/admin/rules");
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(codeOf(r), "rate_limited");
  EXPECT_FALSE(header(r, "Retry-After").empty());
}

TEST(AdminApiTest, ReadinessWithoutAPipelineIsNotReady) {
  Api a;
  a.view.leader_ = false;
  const auto r = a.call("GET", "/health/ready");
  EXPECT_EQ(r.status, 503);
  const auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["status"], "not_ready");
  EXPECT_EQ(j["leader"], false);
  EXPECT_EQ(j["reasons"][0], "collectors are not running");
}

TEST(AdminApiTest, StatusPageShowsTheElectionState) {
  Api a;
  a.view.config_.agent.instance = "chat-1 <x>";
  a.view.election_ = true;
  a.view.leader_ = false;
  const auto r = a.call("GET", "/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_NE(r.body.find("chat-1 &lt;x&gt;"), std::string::npos);
  EXPECT_NE(r.body.find("follower (database-wide collectors on standby)"), std::string::npos);
}

TEST(AdminApiTest, StatusPageIsGzippedForBrowsersThatAcceptItAndAllowsNothingExternal) {
  Api a;
  HttpRequest r;
  r.method = "GET";
  r.path = "/";
  r.remote_addr = "127.0.0.1";
  r.accept_encoding = "gzip, deflate, br";
  const HttpResponse zipped = a.http.handle(r);
  EXPECT_EQ(zipped.status, 200);
  EXPECT_EQ(header(zipped, "Content-Encoding"), "gzip");
  const std::optional<std::string> page = testing::gunzip(zipped.body);
  ASSERT_TRUE(page.has_value());
  EXPECT_NE(page->find("<section id=\"health\">"), std::string::npos);
  EXPECT_NE(header(zipped, "Content-Security-Policy").find("default-src 'none'"),
            std::string::npos);
  const auto plain = a.call("GET", "/");
  EXPECT_EQ(header(plain, "Content-Encoding"), "");
  EXPECT_NE(plain.body.find("<section id=\"health\">"), std::string::npos);
}

TEST(AdminApiTest, DatabaseViewsWithoutCollectorsAreEmptyNotErrors) {
  Api a;
  EXPECT_EQ(a.call("GET", "/admin/database/metrics").status, 200);
  EXPECT_EQ(a.call("GET", "/admin/database/size").status, 200);
}

TEST(AdminApiTest, IndexSuggestionsWhileTheAdvisorRunsAreBusy) {
  Api a;
  ASSERT_TRUE(a.gate->tryEnter());  // the hourly advisor job is running
  const auto r = a.call("GET", "/admin/database/index-suggestions");
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(codeOf(r), "busy");
  EXPECT_EQ(header(r, "Retry-After"), "5");
  const auto q = a.call("POST", "/admin/database/analyze-query", R"({"query": "SELECT 1"})");
  EXPECT_EQ(q.status, 429);
  a.gate->leave();
}

TEST(AdminApiTest, AnalyzeQueryRejectsBadBodiesAndForbiddenAnalyze) {
  Api a;
  EXPECT_EQ(codeOf(a.call("POST", "/admin/database/analyze-query", "[1]")), "invalid_json");
  EXPECT_EQ(codeOf(a.call("POST", "/admin/database/analyze-query", R"({"query": ""})")),
            "invalid_request");
  EXPECT_EQ(codeOf(a.call("POST", "/admin/database/analyze-query",
                          R"({"query": "SELECT 1", "limit": 3})")),
            "invalid_request");
  a.view.config_.advisor.allow_analyze = false;
  const auto r =
      a.call("POST", "/admin/database/analyze-query", R"({"query": "SELECT 1", "analyze": true})");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(codeOf(r), "analyze_disabled");
}

TEST(AdminApiTest, MaintenanceWithoutADsn) {
  Api a;
  const auto g = a.call("GET", "/admin/maintenance");
  EXPECT_EQ(g.status, 200);
  EXPECT_EQ(nlohmann::json::parse(g.body)["enabled"], false);
  EXPECT_EQ(codeOf(a.call("POST", "/admin/database/optimize", "not json")), "invalid_json");
  EXPECT_EQ(codeOf(a.call("POST", "/admin/database/optimize", R"({"tables": "t"})")),
            "invalid_request");
  const auto r = a.call("POST", "/admin/database/optimize", R"({"tables": ["public.t"]})");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(codeOf(r), "not_configured");
}

TEST(AdminApiTest, ReloadAnswersWithTheConfigErrors) {
  Api a;
  EXPECT_EQ(a.call("POST", "/admin/reload").status, 200);
  a.view.reload_errors_ = {ConfigError{"/etc/dbpulse.toml", 3, 1, "unknown key"}};
  const auto r = a.call("POST", "/admin/reload");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(codeOf(r), "invalid_config");
  EXPECT_NE(r.body.find("unknown key"), std::string::npos);
  EXPECT_EQ(a.view.reloads_, 2);
}

TEST(AdminResponsesTest, AMissingPrerequisiteAnswersWithItsTypedReason) {
  EXPECT_EQ(codeOf(statusError(failedPrecondition("hypopg_missing", "install hypopg"))),
            "hypopg_missing");
  // A message without a reason is never mined for one ("host:port" is no error code).
  const auto r = statusError(failedPrecondition("postgres 127.0.0.1:5432: no answer"));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(codeOf(r), "precondition");
  EXPECT_EQ(codeOf(statusError(deadlineExceeded("slow"))), "timeout");
  EXPECT_EQ(codeOf(statusError(unavailable("down"))), "database_unavailable");
}

}  // namespace
}  // namespace dbpulse::admin
