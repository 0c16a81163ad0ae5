#include "rules/rule_manager.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

#include "agent/core/atomic_file.h"
#include "agent/core/duration.h"
#include "agent/core/sample.h"
#include "rules/template.h"

namespace dbpulse::rules {
namespace {

constexpr int kStateVersion = 1;

std::string keyOf(const Labels& labels) {
  std::string k;
  labels.appendKey(k);
  return k;
}

nlohmann::json labelsJson(const Labels& labels) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& l : labels.items()) j[l.name] = l.value;
  return j;
}

Labels labelsFrom(const nlohmann::json& j) {
  Labels out;
  for (const auto& [k, v] : j.items()) out.set(k, v.get<std::string>());
  return out;
}

// RFC 3339 in UTC with milliseconds, or null for "never".
nlohmann::json timeJson(int64_t ms) {
  if (ms <= 0) return nullptr;
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

nlohmann::json persistedJson(const Alert& a) {
  return {{"labels", labelsJson(a.labels)},
          {"annotations", labelsJson(a.annotations)},
          {"state", alertStateName(a.state)},
          {"value", formatGoFloat(a.value)},
          {"active_at_ms", a.active_at_ms},
          {"fired_at_ms", a.fired_at_ms},
          {"resolved_at_ms", a.resolved_at_ms},
          {"last_sent_at_ms", a.last_sent_at_ms},
          {"keep_firing_since_ms", a.keep_firing_since_ms},
          {"valid_until_ms", a.valid_until_ms}};
}

AlertState stateFrom(const std::string& s) {
  if (s == "firing") return AlertState::kFiring;
  if (s == "inactive") return AlertState::kInactive;
  return AlertState::kPending;
}

// The longest range (+ offset) any selector of the rule looks back, in ms.
int64_t lookbackOf(const Rule& rule) {
  int64_t longest = 0;
  if (rule.expr) {
    forEachSelector(*rule.expr,
                    [&](const Expr& s) { longest = std::max(longest, s.range_ms + s.offset_ms); });
  }
  return longest;
}

}  // namespace

RuleManager::RuleManager(SampleStore& store, const Clock& clock, AlertSink* sink)
    : store_(store), clock_(clock), sink_(sink) {}

RuleManager::~RuleManager() { stop(); }

RuleSet RuleManager::load(const RuleManagerOptions& options) {
  return loadRuleFiles(options.files, options.base_dir);
}

void RuleManager::setAlertSink(AlertSink* sink) {
  MutexLock lock(mu_);
  sink_ = sink;
}

std::string RuleManager::stateFile() const {
  MutexLock lock(mu_);
  return options_.state_dir.empty() ? "" : options_.state_dir + "/rules/alert_state.json";
}

void RuleManager::apply(RuleSet set, const RuleManagerOptions& options) {
  MutexLock eval_lock(eval_mu_);
  std::vector<std::string> dropped_sources;
  size_t rule_count = 0, group_count = 0, file_count = 0;
  {
    MutexLock lock(mu_);
    // The state of what stays, by group key and rule identity.
    std::map<std::string, std::map<std::string, RuleState>> kept;
    std::map<std::string, GroupState> kept_groups;
    for (const auto& g : groups_) {
      for (size_t i = 0; i < g.rules.rules.size(); ++i) {
        kept[g.rules.key()][ruleId(g.rules, i)] = g.state.rules[i];
        dropped_sources.push_back(ruleSource(g.rules, i));
      }
      kept_groups[g.rules.key()] = g.state;
    }
    const int64_t now = nowMs();
    std::vector<Group> fresh;
    for (auto& rg : set.groups) {
      Group g;
      g.rules = std::move(rg);
      if (auto it = kept_groups.find(g.rules.key()); it != kept_groups.end()) {
        g.state.evaluations = it->second.evaluations;
        g.state.rule_failures = it->second.rule_failures;
        g.state.last_evaluation_ms = it->second.last_evaluation_ms;
        g.state.last_duration_seconds = it->second.last_duration_seconds;
      }
      g.state.rules.resize(g.rules.rules.size());
      for (size_t i = 0; i < g.rules.rules.size(); ++i) {
        const std::string id = ruleId(g.rules, i);
        auto& prev = kept[g.rules.key()];
        if (auto it = prev.find(id); it != prev.end()) {
          g.state.rules[i] = std::move(it->second);
        } else if (auto r = restored_.find(g.rules.key()); r != restored_.end()) {
          if (auto a = r->second.find(id); a != r->second.end()) {
            g.state.rules[i].alerts = std::move(a->second);
            r->second.erase(a);
          }
        }
        const Rule& rule = g.rules.rules[i];
        const int64_t lookback = lookbackOf(rule);
        if (options.history_ms > 0 && lookback > options.history_ms) {
          g.warnings.push_back("rule \"" + rule.name + "\" looks back " +
                               formatDuration(Duration(lookback)) + " but the store keeps about " +
                               formatDuration(Duration(options.history_ms)) +
                               " of history: results cover only that; raise [agent] history");
          spdlog::warn("rules: {}: group \"{}\": {}", g.rules.file, g.rules.name,
                       g.warnings.back());
        }
        std::erase(dropped_sources, ruleSource(g.rules, i));
      }
      g.next_due_ms = now;  // evaluate at once
      fresh.push_back(std::move(g));
    }
    groups_ = std::move(fresh);
    files_ = std::move(set.files);
    group_count = groups_.size();
    file_count = files_.size();
    for (const auto& g : groups_) rule_count += g.rules.rules.size();
    options_ = options;
    last_reload_ok_ = true;
    last_reload_errors_.clear();
    last_reload_ms_ = now;
    wake_ = true;
  }
  // Series of rules that are gone must not linger until their staleness.
  for (const auto& s : dropped_sources) store_.dropSource(s);
  cv_.notify_all();
  spdlog::info("rules: {} rules in {} groups from {} files", rule_count, group_count, file_count);
  writeSelfMetrics();
}

void RuleManager::recordReloadFailure(const std::vector<LoadError>& errors) {
  {
    MutexLock lock(mu_);
    last_reload_ok_ = false;
    last_reload_errors_.clear();
    for (const auto& e : errors) last_reload_errors_.push_back(e.toString());
    last_reload_ms_ = nowMs();
  }
  writeSelfMetrics();
}

void RuleManager::start() {
  {
    MutexLock lock(mu_);
    if (started_) return;
    started_ = true;
  }
  restoreState();
  thread_ = std::jthread([this](std::stop_token st) { run(st); });
}

void RuleManager::stop() {
  if (thread_.joinable()) {
    thread_.request_stop();
    cv_.notify_all();
    thread_.join();
  }
  bool started;
  {
    MutexLock lock(mu_);
    started = started_;
    started_ = false;
  }
  if (started) saveState();
}

void RuleManager::setStartGate(std::function<bool()> ready, std::chrono::milliseconds max_wait) {
  MutexLock lock(mu_);
  start_gate_ = std::move(ready);
  start_gate_max_ = max_wait;
}

void RuleManager::run(std::stop_token stop) {
  MutexLock lock(mu_);
  if (start_gate_) {
    // Polled (the gate has no notification of its own), on the cv so stop() ends it at once.
    const auto deadline = std::chrono::steady_clock::now() + start_gate_max_;
    auto gate = start_gate_;
    while (!stop.stop_requested() && std::chrono::steady_clock::now() < deadline) {
      lock.unlock();
      const bool open = gate();
      lock.lock();
      if (open) break;
      cv_.wait_for(lock, stop, std::chrono::milliseconds(100), [] { return false; });
    }
    // Groups that were due while waiting are evaluated now.
  }
  while (!stop.stop_requested()) {
    wake_ = false;
    int64_t next = INT64_MAX;
    for (const auto& g : groups_) next = std::min(next, g.next_due_ms);
    const int64_t now = nowMs();
    if (next > now) {
      // Waits for the next due group, a new rule set, or shutdown; never a bare sleep.
      const auto wait = next == INT64_MAX ? std::chrono::milliseconds(3'600'000)
                                          : std::chrono::milliseconds(next - now);
      cv_.wait_for(lock, stop, wait, [&]() REQUIRES(mu_) { return wake_; });
      continue;
    }
    lock.unlock();
    evaluate(false);
    lock.lock();
  }
}

void RuleManager::evaluate(bool all) {
  MutexLock eval_lock(eval_mu_);
  const int64_t now = nowMs();
  std::vector<AlertNotification> notifications;
  bool changed = false;
  EngineOptions options;
  size_t count;
  AlertSink* sink;
  {
    MutexLock lock(mu_);
    options = options_.engine;
    count = groups_.size();
    sink = sink_;
  }
  // New states are persisted before anything can see them (admin API, Alertmanager): a
  // kill -9 right after an alert was shown or sent as firing must not restart it as pending.
  std::map<size_t, GroupState> results;
  for (size_t i = 0; i < count; ++i) {
    // groups_ only changes under eval_mu_, which this thread holds: the group found under
    // mu_ stays put, and its rules are read without mu_; the state is read and written
    // under mu_ for the admin API.
    const Group* group;
    GroupState previous;
    {
      MutexLock lock(mu_);
      group = &groups_[i];
      if (!all && group->next_due_ms > now) continue;
      previous = group->state;
    }
    const Group& g = *group;
    GroupResult r = evaluateGroup(g.rules, previous, store_, now, options);
    const uint64_t new_failures = r.state.rule_failures - previous.rule_failures;
    if (new_failures > 0) {
      for (size_t k = 0; k < r.state.rules.size(); ++k) {
        const auto& rs = r.state.rules[k];
        const bool was_failing = k < previous.rules.size() &&
                                 previous.rules[k].health == RuleHealth::kError &&
                                 previous.rules[k].last_error == rs.last_error;
        // Logged when a rule starts failing (or fails differently), not at every evaluation.
        if (rs.health == RuleHealth::kError && !was_failing) {
          spdlog::warn("rules: group \"{}\", rule \"{}\": {}", g.rules.name, g.rules.rules[k].name,
                       rs.last_error);
        }
      }
    }
    for (auto& n : r.notifications) notifications.push_back(std::move(n));
    changed = changed || r.alerts_changed;
    results[i] = std::move(r.state);
  }
  if (changed) saveState(&results);
  {
    MutexLock lock(mu_);
    for (auto& [i, state] : results) {
      Group& g = groups_[i];
      g.state = std::move(state);
      const int64_t interval = groupInterval(g.rules, options);
      // Drift-free: the next slot after now (missed slots are skipped, as Prometheus does).
      if (g.next_due_ms <= now) {
        g.next_due_ms += ((now - g.next_due_ms) / interval + 1) * interval;
      }
    }
  }
  if (sink != nullptr && !notifications.empty()) sink->send(notifications);
  writeSelfMetrics();
}

void RuleManager::writeSelfMetrics() {
  SampleBatch b;
  int64_t longest = 15'000;
  {
    MutexLock lock(mu_);
    size_t rules = 0, pending = 0, firing = 0;
    for (const auto& g : groups_) {
      rules += g.rules.rules.size();
      longest = std::max(longest, groupInterval(g.rules, options_.engine));
      const Labels group{{"rule_group", g.rules.name}};
      b.counter("dbpulse_rule_evaluations_total", "Evaluations of each rule group", group,
                static_cast<double>(g.state.evaluations));
      b.counter("dbpulse_rule_evaluation_failures_total",
                "Rule evaluations that failed (the other rules of the group still ran)", group,
                static_cast<double>(g.state.rule_failures));
      if (g.state.last_evaluation_ms > 0) {
        b.gauge("dbpulse_rule_group_last_duration_seconds",
                "How long the last evaluation of the group took", group,
                g.state.last_duration_seconds);
        b.gauge("dbpulse_rule_group_last_evaluation_timestamp_seconds",
                "When the group was last evaluated", group,
                static_cast<double>(g.state.last_evaluation_ms) / 1000);
      }
      for (const auto& rs : g.state.rules) {
        for (const auto& [k, a] : rs.alerts) {
          if (a.state == AlertState::kPending) ++pending;
          if (a.state == AlertState::kFiring) ++firing;
        }
      }
    }
    b.gauge("dbpulse_rules_loaded", "Alerting and recording rules loaded", {},
            static_cast<double>(rules));
    b.gauge("dbpulse_alerts", "Alerts of dbpulse's rules by state", {{"state", "pending"}},
            static_cast<double>(pending));
    b.gauge("dbpulse_alerts", "Alerts of dbpulse's rules by state", {{"state", "firing"}},
            static_cast<double>(firing));
    b.gauge("dbpulse_rules_last_reload_success",
            "1 when the last rule (re)load succeeded, 0 when it was rejected", {},
            last_reload_ok_ ? 1 : 0);
  }
  // Replaced as a whole: a group removed by a reload loses its series at once.
  store_.replace("rules", b, std::chrono::milliseconds(3 * longest + 60'000));
}

size_t RuleManager::ruleCount() const {
  MutexLock lock(mu_);
  size_t n = 0;
  for (const auto& g : groups_) n += g.rules.rules.size();
  return n;
}

void RuleManager::saveState(const std::map<size_t, GroupState>* pending) {
  const std::string path = stateFile();
  if (path.empty()) return;
  nlohmann::json groups = nlohmann::json::object();
  {
    MutexLock lock(mu_);
    for (size_t gi = 0; gi < groups_.size(); ++gi) {
      const Group& g = groups_[gi];
      const GroupState* state = &g.state;
      if (pending != nullptr) {
        if (auto it = pending->find(gi); it != pending->end()) state = &it->second;
      }
      nlohmann::json rules = nlohmann::json::object();
      for (size_t i = 0; i < g.rules.rules.size() && i < state->rules.size(); ++i) {
        const auto& alerts = state->rules[i].alerts;
        if (alerts.empty()) continue;
        nlohmann::json list = nlohmann::json::array();
        for (const auto& [k, a] : alerts) {
          list.push_back(persistedJson(a));
        }
        rules[ruleId(g.rules, i)] = std::move(list);
      }
      if (!rules.empty()) groups[g.rules.key()] = std::move(rules);
    }
    // Restored state whose rules are not loaded (yet) is kept, so a reload that removes a
    // file by mistake and the one that brings it back do not lose startsAt.
    for (const auto& [gk, rules] : restored_) {
      for (const auto& [id, alerts] : rules) {
        if (alerts.empty() || (groups.contains(gk) && groups[gk].contains(id))) continue;
        nlohmann::json list = nlohmann::json::array();
        for (const auto& [k, a] : alerts) {
          list.push_back(persistedJson(a));
        }
        groups[gk][id] = std::move(list);
      }
    }
  }
  nlohmann::json doc{{"version", kStateVersion}, {"saved_at_ms", nowMs()}, {"groups", groups}};
  const std::string dir = path.substr(0, path.rfind('/'));
  Status s = ensureDirectory(dir);
  if (s.ok()) {
    s = writeFileAtomic(path,
                        doc.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  }
  if (!s.ok()) spdlog::error("rules: cannot save alert state to {}: {}", path, s.message());
}

void RuleManager::restoreState() {
  const std::string path = stateFile();
  if (path.empty()) return;
  auto text = readSmallFile(path);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) {
      spdlog::info("rules: no alert state at {} (first start)", path);
    } else {
      spdlog::warn(
          "rules: cannot read alert state {}: {}; starting without it (the file will "
          "be replaced)",
          path, text.status().message());
    }
    return;
  }
  std::map<std::string, std::map<std::string, std::map<std::string, Alert>>> restored;
  try {
    const auto doc = nlohmann::json::parse(*text);
    if (doc.at("version").get<int>() != kStateVersion) {
      throw std::runtime_error("unknown version " + doc.at("version").dump());
    }
    for (const auto& [gk, rules] : doc.at("groups").items()) {
      for (const auto& [id, list] : rules.items()) {
        for (const auto& j : list) {
          Alert a;
          a.labels = labelsFrom(j.at("labels"));
          a.annotations = labelsFrom(j.at("annotations"));
          a.state = stateFrom(j.at("state").get<std::string>());
          a.value = std::strtod(j.at("value").get<std::string>().c_str(), nullptr);
          a.active_at_ms = j.at("active_at_ms").get<int64_t>();
          a.fired_at_ms = j.at("fired_at_ms").get<int64_t>();
          a.resolved_at_ms = j.at("resolved_at_ms").get<int64_t>();
          a.last_sent_at_ms = j.at("last_sent_at_ms").get<int64_t>();
          a.keep_firing_since_ms = j.at("keep_firing_since_ms").get<int64_t>();
          a.valid_until_ms = j.at("valid_until_ms").get<int64_t>();
          restored[gk][id][keyOf(a.labels)] = std::move(a);
        }
      }
    }
  } catch (const std::exception& e) {
    const auto aside = moveAside(path);
    spdlog::error("rules: alert state {} is corrupt ({}); moved to {}, starting without it", path,
                  e.what(),
                  aside.ok() ? aside.value() : "(not moved: " + aside.status().message() + ")");
    return;
  }
  size_t matched = 0;
  {
    MutexLock lock(mu_);
    // Rules loaded already take their alerts now; the rest waits for a later apply().
    for (auto& g : groups_) {
      auto r = restored.find(g.rules.key());
      if (r == restored.end()) continue;
      for (size_t i = 0; i < g.rules.rules.size(); ++i) {
        auto a = r->second.find(ruleId(g.rules, i));
        if (a == r->second.end() || !g.state.rules[i].alerts.empty()) continue;
        matched += a->second.size();
        g.state.rules[i].alerts = std::move(a->second);
        r->second.erase(a);
      }
    }
    restored_ = std::move(restored);
  }
  spdlog::info("rules: restored {} alerts from {}", matched, path);
}

std::string RuleManager::rulesJson() const {
  MutexLock lock(mu_);
  nlohmann::json groups = nlohmann::json::array();
  for (const auto& g : groups_) {
    nlohmann::json rules = nlohmann::json::array();
    for (size_t i = 0; i < g.rules.rules.size(); ++i) {
      const Rule& r = g.rules.rules[i];
      const RuleState& rs = g.state.rules[i];
      nlohmann::json labels = nlohmann::json::object();
      for (const auto& l : r.labels) labels[l.name] = l.text;
      nlohmann::json j{{"name", r.name},
                       {"query", r.expr_text},
                       {"labels", labels},
                       {"health", ruleHealthName(rs.health)},
                       {"lastError", rs.last_error},
                       {"lastEvaluation", timeJson(rs.last_evaluation_ms)},
                       {"evaluationTime", rs.last_duration_seconds},
                       {"line", r.line}};
      if (r.kind == Rule::Kind::kAlerting) {
        nlohmann::json annotations = nlohmann::json::object();
        for (const auto& a : r.annotations) annotations[a.name] = a.text;
        size_t active = 0;
        std::string state = "inactive";
        for (const auto& [k, a] : rs.alerts) {
          if (a.state == AlertState::kInactive) continue;
          ++active;
          if (a.state == AlertState::kFiring) state = "firing";
          if (a.state == AlertState::kPending && state != "firing") state = "pending";
        }
        j["type"] = "alerting";
        j["state"] = state;
        j["duration"] = static_cast<double>(r.for_ms) / 1000;
        j["keepFiringFor"] = static_cast<double>(r.keep_firing_for_ms) / 1000;
        j["annotations"] = annotations;
        j["activeAlerts"] = active;
      } else {
        j["type"] = "recording";
        j["series"] = rs.last_samples;
      }
      rules.push_back(std::move(j));
    }
    nlohmann::json gj{
        {"name", g.rules.name},
        {"file", g.rules.file},
        {"interval", static_cast<double>(groupInterval(g.rules, options_.engine)) / 1000},
        {"limit", g.rules.limit},
        {"rules", rules},
        {"lastEvaluation", timeJson(g.state.last_evaluation_ms)},
        {"evaluationTime", g.state.last_duration_seconds},
        {"evaluations", g.state.evaluations},
        {"ruleFailures", g.state.rule_failures}};
    if (!g.warnings.empty()) gj["warnings"] = g.warnings;
    groups.push_back(std::move(gj));
  }
  nlohmann::json reload{{"success", last_reload_ok_}, {"time", timeJson(last_reload_ms_)}};
  if (!last_reload_errors_.empty()) reload["errors"] = last_reload_errors_;
  nlohmann::json doc{{"groups", groups}, {"files", files_}, {"lastReload", reload}};
  // Label values may hold any bytes: invalid UTF-8 is replaced rather than thrown on.
  return doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string RuleManager::alertsJson() const {
  MutexLock lock(mu_);
  nlohmann::json alerts = nlohmann::json::array();
  for (const auto& g : groups_) {
    for (size_t i = 0; i < g.rules.rules.size(); ++i) {
      for (const auto& [k, a] : g.state.rules[i].alerts) {
        nlohmann::json j{
            {"labels", labelsJson(a.labels)},   {"annotations", labelsJson(a.annotations)},
            {"state", alertStateName(a.state)}, {"activeAt", timeJson(a.active_at_ms)},
            {"value", formatGoFloat(a.value)},  {"group", g.rules.name},
            {"rule", g.rules.rules[i].name}};
        if (a.fired_at_ms > 0) j["startsAt"] = timeJson(a.fired_at_ms);
        if (a.resolved_at_ms > 0) j["resolvedAt"] = timeJson(a.resolved_at_ms);
        if (a.keep_firing_since_ms > 0) j["keepFiringSince"] = timeJson(a.keep_firing_since_ms);
        if (a.last_sent_at_ms > 0) j["lastSentAt"] = timeJson(a.last_sent_at_ms);
        alerts.push_back(std::move(j));
      }
    }
  }
  return nlohmann::json{{"alerts", alerts}}.dump(2, ' ', false,
                                                 nlohmann::json::error_handler_t::replace) +
         "\n";
}

}  // namespace dbpulse::rules
