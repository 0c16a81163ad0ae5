#pragma once
// RuleManager: runs the rule engine (rule_engine.h) in the agent. Owns the loaded rule
// groups and their state, evaluates each group every interval on its own thread, hands
// notifications to the AlertSink, persists alert state, and answers the admin API.
//
// - Loading is two-phase so a reload is all-or-nothing: load() parses every file
//   completely; only a set without errors is apply()'d. A bad file leaves the running
//   rules untouched (the caller reports the errors; recordReloadFailure() shows them in
//   /admin/rules and dbpulse_rules_last_reload_success).
// - apply() keeps the state of every group/rule that still exists (by file + group name
//   and rule identity), so a reload does not reset pending or firing alerts; groups are
//   evaluated at once after apply().
// - Alert state (activeAt, startsAt, last sent, ...) is saved to
//   <state_dir>/rules/alert_state.json (atomically) after every evaluation that changed it
//   and restored at start, so a restart keeps each alert's startsAt. A missing or corrupt
//   file is logged and replaced, never fatal.
// - Self-metrics in the store: dbpulse_rules_loaded, dbpulse_rule_evaluations_total and
//   dbpulse_rule_evaluation_failures_total{rule_group}, dbpulse_rule_group_last_duration_seconds
//   and dbpulse_rule_group_last_evaluation_timestamp_seconds{rule_group},
//   dbpulse_alerts{state}, dbpulse_rules_last_reload_success.
// Thread-safe: every public method may be called from any thread.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "agent/core/alert.h"
#include "agent/core/clock.h"
#include "agent/core/mutex.h"
#include "agent/core/sample_store.h"
#include "rules/rule_engine.h"
#include "rules/rule_file.h"

namespace dbpulse::rules {

struct RuleManagerOptions {
  std::vector<std::string> files;  // glob patterns ([rules] files)
  std::string base_dir;            // relative patterns are relative to it (the config's dir)
  std::string state_dir;           // "" = do not persist alert state
  int64_t history_ms = 0;          // how far back the store keeps history (0 = unknown)
  EngineOptions engine;
};

class RuleManager {
 public:
  // `sink` receives notifications (may be null: alerts are then only visible in the admin
  // API and as ALERTS series). `store` and `clock` must outlive the manager.
  RuleManager(SampleStore& store, const Clock& clock, AlertSink* sink = nullptr);
  ~RuleManager();
  RuleManager(const RuleManager&) = delete;
  RuleManager& operator=(const RuleManager&) = delete;

  // Parses every rule file of `options` (pure apart from reading files).
  static RuleSet load(const RuleManagerOptions& options);

  // Replaces the running rules with `set` (which must have no errors) and `options`.
  void apply(RuleSet set, const RuleManagerOptions& options);

  // A reload was rejected: keeps the running rules and records why.
  void recordReloadFailure(const std::vector<LoadError>& errors);

  // Holds back the thread's first evaluation until `ready()` is true (the agent's first
  // collection cycle has finished) or `max_wait` has passed. Without it, alerts restored
  // as firing would resolve at an evaluation that ran before the collectors reported.
  // Call before start().
  void setStartGate(std::function<bool()> ready, std::chrono::milliseconds max_wait);

  // Restores persisted alert state and starts the evaluation thread. Idempotent.
  void start();
  // Reads the state file (start() does this): alerts of loaded rules are restored now,
  // the others when a later apply() loads their rules.
  void restoreState();
  // Stops the thread (waits for an evaluation in progress) and saves the state.
  void stop();

  // Evaluates every group whose time has come (every group when `all`), in order. The
  // thread calls it; tests call it directly with a fake clock instead of start().
  void evaluate(bool all = false);

  void setAlertSink(AlertSink* sink);

  size_t ruleCount() const;
  // GET /admin/rules and GET /admin/alerts bodies (JSON).
  std::string rulesJson() const;
  std::string alertsJson() const;

  // The state file's path ("" without a state_dir).
  std::string stateFile() const;

 private:
  struct Group {
    RuleGroup rules;
    GroupState state;
    int64_t next_due_ms = 0;
    std::vector<std::string> warnings;  // e.g. a range longer than the store's history
  };

  void run(std::stop_token stop);
  // Writes the alert state file; `pending` holds evaluated group states (by index in
  // groups_) that are not yet published and take the place of the published ones.
  void saveState(const std::map<size_t, GroupState>* pending = nullptr);
  void writeSelfMetrics();
  int64_t nowMs() const { return toMillis(clock_.now()); }

  SampleStore& store_;
  const Clock& clock_;

  Mutex eval_mu_;  // one evaluation or apply() at a time; taken before mu_
  mutable Mutex mu_;
  std::condition_variable_any cv_;
  bool wake_ GUARDED_BY(mu_) = false;  // re-plan the wait (apply)
  AlertSink* sink_ GUARDED_BY(mu_) = nullptr;
  RuleManagerOptions options_ GUARDED_BY(mu_);
  std::vector<Group> groups_ GUARDED_BY(mu_);  // rules change only under eval_mu_ too
  std::vector<std::string> files_ GUARDED_BY(mu_);
  bool last_reload_ok_ GUARDED_BY(mu_) = true;
  std::vector<std::string> last_reload_errors_ GUARDED_BY(mu_);
  int64_t last_reload_ms_ GUARDED_BY(mu_) = 0;
  // Alert state read from the state file and not yet matched to a loaded rule:
  // group key -> rule id -> alerts.
  std::map<std::string, std::map<std::string, std::map<std::string, Alert>>> restored_
      GUARDED_BY(mu_);
  bool started_ GUARDED_BY(mu_) = false;
  std::function<bool()> start_gate_ GUARDED_BY(mu_);
  std::chrono::milliseconds start_gate_max_ GUARDED_BY(mu_){0};
  std::jthread thread_;
};

}  // namespace dbpulse::rules
