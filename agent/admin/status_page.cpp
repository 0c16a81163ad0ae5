#include "agent/admin/status_page.h"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/admin/health_checks.h"
#include "agent/admin/status_html.h"
#include "agent/advisor.h"
#include "agent/maintenance.h"
#include "agent/pipeline.h"
#include "collectors/postgres/size_collector.h"
#include "collectors/postgres/statements_collector.h"
#include "exporters/prometheus/exposition.h"
#include "rules/rule_manager.h"

#ifndef DBPULSE_VERSION
#define DBPULSE_VERSION "dev"
#endif

namespace dbpulse::admin {

StatusPage::StatusPage(AgentView& view, exporters::Exposition& exposition,
                       std::function<bool(const HttpRequest&)> detailed,
                       std::shared_ptr<AdvisorGate> advisor_gate)
    : view_(view),
      exposition_(exposition),
      detailed_(std::move(detailed)),
      advisor_gate_(std::move(advisor_gate)),
      checker_(std::make_unique<const HealthChecker>()) {}

StatusPage::~StatusPage() = default;

HttpResponse StatusPage::metrics(const HttpRequest& request) const {
  HttpResponse r{
      200, "text/plain; version=0.0.4; charset=utf-8", {}, {{"Vary", "Accept-Encoding"}}};
  if (acceptsEncoding(request.accept_encoding, "gzip")) {
    r.body = *exposition_.renderGzip();
    r.headers.emplace_back("Content-Encoding", "gzip");
  } else {
    r.body = *exposition_.render();
  }
  return r;
}

HttpResponse StatusPage::health(const HttpRequest&) const {
  return HttpResponse::json(200, "{\"status\":\"ok\"}\n");
}

HttpResponse StatusPage::ready(const HttpRequest&) const {
  auto p = view_.pipeline();
  nlohmann::json body;
  nlohmann::json collectors = nlohmann::json::object();
  std::vector<std::string> reasons;
  if (!p) {
    reasons.push_back("collectors are not running");
  } else {
    for (const auto& s : p->scheduler->status()) {
      nlohmann::json c{{"ok", s.last_success}, {"runs", s.runs}};
      if (s.standby) c["standby"] = true;
      if (s.holdsReadiness()) {
        c["ok"] = nullptr;
        reasons.push_back("collector " + s.name + " has not finished its first run");
      }
      if (!s.last_error.empty()) c["error"] = s.last_error;
      if (!s.disabled_reason.empty()) c["disabled"] = s.disabled_reason;
      if (s.backoff.count() > 0) c["backoff_seconds"] = s.backoff.count() / 1000.0;
      collectors[s.name] = c;
    }
  }
  // Readiness means "the agent works", not "every server it watches is up": a failing
  // collector shows in the details while the agent still reports ready.
  body["status"] = reasons.empty() ? "ready" : "not_ready";
  body["collectors"] = collectors;
  body["leader"] = view_.isLeader();
  if (!reasons.empty()) body["reasons"] = reasons;
  return HttpResponse::json(
      reasons.empty() ? 200 : 503,
      body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

HttpResponse StatusPage::page(const HttpRequest& request) const {
  auto p = view_.pipeline();
  const Config cfg = view_.config();
  PageData d;
  d.instance = cfg.agent.instance;
  d.version = DBPULSE_VERSION;
  d.now_ms = toMillis(std::chrono::system_clock::now());
  d.admin = detailed_(request);
  const nlohmann::json readiness = nlohmann::json::parse(ready(request).body, nullptr, false);
  d.ready = readiness.value("status", "") == "ready";
  if (readiness.contains("reasons")) {
    for (const auto& r : readiness["reasons"]) d.not_ready_reasons.push_back(r.get<std::string>());
  }
  d.role = !view_.electionOn() ? "no leader election"
           : view_.isLeader()  ? "elected leader (runs the database-wide collectors)"
                               : "follower (database-wide collectors on standby)";

  // As the rule engine looks back (agent.cpp): a collector writes a series once per run.
  int64_t lookback = 5 * 60'000;
  for (const auto& [name, c] : cfg.collectors) {
    if (c.enabled) lookback = std::max<int64_t>(lookback, (2 * c.interval + c.timeout).count());
  }
  const SampleStore& store = view_.store();
  d.checks = checker_->evaluate(store, d.now_ms, lookback);
  d.alerts_json = view_.rules().alertsJson();
  d.rule_count = view_.rules().ruleCount();
  {
    size_t firing = 0, critical = 0, pending = 0;
    const auto alerts = nlohmann::json::parse(d.alerts_json, nullptr, false);
    if (alerts.is_object() && alerts.contains("alerts") && alerts["alerts"].is_array()) {
      for (const auto& a : alerts["alerts"]) {
        const std::string state = a.is_object() ? a.value("state", "") : "";
        if (state == "pending") ++pending;
        if (state != "firing") continue;
        ++firing;
        if (a.contains("labels") && a["labels"].is_object() &&
            a["labels"].value("severity", "") == "critical") {
          ++critical;
        }
      }
    }
    d.checks.push_back(alertsCheck(firing, critical, pending));
  }
  constexpr int64_t kSparkSpan = 15 * 60'000;
  d.spark_to_ms = d.now_ms;
  d.spark_from_ms = d.now_ms - std::min<int64_t>(kSparkSpan, cfg.agent.history.count());
  // One point per 30 s: a sparkline is 160 pixels wide.
  d.sparks = checker_->sparklines(store, d.now_ms, d.spark_to_ms - d.spark_from_ms, 31, lookback);

  if (p) {
    d.collectors = p->scheduler->status();
    auto top = p->details<std::vector<collectors::TopStatement>>("statements");
    d.statements_on = top.has_value();
    if (top) d.statements = std::move(*top);
    auto size = p->details<collectors::SizeReport>("size");
    d.size_on = size.has_value();
    if (size) d.size = std::move(*size);
    d.advisor_on = p->collectors.count("advisor") > 0;
  }
  if (const SnapshotFamily* f =
          store.snapshot()->family("dbpulse_pg_statements_exec_seconds_total")) {
    for (const auto& s : f->series) d.statements_seconds_total += s.value;
  }
  if (advisor_gate_) d.suggestions = advisor_gate_->latest();
  if (auto m = view_.maintenance()) {
    d.maintenance_on = true;
    d.maintenance_json = m->statusJson();
  }
  HttpResponse r{
      200, "text/html; charset=utf-8", renderStatusPage(d), {{"Vary", "Accept-Encoding"}}};
  // About 30 KB of HTML compresses to a fifth; rendered per view, so compressed per view.
  if (acceptsEncoding(request.accept_encoding, "gzip")) {
    r.body = exporters::gzipCompress(r.body);
    r.headers.emplace_back("Content-Encoding", "gzip");
  }
  // Nothing but this page itself: no external script, style, image, font or connection.
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'none'; style-src 'unsafe-inline'; script-src "
                         "'unsafe-inline'; img-src data:; connect-src 'self'; form-action "
                         "'self'; base-uri 'none'; frame-ancestors 'none'");
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

}  // namespace dbpulse::admin
