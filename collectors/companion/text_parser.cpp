#include "collectors/companion/text_parser.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace dbpulse::collectors {
namespace {

bool isBlank(char c) { return c == ' ' || c == '\t'; }
bool isAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isMetricNameChar(char c) { return isAlpha(c) || isDigit(c) || c == '_' || c == ':'; }
bool isLabelNameChar(char c) { return isAlpha(c) || isDigit(c) || c == '_'; }

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// Well-formed UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool isUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // truncated sequence
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

// Go's strconv.ParseFloat syntax as far as expositions use it: decimal and exponent forms,
// an optional sign, and case-insensitive Inf/Infinity/NaN.
std::optional<double> parseValue(std::string_view s) {
  if (s.empty()) return std::nullopt;
  bool negative = false;
  if (s[0] == '+' || s[0] == '-') {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (equalsIgnoreCase(s, "inf") || equalsIgnoreCase(s, "infinity")) {
    return negative ? -std::numeric_limits<double>::infinity()
                    : std::numeric_limits<double>::infinity();
  }
  if (equalsIgnoreCase(s, "nan")) return std::numeric_limits<double>::quiet_NaN();
  // from_chars would take "-5" after our sign, and "inf"/"nan" spellings handled above.
  if (s.empty() || s[0] == '-' || s[0] == '+') return std::nullopt;
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ptr != s.data() + s.size()) return std::nullopt;
  if (ec == std::errc::result_out_of_range) {
    // Go returns ±Inf for overflow and 0 for underflow without failing the parse.
    const bool tiny = s.find_first_of("eE") != std::string_view::npos &&
                      s.find('-', s.find_first_of("eE")) != std::string_view::npos;
    v = tiny ? 0.0 : std::numeric_limits<double>::infinity();
  } else if (ec != std::errc()) {
    return std::nullopt;
  }
  return negative ? -v : v;
}

std::optional<int64_t> parseTimestamp(std::string_view s) {
  if (s.empty()) return std::nullopt;
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<ExpositionType> parseType(std::string_view s) {
  if (s == "counter") return ExpositionType::kCounter;
  if (s == "gauge") return ExpositionType::kGauge;
  if (s == "histogram") return ExpositionType::kHistogram;
  if (s == "summary") return ExpositionType::kSummary;
  if (s == "untyped" || s == "unknown") return ExpositionType::kUntyped;
  return std::nullopt;
}

// Bounded, printable excerpt of input for error messages.
std::string excerpt(std::string_view s) {
  constexpr size_t kMax = 48;
  std::string out;
  for (char c : s.substr(0, kMax)) {
    out +=
        (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7F) ? '?' : c;
  }
  if (s.size() > kMax) out += "...";
  return out;
}

class Parser {
 public:
  Parser(const TextParserOptions& options, ParsedExposition& out) : options_(options), out_(out) {}

  // Returns false to stop (sample limit reached).
  bool line(size_t number, std::string_view text) {
    line_ = number;
    if (text.size() > options_.max_line_bytes) {
      return reject("line longer than " + std::to_string(options_.max_line_bytes) + " bytes");
    }
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    size_t i = 0;
    while (i < text.size() && isBlank(text[i])) ++i;
    text.remove_prefix(i);
    if (text.empty()) return true;
    if (text[0] == '#') return comment(text.substr(1));
    return sample(text);
  }

 private:
  bool reject(std::string message) {
    ++out_.rejected_lines;
    note(std::move(message));
    return true;
  }
  void note(std::string message) {
    if (out_.errors.size() < options_.max_errors_kept) {
      out_.errors.push_back(ExpositionError{line_, std::move(message)});
    }
  }

  static std::string_view token(std::string_view& s) {
    size_t i = 0;
    while (i < s.size() && isBlank(s[i])) ++i;
    size_t j = i;
    while (j < s.size() && !isBlank(s[j])) ++j;
    const std::string_view t = s.substr(i, j - i);
    s.remove_prefix(j);
    return t;
  }

  static std::string_view trimLeft(std::string_view s) {
    size_t i = 0;
    while (i < s.size() && isBlank(s[i])) ++i;
    return s.substr(i);
  }

  size_t familyIndex(const std::string& name) {
    auto [it, inserted] = family_index_.try_emplace(name, out_.families.size());
    if (inserted) out_.families.push_back(ExpositionFamily{name, ExpositionType::kUntyped, {}});
    return it->second;
  }

  bool comment(std::string_view rest) {
    std::string_view s = rest;
    const std::string_view keyword = token(s);
    if (keyword != "HELP" && keyword != "TYPE") return true;  // a plain comment (or # EOF)
    const std::string_view name = token(s);
    if (!isValidMetricName(name)) {
      return reject(std::string(keyword) + " line with invalid metric name '" + excerpt(name) +
                    "'");
    }
    const std::string key(name);
    if (keyword == "TYPE") {
      const std::string_view type_text = token(s);
      auto type = parseType(type_text);
      if (!type || !trimLeft(s).empty()) {
        return reject("TYPE line for " + key + " with invalid type '" + excerpt(type_text) + "'");
      }
      if (!typed_.insert(key).second) return reject("second TYPE line for " + key);
      out_.families[familyIndex(key)].type = *type;
      return true;
    }
    // HELP: the rest of the line after one blank, with \\ and \n unescaped; other
    // backslashes are kept as written.
    if (!s.empty() && isBlank(s[0])) s.remove_prefix(1);
    std::string help;
    help.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == '\\' || s[i + 1] == 'n')) {
        help += s[i + 1] == 'n' ? '\n' : '\\';
        ++i;
      } else {
        help += s[i];
      }
    }
    if (!isUtf8(help)) return reject("HELP text of " + key + " is not UTF-8");
    if (!helped_.insert(key).second) return reject("second HELP line for " + key);
    out_.families[familyIndex(key)].help = std::move(help);
    return true;
  }

  // The family a sample belongs to: its own name when declared, else a declared histogram
  // or summary whose name it extends with _bucket/_sum/_count.
  size_t familyFor(std::string_view name) const {
    if (auto it = family_index_.find(std::string(name)); it != family_index_.end()) {
      return it->second;
    }
    for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
      if (name.size() <= suffix.size() || name.substr(name.size() - suffix.size()) != suffix) {
        continue;
      }
      auto it = family_index_.find(std::string(name.substr(0, name.size() - suffix.size())));
      if (it == family_index_.end()) continue;
      const ExpositionType t = out_.families[it->second].type;
      if (t == ExpositionType::kHistogram ||
          (t == ExpositionType::kSummary && suffix != "_bucket")) {
        return it->second;
      }
    }
    return ExpositionSample::kNoFamily;
  }

  bool sample(std::string_view s) {
    size_t i = 0;
    while (i < s.size() && isMetricNameChar(s[i])) ++i;
    const std::string_view name = s.substr(0, i);
    if (!isValidMetricName(name)) {
      return reject("invalid metric name at '" + excerpt(s) + "'");
    }
    std::vector<std::pair<std::string, std::string>> labels;
    while (i < s.size() && isBlank(s[i])) ++i;
    if (i < s.size() && s[i] == '{') {
      ++i;
      while (true) {
        while (i < s.size() && isBlank(s[i])) ++i;
        if (i >= s.size()) return reject("unterminated label set of " + std::string(name));
        if (s[i] == '}') {
          ++i;
          break;
        }
        const size_t start = i;
        while (i < s.size() && isLabelNameChar(s[i])) ++i;
        const std::string_view label = s.substr(start, i - start);
        if (!isValidLabelName(label)) {
          return reject("invalid label name at '" + excerpt(s.substr(start)) + "'");
        }
        if (label.size() >= 2 && label[0] == '_' && label[1] == '_') {
          return reject("reserved label name " + std::string(label));
        }
        while (i < s.size() && isBlank(s[i])) ++i;
        if (i >= s.size() || s[i] != '=')
          return reject("expected '=' after label " + std::string(label));
        ++i;
        while (i < s.size() && isBlank(s[i])) ++i;
        if (i >= s.size() || s[i] != '"')
          return reject("expected '\"' after " + std::string(label) + "=");
        ++i;
        std::string value;
        bool closed = false;
        while (i < s.size()) {
          const char c = s[i++];
          if (c == '"') {
            closed = true;
            break;
          }
          if (c != '\\') {
            value += c;
            continue;
          }
          if (i >= s.size()) break;
          const char e = s[i++];
          if (e == '\\') {
            value += '\\';
          } else if (e == '"') {
            value += '"';
          } else if (e == 'n') {
            value += '\n';
          } else {
            return reject("invalid escape sequence '\\" + excerpt(std::string_view(&e, 1)) +
                          "' in label " + std::string(label));
          }
        }
        if (!closed) return reject("unterminated value of label " + std::string(label));
        if (value.size() > options_.max_label_value_bytes) {
          return reject("value of label " + std::string(label) + " is longer than " +
                        std::to_string(options_.max_label_value_bytes) + " bytes");
        }
        if (!isUtf8(value)) return reject("value of label " + std::string(label) + " is not UTF-8");
        if (labels.size() >= options_.max_labels) {
          return reject("more than " + std::to_string(options_.max_labels) + " labels");
        }
        labels.emplace_back(std::string(label), std::move(value));
        while (i < s.size() && isBlank(s[i])) ++i;
        if (i < s.size() && s[i] == ',') {
          ++i;
          continue;
        }
        if (i < s.size() && s[i] == '}') {
          ++i;
          break;
        }
        return reject("expected ',' or '}' in the label set of " + std::string(name));
      }
    }
    std::string_view rest = s.substr(i);
    const std::string_view value_text = token(rest);
    auto value = parseValue(value_text);
    if (!value)
      return reject("invalid value '" + excerpt(value_text) + "' for " + std::string(name));
    std::optional<int64_t> timestamp;
    const std::string_view ts_text = token(rest);
    if (!ts_text.empty()) {
      timestamp = parseTimestamp(ts_text);
      if (!timestamp) return reject("invalid timestamp '" + excerpt(ts_text) + "'");
      if (!trimLeft(rest).empty()) return reject("unexpected text after the timestamp");
    }

    std::sort(labels.begin(), labels.end());
    for (size_t k = 1; k < labels.size(); ++k) {
      if (labels[k].first == labels[k - 1].first) {
        return reject("label " + labels[k].first + " given twice for " + std::string(name));
      }
    }
    if (out_.samples.size() >= options_.max_samples) {
      out_.truncated = true;
      note("more than " + std::to_string(options_.max_samples) + " samples; the rest is ignored");
      return false;
    }
    ExpositionSample out;
    out.name = std::string(name);
    for (auto& [k, v] : labels) {
      if (!v.empty()) out.labels.set(k, v);
    }
    std::string key = out.name;
    out.labels.appendKey(key);
    if (label_bytes_ + key.size() > options_.max_label_bytes) {
      out_.truncated = true;
      note("more than " + std::to_string(options_.max_label_bytes) +
           " bytes of series names and labels; the rest is ignored");
      return false;
    }
    const size_t key_bytes = key.size();
    if (!seen_.insert(std::move(key)).second) {
      ++out_.duplicates;
      note("duplicate series " + excerpt(out.name) + " (the first one is kept)");
      return true;
    }
    label_bytes_ += key_bytes;
    out.value = *value;
    out.timestamp_ms = timestamp;
    out.family = familyFor(name);
    out_.samples.push_back(std::move(out));
    return true;
  }

  const TextParserOptions& options_;
  ParsedExposition& out_;
  size_t line_ = 0;
  size_t label_bytes_ = 0;  // names and labels of the kept samples
  std::unordered_map<std::string, size_t> family_index_;
  std::unordered_set<std::string> typed_, helped_, seen_;
};

}  // namespace

bool isValidMetricName(std::string_view name) {
  if (name.empty() || isDigit(name[0])) return false;
  return std::all_of(name.begin(), name.end(), isMetricNameChar);
}

bool isValidLabelName(std::string_view name) {
  if (name.empty() || isDigit(name[0])) return false;
  return std::all_of(name.begin(), name.end(), isLabelNameChar);
}

ParsedExposition parseTextExposition(std::string_view text, const TextParserOptions& options) {
  ParsedExposition out;
  Parser parser(options, out);
  size_t number = 0;
  while (!text.empty()) {
    ++number;
    const size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!parser.line(number, line)) break;
  }
  return out;
}

}  // namespace dbpulse::collectors
