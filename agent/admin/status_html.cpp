#include "agent/admin/status_html.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "agent/admin/sparkline.h"
#include "agent/advisor.h"

namespace dbpulse::admin {
namespace {

using nlohmann::json;

const char kStyle[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#f6f7f9}"
    "header{background:#1f2937;color:#fff;padding:.8em 1.5em}header h1{margin:0;font-size:1.3em}"
    "header a{color:#cfe3ff}nav a{margin-right:1em}main{padding:0 1.5em 2em}"
    "section{background:#fff;border:1px solid #e3e5e8;border-radius:6px;margin:1em 0;"
    "padding:.6em 1em}h2{font-size:1.1em;margin:.3em 0 .6em}"
    "table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #eee;"
    "padding:3px 8px;text-align:left;vertical-align:top}th{background:#fafafa;font-weight:600}"
    "td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}"
    "table.sortable th{cursor:pointer}code,pre{font:12px/1.3 ui-monospace,monospace}"
    "pre{white-space:pre-wrap;margin:0;max-height:6em;overflow:auto}"
    ".checks{display:grid;grid-template-columns:repeat(auto-fill,minmax(14em,1fr));gap:.5em}"
    ".check{border-left:6px solid #aaa;padding:.4em .6em;background:#fafafa}"
    ".check .t{display:block;color:#555;font-size:.9em}.check .v{font-size:1.25em;font-weight:600}"
    ".check .note{display:block;color:#666;font-size:.8em}"
    ".check.ok{border-color:#1a8f3c}.check.warn{border-color:#d98e04}.check.crit{border-color:#"
    "c62828}"
    ".check.crit .v{color:#c62828}.check.warn .v{color:#a86d00}"
    ".sparks{display:grid;grid-template-columns:repeat(auto-fill,minmax(12em,1fr));gap:.5em;"
    "margin-top:.8em}figure{margin:0;color:#2563eb}figcaption{color:#444;font-size:.85em}"
    "svg.spark{display:block;background:#f3f6fb}"
    ".ok,.ready,.firing-none{color:#1a8f3c}.failing,.firing,.not_ready,.crit{color:#c62828}"
    ".pending,.off,.warn{color:#a86d00}.muted{color:#777}button{font-size:.85em}";

// Sorting, copy buttons, auto-refresh and the maintenance actions. The page works without it.
const char kScript[] =
    "(function(){"
    "document.querySelectorAll('table.sortable th').forEach(function(th,i){"
    "th.title='sort';th.addEventListener('click',function(){"
    "var tb=th.closest('table').tBodies[0],rows=Array.from(tb.rows),d=th.dataset.dir==='a'?-1:1;"
    "th.dataset.dir=d===1?'a':'d';rows.sort(function(a,b){"
    "var x=a.cells[i].dataset.v,y=b.cells[i].dataset.v;"
    "if(x!==undefined&&y!==undefined)return (parseFloat(x)-parseFloat(y))*d;"
    "return a.cells[i].textContent.localeCompare(b.cells[i].textContent)*d;});"
    "rows.forEach(function(r){tb.appendChild(r);});});});"
    "document.querySelectorAll('button.copy').forEach(function(b){"
    "b.addEventListener('click',function(){var t=b.dataset.copy;"
    "if(navigator.clipboard){navigator.clipboard.writeText(t).then(function(){"
    "b.textContent='copied';},function(){b.textContent='select and copy';});}});});"
    "var ar=document.getElementById('autorefresh');if(ar){"
    "ar.checked=localStorage.getItem('dbpulse.autorefresh')==='1';var tm=null;"
    "var arm=function(){if(tm)clearTimeout(tm);if(ar.checked)tm=setTimeout(function(){"
    "location.reload();},15000);};ar.addEventListener('change',function(){"
    "localStorage.setItem('dbpulse.autorefresh',ar.checked?'1':'0');arm();});arm();}"
    "document.querySelectorAll('button[data-optimize]').forEach(function(b){"
    "b.addEventListener('click',function(){var out=document.getElementById('optimize-result');"
    "var tables=(document.getElementById('optimize-tables').value||'').split(/[\\s,]+/)"
    ".filter(function(s){return s;});"
    "fetch('/admin/database/optimize',{method:'POST',headers:{'Content-Type':'application/json'},"
    "body:JSON.stringify({tables:tables,dry_run:b.dataset.optimize==='dry'})})"
    ".then(function(r){return r.text().then(function(t){out.textContent=r.status+' '+t;});})"
    ".catch(function(e){out.textContent=String(e);});});});"
    "})();";

std::string esc(const std::string& s) { return htmlEscape(s); }

std::string utc(int64_t ms) {
  if (ms <= 0) return "–";
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

// "3 min ago", "in 2 h": how far `ms` is from `now_ms`.
std::string relative(int64_t ms, int64_t now_ms) {
  if (ms <= 0) return "";
  const double d = static_cast<double>(ms - now_ms) / 1000;
  const std::string span = formatValue(std::fabs(d), Unit::kSeconds);
  return d >= 0 ? "in " + span : span + " ago";
}

// Milliseconds since the epoch of the rule manager's "2026-12-06T08:00:00.123Z"; 0 when
// it is not that shape.
int64_t parseUtc(const std::string& text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0, ms = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3d", &y, &mo, &d, &h, &mi, &se, &ms) <
      6) {
    return 0;
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = se;
  return static_cast<int64_t>(timegm(&tm)) * 1000 + ms;
}

std::string when(int64_t ms, int64_t now_ms) {
  if (ms <= 0) return "–";
  return "<time datetime=\"" + utc(ms) + "\" title=\"" + utc(ms) + "\">" +
         esc(relative(ms, now_ms)) + "</time>";
}

// A numeric cell that sorts by its raw value.
std::string num(double raw, const std::string& shown) {
  char v[40];
  std::snprintf(v, sizeof v, "%.17g", std::isfinite(raw) ? raw : 0.0);
  return "<td class=\"n\" data-v=\"" + std::string(v) + "\">" + esc(shown) + "</td>";
}

std::string td(const std::string& text) { return "<td>" + esc(text) + "</td>"; }

std::string sectionHead(const char* id, const char* title) {
  return std::string("<section id=\"") + id + "\"><h2>" + title + "</h2>\n";
}

void healthSection(const PageData& d, std::string& h) {
  h += sectionHead("health", "Health checks");
  h += "<div class=\"checks\">\n";
  for (const auto& c : d.checks) {
    h += "<div class=\"check " + std::string(levelName(c.level)) + "\" data-check=\"" + esc(c.id) +
         "\" data-level=\"" + levelName(c.level) + "\"><span class=\"t\">" + esc(c.title) +
         "</span><span class=\"v\">" + esc(c.shown) + "</span>";
    if (!c.note.empty()) h += "<span class=\"note\">" + esc(c.note) + "</span>";
    h += "</div>\n";
  }
  h += "</div>\n<div class=\"sparks\">\n";
  const int64_t minutes = (d.spark_to_ms - d.spark_from_ms) / 60'000;
  for (const auto& s : d.sparks) {
    const std::string latest =
        s.points.empty() ? "no data" : formatValue(s.points.back().value, s.unit);
    h += "<figure class=\"sparkline\" data-series=\"" + esc(s.id) + "\"><figcaption>" +
         esc(s.title) + " <b>" + esc(latest) + "</b></figcaption>" +
         sparklineSvg(s.points, {160, 32, d.spark_from_ms, d.spark_to_ms},
                      s.title + ", last " + std::to_string(minutes) + " minutes") +
         "</figure>\n";
  }
  h += "</div><p class=\"muted\">Sparklines: the last " + std::to_string(minutes) +
       " minutes of the in-memory history.</p></section>\n";
}

void queriesSection(const PageData& d, std::string& h) {
  h += sectionHead("queries", "Queries");
  if (!d.statements_on) {
    h += "<p class=\"muted\">The statements collector is off.</p></section>\n";
    return;
  }
  if (d.statements.empty()) {
    h += "<p class=\"muted\">No statements yet (pg_stat_statements, first run pending).</p>"
         "</section>\n";
    return;
  }
  std::vector<const collectors::TopStatement*> rows;
  double listed = 0;
  for (const auto& s : d.statements) {
    rows.push_back(&s);
    listed += s.total_seconds;
  }
  std::sort(rows.begin(), rows.end(),
            [](const auto* a, const auto* b) { return a->total_seconds > b->total_seconds; });
  const double all = std::max(d.statements_seconds_total, listed);
  h += "<p>Top statements by their share of the database's execution time (pg_stat_statements"
       ", since its last reset). Click a column to sort.</p>\n"
       "<table class=\"sortable\" id=\"queries-table\"><thead><tr><th class=\"n\">time share</th>"
       "<th class=\"n\">total</th><th class=\"n\">calls</th><th class=\"n\">mean</th>"
       "<th class=\"n\">rows</th><th>database</th><th>statement</th></tr></thead><tbody>\n";
  for (const auto* s : rows) {
    const double share = all > 0 ? s->total_seconds / all : 0;
    h += "<tr data-queryid=\"" + esc(s->queryid) + "\">" +
         num(share, formatValue(share, Unit::kRatio)) +
         num(s->total_seconds, formatValue(s->total_seconds, Unit::kSeconds)) +
         num(s->calls, formatValue(s->calls, Unit::kCount)) +
         num(s->mean_seconds, formatValue(s->mean_seconds, Unit::kSeconds)) +
         num(s->rows, formatValue(s->rows, Unit::kCount)) + td(s->datname);
    if (d.admin && !s->query.empty()) {
      h += "<td><pre class=\"sql\">" + esc(s->query) + "</pre></td>";
    } else {
      h += "<td><code>queryid " + esc(s->queryid) + "</code></td>";
    }
    h += "</tr>\n";
  }
  h += "</tbody></table>\n";
  if (!d.admin) h += "<p class=\"muted\">Statement texts: admin callers only.</p>\n";
  h += "</section>\n";
}

void indexesSection(const PageData& d, std::string& h) {
  h += sectionHead("indexes", "Indexes");
  if (!d.advisor_on) {
    h += "<p class=\"muted\">The index advisor does not run here (no PostgreSQL DSN or no "
         "database collector).</p></section>\n";
    return;
  }
  if (!d.suggestions) {
    h += "<p class=\"muted\">The advisor has not finished a run yet (it runs hourly on the "
         "leader; <code>GET /admin/database/index-suggestions</code> runs it now).</p>"
         "</section>\n";
    return;
  }
  const IndexSuggestions& s = d.suggestions->suggestions;
  h += "<p>From the advisor's run " + when(d.suggestions->at_ms, d.now_ms) + ".</p>\n";
  h += "<h3>Create (" + std::to_string(s.create.size()) + ")</h3>\n";
  if (!s.create.empty()) {
    h += "<table id=\"index-create\"><thead><tr><th>table</th><th>columns</th>"
         "<th class=\"n\">estimated gain</th><th>statement</th><th>why</th></tr></thead><tbody>\n";
    for (const auto& c : s.create) {
      std::string cols;
      for (const auto& col : c.columns) cols += (cols.empty() ? "" : ", ") + col;
      const std::string gain = c.estimated_improvement
                                   ? "-" + formatValue(*c.estimated_improvement, Unit::kRatio) +
                                         " cost (" + c.validated_with + ")"
                                   : c.validated_with;
      h += "<tr>" + td(c.schema + "." + c.table) + td(cols) +
           num(c.estimated_improvement.value_or(0), gain) + "<td><code class=\"stmt\">" +
           esc(c.statement) + "</code> <button type=\"button\" class=\"copy\" data-copy=\"" +
           esc(c.statement) + "\">copy</button></td>" + td(c.reason) + "</tr>\n";
    }
    h += "</tbody></table>\n";
  }
  h += "<h3>Drop (" + std::to_string(s.drop.size()) + ")</h3>\n";
  if (!s.drop.empty()) {
    h += "<table id=\"index-drop\"><thead><tr><th>index</th><th>table</th><th>reason</th>"
         "<th class=\"n\">size</th><th>statement</th><th>detail</th></tr></thead><tbody>\n";
    for (const auto& f : s.drop) {
      h += "<tr>" + td(f.schemaname + "." + f.index) + td(f.schemaname + "." + f.table) +
           td(f.reason) + num(f.size_bytes, formatValue(f.size_bytes, Unit::kBytes)) +
           "<td><code class=\"stmt\">" + esc(f.statement) +
           "</code> <button type=\"button\" class=\"copy\" data-copy=\"" + esc(f.statement) +
           "\">copy</button></td>" + td(f.detail) + "</tr>\n";
    }
    h += "</tbody></table>\n";
  }
  if (!s.notes.empty()) {
    h += "<ul class=\"muted\">";
    for (const auto& n : s.notes) h += "<li>" + esc(n) + "</li>";
    h += "</ul>\n";
  }
  h += "</section>\n";
}

void spaceSection(const PageData& d, std::string& h) {
  h += sectionHead("space", "Space");
  if (!d.size_on) {
    h += "<p class=\"muted\">The size collector is off.</p></section>\n";
    return;
  }
  const auto& r = d.size;
  if (r.databases.empty() && r.tables.empty()) {
    h += "<p class=\"muted\">No size report yet (the size collector runs every few minutes)."
         "</p></section>\n";
    return;
  }
  h += "<table class=\"sortable\" id=\"space-databases\"><thead><tr><th>database</th>"
       "<th class=\"n\">size</th></tr></thead><tbody>\n";
  for (const auto& db : r.databases) {
    h += "<tr>" + td(db.datname) + num(db.bytes, formatValue(db.bytes, Unit::kBytes)) + "</tr>\n";
  }
  h += "</tbody></table>\n<h3>Tables of " + esc(r.datname) +
       "</h3>\n"
       "<table class=\"sortable\" id=\"space-tables\"><thead><tr><th>table</th>"
       "<th class=\"n\">total</th><th class=\"n\">heap</th><th class=\"n\">toast</th>"
       "<th class=\"n\">indexes</th></tr></thead><tbody>\n";
  constexpr size_t kRows = 25;  // the admin route has them all
  for (size_t i = 0; i < r.tables.size() && i < kRows; ++i) {
    const auto& t = r.tables[i];
    h += "<tr>" + td(t.schemaname + "." + t.relname + (t.estimated ? " (estimated)" : "")) +
         num(t.total_bytes, formatValue(t.total_bytes, Unit::kBytes)) +
         num(t.heap_bytes, formatValue(t.heap_bytes, Unit::kBytes)) +
         num(t.toast_bytes, formatValue(t.toast_bytes, Unit::kBytes)) +
         num(t.indexes_bytes, formatValue(t.indexes_bytes, Unit::kBytes)) + "</tr>\n";
  }
  h += "</tbody></table>\n<h3>Indexes</h3>\n<table class=\"sortable\" id=\"space-indexes\">"
       "<thead><tr><th>index</th><th>table</th><th class=\"n\">size</th></tr></thead><tbody>\n";
  for (size_t i = 0; i < r.indexes.size() && i < kRows; ++i) {
    const auto& x = r.indexes[i];
    h += "<tr>" + td(x.schemaname + "." + x.indexrelname) + td(x.relname) +
         num(x.bytes, formatValue(x.bytes, Unit::kBytes)) + "</tr>\n";
  }
  h += "</tbody></table>\n";
  if (r.tables.size() > kRows || r.indexes.size() > kRows) {
    h += "<p class=\"muted\">The largest " + std::to_string(kRows) +
         " of each; all of them: <code>GET /admin/database/size</code>.</p>\n";
  }
  h += "</section>\n";
}

std::string str(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return "";
  const json& v = j[key];
  return v.is_string() ? v.get<std::string>() : v.is_null() ? "" : v.dump();
}

int64_t ms(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<int64_t>() : 0;
}

// One run as a <details> block (`open`: unfolded), its tables' results inside.
void runRows(const json& run, int64_t now_ms, bool open, std::string& h) {
  const json tables = run.is_object() ? run.value("tables", json::array()) : json::array();
  std::string results;
  if (tables.is_array()) {
    for (const auto& t : tables) {
      const std::string result = str(t, "result");
      const char* cls = result == "ok"                              ? "ok"
                        : result == "dry_run"                       ? "muted"
                        : result == "failed" || result == "timeout" ? "crit"
                                                                    : "warn";
      results += "<tr>" + td(str(t, "table")) + td(str(t, "operation")) + "<td class=\"" + cls +
                 "\">" + esc(result) + "</td>" +
                 num(t.is_object() ? t.value("seconds", 0.0) : 0.0,
                     formatValue(t.is_object() ? t.value("seconds", 0.0) : 0.0, Unit::kSeconds)) +
                 td(str(t, "error")) + "</tr>";
    }
  }
  const int64_t finished = ms(run, "finished_ms");
  h += std::string(open ? "<details open>" : "<details>") + "<summary>" + esc(str(run, "id")) +
       " · " + esc(str(run, "trigger")) +
       (run.is_object() && run.value("dry_run", false) ? " · dry run" : "") + " · started " +
       when(ms(run, "started_ms"), now_ms) + " · " +
       (finished > 0 ? "finished " + when(finished, now_ms) : std::string("running")) + " · " +
       std::to_string(tables.is_array() ? tables.size() : 0) + " tables" +
       (str(run, "error").empty()
            ? ""
            : " · <span class=\"crit\">" + esc(str(run, "error")) + "</span>") +
       "</summary>";
  if (!results.empty()) {
    h += "<table><thead><tr><th>table</th><th>operation</th><th>result</th>"
         "<th class=\"n\">duration</th><th>error</th></tr></thead><tbody>" +
         results + "</tbody></table>";
  }
  h += "</details>\n";
}

void maintenanceSection(const PageData& d, std::string& h) {
  h += sectionHead("maintenance", "Maintenance");
  if (!d.maintenance_on) {
    h += "<p class=\"muted\">No maintenance engine (no PostgreSQL DSN).</p></section>\n";
    return;
  }
  const json m = json::parse(d.maintenance_json, nullptr, false);
  if (!m.is_object()) {
    h += "<p class=\"muted\">No maintenance status.</p></section>\n";
    return;
  }
  const bool enabled = m.value("enabled", false);
  h += "<p>" + std::string(enabled ? "Enabled" : "<span class=\"off\">Disabled</span>") +
       (m.value("dry_run", false) ? " (dry run: plans, runs nothing)" : "") + ". Window <code>" +
       esc(str(m, "window")) + "</code> (agent's local time) for " +
       formatValue(static_cast<double>(ms(m, "window_duration_seconds")), Unit::kSeconds) + "; " +
       (m.value("in_window", false) ? "open now"
                                    : "next opens " + when(ms(m, "next_window_ms"), d.now_ms)) +
       (m.value("leader", true) ? "" : "; this agent is not the leader (the leader runs it)") +
       (m.value("queued", false) ? "; a manual run is queued" : "") + ".</p>\n";
  if (m.contains("running") && m["running"].is_object()) {
    h += "<p>Running now:</p>";
    runRows(m["running"], d.now_ms, true, h);
  }
  const json history = m.value("history", json::array());
  if (!history.is_array() || history.empty()) {
    h += "<p class=\"muted\">No runs yet.</p>\n";
  } else {
    h += "<p>Last runs (newest first):</p>\n";
    bool first = true;  // the newest run unfolded
    for (const auto& run : history) {
      runRows(run, d.now_ms, first, h);
      first = false;
    }
  }
  if (d.admin) {
    h += "<div class=\"actions\"><label>Tables (empty: whatever needs it) <input "
         "id=\"optimize-tables\" placeholder=\"public.messages, users\"></label> "
         "<button type=\"button\" data-optimize=\"run\">Run now</button> "
         "<button type=\"button\" data-optimize=\"dry\">Dry run</button> "
         "<output id=\"optimize-result\"></output>"
         "<noscript><p>Without JavaScript: <code>curl -X POST -H 'Content-Type: "
         "application/json' -d '{\"tables\": [], \"dry_run\": true}' "
         "$AGENT/admin/database/optimize</code></p></noscript></div>\n";
  }
  h += "</section>\n";
}

void alertsSection(const PageData& d, std::string& h) {
  const json alerts = json::parse(d.alerts_json, nullptr, false);
  size_t firing = 0, pending = 0;
  std::string rows;
  if (alerts.is_object() && alerts.contains("alerts") && alerts["alerts"].is_array()) {
    for (const auto& a : alerts["alerts"]) {
      const std::string state = str(a, "state");
      if (state != "firing" && state != "pending") continue;
      ++(state == "firing" ? firing : pending);
      const json labels = a.value("labels", json::object());
      rows += "<tr data-state=\"" + state + "\"><td>" + esc(str(labels, "alertname")) +
              "</td><td class=\"" + state + "\">" + state + "</td>" + td(str(labels, "severity")) +
              "<td>" +
              (parseUtc(str(a, "activeAt")) > 0 ? when(parseUtc(str(a, "activeAt")), d.now_ms)
                                                : esc(str(a, "activeAt"))) +
              "</td>";
      if (d.admin) {
        std::string shown;
        if (labels.is_object()) {
          for (const auto& [k, v] : labels.items()) {
            if (k == "alertname" || k == "severity" || k == "instance") continue;
            shown += (shown.empty() ? "" : ", ") + k + "=" +
                     (v.is_string() ? v.get<std::string>() : v.dump());
          }
        }
        const json ann = a.value("annotations", json::object());
        rows += td(shown) + td(str(ann, "summary"));
      }
      rows += "</tr>\n";
    }
  }
  h += sectionHead("alerts", "Alerts");
  h += "<p>" + std::to_string(firing) + " firing, " + std::to_string(pending) + " pending, " +
       std::to_string(d.rule_count) + " rules loaded</p>\n";
  if (!rows.empty()) {
    h += "<table id=\"alerts-table\"><thead><tr><th>alert</th><th>state</th><th>severity</th>"
         "<th>active since</th>";
    if (d.admin) h += "<th>labels</th><th>summary</th>";
    h += "</tr></thead><tbody>\n" + rows + "</tbody></table>\n";
    if (!d.admin) {
      h += "<p>Labels and summaries: <code>GET /admin/alerts</code> with the admin token.</p>\n";
    }
  }
  h += "</section>\n";
}

void collectorsSection(const PageData& d, std::string& h) {
  h += sectionHead("collectors", "Collectors");
  h += "<table id=\"collectors-table\"><thead><tr><th>collector</th><th>state</th>"
       "<th>last run</th><th class=\"n\">duration</th><th class=\"n\">runs</th>"
       "<th class=\"n\">errors</th><th>last error</th></tr></thead><tbody>\n";
  for (const auto& s : d.collectors) {
    const std::string state = !s.disabled_reason.empty() ? "off"
                              : s.standby                ? "standby"
                              : !s.has_run               ? "pending"
                              : s.last_success           ? "ok"
                                                         : "failing";
    const std::string shown = state == "off" ? "off (" + s.disabled_reason + ")" : state;
    const int64_t last = s.has_run ? toMillis(s.last_run) : 0;
    h += "<tr>" + td(s.name) + "<td class=\"" + state + "\">" + esc(shown) + "</td><td>" +
         when(last, d.now_ms) + "</td>" +
         num(static_cast<double>(s.last_duration.count()),
             std::to_string(s.last_duration.count()) + " ms") +
         num(static_cast<double>(s.runs), std::to_string(s.runs)) +
         num(static_cast<double>(s.errors), std::to_string(s.errors)) + td(s.last_error) +
         "</tr>\n";
  }
  h += "</tbody></table></section>\n";
}

}  // namespace

std::string renderStatusPage(const PageData& d) {
  std::string h;
  h.reserve(64 * 1024);
  h += "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
       "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
       "<link rel=\"icon\" href=\"data:,\"><title>dbpulse " +
       esc(d.instance) + "</title><style>" + kStyle +
       "</style></head><body>\n<header><h1>dbpulse</h1>"
       "<p>instance <b>" +
       esc(d.instance) + "</b>, version " + esc(d.version) + ", <span class=\"" +
       (d.ready ? "ready\">ready" : "not_ready\">not ready") + "</span>, " + esc(d.role) + " · " +
       utc(d.now_ms) +
       " · <label><input type=\"checkbox\" id=\"autorefresh\"> auto-refresh</label></p>\n";
  if (!d.not_ready_reasons.empty()) {
    h += "<ul>";
    for (const auto& r : d.not_ready_reasons) h += "<li>" + esc(r) + "</li>";
    h += "</ul>\n";
  }
  h += "<nav><a href=\"#health\">health</a><a href=\"#queries\">queries</a>"
       "<a href=\"#indexes\">indexes</a><a href=\"#space\">space</a>"
       "<a href=\"#maintenance\">maintenance</a><a href=\"#alerts\">alerts</a>"
       "<a href=\"#collectors\">collectors</a> · <a href=\"/metrics\">/metrics</a> "
       "<a href=\"/health/ready\">/health/ready</a> <a href=\"/admin/alerts\">/admin/alerts</a> "
       "<a href=\"/admin/rules\">/admin/rules</a> "
       "<a href=\"/admin/database/metrics\">/admin/database/metrics</a> "
       "<a href=\"/admin/database/size\">/admin/database/size</a></nav></header>\n<main>\n";
  healthSection(d, h);
  queriesSection(d, h);
  indexesSection(d, h);
  spaceSection(d, h);
  maintenanceSection(d, h);
  alertsSection(d, h);
  collectorsSection(d, h);
  h += "</main><script>";
  h += kScript;
  h += "</script></body></html>\n";
  return h;
}

}  // namespace dbpulse::admin
