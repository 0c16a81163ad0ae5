#include "tests/rules/promtool_test_file.h"

#include <glob.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <limits>
#include <optional>
#include <sstream>

#include "agent/core/duration.h"
#include "rules/go_string.h"

namespace dbpulse::rules::testing {
namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool startsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

// Scans one number at the start of `s`: an optional sign, then Inf, NaN or a decimal with
// an optional exponent. No hexadecimal: as in Prometheus's series notation, where "0x4"
// means "0 four more times". Returns the characters used, or 0.
size_t scanNumber(std::string_view s, double& out) {
  size_t i = 0;
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    negative = s[i] == '-';
    ++i;
  }
  const std::string_view rest = s.substr(i);
  double magnitude = 0;
  if (startsWithNoCase(rest, "inf")) {
    magnitude = std::numeric_limits<double>::infinity();
    i += 3;
  } else if (startsWithNoCase(rest, "nan")) {
    magnitude = std::numeric_limits<double>::quiet_NaN();
    i += 3;
  } else {
    size_t j = 0;
    while (j < rest.size() && isDigit(rest[j])) ++j;
    size_t digits = j;
    if (j < rest.size() && rest[j] == '.') {
      ++j;
      while (j < rest.size() && isDigit(rest[j])) ++j, ++digits;
    }
    if (digits == 0) return 0;
    if (j < rest.size() && (rest[j] == 'e' || rest[j] == 'E')) {
      size_t k = j + 1;
      if (k < rest.size() && (rest[k] == '+' || rest[k] == '-')) ++k;
      if (k < rest.size() && isDigit(rest[k])) {
        while (k < rest.size() && isDigit(rest[k])) ++k;
        j = k;
      }
    }
    auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + j, magnitude);
    if (ec != std::errc() || ptr != rest.data() + j) return 0;
    i += j;
  }
  out = negative ? -magnitude : magnitude;
  return i;
}

// A whole string as one number (exp_samples values).
std::optional<double> parseNumber(std::string_view s) {
  double v = 0;
  const size_t used = scanNumber(s, v);
  if (used == 0 || used != s.size()) return std::nullopt;
  return v;
}

std::optional<uint64_t> parseCount(std::string_view s) {
  uint64_t n = 0;
  if (s.empty()) return std::nullopt;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return n;
}

// A runaway 'x' count would allocate without bound: no test needs more steps.
constexpr uint64_t kMaxExpansion = 1'000'000;

Status expandItem(std::string_view item, std::vector<SeriesValue>& out) {
  auto bad = [&](std::string_view why) {
    return invalidArgument("series values: '" + std::string(item) + "': " + std::string(why));
  };
  if (item == "stale") {
    out.push_back(SeriesValue::stale());
    return okStatus();
  }
  if (item[0] == '_') {
    if (item.size() == 1) {
      out.push_back(SeriesValue::omitted());
      return okStatus();
    }
    if (item[1] != 'x') return bad("expected '_' or '_xN'");
    auto n = parseCount(item.substr(2));
    if (!n) return bad("expected a count after 'x'");
    if (*n > kMaxExpansion) return bad("count too large");
    out.insert(out.end(), *n, SeriesValue::omitted());
    return okStatus();
  }
  double start = 0;
  size_t pos = scanNumber(item, start);
  if (pos == 0) return bad("expected a number, '_' or 'stale'");
  if (pos == item.size()) {
    out.push_back(SeriesValue::sample(start));
    return okStatus();
  }
  double step = 0;
  if (item[pos] == '+' || item[pos] == '-') {
    // The step carries its sign; scanNumber reads it.
    const size_t used = scanNumber(item.substr(pos), step);
    if (used == 0) return bad("expected a number after the sign");
    pos += used;
  }
  if (pos >= item.size() || item[pos] != 'x') return bad("expected 'xN' after the number(s)");
  auto n = parseCount(item.substr(pos + 1));
  if (!n) return bad("expected a count after 'x'");
  if (*n >= kMaxExpansion) return bad("count too large");
  double v = start;
  for (uint64_t i = 0; i <= *n; ++i) {
    out.push_back(SeriesValue::sample(v));
    v += step;  // repeated addition, as promtool, so float rounding matches
  }
  return okStatus();
}

bool isNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool isNameChar(char c) { return isNameStart(c) || isDigit(c); }

// Tiny cursor over a series name text.
class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}
  void skipSpace() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n')) ++i_;
  }
  bool done() const { return i_ >= s_.size(); }
  char peek() const { return done() ? '\0' : s_[i_]; }
  bool take(char c) {
    if (peek() != c) return false;
    ++i_;
    return true;
  }
  std::string_view name(bool allow_colon) {
    const size_t start = i_;
    if (!done() && (isNameStart(s_[i_]) || (allow_colon && s_[i_] == ':'))) {
      ++i_;
      while (!done() && (isNameChar(s_[i_]) || (allow_colon && s_[i_] == ':'))) ++i_;
    }
    return s_.substr(start, i_ - start);
  }
  // A quoted string ("...", '...' or `...`), unescaped by Go's rules.
  std::optional<std::string> quoted() {
    const char q = peek();
    if (q != '"' && q != '\'' && q != '`') return std::nullopt;
    rules::GoString lit = rules::readGoString(s_, i_);
    if (!lit.ok()) return std::nullopt;
    i_ = lit.end;
    return std::move(lit.value);
  }
  size_t pos() const { return i_; }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

// ---- YAML helpers: yaml-cpp throws; everything below runs inside one try block. ----

std::string where(const YAML::Node& n) {
  const YAML::Mark m = n.Mark();
  if (m.line < 0) return "";
  return "line " + std::to_string(m.line + 1) + ": ";
}

Status checkKeys(const YAML::Node& map, std::string_view what,
                 std::initializer_list<std::string_view> allowed) {
  if (!map.IsMap()) return invalidArgument(where(map) + std::string(what) + ": expected a mapping");
  for (const auto& kv : map) {
    const std::string key = kv.first.as<std::string>();
    bool known = false;
    for (auto a : allowed) known = known || key == a;
    if (!known) {
      return invalidArgument(where(kv.first) + "field " + key + " not found in " +
                             std::string(what));
    }
  }
  return okStatus();
}

Result<std::string> scalar(const YAML::Node& n, std::string_view what) {
  if (!n.IsScalar()) return invalidArgument(where(n) + std::string(what) + ": expected a scalar");
  return n.as<std::string>();
}

Result<int64_t> duration(const YAML::Node& n, std::string_view what) {
  auto text = scalar(n, what);
  if (!text.ok()) return text.status();
  auto d = parsePromtoolDuration(*text);
  if (!d.ok()) return invalidArgument(where(n) + std::string(what) + ": " + d.status().message());
  return *d;
}

Status stringMap(const YAML::Node& n, std::string_view what, Annotations& out) {
  if (!n || n.IsNull()) return okStatus();
  if (!n.IsMap()) return invalidArgument(where(n) + std::string(what) + ": expected a mapping");
  for (const auto& kv : n) {
    auto v = scalar(kv.second, what);
    if (!v.ok()) return v.status();
    out[kv.first.as<std::string>()] = *v;
  }
  return okStatus();
}

Status labelMap(const YAML::Node& n, std::string_view what, Labels& out) {
  Annotations m;
  if (Status s = stringMap(n, what, m); !s.ok()) return s;
  for (const auto& [k, v] : m) out.set(k, v);
  return okStatus();
}

// Sequences may be written as null ("exp_alerts:" with nothing after it).
Status forEachItem(const YAML::Node& n, std::string_view what,
                   const std::function<Status(const YAML::Node&)>& fn) {
  if (!n || n.IsNull()) return okStatus();
  if (!n.IsSequence()) return invalidArgument(where(n) + std::string(what) + ": expected a list");
  for (const auto& item : n) {
    if (Status s = fn(item); !s.ok()) return s;
  }
  return okStatus();
}

Result<std::vector<std::string>> resolveRuleFiles(const std::vector<std::string>& patterns,
                                                  const std::string& base_dir) {
  std::vector<std::string> out;
  for (const auto& p : patterns) {
    const std::string full =
        (!p.empty() && p[0] == '/') || base_dir.empty() ? p : base_dir + "/" + p;
    glob_t g{};
    const int rc = ::glob(full.c_str(), 0, nullptr, &g);
    if (rc == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
    }
    ::globfree(&g);
    if (rc == GLOB_NOMATCH) return invalidArgument("rule_files: no file matches " + full);
    if (rc != 0) return invalidArgument("rule_files: cannot expand " + full);
  }
  return out;
}

Result<TestFile> parseTestFileOrThrow(std::string_view yaml_text, const std::string& base_dir) {
  const YAML::Node root = YAML::Load(std::string(yaml_text));
  if (Status s = checkKeys(root, "the test file",
                           {"rule_files", "evaluation_interval", "group_eval_order", "tests"});
      !s.ok()) {
    return s;
  }
  TestFile file;
  std::vector<std::string> patterns;
  if (Status s = forEachItem(root["rule_files"], "rule_files",
                             [&](const YAML::Node& n) -> Status {
                               auto v = scalar(n, "rule_files");
                               if (!v.ok()) return v.status();
                               patterns.push_back(*v);
                               return okStatus();
                             });
      !s.ok()) {
    return s;
  }
  auto files = resolveRuleFiles(patterns, base_dir);
  if (!files.ok()) return files.status();
  file.rule_files = std::move(*files);
  if (root["evaluation_interval"]) {
    auto d = duration(root["evaluation_interval"], "evaluation_interval");
    if (!d.ok()) return d.status();
    if (*d <= 0) return invalidArgument("evaluation_interval must be positive");
    file.evaluation_interval_ms = *d;
  }
  if (Status s = forEachItem(root["group_eval_order"], "group_eval_order",
                             [&](const YAML::Node& n) -> Status {
                               auto v = scalar(n, "group_eval_order");
                               if (!v.ok()) return v.status();
                               file.group_eval_order.push_back(*v);
                               return okStatus();
                             });
      !s.ok()) {
    return s;
  }

  Status status = forEachItem(root["tests"], "tests", [&](const YAML::Node& t) -> Status {
    if (Status s = checkKeys(t, "a test",
                             {"name", "interval", "input_series", "alert_rule_test",
                              "promql_expr_test", "external_labels", "external_url"});
        !s.ok()) {
      return s;
    }
    TestGroup group;
    group.interval_ms = file.evaluation_interval_ms;
    if (t["name"]) {
      auto v = scalar(t["name"], "name");
      if (!v.ok()) return v.status();
      group.name = *v;
    }
    if (t["interval"]) {
      auto d = duration(t["interval"], "interval");
      if (!d.ok()) return d.status();
      if (*d <= 0) return invalidArgument(where(t["interval"]) + "interval must be positive");
      group.interval_ms = *d;
    }
    if (t["external_url"]) {
      auto v = scalar(t["external_url"], "external_url");
      if (!v.ok()) return v.status();
      group.external_url = *v;
    }
    if (Status s = labelMap(t["external_labels"], "external_labels", group.external_labels);
        !s.ok()) {
      return s;
    }
    Status st = forEachItem(t["input_series"], "input_series", [&](const YAML::Node& n) -> Status {
      if (Status s = checkKeys(n, "input_series", {"series", "values"}); !s.ok()) return s;
      InputSeries in;
      auto name = scalar(n["series"], "series");
      if (!name.ok()) return name.status();
      auto id = parseSeriesId(*name);
      if (!id.ok()) return invalidArgument(where(n["series"]) + id.status().message());
      in.id = std::move(*id);
      if (n["values"]) {
        auto text = scalar(n["values"], "values");
        if (!text.ok()) return text.status();
        auto values = expandSeriesValues(*text);
        if (!values.ok()) return invalidArgument(where(n["values"]) + values.status().message());
        in.values = std::move(*values);
      }
      group.input_series.push_back(std::move(in));
      return okStatus();
    });
    if (!st.ok()) return st;
    st = forEachItem(t["alert_rule_test"], "alert_rule_test", [&](const YAML::Node& n) -> Status {
      if (Status s = checkKeys(n, "alert_rule_test", {"eval_time", "alertname", "exp_alerts"});
          !s.ok()) {
        return s;
      }
      AlertRuleTest test;
      auto d = duration(n["eval_time"], "eval_time");
      if (!d.ok()) return d.status();
      test.eval_time_ms = *d;
      auto name = scalar(n["alertname"], "alertname");
      if (!name.ok()) return name.status();
      test.alertname = *name;
      Status s2 = forEachItem(n["exp_alerts"], "exp_alerts", [&](const YAML::Node& a) -> Status {
        if (Status s = checkKeys(a, "exp_alerts", {"exp_labels", "exp_annotations"}); !s.ok()) {
          return s;
        }
        ExpectedAlert exp;
        if (Status s = labelMap(a["exp_labels"], "exp_labels", exp.labels); !s.ok()) return s;
        if (Status s = stringMap(a["exp_annotations"], "exp_annotations", exp.annotations);
            !s.ok()) {
          return s;
        }
        test.exp_alerts.push_back(std::move(exp));
        return okStatus();
      });
      if (!s2.ok()) return s2;
      group.alert_rule_tests.push_back(std::move(test));
      return okStatus();
    });
    if (!st.ok()) return st;
    st = forEachItem(t["promql_expr_test"], "promql_expr_test", [&](const YAML::Node& n) -> Status {
      if (Status s = checkKeys(n, "promql_expr_test", {"expr", "eval_time", "exp_samples"});
          !s.ok()) {
        return s;
      }
      PromqlExprTest test;
      auto expr = scalar(n["expr"], "expr");
      if (!expr.ok()) return expr.status();
      test.expr = *expr;
      auto d = duration(n["eval_time"], "eval_time");
      if (!d.ok()) return d.status();
      test.eval_time_ms = *d;
      Status s2 = forEachItem(n["exp_samples"], "exp_samples", [&](const YAML::Node& e) -> Status {
        if (Status s = checkKeys(e, "exp_samples", {"labels", "value"}); !s.ok()) return s;
        ExpectedSample sample;
        if (e["labels"]) {
          auto text = scalar(e["labels"], "labels");
          if (!text.ok()) return text.status();
          auto id = parseSeriesId(*text);
          if (!id.ok()) return invalidArgument(where(e["labels"]) + id.status().message());
          sample.series = std::move(*id);
        }
        auto text = scalar(e["value"], "value");
        if (!text.ok()) return text.status();
        auto v = parseNumber(*text);
        if (!v) return invalidArgument(where(e["value"]) + "value: not a number: " + *text);
        sample.value = *v;
        test.exp_samples.push_back(std::move(sample));
        return okStatus();
      });
      if (!s2.ok()) return s2;
      group.promql_expr_tests.push_back(std::move(test));
      return okStatus();
    });
    if (!st.ok()) return st;
    file.tests.push_back(std::move(group));
    return okStatus();
  });
  if (!status.ok()) return status;
  return file;
}

}  // namespace

Result<std::vector<SeriesValue>> expandSeriesValues(std::string_view text) {
  std::vector<SeriesValue> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n')) ++i;
    size_t j = i;
    while (j < text.size() && text[j] != ' ' && text[j] != '\t' && text[j] != '\n') ++j;
    if (j > i) {
      if (Status s = expandItem(text.substr(i, j - i), out); !s.ok()) return s;
    }
    i = j;
  }
  return out;
}

Result<SeriesId> parseSeriesId(std::string_view text) {
  auto bad = [&](size_t pos, std::string_view why) {
    return invalidArgument("series '" + std::string(text) + "': column " + std::to_string(pos + 1) +
                           ": " + std::string(why));
  };
  SeriesId id;
  Cursor c(text);
  c.skipSpace();
  id.name = std::string(c.name(/*allow_colon=*/true));
  c.skipSpace();
  if (c.take('{')) {
    c.skipSpace();
    while (!c.take('}')) {
      const std::string label(c.name(/*allow_colon=*/false));
      if (label.empty()) return bad(c.pos(), "expected a label name or '}'");
      c.skipSpace();
      if (!c.take('=')) return bad(c.pos(), "expected '=' after the label name");
      c.skipSpace();
      auto value = c.quoted();
      if (!value) return bad(c.pos(), "expected a quoted label value");
      if (label == "__name__") {
        if (!id.name.empty() && id.name != *value) return bad(c.pos(), "two metric names");
        id.name = *value;
      } else {
        if (!id.labels.get(label).empty()) return bad(c.pos(), "label " + label + " twice");
        if (!value->empty()) id.labels.set(label, *value);
      }
      c.skipSpace();
      if (c.take(',')) {
        c.skipSpace();
        continue;
      }
      if (c.peek() != '}') return bad(c.pos(), "expected ',' or '}'");
    }
    c.skipSpace();
  }
  if (!c.done()) return bad(c.pos(), "unexpected text after the series name");
  if (id.name.empty() && id.labels.empty()) return bad(0, "empty series name");
  return id;
}

std::string formatSeriesId(const SeriesId& id) {
  std::string out = id.name + "{";
  bool first = true;
  for (const auto& l : id.labels.items()) {
    if (!first) out += ", ";
    first = false;
    out += l.name + "=\"";
    for (char ch : l.value) {
      if (ch == '"' || ch == '\\') out += '\\';
      if (ch == '\n') {
        out += "\\n";
        continue;
      }
      out += ch;
    }
    out += '"';
  }
  return out + "}";
}

Result<int64_t> parsePromtoolDuration(std::string_view text) {
  if (text == "0") return int64_t{0};
  auto d = parseDuration(text);
  if (!d.ok()) return d.status();
  return static_cast<int64_t>(d->count());
}

Result<TestFile> parseTestFile(std::string_view yaml_text, const std::string& base_dir) {
  // yaml-cpp reports errors by exception; none leaves this function.
  try {
    return parseTestFileOrThrow(yaml_text, base_dir);
  } catch (const YAML::Exception& e) {
    return invalidArgument(std::string("YAML: ") + e.what());
  } catch (const std::exception& e) {
    return invalidArgument(std::string("test file: ") + e.what());
  }
}

Result<TestFile> loadTestFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return notFound(path + ": cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  auto file = parseTestFile(text.str(), dir);
  if (!file.ok()) return invalidArgument(path + ": " + file.status().message());
  file->path = path;
  return file;
}

}  // namespace dbpulse::rules::testing
