#include "agent/admin/status_page.h"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/pipeline.h"
#include "exporters/prometheus/exposition.h"
#include "rules/rule_manager.h"

#ifndef DBPULSE_VERSION
#define DBPULSE_VERSION "dev"
#endif

namespace dbpulse::admin {
namespace {

std::string htmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace

HttpResponse StatusPage::metrics(const HttpRequest& request) const {
  HttpResponse r{200, "text/plain; version=0.0.4; charset=utf-8", {}, {{"Vary", "Accept-Encoding"}}};
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
  return HttpResponse::json(reasons.empty() ? 200 : 503, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

HttpResponse StatusPage::page(const HttpRequest& request) const {
  auto p = view_.pipeline();
  const std::string instance = view_.config().agent.instance;
  const bool is_leader = view_.isLeader();
  const nlohmann::json readiness = nlohmann::json::parse(ready(request).body, nullptr, false);
  const bool is_ready = readiness.value("status", "") == "ready";
  std::string html =
      "<!doctype html><html><head><meta charset=\"utf-8\">"
      "<meta http-equiv=\"refresh\" content=\"15\"><title>dbpulse " +
      htmlEscape(instance) +
      "</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
      "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}.ok,.ready{color:#080}"
      ".failing,.firing,.not_ready{color:#b00}.pending,.off{color:#a60}</style></head><body>"
      "<h1>dbpulse</h1><p>instance <b>" +
      htmlEscape(instance) + "</b>, version " DBPULSE_VERSION ", <span class=\"" +
      (is_ready ? "ready\">ready" : "not_ready\">not ready") + "</span>, " +
      (!view_.electionOn() ? "no leader election"
       : is_leader    ? "elected leader (runs the database-wide collectors)"
                     : "follower (database-wide collectors on standby)") +
      "</p>\n";
  if (readiness.contains("reasons")) {
    html += "<ul>";
    for (const auto& r : readiness["reasons"]) html += "<li>" + htmlEscape(r.get<std::string>());
    html += "</ul>\n";
  }
  html +=
      "<p><a href=\"/metrics\">/metrics</a> · <a href=\"/health/ready\">/health/ready</a> · "
      "<a href=\"/admin/alerts\">/admin/alerts</a> · <a href=\"/admin/rules\">/admin/rules</a> · "
      "<a href=\"/admin/database/metrics\">/admin/database/metrics</a> · "
      "<a href=\"/admin/database/size\">/admin/database/size</a></p>\n";

  // Alerts: names and states for everyone; labels and summaries only for a caller the
  // admin routes would let in (they may carry database and user names).
  const nlohmann::json alerts = nlohmann::json::parse(view_.rules().alertsJson(), nullptr, false);
  const bool detailed = detailed_(request);
  size_t firing = 0, pending = 0;
  std::string alert_rows;
  if (alerts.contains("alerts")) {
    for (const auto& a : alerts["alerts"]) {
      const std::string state = a.value("state", "");
      if (state == "firing") ++firing;
      if (state == "pending") ++pending;
      if (state != "firing" && state != "pending") continue;
      const auto& labels = a["labels"];
      alert_rows += "<tr><td>" + htmlEscape(labels.value("alertname", "")) + "</td><td class=\"" +
                    state + "\">" + state + "</td><td>" + htmlEscape(labels.value("severity", "")) +
                    "</td><td>" + htmlEscape(a.value("activeAt", "")) + "</td>";
      if (detailed) {
        std::string shown;
        for (const auto& [k, v] : labels.items()) {
          if (k == "alertname" || k == "severity" || k == "instance") continue;
          shown += (shown.empty() ? "" : ", ") + k + "=" + v.get<std::string>();
        }
        alert_rows += "<td>" + htmlEscape(shown) + "</td><td>" +
                      htmlEscape(a["annotations"].value("summary", "")) + "</td>";
      }
      alert_rows += "</tr>\n";
    }
  }
  html += "<h2>Alerts</h2><p>" + std::to_string(firing) + " firing, " + std::to_string(pending) +
          " pending, " + std::to_string(view_.rules().ruleCount()) + " rules loaded</p>\n";
  if (!alert_rows.empty()) {
    html += "<table><tr><th>alert</th><th>state</th><th>severity</th><th>active since</th>";
    if (detailed) html += "<th>labels</th><th>summary</th>";
    html += "</tr>\n" + alert_rows + "</table>\n";
    if (!detailed)
      html += "<p>Labels and summaries: <code>GET /admin/alerts</code> with the admin token.</p>\n";
  }

  html +=
      "<h2>Collectors</h2><table><tr><th>collector</th><th>state</th><th>last run</th>"
      "<th>runs</th><th>errors</th><th>last error</th></tr>\n";
  if (p) {
    for (const auto& s : p->scheduler->status()) {
      std::string state = !s.disabled_reason.empty() ? "off"
                          : s.standby                ? "standby"
                          : !s.has_run               ? "pending"
                          : s.last_success           ? "ok"
                                                     : "failing";
      std::string shown = state == "off" ? "off (" + s.disabled_reason + ")" : state;
      html += "<tr><td>" + htmlEscape(s.name) + "</td><td class=\"" + state + "\">" +
              htmlEscape(shown) + "</td><td>" + std::to_string(s.last_duration.count()) +
              " ms</td><td>" + std::to_string(s.runs) + "</td><td>" + std::to_string(s.errors) +
              "</td><td>" + htmlEscape(s.last_error) + "</td></tr>\n";
    }
  }
  html += "</table></body></html>\n";
  return HttpResponse{200, "text/html; charset=utf-8", std::move(html), {}};
}

}  // namespace dbpulse::admin
