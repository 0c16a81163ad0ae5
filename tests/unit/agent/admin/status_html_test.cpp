// The status page's HTML from PageData: sections in order, what only admin callers see,
// escaping, and nothing fetched from elsewhere.
#include "agent/admin/status_html.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "agent/advisor.h"

namespace dbpulse::admin {
namespace {

constexpr int64_t kNow = 1'780'000'000'000;

PageData sample(bool admin) {
  PageData d;
  d.instance = "chat-0";
  d.version = "1.2.3";
  d.ready = true;
  d.role = "no leader election";
  d.admin = admin;
  d.now_ms = kNow;
  d.checks.push_back(judge({"pg_up", "PostgreSQL up", "", {0.5, 0.5, true}, Unit::kUpDown}, 1.0,
                           std::nullopt, std::nullopt));
  d.checks.push_back(alertsCheck(1, 1, 0));
  d.spark_from_ms = kNow - 15 * 60'000;
  d.spark_to_ms = kNow;
  d.sparks.push_back(
      {"spark_connections", "Connections used", Unit::kRatio, {{kNow - 60'000, 0.2}, {kNow, 0.3}}});
  d.statements_on = true;
  collectors::TopStatement fast, slow;
  fast.queryid = "11";
  fast.datname = "chat";
  fast.query = "SELECT 1";
  fast.calls = 1000;
  fast.total_seconds = 1;
  slow.queryid = "22";
  slow.datname = "chat";
  slow.query = "SELECT * FROM messages WHERE body = '<script>alert(1)</script>'";
  slow.calls = 10;
  slow.total_seconds = 3;
  slow.mean_seconds = 0.3;
  d.statements = {fast, slow};
  d.statements_seconds_total = 8;
  d.advisor_on = true;
  auto published = std::make_shared<PublishedSuggestions>();
  published->at_ms = kNow - 120'000;
  CreateSuggestion c;
  c.schema = "public";
  c.table = "messages";
  c.columns = {"conversation_id", "created_at"};
  c.statement = "CREATE INDEX CONCURRENTLY ON public.messages (conversation_id, created_at);";
  c.reason = "Seq Scan on public.messages";
  c.estimated_improvement = 0.97;
  c.validated_with = "hypopg";
  published->suggestions.create.push_back(c);
  collectors::IndexFinding f;
  f.schemaname = "public";
  f.table = "messages";
  f.index = "messages_sender";
  f.reason = "duplicate";
  f.statement = "DROP INDEX CONCURRENTLY public.messages_sender;";
  published->suggestions.drop.push_back(f);
  d.suggestions = published;
  d.size_on = true;
  d.size.datname = "chat";
  d.size.databases = {{"chat", 50.0 * 1024 * 1024}};
  d.size.tables.push_back({"public", "messages", 1, 2, 3, 40.0 * 1024 * 1024, false});
  d.maintenance_on = true;
  d.maintenance_json =
      R"({"enabled":true,"window":"0 2 * * *","window_duration_seconds":7200,"dry_run":false,)"
      R"("in_window":false,"next_window_ms":1780010000000,"leader":true,"queued":false,)"
      R"("running":null,"history":[{"id":"m-1","trigger":"manual","dry_run":true,)"
      R"("started_ms":1779999000000,"finished_ms":1779999001000,"tables":[{"table":)"
      R"("public.messages","operation":"vacuum","result":"dry_run","seconds":0}]}]})";
  d.alerts_json =
      R"({"alerts":[{"state":"firing","activeAt":"2026-01-01T00:00:00Z","labels":{"alertname":)"
      R"("PostgresDown","severity":"critical","datname":"secretdb"},"annotations":{"summary":)"
      R"("PostgreSQL is unreachable"}}]})";
  d.rule_count = 3;
  CollectorStatus s;
  s.name = "connections";
  s.has_run = true;
  s.last_success = true;
  s.runs = 4;
  d.collectors.push_back(s);
  return d;
}

size_t at(const std::string& page, const std::string& what) {
  const size_t p = page.find(what);
  EXPECT_NE(p, std::string::npos) << what;
  return p;
}

TEST(StatusHtmlTest, SectionsComeInTriageOrder) {
  const std::string page = renderStatusPage(sample(true));
  const char* ids[] = {"health",      "queries", "indexes",   "space",
                       "maintenance", "alerts",  "collectors"};
  size_t last = 0;
  for (const char* id : ids) {
    const size_t p = at(page, std::string("<section id=\"") + id + "\"");
    EXPECT_GT(p, last) << id;
    last = p;
  }
  EXPECT_NE(page.find("data-check=\"pg_up\" data-level=\"ok\""), std::string::npos);
  EXPECT_NE(page.find("data-check=\"alerts\" data-level=\"crit\""), std::string::npos);
  EXPECT_NE(page.find("<polyline"), std::string::npos);
  EXPECT_NE(page.find("1 firing, 0 pending, 3 rules loaded"), std::string::npos);
  EXPECT_NE(page.find("<td>PostgresDown</td><td class=\"firing\">firing</td>"), std::string::npos);
  // Since when: relative, with the instant in the title.
  EXPECT_NE(
      page.find("<td><time datetime=\"2026-01-01 00:00:00Z\" title=\"2026-01-01 00:00:00Z\">"),
      std::string::npos);
}

TEST(StatusHtmlTest, QueriesBySlowestTotalWithTheirShareOfAllTime) {
  const std::string page = renderStatusPage(sample(true));
  // 3 s of 8 s in all: 37.5 %; listed before the 1 s statement.
  EXPECT_LT(at(page, "data-queryid=\"22\""), at(page, "data-queryid=\"11\""));
  EXPECT_NE(page.find("37.5 %"), std::string::npos);
  EXPECT_NE(page.find("12.5 %"), std::string::npos);
}

TEST(StatusHtmlTest, AdminCallersSeeTextsLabelsAndActionsOthersDoNot) {
  const std::string admin = renderStatusPage(sample(true));
  EXPECT_NE(admin.find("SELECT * FROM messages WHERE body = &#39;&lt;script&gt;alert(1)"),
            std::string::npos);
  EXPECT_NE(admin.find("datname=secretdb"), std::string::npos);
  EXPECT_NE(admin.find("<button type=\"button\" data-optimize=\"dry\""), std::string::npos);

  const std::string guest = renderStatusPage(sample(false));
  EXPECT_EQ(guest.find("FROM messages WHERE"), std::string::npos);
  EXPECT_NE(guest.find("queryid 22"), std::string::npos);
  EXPECT_EQ(guest.find("secretdb"), std::string::npos);
  EXPECT_EQ(guest.find("PostgreSQL is unreachable"), std::string::npos);
  EXPECT_EQ(guest.find("<button type=\"button\" data-optimize"), std::string::npos);
  // Suggestions, space and maintenance results are for everyone.
  EXPECT_NE(guest.find("CREATE INDEX CONCURRENTLY ON public.messages (conversation_id, "
                       "created_at);"),
            std::string::npos);
  EXPECT_NE(guest.find("-97 % cost (hypopg)"), std::string::npos);
  EXPECT_NE(guest.find("DROP INDEX CONCURRENTLY public.messages_sender;"), std::string::npos);
  EXPECT_NE(guest.find("40 MiB"), std::string::npos);
  EXPECT_NE(guest.find("<details open><summary>m-1"), std::string::npos)
      << "the newest maintenance run unfolded";
  EXPECT_NE(guest.find("<td>public.messages</td><td>vacuum</td><td class=\"muted\">dry_run</td>"),
            std::string::npos);
}

TEST(StatusHtmlTest, NoRawMarkupFromDataAndNothingFetchedFromElsewhere) {
  PageData d = sample(true);
  d.instance = "<img src=x onerror=alert(1)>";
  d.collectors[0].last_error = "\"><script>x()</script>";
  const std::string page = renderStatusPage(d);
  EXPECT_EQ(page.find("<img"), std::string::npos);
  EXPECT_EQ(page.find("<script>x()"), std::string::npos);
  EXPECT_EQ(page.find("http://"), std::string::npos);
  EXPECT_EQ(page.find("https://"), std::string::npos);
  EXPECT_EQ(page.find("src=\""), std::string::npos);
  EXPECT_EQ(page.find("<link rel=\"stylesheet\""), std::string::npos);
}

TEST(StatusHtmlTest, EmptyAgentStillRendersEverySection) {
  PageData d;
  d.alerts_json = "not json";
  d.maintenance_on = true;
  d.maintenance_json = "[1,2";
  const std::string page = renderStatusPage(d);
  for (const char* id :
       {"health", "queries", "indexes", "space", "maintenance", "alerts", "collectors"}) {
    EXPECT_NE(page.find(std::string("<section id=\"") + id + "\""), std::string::npos) << id;
  }
  EXPECT_NE(page.find("0 firing, 0 pending"), std::string::npos);
}

}  // namespace
}  // namespace dbpulse::admin
