#pragma once
// Alert label and annotation templates: the subset of Go's text/template that
// Prometheus rules use, with Prometheus's variables and formatting functions.
//
//   {{ $labels.instance }}  {{ $value }}  {{ .Labels.job }}  {{ .Value }}
//   {{ $externalLabels.x }} {{ $externalURL }}  {{ index $labels "le" }}
//   {{ $value | humanize }}  {{ humanizePercentage $value }}  {{ printf "%.2f" $value }}
//   {{- trims whitespace -}}  {{/* comments */}}
// Functions: humanize humanize1024 humanizePercentage humanizeDuration printf toUpper
// toLower title index. Output matches Go's formatting (e.g. $value prints as Go's %v
// of a float64: 0.25, 1e+06, NaN). A missing label prints "<no value>", as in Go.
// Anything else (if/range/with/define, query, variables declared in the template, ...)
// is rejected by parse() with the position of the action and the construct named.
//
// A parsed Template is immutable and may be shared between threads.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/labels.h"
#include "agent/core/status.h"

namespace dbpulse::rules {

struct TemplateData {
  const Labels* labels = nullptr;           // the alert's series labels
  double value = 0;                         // the alert's value
  const Labels* external_labels = nullptr;  // may be null
  std::string external_url;
};

class Template {
 public:
  Template();  // the empty template
  ~Template();
  Template(const Template&);
  Template& operator=(const Template&);
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;

  // Errors (kInvalidArgument): "COL: message" with the 1-based byte column of the action
  // in `text` (or "LINE:COL: " when the text spans several lines).
  static Result<Template> parse(std::string_view text);

  // Expands the template. A runtime error (e.g. humanize of a non-numeric string) is
  // returned as a Status; Prometheus shows such errors in place of the text.
  Result<std::string> expand(const TemplateData& data) const;

  // True when the text has no {{ }} actions (expansion returns it unchanged).
  bool isConstant() const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

// Prometheus's template functions, exposed for tests.
std::string humanize(double v);
std::string humanize1024(double v);
std::string humanizePercentage(double v);
std::string humanizeDuration(double seconds);
// Go's %v of a float64: shortest round-trip digits, exponent form when the decimal
// exponent is below -4 or at least 6 ("1e+06", "123456", "1e-05"), NaN, +Inf, -Inf.
std::string formatGoFloat(double v);

}  // namespace dbpulse::rules
