#pragma once
// Prometheus rule files (the same YAML that `promtool check rules` and Prometheus load):
//
//   groups:
//     - name: postgres            # unique within the file
//       interval: 15s             # optional; default [rules] evaluation_interval
//       limit: 0                  # optional; more alerts/series than this fails the rule
//       rules:
//         - alert: PostgresDown   # or `record: job:rate5m:sum` (a recording rule)
//           expr: pg_up == 0
//           for: 1m               # alerting only
//           keep_firing_for: 5m   # alerting only
//           labels: {severity: critical}      # templated for alerts
//           annotations: {summary: "..."}     # alerting only, templated
//
// Loading validates everything promtool does (unknown fields, record vs alert, label
// names, durations, the expression, the templates) and also that the expression stays
// inside the PromQL subset the engine evaluates. Every problem is reported, each with
// the file, the YAML position, the group and rule, and the construct. Pure apart from
// reading the files; thread-safe.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rules/promql_parser.h"
#include "rules/template.h"

namespace dbpulse::rules {

struct LoadError {
  std::string file;
  int line = 0;  // 1-based; 0 when unknown
  int column = 0;
  std::string message;
  // "FILE:LINE:COL: message" (or "FILE: message").
  std::string toString() const;
};

struct TemplatedLabel {
  std::string name;
  std::string text;  // as written
  Template tmpl;
};

struct Rule {
  enum class Kind { kAlerting, kRecording };
  Kind kind = Kind::kAlerting;
  std::string name;  // the alert name or the recorded metric name
  std::string expr_text;
  std::shared_ptr<const Expr> expr;
  int64_t for_ms = 0;
  int64_t keep_firing_for_ms = 0;
  std::vector<TemplatedLabel> labels;       // sorted by name
  std::vector<TemplatedLabel> annotations;  // sorted by name
  int line = 0;                             // where the rule starts in its file
};

struct RuleGroup {
  std::string file;  // the path the group was loaded from
  std::string name;
  int64_t interval_ms = 0;  // 0: the default evaluation interval
  int64_t limit = 0;        // 0: no limit
  std::vector<Rule> rules;
  // Identifies the group across reloads and restarts (file and name).
  std::string key() const { return file + "#" + name; }
};

struct RuleSet {
  std::vector<RuleGroup> groups;  // in file order, then group order
  std::vector<std::string> files;
  std::vector<LoadError> errors;  // empty when the set is usable
  bool ok() const { return errors.empty(); }
};

// Parses one file's content. `file` names it in errors and in RuleGroup::file.
RuleSet parseRuleFile(std::string_view text, const std::string& file);

// Expands `patterns` (glob patterns; relative ones against `base_dir`), reads and parses
// every file, in pattern order then sorted. A pattern with wildcards that matches nothing
// is fine; a plain path that does not exist is an error.
RuleSet loadRuleFiles(const std::vector<std::string>& patterns, const std::string& base_dir);

}  // namespace dbpulse::rules
