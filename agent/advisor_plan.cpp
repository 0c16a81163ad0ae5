#include "agent/advisor_plan.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

namespace dbpulse::advisor {
namespace {

using nlohmann::json;

// Plans nest as deep as the query does; past this depth the rest is not examined.
constexpr int kMaxPlanDepth = 200;

bool identStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool identChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$';
}

// Calls `visit(i, depth)` for each character outside quoted strings and identifiers, with
// the bracket depth before it.
template <typename Visit>
void scanTopLevel(std::string_view s, Visit visit) {
  int depth = 0;
  char quote = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (quote != 0) {
      if (c == quote) {
        if (i + 1 < s.size() && s[i + 1] == quote) {
          ++i;  // a doubled quote inside the string
        } else {
          quote = 0;
        }
      }
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      continue;
    }
    if (c == '(' || c == '[') {
      if (!visit(i, depth)) return;
      ++depth;
      continue;
    }
    if (c == ')' || c == ']') --depth;
    if (!visit(i, depth)) return;
  }
}

// Positions of `word` (" AND ", " = ", ...) at depth 0.
std::vector<size_t> topLevelFind(std::string_view s, std::string_view word) {
  std::vector<size_t> at;
  scanTopLevel(s, [&](size_t i, int depth) {
    if (depth == 0 && s.compare(i, word.size(), word) == 0) at.push_back(i);
    return true;
  });
  return at;
}

// An identifier at `i` ("quoted" or plain); its end, or npos.
size_t identEnd(std::string_view s, size_t i) {
  if (i >= s.size()) return std::string_view::npos;
  if (s[i] == '"') {
    for (size_t j = i + 1; j < s.size(); ++j) {
      if (s[j] != '"') continue;
      if (j + 1 < s.size() && s[j + 1] == '"') {
        ++j;
        continue;
      }
      return j + 1;
    }
    return std::string_view::npos;
  }
  if (!identStart(s[i])) return std::string_view::npos;
  size_t j = i;
  while (j < s.size() && identChar(s[j])) ++j;
  return j;
}

std::string unquoted(std::string_view ident) {
  if (ident.size() < 2 || ident.front() != '"') return std::string(ident);
  std::string out;
  for (size_t i = 1; i + 1 < ident.size(); ++i) {
    if (ident[i] == '"' && i + 2 < ident.size() && ident[i + 1] == '"') ++i;
    out += ident[i];
  }
  return out;
}

// One `qualifier.column` reference: where the qualifier starts and ends.
struct Reference {
  size_t begin, dot;
  std::string qualifier;
};

// Column references (`alias.column`, not `schema.function(`, not `::schema.type`) outside
// string literals.
std::vector<Reference> references(std::string_view s) {
  std::vector<Reference> out;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c == '\'') {  // skip a string literal
      ++i;
      while (i < s.size()) {
        if (s[i] == '\'' && i + 1 < s.size() && s[i + 1] == '\'') {
          i += 2;
          continue;
        }
        if (s[i] == '\'') break;
        ++i;
      }
      ++i;
      continue;
    }
    const bool starts = (c == '"' || identStart(c)) && (i == 0 || !identChar(s[i - 1]));
    if (!starts) {
      ++i;
      continue;
    }
    const size_t end = identEnd(s, i);
    if (end == std::string_view::npos) break;
    const bool after_cast = i >= 2 && s.compare(i - 2, 2, "::") == 0;
    if (!after_cast && end < s.size() && s[end] == '.') {
      const size_t col_end = identEnd(s, end + 1);
      if (col_end != std::string_view::npos && (col_end >= s.size() || s[col_end] != '(')) {
        out.push_back({i, end, unquoted(s.substr(i, end - i))});
        i = col_end;
        continue;
      }
    }
    i = end;
  }
  return out;
}

std::set<std::string> qualifiersOf(std::string_view s) {
  std::set<std::string> q;
  for (const auto& r : references(s)) q.insert(r.qualifier);
  return q;
}

// `s` without the `alias.` of its references to `alias`.
std::string withoutQualifier(std::string_view s, const std::string& alias) {
  std::string out;
  size_t from = 0;
  for (const auto& r : references(s)) {
    if (r.qualifier != alias) continue;
    out.append(s.substr(from, r.begin - from));
    from = r.dot + 1;
  }
  out.append(s.substr(from));
  return out;
}

bool plainIdentifier(std::string_view s) {
  const size_t end = identEnd(s, 0);
  return end != std::string_view::npos && end == s.size();
}

// A key from the column side of a condition, its qualifier removed. nullopt when it cannot
// be an index key (a subplan, a whole-row reference).
std::optional<IndexKey> keyOf(std::string_view side, const std::string& alias) {
  std::string text = withoutOuterParens(withoutQualifier(side, alias));
  if (text.empty() || text.find("SubPlan") != std::string::npos ||
      text.find('$') != std::string::npos) {
    return std::nullopt;
  }
  if (plainIdentifier(text)) return IndexKey{unquoted(text), false, false, 0};
  // "(col)::type": an index on the column serves binary-coercible casts to text.
  static const char* kCoercible[] = {"::text", "::character varying", "::bpchar", "::name"};
  for (const char* cast : kCoercible) {
    const std::string suffix(cast);
    if (text.size() > suffix.size() &&
        text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0) {
      const std::string inner = withoutOuterParens(text.substr(0, text.size() - suffix.size()));
      if (plainIdentifier(inner)) return IndexKey{unquoted(inner), false, false, 0};
    }
  }
  return IndexKey{text, true, false, 0};
}

int paramOf(std::string_view side) {
  const std::string s = withoutOuterParens(side);
  if (s.size() < 2 || s[0] != '$') return 0;
  int n = 0;
  for (size_t i = 1; i < s.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i])) || n > 100000) return 0;
    n = n * 10 + (s[i] - '0');
  }
  return n;
}

enum class Op { kEq, kRange, kLike };

struct Condition {
  std::string left, right;
  Op op;
  bool flipped_ok = true;  // whether the right side may be the key (not for LIKE)
};

// "a OP b" with OP at depth 0; nullopt for anything an index does not serve this way.
std::optional<Condition> conditionOf(std::string_view conjunct) {
  static const std::pair<const char*, Op> kOps[] = {{" = ", Op::kEq},     {" <= ", Op::kRange},
                                                    {" >= ", Op::kRange}, {" < ", Op::kRange},
                                                    {" > ", Op::kRange},  {" ~~ ", Op::kLike}};
  size_t best = std::string_view::npos;
  Condition c{};
  size_t width = 0;
  for (const auto& [word, op] : kOps) {
    const auto at = topLevelFind(conjunct, word);
    if (!at.empty() && at.front() < best) {
      best = at.front();
      c.op = op;
      width = std::string_view(word).size();
    }
  }
  if (best == std::string_view::npos) return std::nullopt;
  c.left = std::string(conjunct.substr(0, best));
  c.right = std::string(conjunct.substr(best + width));
  c.flipped_ok = c.op != Op::kLike;
  return c;
}

void addKey(std::vector<IndexKey>& keys, const IndexKey& k) {
  for (const auto& e : keys) {
    if (e.text == k.text && e.expression == k.expression) return;
  }
  keys.push_back(k);
}

struct Relation {
  std::string schema, table;
  double cost = 0;
};

void collectRelations(const json& node, std::map<std::string, Relation>& out, int depth = 0) {
  if (!node.is_object() || depth > kMaxPlanDepth) return;
  if (node.contains("Relation Name") && node.contains("Alias") && node["Alias"].is_string()) {
    out.emplace(node["Alias"].get<std::string>(),
                Relation{node.value("Schema", ""), node.value("Relation Name", ""),
                         node.value("Total Cost", 0.0)});
  }
  if (node.contains("Plans") && node["Plans"].is_array()) {
    for (const auto& c : node["Plans"]) collectRelations(c, out, depth + 1);
  }
}

// A scan's filter: the conditions on its own alias.
void filterKeys(const std::string& filter, const std::string& alias, PlanCandidate& c) {
  for (const auto& part : conjuncts(filter)) {
    auto cond = conditionOf(part);
    if (!cond) continue;
    const auto lq = qualifiersOf(cond->left);
    const auto rq = qualifiersOf(cond->right);
    const std::set<std::string> own{alias};
    std::string key_side, value_side;
    if (lq == own && !rq.count(alias)) {
      key_side = cond->left;
      value_side = cond->right;
    } else if (cond->flipped_ok && rq == own && !lq.count(alias)) {
      key_side = cond->right;
      value_side = cond->left;
    } else {
      continue;
    }
    auto key = keyOf(key_side, alias);
    if (!key) continue;
    key->param = paramOf(value_side);
    if (cond->op == Op::kEq) {
      addKey(c.equality, *key);
    } else {
      key->like = cond->op == Op::kLike;
      addKey(c.range, *key);
    }
  }
  for (const auto& e : c.equality) {
    std::erase_if(c.range, [&e](const IndexKey& r) { return r.text == e.text; });
  }
}

// Sort keys right above a scan, when they are plain columns of its alias.
std::vector<IndexKey> sortKeys(const json& node) {
  std::vector<IndexKey> keys;
  if (!node.contains("Sort Key") || !node["Sort Key"].is_array()) return keys;
  for (const auto& k : node["Sort Key"]) {
    if (!k.is_string()) return {};
    std::string key = k.get<std::string>();
    for (const char* suffix : {" NULLS FIRST", " NULLS LAST", " DESC", " ASC"}) {
      const std::string s(suffix);
      if (key.size() > s.size() && key.compare(key.size() - s.size(), s.size(), s) == 0) {
        key.erase(key.size() - s.size());
      }
    }
    const auto refs = references(key);
    if (refs.size() != 1) return {};
    auto ik = keyOf(key, refs[0].qualifier);
    if (!ik || ik->expression) return {};  // an expression's order: left to the planner
    keys.push_back(*ik);
  }
  return keys;
}

// The plain columns of `alias` that a scan's Filter and Output refer to; empty when any
// part refers to something else of the row (a whole-row reference, a system column).
std::vector<std::string> columnsRead(const json& node, const std::string& alias) {
  if (!node.contains("Output") || !node["Output"].is_array()) return {};
  std::set<std::string> columns;
  std::vector<std::string> parts;
  for (const auto& o : node["Output"]) {
    if (!o.is_string()) return {};
    // A query of one table prints its output columns unqualified.
    const std::string text = o.get<std::string>();
    if (plainIdentifier(text) && text != alias) {
      columns.insert(unquoted(text));
    } else if (!references(text).empty()) {
      parts.push_back(text);
    } else {
      return {};  // the whole row, or an expression of unqualified columns
    }
  }
  if (node.contains("Filter") && node["Filter"].is_string()) {
    parts.push_back(node["Filter"].get<std::string>());
  }
  for (const auto& part : parts) {
    const auto refs = references(part);
    for (const auto& r : refs) {
      if (r.qualifier != alias) continue;
      const size_t end = identEnd(part, r.dot + 1);
      if (end == std::string_view::npos) return {};
      const std::string column =
          unquoted(std::string_view(part).substr(r.dot + 1, end - r.dot - 1));
      if (column == "*" || column == "ctid" || column == "tableoid") return {};
      columns.insert(column);
    }
  }
  return {columns.begin(), columns.end()};
}

void joinKeys(const std::string& condition, const std::map<std::string, Relation>& relations,
              std::vector<PlanCandidate>& out) {
  for (const auto& part : conjuncts(condition)) {
    auto cond = conditionOf(part);
    if (!cond || cond->op != Op::kEq) continue;
    const auto lq = qualifiersOf(cond->left);
    const auto rq = qualifiersOf(cond->right);
    if (lq.size() != 1 || rq.size() != 1 || lq == rq) continue;
    for (const auto& [side, alias] :
         {std::pair{cond->left, *lq.begin()}, std::pair{cond->right, *rq.begin()}}) {
      const auto rel = relations.find(alias);
      if (rel == relations.end()) continue;
      auto key = keyOf(side, alias);
      if (!key) continue;
      PlanCandidate c;
      c.schema = rel->second.schema;
      c.table = rel->second.table;
      c.source = CandidateSource::kJoin;
      c.scan_cost = rel->second.cost;
      c.equality.push_back(*key);
      out.push_back(std::move(c));
    }
  }
}

void walk(const json& node, const std::vector<IndexKey>& sort_above,
          const std::map<std::string, Relation>& relations, std::vector<PlanCandidate>& out,
          int depth = 0) {
  if (!node.is_object() || depth > kMaxPlanDepth) return;
  const std::string type = node.value("Node Type", "");
  if (type == "Seq Scan" && node.contains("Relation Name")) {
    PlanCandidate c;
    c.schema = node.value("Schema", "");
    c.table = node.value("Relation Name", "");
    c.scan_cost = node.value("Total Cost", 0.0);
    const std::string alias = node.value("Alias", c.table);
    if (node.contains("Filter") && node["Filter"].is_string()) {
      filterKeys(node["Filter"].get<std::string>(), alias, c);
    }
    if (!c.equality.empty() || !c.range.empty()) {
      for (const auto& k : sort_above) c.sort.push_back(k);
      c.reads = columnsRead(node, alias);
      out.push_back(std::move(c));
    }
  }
  for (const char* field : {"Hash Cond", "Merge Cond", "Join Filter"}) {
    if (node.contains(field) && node[field].is_string()) {
      joinKeys(node[field].get<std::string>(), relations, out);
    }
  }
  std::vector<IndexKey> sort;
  if (type == "Sort" || type == "Incremental Sort") sort = sortKeys(node);
  if (node.contains("Plans") && node["Plans"].is_array()) {
    for (const auto& child : node["Plans"]) {
      // The order only helps a scan right below the Sort, of the sorted alias.
      std::vector<IndexKey> below;
      if (!sort.empty() && child.value("Node Type", "") == "Seq Scan") {
        const std::string alias = child.value("Alias", "");
        bool same = true;
        for (const auto& k : node["Sort Key"]) {
          same = same && k.is_string() && k.get<std::string>().rfind(alias + ".", 0) == 0;
        }
        if (same) below = sort;
      }
      walk(child, below, relations, out, depth + 1);
    }
  }
}

}  // namespace

std::string withoutOuterParens(std::string_view text) {
  std::string_view s = text;
  while (s.size() >= 2 && s.front() == '(' && s.back() == ')') {
    bool encloses = true;
    scanTopLevel(s, [&](size_t i, int depth) {
      // The opening parenthesis closes before the end: "(a) = (b)".
      if (i > 0 && i + 1 < s.size() && depth == 0) encloses = false;
      return encloses;
    });
    if (!encloses) break;
    s = s.substr(1, s.size() - 2);
  }
  return std::string(s);
}

std::vector<std::string> conjuncts(std::string_view condition) {
  const std::string s = withoutOuterParens(condition);
  if (!topLevelFind(s, " OR ").empty()) return {};
  const auto ands = topLevelFind(s, " AND ");
  if (ands.empty()) return {s};
  std::vector<std::string> out;
  size_t from = 0;
  for (size_t at : ands) {
    for (auto& c : conjuncts(std::string_view(s).substr(from, at - from))) out.push_back(c);
    from = at + 5;
  }
  for (auto& c : conjuncts(std::string_view(s).substr(from))) out.push_back(c);
  return out;
}

std::vector<IndexKey> PlanCandidate::keys() const {
  std::vector<IndexKey> k = equality;
  if (!range.empty()) {
    k.push_back(range.front());
  } else if (!k.empty()) {
    for (const auto& s : sort) addKey(k, s);
  }
  if (k.size() > 3) k.resize(3);
  return k;
}

Result<std::vector<PlanCandidate>> planCandidates(std::string_view explain_json) {
  json doc = json::parse(explain_json, nullptr, false);
  if (doc.is_discarded() || !doc.is_array() || doc.empty() || !doc[0].is_object() ||
      !doc[0].contains("Plan")) {
    return invalidArgument("EXPLAIN returned something that is not a JSON plan");
  }
  std::map<std::string, Relation> relations;
  collectRelations(doc[0]["Plan"], relations);
  std::vector<PlanCandidate> out;
  walk(doc[0]["Plan"], {}, relations, out);
  return out;
}

}  // namespace dbpulse::advisor
