#pragma once
// The status page's HTML (GET /) from what the agent already holds in memory: a pure
// function of PageData, so it is unit-tested and benchmarked without an agent, sockets or
// a database. StatusPage (status_page.h) gathers PageData per request.
//
// The page is self-contained (inline CSS, inline SVG, a little inline script; no external
// asset, no request but to itself), works without JavaScript (the script only adds
// auto-refresh, column sorting, copy buttons and the maintenance forms' JSON posts), and
// escapes every value it did not write itself.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agent/admin/health_checks.h"
#include "agent/schedule_plan.h"
#include "collectors/postgres/size_collector.h"
#include "collectors/postgres/statements_collector.h"

namespace dbpulse {

struct PublishedSuggestions;

namespace admin {

struct PageData {
  std::string instance, version;
  bool ready = false;
  std::vector<std::string> not_ready_reasons;
  std::string role;  // "no leader election", "elected leader (...)", "follower (...)"
  // An admin caller (admin routes' rule): sees statement texts, alert labels and summaries,
  // and the maintenance actions.
  bool admin = false;
  int64_t now_ms = 0;

  std::vector<HealthCheck> checks;
  std::vector<SparkSeries> sparks;
  int64_t spark_from_ms = 0, spark_to_ms = 0;

  bool statements_on = false;  // the statements collector runs
  std::vector<collectors::TopStatement> statements;
  double statements_seconds_total = 0;  // all statements' execution time (0: unknown)

  bool advisor_on = false;                                  // the hourly advisor job runs
  std::shared_ptr<const PublishedSuggestions> suggestions;  // null: no run yet

  bool size_on = false;
  collectors::SizeReport size;

  bool maintenance_on = false;
  std::string maintenance_json;  // MaintenanceEngine::statusJson()

  std::string alerts_json;  // rules::RuleManager::alertsJson()
  size_t rule_count = 0;

  std::vector<CollectorStatus> collectors;
};

// The whole page. Never throws on odd data (bad JSON shows as an empty section).
std::string renderStatusPage(const PageData& data);

}  // namespace admin
}  // namespace dbpulse
