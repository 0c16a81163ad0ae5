#pragma once
// The rule engine as functions of (rules, store, now, previous state) -> new state and
// notifications, following Prometheus's rule manager:
//
// Alert state machine, per alerting rule and output label set:
//   inactive --(expr returns the series)--> pending --(for elapsed)--> firing
//   pending --(series gone)--> deleted;  firing --(series gone)--> inactive (resolved),
//   unless keep_firing_for holds it firing that long after the series went;
//   a resolved alert is kept 15 minutes (so its resolution is re-sent), then deleted.
//   for = 0 fires at the first evaluation.
// Output series (written into the store, exported on /metrics): for every pending or
// firing alert ALERTS{alertname, alertstate, <alert labels>} = 1 and
// ALERTS_FOR_STATE{alertname, <alert labels>} = the activeAt time in seconds; recording
// rules write their result under the recorded name. Nothing is written for an alert that
// is not active, as in Prometheus (so no ALERTS series at all while nothing is pending or
// firing). Later rules of a group see what earlier ones wrote.
// Notifications: a firing alert is sent when it starts firing and again every
// resend_interval, with endsAt = now + 4 x max(evaluation interval, resend interval); a
// resolved one is sent with its real endsAt, and re-sent every resend_interval while it
// is kept (15 minutes). startsAt is when the alert started firing.
// Alert labels: the series' labels without __name__, plus the rule's labels (templated),
// plus alertname; notifications add `instance` (from [agent] instance) when absent.
//
// Thread-compatible: call evaluateGroup() for one group from one thread at a time.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "agent/core/alert.h"
#include "agent/core/labels.h"
#include "agent/core/sample_store.h"
#include "agent/core/status.h"
#include "rules/evaluator.h"
#include "rules/rule_file.h"

namespace dbpulse::rules {

inline constexpr int64_t kResolvedRetentionMs = 15 * 60'000;

enum class AlertState { kInactive, kPending, kFiring };
const char* alertStateName(AlertState state);  // "inactive", "pending", "firing"

// One alert of a rule (times in ms since the epoch; 0 = never).
struct Alert {
  Labels labels;  // alertname included
  Labels annotations;
  AlertState state = AlertState::kPending;
  double value = 0;
  int64_t active_at_ms = 0;
  int64_t fired_at_ms = 0;
  int64_t resolved_at_ms = 0;
  int64_t last_sent_at_ms = 0;
  int64_t keep_firing_since_ms = 0;
  int64_t valid_until_ms = 0;
  bool operator==(const Alert&) const = default;
};

enum class RuleHealth { kUnknown, kOk, kError };
const char* ruleHealthName(RuleHealth health);  // "unknown", "ok", "err"

struct RuleState {
  std::map<std::string, Alert> alerts;  // by the alert's label key (alerting rules)
  RuleHealth health = RuleHealth::kUnknown;
  std::string last_error;
  int64_t last_evaluation_ms = 0;
  double last_duration_seconds = 0;
  size_t last_samples = 0;  // series the last evaluation returned
};

struct GroupState {
  std::vector<RuleState> rules;  // parallel to RuleGroup::rules
  int64_t last_evaluation_ms = 0;
  double last_duration_seconds = 0;
  uint64_t evaluations = 0;
  uint64_t rule_failures = 0;  // rule evaluations that failed, since start
};

struct EngineOptions {
  int64_t default_interval_ms = 15'000;  // [rules] evaluation_interval
  int64_t resend_interval_ms = 60'000;   // [alertmanager] resend_interval
  std::string instance;                  // added to notifications as `instance`
  std::string generator_url;             // base URL of this agent, e.g. "http://host:9470"
  Labels external_labels;                // $externalLabels in templates
  EvalOptions eval;
};

// The interval a group is evaluated at.
int64_t groupInterval(const RuleGroup& group, const EngineOptions& options);

// The alert state machine of one alerting rule, pure: given the rule's result at
// `now_ms`, advances `state.alerts` (templates expanded, states moved on). Errors (output
// label sets that collide, the group's limit exceeded) leave the alerts unchanged, except
// that an exceeded limit clears them as Prometheus does. `query` serves the templates'
// `query` function (unset: it fails).
Status stepAlertingRule(const Rule& rule, const Vector& result, int64_t now_ms, int64_t limit,
                        const EngineOptions& options, RuleState& state, const QueryFn& query = {});

// Notifications due for the alerts of one rule at `now_ms`; marks them sent.
std::vector<AlertNotification> dueNotifications(const RuleGroup& group, int64_t now_ms,
                                                const EngineOptions& options, RuleState& state);

struct GroupResult {
  GroupState state;
  std::vector<AlertNotification> notifications;
  bool alerts_changed = false;  // something worth persisting changed
};

// Evaluates every rule of `group` in order at `now_ms` (the store's clock should read
// `now_ms`): queries, the state machine, writes recorded series / ALERTS /
// ALERTS_FOR_STATE into `store`, collects notifications. A failing rule is recorded in its
// RuleState (health, last_error) and counted; the others still run.
GroupResult evaluateGroup(const RuleGroup& group, const GroupState& previous, SampleStore& store,
                          int64_t now_ms, const EngineOptions& options);

// A rule's identity within its group that survives reordering: "alert:Name#0" (the 0 counts
// earlier rules of the group with the same kind and name). State files and store sources
// use it.
std::string ruleId(const RuleGroup& group, size_t index);

// The store source under which rule `index` of `group` writes its series.
std::string ruleSource(const RuleGroup& group, size_t index);

}  // namespace dbpulse::rules
