#include "agent/advisor.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>

#include "agent/advisor_plan.h"
#include "agent/advisor_select.h"
#include "agent/query_guard.h"
#include "collectors/clients/postgres/result_reader.h"

namespace dbpulse {
namespace {

using collectors::PgRows;
using collectors::PgSession;
using collectors::PgSessionOptions;
using collectors::SqlParams;
using collectors::SqlSession;
using nlohmann::json;

// An identifier as PostgreSQL's quote_ident would write it.
std::string quoteIdent(const std::string& name) {
  bool plain =
      !name.empty() && (std::islower(static_cast<unsigned char>(name[0])) || name[0] == '_');
  for (char c : name) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '_')) {
      plain = false;
    }
  }
  if (plain) return name;
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string joined(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : sep) + i;
  return out;
}

std::string formatMs(double ms) {
  char buf[32];
  if (ms >= 1000) {
    std::snprintf(buf, sizeof buf, "%.1f s", ms / 1000);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f ms", ms);
  }
  return buf;
}

// Plans nest as deep as the query does; past this depth the rest is not examined.
constexpr int kMaxPlanDepth = 200;

Result<json> parsePlan(std::string_view text) {
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_array() || doc.empty() || !doc[0].contains("Plan")) {
    return internalError("EXPLAIN returned something that is not a JSON plan");
  }
  return doc;
}

bool anyNodeNamesIndex(const json& node, std::string_view name, int depth = 0) {
  if (!node.is_object() || depth > kMaxPlanDepth) return false;
  if (node.contains("Index Name") && node["Index Name"].is_string() &&
      node["Index Name"].get<std::string>().find(name) != std::string::npos) {
    return true;
  }
  if (node.contains("Plans")) {
    for (const auto& c : node["Plans"]) {
      if (anyNodeNamesIndex(c, name, depth + 1)) return true;
    }
  }
  return false;
}

// The statement kinds a generic plan is worth taking of: the application's reads, updates
// and deletes, not queries on the system catalogues (monitoring, dbpulse's own), which no
// user index serves and whose normalised text often cannot be prepared.
bool plannable(const std::string& text) {
  const std::string keyword = firstKeyword(text);
  if (keyword != "SELECT" && keyword != "WITH" && keyword != "UPDATE" && keyword != "DELETE") {
    return false;
  }
  for (const char* catalog :
       {"pg_stat", "pg_class", "pg_index", "pg_namespace", "pg_database", "pg_locks", "pg_settings",
        "pg_extension", "pg_replication", "pg_catalog", "information_schema", "hypopg"}) {
    if (text.find(catalog) != std::string::npos) return false;
  }
  return true;
}

// "PREPARE name [(types)] AS statement" -> "statement"; anything else as it is.
std::string withoutPrepare(const std::string& text) {
  if (firstKeyword(text) != "PREPARE") return text;
  static const std::regex kPrefix(R"(^\s*prepare\s+[^\s(]+\s*(\([^)]*\))?\s*as\s+)",
                                  std::regex::icase);
  std::smatch m;
  if (!std::regex_search(text, m, kPrefix)) return text;
  return text.substr(static_cast<size_t>(m.length(0)));
}

PgSessionOptions readOnlySession(const AdvisorOptions& options) {
  PgSessionOptions o = options.session;
  o.read_only = true;
  o.application_name = "dbpulse-advisor";
  return o;
}

// One statement examined by the advisor.
struct Examined {
  std::string queryid, text;
  double calls = 0, total_ms = 0;
  int params = 0;
  bool planned = false;
  std::string plan;               // EXPLAIN's JSON, generic or with `args`
  std::vector<std::string> args;  // representative values of a custom plan; empty: generic
  double cost = 0;
  std::map<int, std::string> like_params;  // $N compared with LIKE -> a sample pattern
  std::string outcome, detail;
  std::set<std::string> served_by;      // existing indexes that already serve a candidate
  std::vector<std::string> rejections;  // candidates refused before validation, with why
};

// Plans `text` inside a read-only transaction and returns EXPLAIN's JSON; the statement is
// never executed. Generic (parameters unknown) without `args`, else a custom plan for them.
// - A custom plan binds `args` to EXPLAIN itself over the extended protocol: the planner
//   takes bound values as constants, so no PREPARE and no value is ever pasted into SQL.
// - A generic plan on PostgreSQL 16+ is EXPLAIN (GENERIC_PLAN): no PREPARE either.
// - Before 16 a generic plan needs a prepared statement (dbpulse_advisor_N) under
//   plan_cache_mode = force_generic_plan, deallocated at once. With track = all such a
//   PREPARE is recorded under the statement's queryid; the top-statements query and
//   withoutPrepare() make sure it never hides the statement.
Result<std::string> planOf(SqlSession& session, const std::string& text, int params,
                           const std::vector<std::string>& args, int& counter) {
  const bool custom = !args.empty();
  const bool explain_generic = !custom && session.serverVersion() >= 160000;
  if (auto r = session.query("BEGIN READ ONLY"); !r.ok()) return r.status();
  auto rollback = [&session] { (void)session.query("ROLLBACK"); };
  Result<PgRows> plan = internalError("not planned");
  if (custom) {
    SqlParams values(args.begin(), args.end());
    values.resize(static_cast<size_t>(std::max(params, 0)));
    plan = session.queryParams("EXPLAIN (FORMAT JSON, VERBOSE) " + text, values);
  } else if (explain_generic) {
    plan = session.query("EXPLAIN (GENERIC_PLAN, FORMAT JSON, VERBOSE) " + text);
  } else {
    const std::string name = "dbpulse_advisor_" + std::to_string(++counter);
    if (auto r = session.query("SET LOCAL plan_cache_mode = force_generic_plan"); !r.ok()) {
      rollback();
      return r.status();
    }
    if (auto r = session.querySingle("PREPARE " + name + " AS " + text); !r.ok()) {
      rollback();
      return r.status();
    }
    std::string nulls;
    for (int i = 0; i < params; ++i) nulls += i == 0 ? "NULL" : ", NULL";
    plan = session.query("EXPLAIN (FORMAT JSON, VERBOSE) EXECUTE " + name +
                         (params > 0 ? "(" + nulls + ")" : ""));
    rollback();
    (void)session.query("DEALLOCATE " + name);
  }
  if (custom || explain_generic) rollback();
  if (!plan.ok()) return plan.status();
  auto v = collectors::fieldAt(*plan, 0, 0);
  if (!v) return internalError("EXPLAIN returned no plan");
  return *v;
}

// pg_stat_statements normalises "interval '1 day'" to "interval $1", which PostgreSQL cannot
// parse back: the typed-literal syntax becomes a cast of the parameter ("$1::interval").
std::string typedParameters(const std::string& text) {
  static const std::regex kTypedLiteral(
      R"(\b(interval|timestamptz|timestamp|date|time|numeric|inet|uuid|jsonb|json)\s+\$(\d+))",
      std::regex::icase);
  return std::regex_replace(text, kTypedLiteral, "$$$2::$1");
}

// What the advisor needs to know about a column.
struct ColumnFacts {
  std::string type;      // format_type: "text", "character varying", "integer", ...
  double distinct = 0;   // estimated distinct values (0: unknown)
  double null_frac = 0;  //
  double top_freq = 0;   // frequency of the most common value (0: none)
  std::string sample;    // a value from the middle of the histogram (text), "" if none
};

struct TableFacts {
  double rows = 0;
  std::map<std::string, ColumnFacts> columns;
  std::vector<std::pair<std::string, std::vector<std::string>>> indexes;  // name, normalised keys
};

// A key or an index key as text that compares equal whatever the spacing, quoting and
// parentheses ("(payload ->> 'k'::text)" and "payload->>'k'::text" are the same key).
std::string normalisedKey(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c)) || c == '"' || c == '(' || c == ')') continue;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

Result<TableFacts> tableFacts(SqlSession& session, const std::string& schema,
                              const std::string& table) {
  const SqlParams rel{quoteIdent(schema) + "." + quoteIdent(table)};
  TableFacts f;
  auto main =
      session.queryParams("SELECT reltuples::float8 FROM pg_class WHERE oid = $1::regclass", rel);
  if (!main.ok()) return main.status();
  f.rows = collectors::pgutil::toDoubleOr(collectors::fieldAt(*main, 0, 0));
  auto cols = session.queryParams(
      "SELECT a.attname::text, format_type(a.atttypid, NULL), s.n_distinct::float8, "
      "s.null_frac::float8, s.most_common_freqs[1]::float8, CASE WHEN s.histogram_bounds IS NOT "
      "NULL THEN (s.histogram_bounds::text::text[])[greatest(1, array_length(s.histogram_bounds::"
      "text::text[], 1) / 2)] END FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN "
      "pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_stats s ON s.schemaname = n.nspname "
      "AND s.tablename = c.relname AND s.attname = a.attname WHERE a.attrelid = $1::regclass "
      "AND a.attnum > 0 AND NOT a.attisdropped",
      rel);
  if (!cols.ok()) return cols.status();
  for (size_t r = 0; r < cols->rows.size(); ++r) {
    ColumnFacts c;
    c.type = collectors::fieldAt(*cols, r, 1).value_or("");
    const double nd = collectors::pgutil::toDoubleOr(collectors::fieldAt(*cols, r, 2));
    c.distinct = nd < 0 ? -nd * f.rows : nd;
    c.null_frac = collectors::pgutil::toDoubleOr(collectors::fieldAt(*cols, r, 3));
    c.top_freq = collectors::pgutil::toDoubleOr(collectors::fieldAt(*cols, r, 4));
    c.sample = collectors::fieldAt(*cols, r, 5).value_or("");
    f.columns.emplace(collectors::fieldAt(*cols, r, 0).value_or(""), std::move(c));
  }
  auto idx = session.queryParams(
      "SELECT i.indexrelid::regclass::text, (SELECT string_agg(pg_get_indexdef(i.indexrelid, "
      "k, true), E'\\x1f' ORDER BY k) FROM generate_series(1, i.indnkeyatts::int) k) FROM "
      "pg_index i WHERE i.indrelid = $1::regclass AND i.indisvalid AND i.indpred IS NULL",
      rel);
  if (!idx.ok()) return idx.status();
  for (size_t r = 0; r < idx->rows.size(); ++r) {
    std::vector<std::string> keys;
    const std::string all = collectors::fieldAt(*idx, r, 1).value_or("");
    size_t from = 0;
    while (from <= all.size()) {
      const auto at = all.find('\x1f', from);
      keys.push_back(normalisedKey(all.substr(from, at == std::string::npos ? at : at - from)));
      if (at == std::string::npos) break;
      from = at + 1;
    }
    f.indexes.emplace_back(collectors::fieldAt(*idx, r, 0).value_or(""), std::move(keys));
  }
  return f;
}

// The candidate's keys with its equality columns in selectivity order (most distinct
// values first); empty when a column key is not a column of the table.
std::vector<advisor::IndexKey> orderedKeys(advisor::PlanCandidate c, const TableFacts& facts) {
  auto distinct = [&facts](const advisor::IndexKey& k) {
    if (k.expression) return 1e18;  // an expression of a column (lower(email)): keep it first
    const auto it = facts.columns.find(k.text);
    return it == facts.columns.end() ? 0.0 : it->second.distinct;
  };
  std::stable_sort(c.equality.begin(), c.equality.end(),
                   [&](const auto& a, const auto& b) { return distinct(a) > distinct(b); });
  auto keys = c.keys();
  for (const auto& k : keys) {
    if (!k.expression && !facts.columns.count(k.text)) return {};
  }
  return keys;
}

// The columns a covering index would INCLUDE so that the scan becomes an Index Only Scan:
// what the scan reads beyond the keys, when that is one or two columns of fixed, narrow
// types (text, json or arrays would make the index nearly a copy of the table).
// "" when there is none or it is not worth it.
std::string coveringColumns(const advisor::PlanCandidate& c,
                            const std::vector<advisor::IndexKey>& keys, const TableFacts& facts) {
  static const std::set<std::string> kNarrow = {
      "smallint",
      "integer",
      "bigint",
      "real",
      "double precision",
      "boolean",
      "date",
      "timestamp without time zone",
      "timestamp with time zone",
      "uuid",
      "money",
      "oid",
      "numeric"};  // variable length, but amounts and counts take a few bytes
  constexpr size_t kMaxIncluded = 2;
  if (c.reads.empty()) return "";
  std::vector<std::string> include;
  for (const auto& column : c.reads) {
    const bool key = std::any_of(keys.begin(), keys.end(), [&](const advisor::IndexKey& k) {
      return !k.expression && k.text == column;
    });
    if (key) continue;
    const auto it = facts.columns.find(column);
    if (it == facts.columns.end() || !kNarrow.count(it->second.type)) return "";
    include.push_back(quoteIdent(column));
  }
  // An expression key reads its column too; the scan would still need the heap for it.
  for (const auto& k : keys) {
    if (k.expression) return "";
  }
  if (include.empty() || include.size() > kMaxIncluded) return "";
  return joined(include, ", ");
}

std::string keyList(const std::vector<advisor::IndexKey>& keys) {
  std::vector<std::string> t;
  for (const auto& k : keys) t.push_back(k.text);
  return joined(t, ", ");
}

// Without hypopg nothing checks a candidate with the planner, so pg_stats must: the leading
// equality column must pick out few rows, and a cast's expression index is not guessed.
std::string heuristicRefusal(const std::vector<advisor::IndexKey>& keys, const TableFacts& facts,
                             const advisor::PlanCandidate& c) {
  const advisor::IndexKey& lead = keys.front();
  if (lead.expression && lead.text.find("::") != std::string::npos && lead.text.find('(') == 0) {
    return "an index on a cast expression needs hypopg to validate it";
  }
  if (lead.expression ||
      std::find(c.equality.begin(), c.equality.end(), lead) == c.equality.end()) {
    return "";
  }
  const auto it = facts.columns.find(lead.text);
  if (it == facts.columns.end() || it->second.distinct <= 0) return "";
  const ColumnFacts& col = it->second;
  const double share = std::max(col.top_freq, (1.0 - col.null_frac) / col.distinct);
  if (share <= 0.2) return "";
  return "not selective: a value of " + lead.text + " matches about " +
         std::to_string(static_cast<int>(std::lround(share * 100))) + " % of the rows (pg_stats)";
}

// An existing index whose leading keys are these keys; "" when none. LIKE keys are served
// only by a pattern-ops index, which the plan would then have used.
std::string servingIndex(const std::vector<advisor::IndexKey>& keys, const TableFacts& facts) {
  for (const auto& k : keys) {
    if (k.like) return "";
  }
  for (const auto& [name, existing] : facts.indexes) {
    if (existing.size() < keys.size()) continue;
    bool same = true;
    for (size_t i = 0; i < keys.size(); ++i) {
      same = same && existing[i] == normalisedKey(keys[i].text);
    }
    if (same) return name;
  }
  return "";
}

// "(a, lower(b), c text_pattern_ops)"; "" when a LIKE key's type has no pattern opclass.
std::string indexDefinition(const std::vector<advisor::IndexKey>& keys, const TableFacts& facts,
                            bool collation_is_c) {
  std::vector<std::string> parts;
  for (const auto& k : keys) {
    if (k.expression) {
      parts.push_back("(" + k.text + ")");
      continue;
    }
    std::string part = quoteIdent(k.text);
    if (k.like && !collation_is_c) {
      const std::string& type = facts.columns.at(k.text).type;
      if (type == "text") {
        part += " text_pattern_ops";
      } else if (type == "character varying") {
        part += " varchar_pattern_ops";
      } else if (type == "character") {
        part += " bpchar_pattern_ops";
      } else {
        return "";
      }
    }
    parts.push_back(part);
  }
  return "(" + joined(parts, ", ") + ")";
}

// A LIKE pattern with a prefix from the column's statistics: three quarters of a sample
// value (at least 3 bytes, never splitting a UTF-8 character) and '%', as selective as an
// application's prefix search usually is.
std::string likeSample(const advisor::IndexKey& key, const TableFacts& facts) {
  const auto it = facts.columns.find(key.text);
  if (it == facts.columns.end() || it->second.sample.size() < 3) return "";
  const std::string& v = it->second.sample;
  size_t n = std::max<size_t>(3, v.size() * 3 / 4);
  while (n > 0 && n < v.size() && (static_cast<unsigned char>(v[n]) & 0xC0) == 0x80) --n;
  std::string prefix;
  for (size_t i = 0; i < n; ++i) {
    if (v[i] == '%' || v[i] == '_' || v[i] == '\\') prefix += '\\';
    prefix += v[i];
  }
  return prefix + "%";
}

// A candidate index: the statements whose plans asked for it.
struct Proposal {
  std::string schema, table;
  std::vector<advisor::IndexKey> keys;
  std::string definition;        // "(a, b)" as in CREATE INDEX
  std::set<size_t> statements;   // into the examined list
  bool join = false;             // first asked for by a join key
  std::optional<size_t> covers;  // covering (INCLUDE): the plain proposal with its keys
};

// Whether a plan reads any index at all (every name contains "").
bool planUsesAnyIndex(const std::string& plan) { return planUsesIndex(plan, ""); }

// Whether the database's collation is C, under which LIKE 'prefix%' can use a plain index.
Result<bool> collationIsC(SqlSession& session) {
  auto r =
      session.query("SELECT datcollate::text FROM pg_database WHERE datname = current_database()");
  if (!r.ok()) return r.status();
  const std::string c = collectors::fieldAt(*r, 0, 0).value_or("");
  return c == "C" || c == "POSIX";
}

// The planner with hypothetical indexes (hypopg, session memory only).
class HypoWhatIf final : public advisor::WhatIf {
 public:
  HypoWhatIf(SqlSession& session, const std::vector<Proposal>& proposals,
             const std::vector<Examined>& examined, const std::vector<size_t>& statements,
             int& counter)
      : session_(session),
        proposals_(proposals),
        examined_(examined),
        statements_(statements),
        counter_(counter),
        oid_(proposals.size()),
        name_(proposals.size()) {}

  Status add(size_t c) override {
    const Proposal& p = proposals_.at(c);
    auto created = session_.queryParams(
        "SELECT indexrelid::text, indexname::text FROM hypopg_create_index($1)",
        {"CREATE INDEX ON " + quoteIdent(p.schema) + "." + quoteIdent(p.table) + " " +
         p.definition});
    if (!created.ok()) return created.status();
    oid_[c] = collectors::fieldAt(*created, 0, 0).value_or("");
    name_[c] = collectors::fieldAt(*created, 0, 1).value_or("");
    return okStatus();
  }
  Status remove(size_t c) override {
    if (oid_.at(c).empty()) return okStatus();
    auto r = session_.query("SELECT hypopg_drop_index(" + oid_[c] + ")");
    oid_[c].clear();
    name_[c].clear();
    return r.ok() ? okStatus() : r.status();
  }
  Result<advisor::WhatIfPlan> plan(size_t s) override {
    const Examined& e = examined_.at(statements_.at(s));
    auto plan = planOf(session_, e.text, e.params, e.args, counter_);
    if (!plan.ok()) {
      if (plan.status().code() == StatusCode::kUnavailable) return plan.status();
      return advisor::WhatIfPlan{e.cost, {}};  // as without the candidates
    }
    advisor::WhatIfPlan out;
    auto cost = planCostOf(*plan);
    out.cost = cost.ok() ? *cost : e.cost;
    for (size_t c = 0; c < name_.size(); ++c) {
      if (!name_[c].empty() && planUsesIndex(*plan, name_[c])) out.uses.push_back(c);
    }
    return out;
  }
  std::optional<double> sizeOf(size_t c) {
    if (oid_.at(c).empty()) return std::nullopt;
    auto r = session_.query("SELECT hypopg_relation_size(" + oid_[c] + ")::float8");
    if (!r.ok()) return std::nullopt;
    return collectors::pgutil::toDoubleOr(collectors::fieldAt(*r, 0, 0));
  }
  void reset() { (void)session_.query("SELECT hypopg_reset()"); }

 private:
  SqlSession& session_;
  const std::vector<Proposal>& proposals_;
  const std::vector<Examined>& examined_;
  const std::vector<size_t>& statements_;
  int& counter_;
  std::vector<std::string> oid_, name_;
};

// Seconds that pg_stat_statements' counters cover (since its reset, PostgreSQL 14+, or the
// server's start); 0 when unknown.
double statementsWindowSeconds(SqlSession& session, const std::string& pgss_schema, int version) {
  const std::string sql =
      version >= 140000
          ? "SELECT extract(epoch FROM now() - stats_reset)::float8 FROM " +
                quoteIdent(pgss_schema) + ".pg_stat_statements_info"
          : std::string("SELECT extract(epoch FROM now() - pg_postmaster_start_time())::float8");
  auto r = session.query(sql);
  return r.ok() ? collectors::pgutil::toDoubleOr(collectors::fieldAt(*r, 0, 0)) : 0;
}

// Rows that recurring statements (called more than once) inserted, updated, deleted or
// copied into the table in pg_stat_statements' window: each is an entry a new index would
// have to write. A one-off bulk load is not the table's write rate and is left out.
double recurrentWrites(SqlSession& session, const std::string& pgss_schema,
                       const std::string& schema, const std::string& table) {
  auto pattern = [](const std::string& name) {
    std::string out = "\"?";
    for (char c : name) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') out += '\\';
      out += c;
    }
    return out + "\"?";
  };
  const std::string re =
      "^\\s*(insert\\s+into|update|delete\\s+from|merge\\s+into|copy)\\s+(only\\s+)?(" +
      pattern(schema) + "\\.)?" + pattern(table) + "([\\s(]|$)";
  auto r =
      session.queryParams("SELECT coalesce(sum(rows), 0)::float8 FROM " + quoteIdent(pgss_schema) +
                              ".pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database "
                              "WHERE datname = current_database()) AND calls > 1 AND query "
                              "~* $1",
                          {re});
  return r.ok() ? collectors::pgutil::toDoubleOr(collectors::fieldAt(*r, 0, 0)) : 0;
}

std::string formatRate(double per_second) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", per_second);
  return buf;
}

}  // namespace

Result<double> planCostOf(std::string_view explain_json) {
  auto doc = parsePlan(explain_json);
  if (!doc.ok()) return doc.status();
  return (*doc)[0]["Plan"].value("Total Cost", 0.0);
}

bool planUsesIndex(std::string_view explain_json, std::string_view index_name) {
  auto doc = parsePlan(explain_json);
  return doc.ok() && anyNodeNamesIndex((*doc)[0]["Plan"], index_name);
}

int highestParameter(std::string_view sql) {
  int highest = 0;
  bool in_string = false;
  for (size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (c == '\'') in_string = !in_string;
    if (in_string || c != '$') continue;
    size_t j = i + 1;
    int n = 0;
    while (j < sql.size() && std::isdigit(static_cast<unsigned char>(sql[j])) && n < 100000) {
      n = n * 10 + (sql[j] - '0');
      ++j;
    }
    if (j > i + 1) highest = std::max(highest, n);
  }
  return highest;
}

std::string firstKeyword(std::string_view sql) {
  size_t i = 0;
  while (i < sql.size()) {
    const char c = sql[i];
    if (std::isspace(static_cast<unsigned char>(c)) || c == '(') {
      ++i;
    } else if (sql.substr(i, 2) == "--") {
      while (i < sql.size() && sql[i] != '\n') ++i;
    } else if (sql.substr(i, 2) == "/*") {
      const auto end = sql.find("*/", i + 2);
      i = end == std::string_view::npos ? sql.size() : end + 2;
    } else {
      break;
    }
  }
  std::string kw;
  while (i < sql.size() && std::isalpha(static_cast<unsigned char>(sql[i]))) {
    kw += static_cast<char>(std::toupper(static_cast<unsigned char>(sql[i])));
    ++i;
  }
  return kw;
}

collectors::PgSessionOptions advisorSession(const AdvisorOptions& options) {
  return readOnlySession(options);
}

Result<IndexSuggestions> suggestIndexes(const AdvisorOptions& options,
                                        const std::function<void(const std::string&)>& progress) {
  PgSession session(advisorSession(options));
  return suggestIndexes(session, options, progress);
}

void exportSuggestionCounts(const IndexSuggestions& s, SampleBatch& out) {
  const char* help = "Indexes the advisor's last run suggests to create or to drop";
  out.gauge("dbpulse_index_suggestions", help, {{"kind", "create"}},
            static_cast<double>(s.create.size()));
  out.gauge("dbpulse_index_suggestions", help, {{"kind", "drop"}},
            static_cast<double>(s.drop.size()));
}

bool AdvisorGate::tryEnter() {
  MutexLock lock(mu_);
  if (busy_) return false;
  busy_ = true;
  return true;
}

bool AdvisorGate::enter(std::chrono::steady_clock::time_point deadline, std::stop_token stop) {
  MutexLock lock(mu_);
  if (!cv_.wait_until(lock, stop, deadline, [this]() REQUIRES(mu_) { return !busy_; }))
    return false;
  busy_ = true;
  return true;
}

void AdvisorGate::leave() {
  {
    MutexLock lock(mu_);
    busy_ = false;
  }
  cv_.notify_all();
}

void AdvisorGate::publish(IndexSuggestions suggestions, int64_t at_ms) {
  auto p = std::make_shared<const PublishedSuggestions>(
      PublishedSuggestions{std::move(suggestions), at_ms});
  MutexLock lock(mu_);
  latest_ = std::move(p);
}

std::shared_ptr<const PublishedSuggestions> AdvisorGate::latest() const {
  MutexLock lock(mu_);
  return latest_;
}

Status AdvisorJob::run(const JobContext& ctx, SampleBatch& out) {
  if (gate_ && !gate_->enter(ctx.deadline, ctx.stop)) {
    return deadlineExceeded("an advisor run from the admin API was still in progress");
  }
  struct Leave {
    AdvisorGate* gate;
    ~Leave() {
      if (gate) gate->leave();
    }
  } leave{gate_.get()};
  PgSession session(advisorSession(options_));
  {
    MutexLock lock(mu_);
    session_ = &session;
  }
  auto result = suggestIndexes(session, options_, {});
  {
    MutexLock lock(mu_);
    session_ = nullptr;
  }
  if (!result.ok()) return result.status();
  exportSuggestionCounts(*result, out);
  if (gate_) gate_->publish(std::move(*result), toMillis(ctx.now));
  return okStatus();
}

void AdvisorJob::cancel() {
  MutexLock lock(mu_);
  if (session_ != nullptr) session_->cancel();
}

Result<IndexSuggestions> suggestIndexes(SqlSession& session, const AdvisorOptions& options,
                                        const std::function<void(const std::string&)>& progress) {
  auto say = [&](const std::string& line) {
    if (progress) progress(line);
  };
  IndexSuggestions out;

  // Prerequisites: pg_stat_statements (where the statements come from), hypopg (optional).
  auto ext = session.query(
      "SELECT e.extname::text, n.nspname::text FROM pg_extension e JOIN pg_namespace n ON "
      "n.oid = e.extnamespace WHERE e.extname IN ('pg_stat_statements', 'hypopg')");
  if (!ext.ok()) return ext.status();
  std::string pgss_schema;
  bool has_hypopg = false;
  for (size_t r = 0; r < ext->rows.size(); ++r) {
    const std::string name = collectors::fieldAt(*ext, r, 0).value_or("");
    if (name == "pg_stat_statements") pgss_schema = collectors::fieldAt(*ext, r, 1).value_or("");
    if (name == "hypopg") has_hypopg = true;
  }
  if (options.hypopg == HypopgMode::kRequire && !has_hypopg) {
    return failedPrecondition(
        "hypopg_missing",
        "[advisor] hypopg = \"require\" but the hypopg extension is not "
        "installed in this database (fix: install postgresql-15-hypopg and run CREATE "
        "EXTENSION hypopg, or set hypopg = \"auto\")");
  }
  const bool use_hypopg = has_hypopg && options.hypopg != HypopgMode::kOff;
  if (!use_hypopg) {
    out.notes.push_back(options.hypopg == HypopgMode::kOff
                            ? "hypopg is off: index suggestions are heuristic"
                            : "hypopg is not installed in this database: index suggestions "
                              "are heuristic (CREATE EXTENSION hypopg to validate them)");
  }
  const int version = session.serverVersion();

  // Drops: the indexes collector's findings, computed now.
  say("reading indexes");
  // Streamed table by table: on a schema of 10,000 tables the whole result held at once
  // was most of the agent's memory.
  auto index_scan = collectors::scanIndexes(
      [&session](const std::string& sql, const collectors::PgChunkFn& on_chunk) {
        return session.queryChunks(sql, 500, on_chunk);
      },
      version, 1, static_cast<double>(options.unused_min_age.count()) / 1000.0);
  if (!index_scan.ok()) return index_scan.status();
  out.drop = std::move(index_scan->findings);

  if (pgss_schema.empty()) {
    out.notes.push_back(
        "pg_stat_statements is not installed in this database: no create suggestions "
        "(fix: shared_preload_libraries = 'pg_stat_statements' and CREATE EXTENSION "
        "pg_stat_statements)");
    return out;
  }
  const std::string total = version >= 130000 ? "total_exec_time" : "total_time";
  say("reading the top " + std::to_string(options.top_statements) + " statements");
  // One text per queryid: the most-called entry that is the statement itself. With
  // pg_stat_statements.track = all, a PREPARE (the advisor's own dbpulse_advisor_N of an
  // earlier run, or anyone's) is recorded under the statement's queryid too; taking its
  // text made the next run skip the statement as a utility statement. The advisor's own
  // PREPAREs (of normalised text, so under queryids of their own) are not statements of
  // the application at all and are left out.
  auto top = session.query(
      "SELECT queryid::text, sum(calls)::float8, sum(" + total +
      ")::float8, coalesce((array_agg(query ORDER BY calls DESC) FILTER (WHERE query !~* "
      "'^\\s*(prepare|explain|execute|deallocate)\\M'))[1], min(query)) FROM " +
      quoteIdent(pgss_schema) +
      ".pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = "
      "current_database()) AND queryid IS NOT NULL AND query !~ '^PREPARE dbpulse_advisor_' "
      "GROUP BY queryid ORDER BY 3 DESC LIMIT " +
      std::to_string(std::max(1, options.top_statements)));
  if (!top.ok()) return top.status();

  auto collation = collationIsC(session);
  if (!collation.ok()) return collation.status();
  const bool collation_is_c = *collation;

  // Every top statement, planned as PostgreSQL would plan it for any parameters.
  std::vector<Examined> examined;
  std::vector<Proposal> proposals;
  std::map<std::string, size_t> by_key;
  std::map<std::string, TableFacts> tables;  // "schema.table"
  int counter = 0;
  for (size_t r = 0; r < top->rows.size(); ++r) {
    Examined e;
    e.queryid = collectors::fieldAt(*top, r, 0).value_or("");
    e.calls = collectors::pgutil::toDoubleOr(collectors::fieldAt(*top, r, 1));
    e.total_ms = collectors::pgutil::toDoubleOr(collectors::fieldAt(*top, r, 2));
    e.text = withoutPrepare(collectors::fieldAt(*top, r, 3).value_or(""));
    const size_t index = examined.size();
    examined.push_back(e);
    Examined& ex = examined.back();
    if (!plannable(ex.text)) {
      ex.outcome = "skipped";
      ex.detail = "a catalogue, utility or monitoring statement";
      continue;
    }
    ex.params = highestParameter(ex.text);
    auto plan = planOf(session, ex.text, ex.params, {}, counter);
    if (!plan.ok() && plan.status().code() != StatusCode::kUnavailable) {
      // Normalised text can lose what typed a parameter ("interval $1"): retry typed.
      const std::string typed = typedParameters(ex.text);
      if (typed != ex.text) {
        auto again = planOf(session, typed, ex.params, {}, counter);
        if (again.ok()) {
          ex.text = typed;
          plan = std::move(again);
        }
      }
    }
    if (!plan.ok()) {
      if (plan.status().code() == StatusCode::kUnavailable) return plan.status();
      ex.outcome = "not_planned";
      ex.detail = plan.status().message();
      out.notes.push_back("queryid " + ex.queryid + ": cannot be planned (" +
                          plan.status().message() + ")");
      continue;
    }
    ex.planned = true;
    ex.plan = *plan;
    auto cost = planCostOf(*plan);
    ex.cost = cost.ok() ? *cost : 0;
    auto found = advisor::planCandidates(*plan);
    if (!found.ok()) continue;
    for (const auto& candidate : *found) {
      const std::string qualified = candidate.schema + "." + candidate.table;
      if (!tables.count(qualified)) {
        auto facts = tableFacts(session, candidate.schema, candidate.table);
        if (!facts.ok()) {
          if (facts.status().code() == StatusCode::kUnavailable) return facts.status();
          continue;
        }
        tables.emplace(qualified, std::move(*facts));
      }
      const TableFacts& facts = tables.at(qualified);
      if (facts.rows < options.min_table_rows) continue;
      auto keys = orderedKeys(candidate, facts);
      if (keys.empty()) continue;
      if (!use_hypopg) {
        if (auto why = heuristicRefusal(keys, facts, candidate); !why.empty()) {
          ex.rejections.push_back(qualified + " (" + keyList(keys) + "): " + why);
          continue;
        }
      }
      if (auto served = servingIndex(keys, facts); !served.empty()) {
        ex.served_by.insert(served);
        continue;
      }
      const std::string definition = indexDefinition(keys, facts, collation_is_c);
      if (definition.empty()) continue;
      const std::string key = qualified + " " + definition;
      auto [it, inserted] = by_key.emplace(key, proposals.size());
      if (inserted) {
        proposals.push_back(Proposal{candidate.schema,
                                     candidate.table,
                                     keys,
                                     definition,
                                     {},
                                     candidate.source == advisor::CandidateSource::kJoin,
                                     std::nullopt});
      }
      proposals[it->second].statements.insert(index);
      if (use_hypopg) {
        if (const auto include = coveringColumns(candidate, keys, facts); !include.empty()) {
          const size_t plain = it->second;
          const std::string covering = definition + " INCLUDE (" + include + ")";
          auto [cit, cnew] = by_key.emplace(qualified + " " + covering, proposals.size());
          if (cnew) {
            Proposal cp = proposals[plain];
            cp.definition = covering;
            cp.statements.clear();
            cp.covers = plain;
            proposals.push_back(std::move(cp));
          }
          proposals[cit->second].statements.insert(index);
        }
      }
      for (const auto& k : keys) {
        if (k.like && k.param > 0) ex.like_params.emplace(k.param, likeSample(k, facts));
      }
    }
  }
  size_t planned = 0;
  for (const auto& e : examined) planned += e.planned ? 1 : 0;
  say("planned " + std::to_string(planned) + " statements (" +
      std::to_string(examined.size() - planned) + " skipped or not plannable), " +
      std::to_string(proposals.size()) + " candidate indexes");

  // Representative parameter values where a generic plan cannot see an index's use (a LIKE
  // prefix): a custom plan with a value from pg_stats when every parameter has one.
  for (auto& e : examined) {
    if (!e.planned || e.like_params.empty() || static_cast<int>(e.like_params.size()) != e.params)
      continue;
    std::vector<std::string> args;
    for (int p = 1; p <= e.params; ++p) {
      auto it = e.like_params.find(p);
      if (it == e.like_params.end() || it->second.empty()) break;
      args.push_back(it->second);
    }
    if (static_cast<int>(args.size()) != e.params) continue;
    auto plan = planOf(session, e.text, e.params, args, counter);
    if (!plan.ok()) continue;
    auto cost = planCostOf(*plan);
    if (!cost.ok()) continue;
    e.args = std::move(args);
    e.plan = *plan;
    e.cost = *cost;
  }

  std::vector<bool> chosen(proposals.size(), false);
  std::vector<std::string> rejection(proposals.size());
  std::vector<std::vector<StatementGain>> gains(proposals.size());
  std::vector<std::optional<double>> improvement(proposals.size()), size(proposals.size());
  if (use_hypopg && !proposals.empty()) {
    // The statements the candidates came from, as the selection's numbering.
    std::vector<size_t> stmts;
    std::map<size_t, size_t> number;
    for (const auto& p : proposals) {
      for (size_t s : p.statements) {
        if (number.emplace(s, stmts.size()).second) stmts.push_back(s);
      }
    }
    say("validating " + std::to_string(proposals.size()) + " candidates together with hypopg on " +
        std::to_string(stmts.size()) + " statements");
    HypoWhatIf what_if(session, proposals, examined, stmts, counter);
    advisor::SelectionInput in;
    in.candidates = proposals.size();
    in.min_improvement = options.min_improvement;
    for (size_t c = 0; c < proposals.size(); ++c) {
      if (proposals[c].covers) in.covers.emplace(c, *proposals[c].covers);
    }
    for (size_t s : stmts) {
      in.weights.push_back(examined[s].calls);
      in.baseline_costs.push_back(examined[s].cost);
    }
    auto selection = advisor::chooseIndexes(what_if, in);
    if (!selection.ok()) {
      what_if.reset();
      if (selection.status().code() == StatusCode::kUnavailable) return selection.status();
      out.notes.push_back("hypopg could not validate the candidates (" +
                          selection.status().message() + ")");
    } else {
      for (const auto& [c, why] : selection->rejected) rejection[c] = why;
      for (const auto& ch : selection->chosen) {
        chosen[ch.candidate] = true;
        improvement[ch.candidate] = std::round(ch.improvement * 1000) / 1000;
        size[ch.candidate] = what_if.sizeOf(ch.candidate);
        for (const auto& g : ch.statements) {
          gains[ch.candidate].push_back({examined[stmts[g.statement]].queryid, g.before, g.after});
        }
      }
      // A covering index chosen in its plain one's place serves the plain one's statements
      // too (their plans use it): they are its statements now.
      for (size_t c = 0; c < proposals.size(); ++c) {
        const auto plain = proposals[c].covers;
        if (!chosen[c] || !plain || chosen[*plain]) continue;
        for (size_t i : proposals[*plain].statements) proposals[c].statements.insert(i);
      }
      what_if.reset();
    }
  } else {
    // Heuristic: every candidate that passed the selectivity check, except one that a wider
    // candidate on the same table starts with.
    for (size_t c = 0; c < proposals.size(); ++c) {
      chosen[c] = true;
      for (size_t w = 0; w < proposals.size(); ++w) {
        if (w == c || proposals[w].schema != proposals[c].schema ||
            proposals[w].table != proposals[c].table ||
            proposals[w].keys.size() <= proposals[c].keys.size()) {
          continue;
        }
        bool prefix = true;
        for (size_t k = 0; k < proposals[c].keys.size(); ++k) {
          prefix = prefix && proposals[w].keys[k] == proposals[c].keys[k];
        }
        if (prefix) {
          chosen[c] = false;
          rejection[c] = "a wider candidate on the same table starts with it";
          for (size_t s : proposals[c].statements) proposals[w].statements.insert(s);
        }
      }
    }
  }

  // Write cost: an index adds an entry for every row written, measured in the same window
  // as the statements' savings.
  const double statements_window = statementsWindowSeconds(session, pgss_schema, version);
  for (size_t c = 0; c < proposals.size(); ++c) {
    const Proposal& p = proposals[c];
    const TableFacts& facts = tables.at(p.schema + "." + p.table);
    const std::string target = quoteIdent(p.schema) + "." + quoteIdent(p.table);
    const std::string statement =
        "CREATE INDEX CONCURRENTLY ON " + target + " " + p.definition + ";";
    if (!chosen[c]) {
      if (!rejection[c].empty()) out.notes.push_back(statement + ": " + rejection[c]);
      continue;
    }
    const double writes =
        statements_window > 0
            ? recurrentWrites(session, pgss_schema, p.schema, p.table) / statements_window
            : 0;
    if (use_hypopg && statements_window > 0) {
      double saved = 0;
      for (const auto& g : gains[c]) {
        for (const auto& e : examined) {
          if (e.queryid == g.queryid) saved += e.calls * (g.cost_before - g.cost_after);
        }
      }
      if (!advisor::paysForItself(saved / statements_window, writes)) {
        chosen[c] = false;
        rejection[c] = "does not pay for itself (" + formatRate(writes) +
                       " rows written per second against the plan cost it saves)";
        out.notes.push_back(statement + ": " + rejection[c]);
        continue;
      }
    }
    CreateSuggestion s;
    s.schema = p.schema;
    s.table = p.table;
    for (const auto& k : p.keys) s.columns.push_back(k.text);
    s.statement = statement;
    double calls = 0, total_ms = 0;
    for (size_t i : p.statements) {
      calls += examined[i].calls;
      total_ms += examined[i].total_ms;
    }
    for (size_t i : p.statements) {
      // With hypopg, the statements whose chosen plan uses it; else those that asked.
      const bool helps =
          !use_hypopg || std::any_of(gains[c].begin(), gains[c].end(), [&](const StatementGain& g) {
            return g.queryid == examined[i].queryid;
          });
      if (helps) s.queryids.push_back(examined[i].queryid);
    }
    s.reason = std::string(p.join ? "join key" : "Seq Scan") + " on " + target + " (" +
               std::to_string(static_cast<long long>(facts.rows)) + " rows) in " +
               std::to_string(p.statements.size()) +
               " statement(s): " + std::to_string(static_cast<long long>(calls)) + " calls, " +
               formatMs(total_ms) + " in total";
    s.estimated_improvement = improvement[c];
    s.validated_with = use_hypopg ? "hypopg" : "heuristic";
    s.gains = gains[c];
    s.size_bytes = size[c];
    s.writes_per_second = writes;
    out.create.push_back(std::move(s));
  }
  std::sort(out.create.begin(), out.create.end(), [](const auto& a, const auto& b) {
    return a.estimated_improvement.value_or(0) > b.estimated_improvement.value_or(0);
  });

  // Every top statement's outcome.
  for (size_t i = 0; i < examined.size(); ++i) {
    Examined& e = examined[i];
    if (e.outcome.empty()) {
      std::vector<std::string> suggested, refused;
      for (size_t c = 0; c < proposals.size(); ++c) {
        if (!proposals[c].statements.count(i)) continue;
        const std::string def = proposals[c].table + " " + proposals[c].definition;
        const auto& ids = out.create;
        const bool in =
            chosen[c] && std::any_of(ids.begin(), ids.end(), [&](const CreateSuggestion& s) {
              return s.table == proposals[c].table &&
                     s.statement.find(proposals[c].definition) != std::string::npos &&
                     std::find(s.queryids.begin(), s.queryids.end(), e.queryid) != s.queryids.end();
            });
        (in ? suggested : refused)
            .push_back(def + (in || rejection[c].empty() ? "" : ": " + rejection[c]));
      }
      for (const auto& r : e.rejections) refused.push_back(r);
      if (!suggested.empty()) {
        e.outcome = "suggested";
        e.detail = joined(suggested, "; ");
      } else if (!e.served_by.empty() || (refused.empty() && planUsesAnyIndex(e.plan))) {
        e.outcome = "served";
        e.detail =
            e.served_by.empty()
                ? "by the indexes its plan uses"
                : "by " + joined(std::vector<std::string>(e.served_by.begin(), e.served_by.end()),
                                 ", ");
      } else {
        e.outcome = "nothing_to_gain";
        e.detail = refused.empty()
                       ? "no scan of a table over " +
                             std::to_string(static_cast<long long>(options.min_table_rows)) +
                             " rows that an index could serve"
                       : joined(refused, "; ");
      }
    }
    out.statements.push_back({e.queryid, e.calls, e.total_ms, e.outcome, e.detail});
  }
  say(std::to_string(out.create.size()) + " indexes to create, " + std::to_string(out.drop.size()) +
      " to drop");
  return out;
}

std::string suggestionsJson(const IndexSuggestions& s) {
  json create = json::array();
  for (const auto& c : s.create) {
    json gains = json::array();
    for (const auto& g : c.gains) {
      gains.push_back({{"queryid", g.queryid},
                       {"cost_before", std::round(g.cost_before * 100) / 100},
                       {"cost_after", std::round(g.cost_after * 100) / 100}});
    }
    create.push_back(
        {{"table", c.schema + "." + c.table},
         {"columns", c.columns},
         {"statement", c.statement},
         {"reason", c.reason},
         {"queryids", c.queryids},
         {"estimated_improvement",
          c.estimated_improvement ? json(*c.estimated_improvement) : json(nullptr)},
         {"validated_with", c.validated_with},
         {"statements", gains},
         {"size_bytes", c.size_bytes ? json(std::llround(*c.size_bytes)) : json(nullptr)},
         {"writes_per_second",
          c.writes_per_second ? json(std::round(*c.writes_per_second * 10) / 10) : json(nullptr)}});
  }
  json drop = json::array();
  for (const auto& d : s.drop) {
    drop.push_back({{"index", d.schemaname + "." + d.index},
                    {"table", d.schemaname + "." + d.table},
                    {"reason", d.reason},
                    {"statement", d.statement},
                    {"size_bytes", d.size_bytes},
                    {"detail", d.detail}});
  }
  json statements = json::array();
  for (const auto& e : s.statements) {
    statements.push_back({{"queryid", e.queryid},
                          {"calls", e.calls},
                          {"total_ms", std::round(e.total_ms * 1000) / 1000},
                          {"outcome", e.outcome},
                          {"detail", e.detail}});
  }
  return json{{"create", create}, {"drop", drop}, {"notes", s.notes}, {"statements", statements}}
             .dump(2, ' ', false, json::error_handler_t::replace) +
         "\n";
}

std::string suggestionsTable(const IndexSuggestions& s) {
  std::string out = "CREATE (" + std::to_string(s.create.size()) + ")\n";
  for (const auto& c : s.create) {
    char gain[32] = "heuristic";
    if (c.estimated_improvement) {
      std::snprintf(gain, sizeof gain, "-%.1f%% est. cost", *c.estimated_improvement * 100);
    }
    out += "  " + c.statement + "\n      " + gain + "; " + c.reason;
    if (c.size_bytes) {
      out += "\n      about " + std::to_string(std::llround(*c.size_bytes / 1024)) + " KiB, " +
             formatRate(c.writes_per_second.value_or(0)) + " rows written per second";
    }
    for (const auto& g : c.gains) {
      out += "\n      queryid " + g.queryid + ": cost " + formatRate(g.cost_before) + " -> " +
             formatRate(g.cost_after);
    }
    if (c.gains.empty()) out += "\n      queryids: " + joined(c.queryids, ", ");
    out += "\n";
  }
  out += "DROP (" + std::to_string(s.drop.size()) + ")\n";
  for (const auto& d : s.drop) {
    out += "  " + d.statement + "\n      " + d.reason + ", " +
           std::to_string(static_cast<long long>(d.size_bytes)) + " bytes; " + d.detail + "\n";
  }
  for (const auto& n : s.notes) out += "note: " + n + "\n";
  out += "STATEMENTS (" + std::to_string(s.statements.size()) + ")\n";
  for (const auto& e : s.statements) {
    out += "  queryid " + e.queryid + " (" + std::to_string(std::llround(e.calls)) + " calls, " +
           formatMs(e.total_ms) + "): " + e.outcome + (e.detail.empty() ? "" : ": " + e.detail) +
           "\n";
  }
  return out;
}

namespace {

// Before EXPLAIN ANALYZE executes `query`: InvalidArgument when it would call a volatile
// function (other than the harmless few) or read a foreign table (query_guard.h).
Status refuseSideEffects(SqlSession& session, const std::string& query) {
  auto verbose = session.querySingle("EXPLAIN (VERBOSE, FORMAT JSON) " + query);
  if (!verbose.ok()) return verbose.status();
  CalledNames names;
  collectCalls(query, names);
  if (Status s = collectPlanCalls(collectors::fieldAt(*verbose, 0, 0).value_or(""), names); !s.ok())
    return s;
  const std::string refused = "\"analyze\": true would execute a statement that ";
  const std::string plain = "; ask for the plan alone (\"analyze\": false)";
  if (!names.unsafe.empty()) {
    return invalidArgument(refused + "calls \"" + names.unsafe.front() +
                           "\", a name dbpulse cannot check" + plain);
  }
  if (names.foreign_scan) {
    return invalidArgument(refused + "reads a foreign table (another server's connection)" + plain);
  }
  auto rows = session.queryParams(kVolatileLookupSql, volatileLookupParams(names));
  if (!rows.ok()) return rows.status();
  std::vector<std::string> found;
  for (size_t r = 0; r < rows->rows.size(); ++r) {
    const std::string kind = collectors::fieldAt(*rows, r, 0).value_or("");
    const std::string name = collectors::fieldAt(*rows, r, 1).value_or("");
    if (kind == "function" && volatileButHarmless(name)) continue;
    found.push_back(kind == "function" ? name + "()" : "operator " + name);
  }
  if (found.empty()) return okStatus();
  std::sort(found.begin(), found.end());
  return invalidArgument(refused + "calls " + joined(found, ", ") +
                         " (volatile: may act outside the rolled-back transaction, e.g. on "
                         "other sessions or through another connection)" +
                         plain);
}

}  // namespace

Result<QueryAnalysis> analyzeQuery(const AdvisorOptions& options, const std::string& query,
                                   bool analyze) {
  const std::string keyword = firstKeyword(query);
  if (keyword != "SELECT" && keyword != "WITH" && keyword != "VALUES" && keyword != "TABLE") {
    return invalidArgument(
        "only one read-only statement (SELECT, WITH ... SELECT, VALUES or TABLE) can be "
        "analyzed" +
        std::string(keyword.empty() ? "" : "; this one starts with " + keyword));
  }
  PgSession session(readOnlySession(options));
  if (auto r = session.query("BEGIN READ ONLY"); !r.ok()) return r.status();
  if (analyze) {
    if (Status s = refuseSideEffects(session, query); !s.ok()) {
      (void)session.query("ROLLBACK");
      return s;
    }
  }
  // The candidates come from a VERBOSE plan (columns qualified by their relation's alias),
  // the same analysis as index-suggestions'; the answer's plan is the one asked for.
  auto verbose = session.querySingle("EXPLAIN (VERBOSE, FORMAT JSON) " + query);
  auto plan = session.querySingle(std::string("EXPLAIN (FORMAT JSON") +
                                  (analyze ? ", ANALYZE, BUFFERS" : "") + ") " + query);
  (void)session.query("ROLLBACK");
  if (!plan.ok()) return plan.status();
  QueryAnalysis out;
  out.plan_json = collectors::fieldAt(*plan, 0, 0).value_or("[]");
  auto collation = collationIsC(session);
  const bool collation_is_c = collation.ok() && *collation;
  auto candidates = verbose.ok()
                        ? advisor::planCandidates(collectors::fieldAt(*verbose, 0, 0).value_or(""))
                        : Result<std::vector<advisor::PlanCandidate>>(verbose.status());
  if (candidates.ok()) {
    std::map<std::string, TableFacts> tables;
    std::set<std::string> said;
    for (const auto& candidate : *candidates) {
      const std::string qualified = candidate.schema + "." + candidate.table;
      if (!tables.count(qualified)) {
        auto facts = tableFacts(session, candidate.schema, candidate.table);
        if (!facts.ok()) continue;
        tables.emplace(qualified, std::move(*facts));
      }
      const TableFacts& facts = tables.at(qualified);
      if (facts.rows < options.min_table_rows) continue;
      const auto keys = orderedKeys(candidate, facts);
      if (keys.empty() || !servingIndex(keys, facts).empty()) continue;
      if (indexDefinition(keys, facts, collation_is_c).empty()) continue;
      const std::string what =
          (candidate.source == advisor::CandidateSource::kJoin ? "Join key on " : "Seq Scan on ") +
          candidate.table + " (about " + std::to_string(static_cast<long long>(facts.rows)) +
          " rows)";
      std::string f;
      if (auto why = heuristicRefusal(keys, facts, candidate); !why.empty()) {
        f = what + ": an index on (" + keyList(keys) + ") would not help (" + why + ")";
      } else {
        f = what + ": an index on (" + keyList(keys) + ") could serve it";
      }
      if (said.insert(f).second) out.findings.push_back(f);
    }
  }
  if (analyze) {
    // Row estimates far from what the execution found: stale statistics (ANALYZE the
    // table), unless the table was analyzed since most of its rows last changed; then the
    // estimate misses something per-column statistics cannot describe.
    std::function<void(const json&, int)> walk = [&](const json& node, int depth) {
      if (!node.is_object() || depth > kMaxPlanDepth) return;
      const double est = node.value("Plan Rows", 0.0);
      const double actual = node.value("Actual Rows", -1.0);
      if (actual >= 0 && std::max(est, actual) >= 1000 &&
          std::max(est, actual) > 10 * std::max(1.0, std::min(est, actual))) {
        const std::string relation = node.value("Relation Name", std::string());
        std::string why = "statistics may be stale: ANALYZE";
        if (!relation.empty()) {
          auto fresh = session.queryParams(
              "SELECT coalesce(s.n_mod_since_analyze, 0)::float8, c.reltuples::float8, "
              "extract(epoch FROM now() - greatest(s.last_analyze, s.last_autoanalyze))::float8 "
              "FROM pg_stat_all_tables s JOIN pg_class c ON c.oid = s.relid WHERE s.relid = "
              "to_regclass($1)",
              {quoteIdent(relation)});
          const auto since = fresh.ok() ? collectors::fieldAt(*fresh, 0, 2) : std::nullopt;
          if (since) {
            const double modified =
                collectors::pgutil::toDoubleOr(collectors::fieldAt(*fresh, 0, 0));
            const double rows = collectors::pgutil::toDoubleOr(collectors::fieldAt(*fresh, 0, 1));
            if (modified <= 0.1 * std::max(rows, 1.0)) {
              why = "statistics are current (ANALYZE " +
                    std::to_string(std::llround(collectors::pgutil::toDoubleOr(since))) +
                    " s ago, few rows changed since): the planner cannot see this skew or "
                    "correlation; consider CREATE STATISTICS or a different predicate";
            }
          }
        }
        out.findings.push_back(node.value("Node Type", std::string("node")) +
                               (relation.empty() ? std::string() : " on " + relation) +
                               ": estimated " + std::to_string(static_cast<long long>(est)) +
                               " rows, found " + std::to_string(static_cast<long long>(actual)) +
                               " (" + why + ")");
      }
      if (node.contains("Plans")) {
        for (const auto& c : node["Plans"]) walk(c, depth + 1);
      }
    };
    auto doc = parsePlan(out.plan_json);
    if (doc.ok()) walk((*doc)[0]["Plan"], 0);
  }
  return out;
}

}  // namespace dbpulse
