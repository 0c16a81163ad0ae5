#include "rules/rule_engine.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <unordered_set>

#include "agent/core/sample.h"
#include "agent/core/text.h"

namespace dbpulse::rules {

const char* alertStateName(AlertState state) {
  switch (state) {
    case AlertState::kInactive:
      return "inactive";
    case AlertState::kPending:
      return "pending";
    case AlertState::kFiring:
      return "firing";
  }
  return "?";
}

const char* ruleHealthName(RuleHealth health) {
  switch (health) {
    case RuleHealth::kUnknown:
      return "unknown";
    case RuleHealth::kOk:
      return "ok";
    case RuleHealth::kError:
      return "err";
  }
  return "?";
}

namespace {

std::string keyOf(const Labels& labels) {
  std::string k;
  labels.appendKey(k);
  return k;
}

std::string expandOrError(const TemplatedLabel& t, const TemplateData& data) {
  if (t.tmpl.isConstant()) return t.text;
  auto r = t.tmpl.expand(data);
  // Prometheus puts the error where the text would have been, so the alert still goes out.
  if (!r.ok()) return "<error expanding template: " + r.status().message() + ">";
  return std::move(*r);
}

// Whether what gets persisted (which alerts exist, their states and times) differs.
bool sameLifecycle(const std::map<std::string, Alert>& a, const std::map<std::string, Alert>& b) {
  if (a.size() != b.size()) return false;
  for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib) {
    const Alert& x = ia->second;
    const Alert& y = ib->second;
    if (ia->first != ib->first || x.state != y.state || x.active_at_ms != y.active_at_ms ||
        x.fired_at_ms != y.fired_at_ms || x.resolved_at_ms != y.resolved_at_ms ||
        x.last_sent_at_ms != y.last_sent_at_ms ||
        x.keep_firing_since_ms != y.keep_firing_since_ms) {
      return false;
    }
  }
  return true;
}

WallTime fromMillis(int64_t ms) { return WallTime(std::chrono::milliseconds(ms)); }

}  // namespace

int64_t groupInterval(const RuleGroup& group, const EngineOptions& options) {
  return group.interval_ms > 0 ? group.interval_ms : options.default_interval_ms;
}

std::string ruleId(const RuleGroup& group, size_t index) {
  const Rule& rule = group.rules[index];
  size_t occurrence = 0;
  for (size_t i = 0; i < index; ++i) {
    if (group.rules[i].kind == rule.kind && group.rules[i].name == rule.name) ++occurrence;
  }
  return std::string(rule.kind == Rule::Kind::kAlerting ? "alert:" : "record:") + rule.name + "#" +
         std::to_string(occurrence);
}

std::string ruleSource(const RuleGroup& group, size_t index) {
  return "rule:" + group.key() + "/" + ruleId(group, index);
}

Status stepAlertingRule(const Rule& rule, const Vector& result, int64_t now_ms, int64_t limit,
                        const EngineOptions& options, RuleState& state, const QueryFn& query) {
  std::map<std::string, Alert> fresh;
  for (const auto& el : result) {
    const TemplateData data{&el.labels, el.value, &options.external_labels, options.generator_url,
                            query};
    Labels labels;
    labels.reserve(el.labels.size() + rule.labels.size() + 1);
    labels = el.labels;
    labels.erase(kMetricNameLabel);
    for (const auto& l : rule.labels) {
      std::string v = expandOrError(l, data);
      if (v.empty()) {
        labels.erase(l.name);  // an empty label is no label
      } else {
        labels.set(l.name, v);
      }
    }
    labels.set("alertname", rule.name);
    Alert a;
    for (const auto& an : rule.annotations) a.annotations.set(an.name, expandOrError(an, data));
    a.labels = std::move(labels);
    a.state = AlertState::kPending;
    a.value = el.value;
    a.active_at_ms = now_ms;
    if (!fresh.emplace(keyOf(a.labels), std::move(a)).second) {
      return invalidArgument(
          "vector contains metrics with the same labelset after applying "
          "alert labels");
    }
  }

  for (auto& [key, a] : fresh) {
    auto it = state.alerts.find(key);
    if (it != state.alerts.end() && it->second.state != AlertState::kInactive) {
      it->second.value = a.value;
      it->second.annotations = std::move(a.annotations);
      continue;
    }
    state.alerts[key] = std::move(a);  // new, or back after being resolved: starts pending
  }

  size_t active = 0;
  for (auto it = state.alerts.begin(); it != state.alerts.end();) {
    Alert& a = it->second;
    if (!fresh.count(it->first)) {
      bool keep_firing = false;
      if (a.state == AlertState::kFiring && rule.keep_firing_for_ms > 0) {
        if (a.keep_firing_since_ms == 0) a.keep_firing_since_ms = now_ms;
        keep_firing = now_ms - a.keep_firing_since_ms < rule.keep_firing_for_ms;
      }
      if (!keep_firing) {
        // A resolved alert is kept a while, so Alertmanager learns of the resolution even
        // if a notification is lost; a pending one simply goes.
        if (a.state == AlertState::kPending ||
            (a.resolved_at_ms != 0 && now_ms - a.resolved_at_ms > kResolvedRetentionMs)) {
          it = state.alerts.erase(it);
          continue;
        }
        if (a.state != AlertState::kInactive) {
          a.state = AlertState::kInactive;
          a.resolved_at_ms = now_ms;
        }
        ++it;
        continue;
      }
    } else {
      a.keep_firing_since_ms = 0;
    }
    ++active;
    if (a.state == AlertState::kPending && now_ms - a.active_at_ms >= rule.for_ms) {
      a.state = AlertState::kFiring;
      a.fired_at_ms = now_ms;
    }
    ++it;
  }

  if (limit > 0 && static_cast<int64_t>(active) > limit) {
    state.alerts.clear();
    return invalidArgument("exceeded limit of " + std::to_string(limit) + " with " +
                           std::to_string(active) + " alerts");
  }
  return okStatus();
}

std::vector<AlertNotification> dueNotifications(const RuleGroup& group, int64_t now_ms,
                                                const EngineOptions& options, RuleState& state) {
  std::vector<AlertNotification> out;
  const int64_t delta = std::max(options.resend_interval_ms, groupInterval(group, options));
  for (auto& [key, a] : state.alerts) {
    if (a.state == AlertState::kPending) continue;
    const bool resolved_since_sent = a.resolved_at_ms > a.last_sent_at_ms;
    const bool resend_due = a.last_sent_at_ms + options.resend_interval_ms < now_ms;
    if (!resolved_since_sent && !resend_due) continue;
    a.last_sent_at_ms = now_ms;
    // Valid for a few evaluations, so one or two failed deliveries do not resolve it.
    a.valid_until_ms = now_ms + 4 * delta;
    AlertNotification n;
    n.labels = a.labels;
    if (!options.instance.empty() && a.labels.get("instance").empty()) {
      n.labels.set("instance", options.instance);
    }
    n.annotations = a.annotations;
    n.starts_at = fromMillis(a.fired_at_ms);
    n.resolved = a.resolved_at_ms != 0;
    n.ends_at = fromMillis(n.resolved ? a.resolved_at_ms : a.valid_until_ms);
    n.generator_url = options.generator_url + "/admin/rules#" + percentEncode(group.name);
    out.push_back(std::move(n));
  }
  return out;
}

GroupResult evaluateGroup(const RuleGroup& group, const GroupState& previous, SampleStore& store,
                          int64_t now_ms, const EngineOptions& options) {
  using Clock = std::chrono::steady_clock;
  const auto group_start = Clock::now();
  GroupResult out;
  out.state = previous;
  out.state.rules.resize(group.rules.size());
  // Series of a rule that stops being evaluated (a crashed loop) vanish after a few intervals.
  const auto staleness = std::chrono::milliseconds(3 * groupInterval(group, options));
  // The `query` template function: PromQL at the evaluation time, like the rule itself.
  const QueryFn query = [&](const std::string& text) -> Result<std::vector<QuerySample>> {
    auto parsed = parseExpr(text);
    if (!parsed.ok()) return parsed.status();
    auto r = evaluate(**parsed, store, now_ms, options.eval);
    if (!r.ok()) return r.status();
    std::vector<QuerySample> samples;
    if (r->type == ValueType::kScalar) {
      samples.push_back(QuerySample{Labels{}, r->scalar});
    } else {
      for (auto& el : r->vector) samples.push_back(QuerySample{std::move(el.labels), el.value});
    }
    return samples;
  };

  for (size_t i = 0; i < group.rules.size(); ++i) {
    const Rule& rule = group.rules[i];
    RuleState& rs = out.state.rules[i];
    const auto rule_start = Clock::now();
    Status status;
    auto result = evaluate(*rule.expr, store, now_ms, options.eval);
    Vector vec;
    if (!result.ok()) {
      status = result.status();
    } else if (result->type == ValueType::kScalar) {
      vec.push_back(Element{Labels{}, result->scalar});
    } else {
      vec = std::move(result->vector);
    }
    if (result.ok()) rs.last_samples = vec.size();

    SampleBatch batch;
    if (rule.kind == Rule::Kind::kRecording) {
      if (status.ok()) {
        batch.describe(rule.name, MetricType::kUntyped,
                       "Recorded by rule group " + group.name + ": " + rule.expr_text);
        std::unordered_set<std::string> seen;
        for (auto& el : vec) {
          Labels labels;
          labels.reserve(el.labels.size() + rule.labels.size());
          labels = el.labels;
          labels.erase(kMetricNameLabel);
          for (const auto& l : rule.labels) {
            if (l.text.empty()) {
              labels.erase(l.name);
            } else {
              labels.set(l.name, l.text);
            }
          }
          if (!seen.insert(keyOf(labels)).second) {
            status = invalidArgument(
                "vector contains metrics with the same labelset after "
                "applying rule labels");
            break;
          }
          batch.add(rule.name, std::move(labels), el.value);
        }
        if (status.ok() && group.limit > 0 && static_cast<int64_t>(vec.size()) > group.limit) {
          status = invalidArgument("exceeded limit of " + std::to_string(group.limit) + " with " +
                                   std::to_string(vec.size()) + " series");
        }
      }
      // On failure the previous results stay until their staleness, as nothing replaces them.
      if (status.ok()) store.replace(ruleSource(group, i), batch, staleness, true, now_ms);
    } else {
      const auto before = rs.alerts;
      if (status.ok()) {
        status = stepAlertingRule(rule, vec, now_ms, group.limit, options, rs, query);
      }
      // ALERTS always mirror the state (unchanged after a failed query).
      batch.describe("ALERTS", MetricType::kGauge,
                     "Alerts of dbpulse's rules: 1 per pending or firing alert");
      batch.describe("ALERTS_FOR_STATE", MetricType::kGauge,
                     "When each pending or firing alert became active, in Unix seconds");
      for (const auto& [key, a] : rs.alerts) {
        if (a.state == AlertState::kInactive) continue;
        Labels l = a.labels;
        // Whole seconds, like Prometheus.
        batch.add("ALERTS_FOR_STATE", l,
                  static_cast<double>(a.active_at_ms / 1000));  // NOLINT(bugprone-integer-division)
        l.set("alertstate", alertStateName(a.state));
        batch.add("ALERTS", std::move(l), 1);
      }
      store.replace(ruleSource(group, i), batch, staleness, true, now_ms);
      auto sent = dueNotifications(group, now_ms, options, rs);
      for (auto& n : sent) out.notifications.push_back(std::move(n));
      if (!sameLifecycle(before, rs.alerts)) out.alerts_changed = true;
    }

    if (status.ok()) {
      rs.health = RuleHealth::kOk;
      rs.last_error.clear();
    } else {
      rs.health = RuleHealth::kError;
      rs.last_error = status.message();
      ++out.state.rule_failures;
    }
    rs.last_evaluation_ms = now_ms;
    rs.last_duration_seconds = std::chrono::duration<double>(Clock::now() - rule_start).count();
  }
  out.state.last_evaluation_ms = now_ms;
  out.state.last_duration_seconds =
      std::chrono::duration<double>(Clock::now() - group_start).count();
  ++out.state.evaluations;
  return out;
}

}  // namespace dbpulse::rules
