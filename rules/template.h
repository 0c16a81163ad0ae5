#pragma once
// Alert label and annotation templates: Go's text/template as Prometheus runs it, with
// Prometheus's variables, functions and options.
//
//   {{ $labels.instance }}  {{ $value }}  {{ .Labels.job }}  {{ .Value }}
//   {{ $externalLabels.x }} {{ $externalURL }}  {{ index $labels "le" }}
//   {{ $value | humanize }}  {{ printf "%.2f" $value }}  {{- trims whitespace -}}
//   {{ if gt $value 1.0 }}..{{ else if .. }}..{{ else }}..{{ end }}  {{ with .. }}
//   {{ range $k, $v := $labels }}..{{ end }}  {{ $x := .. }}  {{ break }} {{ continue }}
//   {{ with query "up == 0" }}{{ . | first | label "instance" }}{{ end }}
//   {{ define "x" }}..{{ end }}{{ template "x" . }}  {{ block "y" . }}..{{ end }}
// Functions: Go's (and or not len index print printf println eq ne lt le gt ge html js
// urlquery) and Prometheus's (query first label value strvalue sortByLabel args
// reReplaceAll match safeHtml title toUpper toLower graphLink tableLink humanize
// humanize1024 humanizeDuration humanizePercentage humanizeTimestamp pathPrefix
// externalURL). Output matches Go's formatting ($value prints as Go's %v of a float64:
// 0.25, 1e+06, NaN). A missing label is "" (Prometheus runs templates with
// missingkey=zero).
//
// A parsed Template is immutable and may be shared between threads.

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/core/labels.h"
#include "agent/core/status.h"

namespace dbpulse::rules {

// One element of a `query` result: labels (with __name__ where PromQL keeps it) and value.
struct QuerySample {
  Labels labels;
  double value = 0;
};
using QueryFn = std::function<Result<std::vector<QuerySample>>(const std::string& expr)>;

struct TemplateData {
  TemplateData() = default;
  TemplateData(const Labels* labels_in, double value_in, const Labels* external_labels_in,
               std::string external_url_in, QueryFn query_in = {})
      : labels(labels_in),
        value(value_in),
        external_labels(external_labels_in),
        external_url(std::move(external_url_in)),
        query(std::move(query_in)) {}

  const Labels* labels = nullptr;           // the alert's series labels
  double value = 0;                         // the alert's value
  const Labels* external_labels = nullptr;  // may be null
  std::string external_url;
  QueryFn query;  // evaluates PromQL for the `query` function; unset: query fails
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
  // in `text` (or "LINE:COL: " when the text spans several lines): syntax, undefined
  // functions and variables, as Go's parser reports them.
  static Result<Template> parse(std::string_view text);

  // Expands the template. A runtime error (e.g. humanize of a non-numeric string) is
  // returned as a Status; Prometheus shows such errors in place of the text. Output is
  // capped at 1 MiB (an error beyond).
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
