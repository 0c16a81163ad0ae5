#include "agent/query_guard.h"

#include <array>
#include <cctype>
#include <nlohmann/json.hpp>

namespace dbpulse {
namespace {

constexpr int kMaxPlanDepth = 200;

bool identStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool identPart(char c) {
  return identStart(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '$';
}
bool operatorChar(char c) {
  static constexpr std::string_view kChars = "+-*/<>=~!@#%^&|`?";
  return kChars.find(c) != std::string_view::npos;
}

// Safe to embed in a single-quoted literal without any quoting at all.
bool plainName(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$')) return false;
  }
  return true;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Skips a '...' literal (with '' doubling; E'' strings also take backslash escapes) or a
// $tag$...$tag$ body starting at i; returns the index after it.
size_t skipString(std::string_view sql, size_t i, bool backslash) {
  ++i;
  while (i < sql.size()) {
    if (backslash && sql[i] == '\\') {
      i += 2;
      continue;
    }
    if (sql[i] == '\'') {
      if (i + 1 < sql.size() && sql[i + 1] == '\'') {
        i += 2;
        continue;
      }
      return i + 1;
    }
    ++i;
  }
  return i;
}

void addFunction(std::string name, bool quoted, CalledNames& out) {
  if (!quoted) name = lower(name);
  if (plainName(name)) {
    out.functions.insert(std::move(name));
  } else {
    out.unsafe.push_back(name);
  }
}

void walkPlan(const nlohmann::json& node, int depth, CalledNames& out) {
  if (depth > kMaxPlanDepth) return;
  if (node.is_string()) {
    collectCalls(node.get_ref<const std::string&>(), out);
  } else if (node.is_array()) {
    for (const auto& item : node) walkPlan(item, depth + 1, out);
  } else if (node.is_object()) {
    for (const auto& [key, value] : node.items()) {
      if (key == "Node Type" && value == "Foreign Scan") out.foreign_scan = true;
      if (key == "Function Name" && value.is_string()) {
        addFunction(value.get<std::string>(), true, out);
        continue;
      }
      // Names of relations, indexes and aliases are data, not expressions.
      if (key == "Relation Name" || key == "Index Name" || key == "Alias" || key == "Schema" ||
          key == "CTE Name" || key == "Subplan Name" || key == "Node Type" ||
          key == "Parent Relationship" || key == "Strategy" || key == "Join Type" ||
          key == "Scan Direction" || key == "Partial Mode" || key == "Operation") {
        continue;
      }
      walkPlan(value, depth + 1, out);
    }
  }
}

}  // namespace

void collectCalls(std::string_view sql, CalledNames& out) {
  size_t i = 0;
  while (i < sql.size()) {
    const char c = sql[i];
    if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      while (i < sql.size() && sql[i] != '\n') ++i;
    } else if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
      // Nested comments, as PostgreSQL reads them.
      int level = 0;
      while (i < sql.size()) {
        if (sql.compare(i, 2, "/*") == 0) {
          ++level;
          i += 2;
        } else if (sql.compare(i, 2, "*/") == 0) {
          i += 2;
          if (--level == 0) break;
        } else {
          ++i;
        }
      }
    } else if (c == '\'') {
      const bool escape = i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e');
      i = skipString(sql, i, escape);
    } else if (c == '$' && (i == 0 || !identPart(sql[i - 1]))) {
      // $tag$ ... $tag$ (a dollar-quoted string) or $1 (a parameter).
      size_t j = i + 1;
      while (j < sql.size() && (identPart(sql[j]) && sql[j] != '$')) ++j;
      if (j < sql.size() && sql[j] == '$' &&
          !(j > i + 1 && std::isdigit(static_cast<unsigned char>(sql[i + 1])))) {
        const std::string_view tag = sql.substr(i, j - i + 1);
        const size_t end = sql.find(tag, j + 1);
        i = end == std::string_view::npos ? sql.size() : end + tag.size();
      } else {
        i = j;
      }
    } else if (c == '"' || identStart(c)) {
      // A (possibly qualified) name: a.b."c"; a call when '(' follows.
      std::string last;
      bool last_quoted = false;
      while (i < sql.size()) {
        if (sql[i] == '"') {
          std::string name;
          ++i;
          while (i < sql.size()) {
            if (sql[i] == '"') {
              if (i + 1 < sql.size() && sql[i + 1] == '"') {
                name += '"';
                i += 2;
                continue;
              }
              ++i;
              break;
            }
            name += sql[i++];
          }
          last = std::move(name);
          last_quoted = true;
        } else if (identStart(sql[i])) {
          const size_t start = i;
          while (i < sql.size() && identPart(sql[i])) ++i;
          last = std::string(sql.substr(start, i - start));
          last_quoted = false;
          // E'...' / U&'...' / B'...' string prefixes.
          if (i < sql.size() && sql[i] == '\'') break;
        } else {
          break;
        }
        if (i < sql.size() && sql[i] == '.' && i + 1 < sql.size() &&
            (sql[i + 1] == '"' || identStart(sql[i + 1]))) {
          ++i;
          continue;
        }
        break;
      }
      size_t k = i;
      while (k < sql.size() && std::isspace(static_cast<unsigned char>(sql[k]))) ++k;
      if (k < sql.size() && sql[k] == '(' && !last.empty()) {
        addFunction(last, last_quoted, out);
      }
    } else if (operatorChar(c)) {
      const size_t start = i;
      while (i < sql.size() && operatorChar(sql[i])) {
        if (sql.compare(i, 2, "--") == 0 || sql.compare(i, 2, "/*") == 0) break;
        ++i;
      }
      if (i == start) {
        ++i;  // a lone '-' or '/' that starts a comment is handled on the next turn
        continue;
      }
      out.operators.insert(std::string(sql.substr(start, i - start)));
    } else {
      ++i;
    }
  }
}

Status collectPlanCalls(std::string_view plan_json, CalledNames& out) {
  const auto doc = nlohmann::json::parse(plan_json, nullptr, false);
  if (doc.is_discarded() || !doc.is_array()) {
    return invalidArgument("EXPLAIN returned something that is not a JSON plan");
  }
  walkPlan(doc, 0, out);
  return okStatus();
}

bool volatileButHarmless(std::string_view function) {
  static constexpr std::array<std::string_view, 7> kAllowed = {
      "random",          "random_normal",    "clock_timestamp", "timeofday",
      "gen_random_uuid", "uuid_generate_v4", "setseed"};
  for (std::string_view a : kAllowed) {
    if (a == function) return true;
  }
  return false;
}

collectors::SqlParams volatileLookupParams(const CalledNames& names) {
  auto list = [](const std::set<std::string>& items, bool (*ok)(std::string_view)) {
    std::string out;
    for (const auto& item : items) {
      if (ok(item)) out += (out.empty() ? "" : " ") + item;
    }
    return out;
  };
  auto operatorName = [](std::string_view s) {
    if (s.empty() || s.size() > 63) return false;
    for (char c : s) {
      if (!operatorChar(c)) return false;
    }
    return true;
  };
  return {list(names.functions, plainName), list(names.operators, operatorName)};
}

}  // namespace dbpulse
