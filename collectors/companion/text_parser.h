#pragma once
// A parser for the Prometheus text exposition format (version 0.0.4, what prom-client and
// every Prometheus client library serve), for the companion collector. Pure and std-only;
// fuzzed (tests/fuzz/text_parser_fuzzer.cpp).
//
// It never throws and never gives up on the whole input because of one bad line: a line
// that breaks the format is skipped, counted and (the first few) described with its line
// number, the way a tolerant scraper has to treat an exposition it does not control.
//
// Accepted, as Prometheus's own parser does:
//   - "# HELP name text" (escapes \\ and \n) and "# TYPE name counter|gauge|histogram|
//     summary|untyped" before a family's samples; other "#" lines are comments
//     (OpenMetrics's "# EOF" and "unknown" type are accepted too);
//   - name{label="value",...} value [timestamp], blanks/tabs between tokens, a trailing
//     comma in the label set, no newline after the last line, "\r\n" line ends;
//   - label value escapes \\ \" \n; values in Go float syntax incl. NaN, +Inf, -Inf, Inf;
//     timestamps as integer milliseconds since the epoch.
// Rejected (line skipped, counted): invalid metric or label names, reserved "__" label
// names, a label given twice, unknown escapes, label values or HELP text that are not
// UTF-8, unparsable values or timestamps, trailing garbage, lines longer than
// max_line_bytes. A second sample for the same series (name + labels) is dropped and
// counted as a duplicate; the first one stays. Labels with an empty value are dropped
// (Prometheus treats them as absent). Label values over max_label_value_bytes reject their
// line. After max_samples samples, or max_label_bytes of names and labels, the rest of the
// input is ignored and `truncated` is set.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/labels.h"

namespace dbpulse::collectors {

enum class ExpositionType { kUntyped, kCounter, kGauge, kHistogram, kSummary };

struct ExpositionFamily {
  std::string name;
  ExpositionType type = ExpositionType::kUntyped;
  std::string help;
};

struct ExpositionSample {
  std::string name;  // as written: http_request_duration_seconds_bucket
  Labels labels;
  double value = 0;
  std::optional<int64_t> timestamp_ms;
  // Index into ParsedExposition::families of the family the sample belongs to (its own name,
  // or for a histogram/summary the name without _bucket/_sum/_count), or kNoFamily.
  size_t family = kNoFamily;
  static constexpr size_t kNoFamily = static_cast<size_t>(-1);
};

struct ExpositionError {
  size_t line = 0;  // 1-based
  std::string message;
};

struct TextParserOptions {
  size_t max_line_bytes = 64 * 1024;
  size_t max_samples = 50'000;
  size_t max_labels = 64;  // per sample
  // Memory bounds that do not depend on the input: a label value longer than this rejects
  // its line; once the kept samples' names and labels add up to max_label_bytes, the rest
  // of the input is ignored and `truncated` is set.
  size_t max_label_value_bytes = 1024;
  size_t max_label_bytes = 1024 * 1024;
  size_t max_errors_kept = 20;  // errors described in `errors`; all are counted
};

struct ParsedExposition {
  std::vector<ExpositionFamily> families;  // in order of their first HELP/TYPE line
  std::vector<ExpositionSample> samples;   // in input order, duplicates removed
  std::vector<ExpositionError> errors;     // the first max_errors_kept problems
  size_t rejected_lines = 0;               // lines skipped as malformed
  size_t duplicates = 0;                   // samples dropped as repeated series
  bool truncated = false;                  // max_samples reached

  // nullptr for ExpositionSample::kNoFamily.
  const ExpositionFamily* familyOf(const ExpositionSample& s) const {
    return s.family < families.size() ? &families[s.family] : nullptr;
  }
};

ParsedExposition parseTextExposition(std::string_view text, const TextParserOptions& options = {});

// True for [a-zA-Z_:][a-zA-Z0-9_:]*.
bool isValidMetricName(std::string_view name);
// True for [a-zA-Z_][a-zA-Z0-9_]*.
bool isValidLabelName(std::string_view name);

}  // namespace dbpulse::collectors
