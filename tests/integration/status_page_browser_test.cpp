// The operator's page (GET /) in a real browser: dbpulse on the harness PostgreSQL (with
// pg_stat_statements, a known slow statement and a planted missing index), Redis and a chat
// server stub, rendered by headless Chromium (Debian's `chromium`, driven over the DevTools
// pipe: harness/chromium.h). Asserts on the DOM — every section, the slow statement, the
// advisor's suggestion with its copy button, a drawn sparkline, column sorting — and that
// the page logged no console error and fetched nothing from anywhere else. Screenshots go
// to <build>/test-artifacts/status_page/.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "integration/chat_server_stub.h"
#include "integration/harness/advisor_fixture.h"
#include "integration/harness/chromium.h"
#include "integration/harness/harness.h"

namespace dbpulse::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr const char* kDb = "statuspage";
constexpr const char* kSlowQuery = "SELECT pg_sleep(0.3)";
constexpr const char* kIndex = kAdvisorChatIndex;

constexpr const char* kChatMetrics = R"(# HELP http_requests_total Total HTTP requests
# TYPE http_requests_total counter
http_requests_total{method="GET",route="/api/messages",status_code="200"} 1000
http_requests_total{method="GET",route="/api/messages",status_code="500"} 3
# HELP http_request_duration_seconds Duration of HTTP requests in seconds
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.1",method="GET",route="/api/messages"} 900
http_request_duration_seconds_bucket{le="0.5",method="GET",route="/api/messages"} 1000
http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/api/messages"} 1003
http_request_duration_seconds_sum{method="GET",route="/api/messages"} 61.5
http_request_duration_seconds_count{method="GET",route="/api/messages"} 1003
)";

std::filesystem::path artifactsDir() {
  const auto dir = std::filesystem::path(DBPULSE_TEST_ARTIFACTS_DIR) / "status_page";
  std::filesystem::create_directories(dir);
  return dir;
}

void save(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

class StatusPageBrowserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!requirePostgres() || !requireRedis()) return;
    if (!requireBinary(kChromium, "chromium")) return;
    pg_ = &sharedPostgres();
    pg_->createDatabase(kDb);
    pg_->exec("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", kDb);
    if (pg_->queryValue("SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'", kDb)) {
      pg_->exec("CREATE EXTENSION IF NOT EXISTS hypopg", kDb);
    }
    plantMissingIndexCase(*pg_, kDb);
    for (int i = 0; i < 2; ++i) pg_->exec(kSlowQuery, kDb);
    chat_.set("/metrics", {200, "text/plain; version=0.0.4; charset=utf-8", kChatMetrics, {}});
    chat_.set("/health", {200, "text/plain", "ok", {}});
    ready_ = true;
  }

  std::string config() const {
    std::string c = "[agent]\nlisten = \"" + agent_.listenAddress() + "\"\nstate_dir = \"" +
                    agent_.stateDir().string() +
                    "\"\ninstance = \"browser-test\"\nlog_format = \"text\"\n"
                    "[postgres]\ndsn = \"" +
                    pg_->dsn(kDb) + "\"\n[redis]\naddress = \"" + sharedRedis().address() +
                    "\"\n[companion]\nhealth_url = \"" + chat_.url("/health") +
                    "\"\nmetrics_url = \"" + chat_.url("/metrics") + "\"\n";
    for (const char* name : {"connections", "statements", "cache", "tables", "indexes", "size",
                             "locks", "redis", "companion"}) {
      c += std::string("[collectors.") + name +
           "]\nenabled = true\ninterval = \"1s\"\ntimeout = \"900ms\"\n";
    }
    return c;
  }

  PgServer* pg_ = nullptr;
  bool ready_ = false;
  ChatServerStub chat_;
  DbpulseProcess agent_;
};

TEST_F(StatusPageBrowserTest, RendersEverySectionFromTheRealDatabase) {
  if (!ready_) return;
  agent_.start(config());
  ASSERT_TRUE(agent_.waitReady(30s));

  // The page fills in as the collectors and the advisor's first run report; a sparkline
  // needs two instants of its 15-minute grid. The statements collector ranks by the time
  // spent since its previous run (1 s here), so the slow statement keeps running on a
  // session of its own until the test ends, also while the browser loads the page.
  struct SlowStatementLoop {
    explicit SlowStatementLoop(PgServer& pg)
        : thread([this, &pg] {
            PgClient client(pg.dsn(kDb));
            while (!stop.load()) client.exec(kSlowQuery);
          }) {}
    ~SlowStatementLoop() {
      stop.store(true);
      thread.join();
    }
    std::atomic<bool> stop{false};
    std::thread thread;
  } slow_statements(*pg_);
  HttpResponse plain;
  const bool filled = pollUntil(
      [&] {
        plain = agent_.get("/");
        return plain.status == 200 && plain.body.find(kIndex) != std::string::npos &&
               plain.body.find("pg_sleep") != std::string::npos &&
               plain.body.find("<polyline") != std::string::npos;
      },
      90s);
  save(artifactsDir() / "status_page.html", plain.body);
  ASSERT_TRUE(filled) << "the page never showed the suggestion, the slow statement and a "
                         "sparkline; last page saved as status_page.html; log:\n"
                      << agent_.logTail();

  Chromium browser;
  ChromiumPage page = browser.open(agent_.baseUrl() + "/", 30s);
  save(artifactsDir() / "status_page.png", browser.screenshot(page));

  EXPECT_EQ(page.http_status, 200);
  EXPECT_TRUE(page.console_errors.empty()) << json(page.console_errors).dump(2);
  ASSERT_FALSE(page.requests.empty());
  for (const auto& url : page.requests) {
    EXPECT_TRUE(url.rfind(agent_.baseUrl() + "/", 0) == 0 || url.rfind("data:", 0) == 0)
        << "the page fetched " << url;
  }
  EXPECT_EQ(browser.evaluate(page,
                             "performance.getEntriesByType('resource').filter(e => "
                             "!e.name.startsWith(location.origin)).length"),
            0);

  EXPECT_EQ(browser.evaluate(page,
                             "Array.from(document.querySelectorAll('main > section'))"
                             ".map(s => s.id)"),
            json({"health", "queries", "indexes", "space", "maintenance", "alerts", "collectors"}));
  // Health checks in triage order, PostgreSQL up and green.
  const json checks =
      browser.evaluate(page,
                       "Array.from(document.querySelectorAll('.check')).map(c => [c.dataset.check, "
                       "c.dataset.level])");
  ASSERT_GE(checks.size(), 14u) << checks.dump();
  EXPECT_EQ(checks[0], json({"pg_up", "ok"}));
  EXPECT_EQ(checks[1][0], "connections");
  EXPECT_EQ(checks.back()[0], "alerts");

  // The known slow statement, with its text (loopback without a token: an admin caller).
  EXPECT_EQ(browser.evaluate(page,
                             "Array.from(document.querySelectorAll('#queries-table tbody "
                             "tr')).some(r => r.textContent.includes('pg_sleep'))"),
            true);
  // The planted missing index, with a copy button carrying the statement.
  EXPECT_EQ(browser.evaluate(page,
                             "Array.from(document.querySelectorAll('#index-create "
                             "button.copy')).map(b => b.dataset.copy)"),
            json::array({kIndex}));
  EXPECT_EQ(browser.evaluate(page,
                             "document.querySelector('#index-drop').textContent"
                             ".includes('public.messages_sender')"),
            true);
  // A sparkline actually drawn: a polyline with a rendered extent.
  EXPECT_EQ(browser.evaluate(page,
                             "Array.from(document.querySelectorAll('svg.spark "
                             "polyline')).some(p => p.getBBox().width > 0)"),
            true);
  // Space from the size collector, maintenance with its window, collectors all listed.
  EXPECT_EQ(browser.evaluate(page,
                             "document.querySelector('#space-tables').textContent"
                             ".includes('public.messages')"),
            true);
  EXPECT_EQ(browser.evaluate(page,
                             "document.querySelector('#maintenance').textContent"
                             ".includes('0 2 * * *')"),
            true);
  EXPECT_EQ(browser.evaluate(page, "document.querySelectorAll('button[data-optimize]').length"), 2);
  // Sorting (the light script): by calls, descending after two clicks.
  const json calls = browser.evaluate(
      page,
      "(() => { const th = Array.from(document.querySelectorAll('#queries-table th'))"
      ".find(h => h.textContent === 'calls'); th.click(); th.click();"
      " const i = th.cellIndex; return Array.from(document.querySelectorAll("
      "'#queries-table tbody tr')).map(r => parseFloat(r.cells[i].dataset.v)); })()");
  ASSERT_GE(calls.size(), 2u) << calls.dump();
  for (size_t i = 1; i < calls.size(); ++i) {
    EXPECT_GE(calls[i - 1].get<double>(), calls[i].get<double>()) << calls.dump();
  }
  save(artifactsDir() / "status_page_sorted.png", browser.screenshot(page));

  // "Dry run" for one table posts to POST /admin/database/optimize (202 with the run id),
  // and the run then shows in the maintenance section with the table's planned operation.
  const json answer = browser.evaluate(
      page,
      "new Promise(resolve => {"
      " document.getElementById('optimize-tables').value = 'public.messages';"
      " document.querySelector('button[data-optimize=dry]').click();"
      " const out = document.getElementById('optimize-result'); let n = 0;"
      " const t = setInterval(() => { if (out.textContent || ++n > 100) { clearInterval(t);"
      " resolve(out.textContent); } }, 100); })");
  ASSERT_TRUE(answer.is_string()) << answer.dump();
  EXPECT_EQ(answer.get<std::string>().rfind("202 ", 0), 0u) << answer.dump();
  HttpResponse after;
  EXPECT_TRUE(pollUntil(
      [&] {
        after = agent_.get("/");
        return after.body.find("manual · dry run") != std::string::npos &&
               after.body.find("finished") != std::string::npos;
      },
      30s))
      << "no finished dry run on the page";
  ChromiumPage reloaded = browser.open(agent_.baseUrl() + "/#maintenance", 30s);
  EXPECT_TRUE(reloaded.console_errors.empty()) << json(reloaded.console_errors).dump(2);
  EXPECT_EQ(
      browser.evaluate(reloaded,
                       "Array.from(document.querySelectorAll('#maintenance details[open] "
                       "tbody tr')).map(r => [r.cells[0].textContent, r.cells[2].textContent])"),
      json::array({json::array({"public.messages", "dry_run"})}));
  save(artifactsDir() / "status_page_after_dry_run.png", browser.screenshot(reloaded));
}

}  // namespace
}  // namespace dbpulse::testing
