#include "rules/rule_file.h"

#include <glob.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <set>

#include "agent/core/atomic_file.h"

namespace dbpulse::rules {

std::string LoadError::toString() const {
  if (line <= 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

namespace {

constexpr size_t kMaxRuleFileBytes = 8 << 20;
// yaml-cpp recurses once per nesting level, and reloads run on HTTP worker threads with
// small stacks: deeper documents are refused before parsing (real rule files nest ~5 deep).
constexpr int kMaxYamlFlowDepth = 32;
constexpr size_t kMaxYamlIndent = 256;

// Reads a rule file, refusing one over kMaxRuleFileBytes. Only what the file holds is
// allocated (a buffer sized to the cap stayed in the heap for the process' life).
Result<std::string> readRuleFile(const std::string& path) {
  auto text = readSmallFile(path, kMaxRuleFileBytes);
  if (!text.ok() && text.status().code() == StatusCode::kInvalidArgument) {
    return invalidArgument("larger than " + std::to_string(kMaxRuleFileBytes) + " bytes");
  }
  return text;
}

// The position of the first place nested deeper than the caps, or -1.
long tooDeep(std::string_view text) {
  int depth = 0;
  char quote = 0;
  bool comment = false;
  size_t line_start = 0;
  bool indent = true;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      comment = false;
      line_start = i + 1;
      indent = true;
      if (quote == '\'') quote = 0;  // (multi-line quoted scalars: close enough for a cap)
      continue;
    }
    if (indent && c != ' ') {
      indent = false;
      if (i - line_start > kMaxYamlIndent) return static_cast<long>(i);
    }
    if (comment) continue;
    if (quote != 0) {
      if (c == '\\' && quote == '"') {
        ++i;
      } else if (c == quote) {
        quote = 0;
      }
      continue;
    }
    if (c == '#') {
      comment = true;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxYamlFlowDepth) return static_cast<long>(i);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return -1;
}

bool isLabelName(std::string_view s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

bool isMetricName(std::string_view s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':';
  });
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// Walks the YAML tree of one file, collecting every problem with its position.
class FileParser {
 public:
  FileParser(const std::string& file, RuleSet& out) : file_(file), out_(out) {}

  void parse(std::string_view text) {
    if (long at = tooDeep(text); at >= 0) {
      int line = 1, column = 1;
      for (long i = 0; i < at; ++i) {
        if (text[static_cast<size_t>(i)] == '\n') {
          ++line;
          column = 1;
        } else {
          ++column;
        }
      }
      out_.errors.push_back(LoadError{file_, line, column, "nested too deeply"});
      return;
    }
    YAML::Node root;
    try {
      root = YAML::Load(std::string(text));
    } catch (const YAML::ParserException& e) {
      out_.errors.push_back(LoadError{file_, e.mark.line + 1, e.mark.column + 1, e.msg});
      return;
    } catch (const YAML::Exception& e) {
      out_.errors.push_back(LoadError{file_, 0, 0, e.what()});
      return;
    }
    try {
      parseRoot(root);
    } catch (const YAML::Exception& e) {
      // Conversions are checked before they are made; this is a safety net.
      out_.errors.push_back(LoadError{file_, e.mark.line + 1, e.mark.column + 1, e.msg});
    }
  }

 private:
  // The scalar under `key` of a map, or "" (for naming the group or rule in messages before
  // its fields are checked).
  static std::string peek(const YAML::Node& map, const char* key) {
    const YAML::Node& m = map;
    const YAML::Node v = m[key];
    return v.IsDefined() && v.IsScalar() ? v.Scalar() : "";
  }

  void error(const YAML::Node& at, const std::string& message) {
    const YAML::Mark m = at.Mark();
    const bool known = m.line >= 0 && !m.is_null();
    out_.errors.push_back(
        LoadError{file_, known ? m.line + 1 : 0, known ? m.column + 1 : 0, context_ + message});
  }

  // The map's entries by key; unknown and duplicate keys are reported.
  std::map<std::string, YAML::Node> fields(const YAML::Node& map,
                                           const std::vector<std::string>& known,
                                           const std::string& what) {
    std::map<std::string, YAML::Node> out;
    for (auto it = map.begin(); it != map.end(); ++it) {
      if (!it->first.IsScalar()) {
        error(it->first, "keys of " + what + " must be strings");
        continue;
      }
      const std::string key = it->first.Scalar();
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        error(it->first,
              "field " + key + " not found in " + what + " (known: " + joined(known) + ")");
        continue;
      }
      if (!out.emplace(key, it->second).second) {
        error(it->first, "mapping key \"" + key + "\" already defined");
      }
    }
    return out;
  }

  bool scalar(const YAML::Node& n, const std::string& what, std::string& out) {
    if (n.IsNull()) {
      out.clear();
      return true;
    }
    if (!n.IsScalar()) {
      error(n, what + " must be a string");
      return false;
    }
    out = n.Scalar();
    return true;
  }

  bool duration(const YAML::Node& n, const std::string& what, int64_t& out) {
    std::string text;
    if (!scalar(n, what, text)) return false;
    auto d = parsePromDuration(text);
    if (!d.ok()) {
      error(n, what + ": " + d.status().message());
      return false;
    }
    out = *d;
    return true;
  }

  void parseRoot(const YAML::Node& root) {
    if (root.IsNull()) return;  // an empty file has no groups
    if (!root.IsMap()) {
      error(root, "a rule file must be a map with a \"groups\" list");
      return;
    }
    auto f = fields(root, {"groups"}, "the rule file");
    if (!f.count("groups") || f["groups"].IsNull()) return;
    const YAML::Node groups = f["groups"];
    if (!groups.IsSequence()) {
      error(groups, "groups must be a list");
      return;
    }
    std::set<std::string> names;
    for (const auto& g : groups) parseGroup(g, names);
  }

  void parseGroup(const YAML::Node& node, std::set<std::string>& names) {
    context_.clear();
    if (!node.IsMap()) {
      error(node, "a group must be a map (name, interval, limit, rules)");
      return;
    }
    const std::string name = peek(node, "name");
    if (!name.empty()) context_ = "group \"" + name + "\": ";
    auto f = fields(node, {"name", "interval", "limit", "rules"}, "a group");
    RuleGroup group;
    group.file = file_;
    if (f.count("name")) scalar(f["name"], "name", group.name);
    context_.clear();
    if (group.name.empty()) {
      error(node, "Groupname must not be empty");
    } else if (!names.insert(group.name).second) {
      error(f["name"], "groupname: \"" + group.name + "\" is repeated in the same file");
    }
    context_ = "group \"" + group.name + "\": ";
    // "0s" leaves 0: the default interval, as in Prometheus.
    if (f.count("interval")) duration(f["interval"], "interval", group.interval_ms);
    if (f.count("limit")) {
      const YAML::Node& n = f["limit"];
      std::string text;
      char* end = nullptr;
      if (scalar(n, "limit", text)) {
        const long long v = std::strtoll(text.c_str(), &end, 10);
        if (text.empty() || end != text.c_str() + text.size() || v < 0) {
          error(n, "limit must be a non-negative integer, got \"" + text + "\"");
        } else {
          group.limit = v;
        }
      }
    }
    if (f.count("rules") && !f["rules"].IsNull()) {
      const YAML::Node rules = f["rules"];
      if (!rules.IsSequence()) {
        error(rules, "rules must be a list");
      } else {
        size_t index = 0;
        for (const auto& r : rules) {
          ++index;
          parseRule(r, group, index);
          context_ = "group \"" + group.name + "\": ";
        }
      }
    }
    out_.groups.push_back(std::move(group));
  }

  void parseRule(const YAML::Node& node, RuleGroup& group, size_t index) {
    context_ = "group \"" + group.name + "\", rule " + std::to_string(index) + ": ";
    if (!node.IsMap()) {
      error(node, "a rule must be a map (alert or record, expr, ...)");
      return;
    }
    {
      const std::string alert = peek(node, "alert"), record = peek(node, "record");
      if (alert.empty() != record.empty()) {
        context_ = "group \"" + group.name + "\", " +
                   (alert.empty() ? "record \"" + record : "alert \"" + alert) + "\": ";
      }
    }
    auto f =
        fields(node, {"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"},
               "a rule");
    Rule rule;
    rule.line = node.Mark().line + 1;
    std::string record, alert;
    if (f.count("record")) scalar(f["record"], "record", record);
    if (f.count("alert")) scalar(f["alert"], "alert", alert);
    if (!record.empty() && !alert.empty()) {
      error(node, "only one of 'record' and 'alert' must be set");
    } else if (record.empty() && alert.empty()) {
      error(node, "one of 'record' or 'alert' must be set");
    }
    rule.kind = record.empty() ? Rule::Kind::kAlerting : Rule::Kind::kRecording;
    rule.name = record.empty() ? alert : record;
    const char* kind = rule.kind == Rule::Kind::kRecording ? "record" : "alert";
    if (!rule.name.empty() && (record.empty() || alert.empty())) {
      context_ = "group \"" + group.name + "\", " + kind + " \"" + rule.name + "\": ";
    }
    if (rule.kind == Rule::Kind::kRecording && !isMetricName(record)) {
      error(f["record"], "invalid recording rule name: " + record);
    }

    if (f.count("expr")) scalar(f["expr"], "expr", rule.expr_text);
    if (rule.expr_text.empty()) {
      error(f.count("expr") ? f["expr"] : node, "field 'expr' must be set in rule");
    } else {
      // Like Prometheus, a range vector or string expression loads and fails when evaluated.
      auto parsed = parseExpr(rule.expr_text);
      if (!parsed.ok()) {
        error(f["expr"], "expr: " + parsed.status().message());
      } else {
        rule.expr = std::shared_ptr<const Expr>(std::move(*parsed));
      }
    }

    if (f.count("for")) duration(f["for"], "for", rule.for_ms);
    if (f.count("keep_firing_for"))
      duration(f["keep_firing_for"], "keep_firing_for", rule.keep_firing_for_ms);
    if (rule.kind == Rule::Kind::kRecording) {
      if (f.count("annotations") && f["annotations"].size() > 0) {
        error(f["annotations"], "invalid field 'annotations' in recording rule");
      }
      if (rule.for_ms != 0) error(f["for"], "invalid field 'for' in recording rule");
      if (rule.keep_firing_for_ms != 0) {
        error(f["keep_firing_for"], "invalid field 'keep_firing_for' in recording rule");
      }
    }
    const bool templated = rule.kind == Rule::Kind::kAlerting;
    if (f.count("labels")) rule.labels = labelMap(f["labels"], "label", templated, true);
    if (f.count("annotations") && templated) {
      rule.annotations = labelMap(f["annotations"], "annotation", true, false);
    }
    group.rules.push_back(std::move(rule));
  }

  std::vector<TemplatedLabel> labelMap(const YAML::Node& node, const std::string& what,
                                       bool templated, bool is_label) {
    std::vector<TemplatedLabel> out;
    if (node.IsNull()) return out;
    if (!node.IsMap()) {
      error(node, what + "s must be a map of names to strings");
      return out;
    }
    std::set<std::string> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      TemplatedLabel l;
      if (!it->first.IsScalar()) {
        error(it->first, what + " names must be strings");
        continue;
      }
      l.name = it->first.Scalar();
      if (!isLabelName(l.name) || (is_label && l.name == "__name__")) {
        error(it->first, "invalid " + what + " name: " + l.name);
        continue;
      }
      if (!seen.insert(l.name).second) {
        error(it->first, "mapping key \"" + l.name + "\" already defined");
        continue;
      }
      if (!scalar(it->second, what + " \"" + l.name + "\"", l.text)) continue;
      if (templated) {
        auto t = Template::parse(l.text);
        if (!t.ok()) {
          error(it->second, what + " \"" + l.name + "\": template: " + t.status().message());
          continue;
        }
        l.tmpl = std::move(*t);
      }
      out.push_back(std::move(l));
    }
    std::sort(out.begin(), out.end(),
              [](const TemplatedLabel& a, const TemplatedLabel& b) { return a.name < b.name; });
    return out;
  }

  const std::string& file_;
  RuleSet& out_;
  std::string context_;  // "group \"g\", alert \"A\": "
};

bool hasWildcard(const std::string& p) { return p.find_first_of("*?[") != std::string::npos; }

}  // namespace

RuleSet parseRuleFile(std::string_view text, const std::string& file) {
  RuleSet out;
  out.files.push_back(file);
  FileParser(file, out).parse(text);
  return out;
}

RuleSet loadRuleFiles(const std::vector<std::string>& patterns, const std::string& base_dir) {
  RuleSet out;
  std::set<std::string> seen;
  for (const auto& pattern : patterns) {
    const std::string full = pattern.empty() || pattern[0] == '/' || base_dir.empty()
                                 ? pattern
                                 : base_dir + "/" + pattern;
    std::vector<std::string> paths;
    glob_t g{};
    const int rc = glob(full.c_str(), 0, nullptr, &g);
    if (rc == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) paths.emplace_back(g.gl_pathv[i]);
    }
    globfree(&g);
    if (rc == GLOB_NOMATCH && !hasWildcard(pattern)) {
      out.errors.push_back(
          LoadError{full, 0, 0, "rule file not found (from [rules] files = \"" + pattern + "\")"});
      continue;
    }
    if (rc != 0 && rc != GLOB_NOMATCH) {
      out.errors.push_back(LoadError{full, 0, 0, "cannot expand the pattern"});
      continue;
    }
    std::sort(paths.begin(), paths.end());
    for (const auto& path : paths) {
      if (!seen.insert(path).second) continue;  // matched by two patterns: loaded once
      auto text = readRuleFile(path);
      if (!text.ok()) {
        out.errors.push_back(LoadError{path, 0, 0, text.status().message()});
        continue;
      }
      RuleSet one = parseRuleFile(*text, path);
      out.files.push_back(path);
      for (auto& grp : one.groups) out.groups.push_back(std::move(grp));
      for (auto& e : one.errors) out.errors.push_back(std::move(e));
    }
  }
  return out;
}

}  // namespace dbpulse::rules
