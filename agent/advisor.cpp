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

#include "agent/query_guard.h"
#include "collectors/clients/postgres/result_reader.h"

namespace dbpulse {
namespace {

using collectors::PgRows;
using collectors::PgSession;
using collectors::PgSessionOptions;
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

std::string columnList(const std::vector<std::string>& columns) {
  std::vector<std::string> quoted;
  for (const auto& c : columns) quoted.push_back(quoteIdent(c));
  return joined(quoted, ", ");
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

// "alias.column" or "column" (possibly "quoted") -> column; "" for anything else.
std::string plainColumn(std::string ref) {
  if (ref.empty()) return "";
  // Drop the qualifier: alias.column, alias."Column".
  const auto dot = ref.back() == '"' ? ref.rfind(".\"") : ref.rfind('.');
  if (dot != std::string::npos) ref = ref.substr(dot + 1);
  if (ref.size() >= 2 && ref.front() == '"' && ref.back() == '"') {
    std::string out;
    for (size_t i = 1; i + 1 < ref.size(); ++i) {
      if (ref[i] == '"' && i + 2 < ref.size() && ref[i + 1] == '"') ++i;
      out += ref[i];
    }
    return out;
  }
  for (char c : ref) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$')) return "";
  }
  return ref;
}

void addUnique(std::vector<std::string>& v, const std::string& s) {
  if (!s.empty() && std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
}

// When the name matched at `at` is the type of a cast, "(col)::type" (EXPLAIN VERBOSE
// prints them so), what an index could serve: the column for a cast an index on it still
// serves (varchar/char to text: binary-coercible), "" for any other cast, whose values an
// index on the column does not hold (int to numeric). nullopt when `at` starts no cast type.
std::optional<std::string> castOperand(const std::string& filter, size_t at, std::string type) {
  size_t i = at;
  auto skipSpacesBack = [&] {
    while (i > 0 && filter[i - 1] == ' ') --i;
  };
  skipSpacesBack();
  // "character varying" is the one two-word type EXPLAIN prints before an operator.
  if (type == "varying" && i >= 9 && filter.compare(i - 9, 9, "character") == 0) {
    i -= 9;
    type = "character varying";
    skipSpacesBack();
  }
  if (i < 2 || filter.compare(i - 2, 2, "::") != 0) return std::nullopt;
  i -= 2;
  if (i == 0 || filter[i - 1] != ')') return std::string();  // an expression's cast
  const size_t close = i - 1;
  const size_t open = filter.rfind('(', close);
  if (open == std::string::npos) return std::string();
  const std::string column = plainColumn(filter.substr(open + 1, close - open - 1));
  const bool coercible = type == "text" || type == "character varying" || type == "varchar" ||
                         type == "bpchar" || type == "name";
  return coercible ? column : std::string();
}

// Conditions of a scan's Filter that an index could serve: column OP parameter-or-literal.
void parseFilter(const std::string& filter, ScanCandidate& c) {
  static const std::regex kCondition(
      R"re(((?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+")(?:\.(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+"))?)\s*(=|<=|>=|<|>)\s*(?:ANY\s*\(\s*)?(\$\d+|'(?:[^']|'')*'|-?\d+(?:\.\d+)?))re");
  for (auto it = std::sregex_iterator(filter.begin(), filter.end(), kCondition);
       it != std::sregex_iterator(); ++it) {
    std::string column = plainColumn((*it)[1].str());
    if (auto cast = castOperand(filter, static_cast<size_t>(it->position(1)), column)) {
      column = *cast;  // "" when the cast hides the column from an index on it
    }
    const std::string op = (*it)[2].str();
    if (op == "=") {
      addUnique(c.equality, column);
    } else {
      addUnique(c.range, column);
    }
  }
  for (const auto& e : c.equality) std::erase(c.range, e);
}

// Plans nest as deep as the query does; past this depth the rest is not examined.
constexpr int kMaxPlanDepth = 200;

void walkPlan(const json& node, const std::vector<std::string>& sort_above,
              std::vector<ScanCandidate>& out, int depth = 0) {
  if (!node.is_object() || depth > kMaxPlanDepth) return;
  const std::string type = node.value("Node Type", "");
  if (type == "Seq Scan") {
    ScanCandidate c;
    c.schema = node.value("Schema", "");
    c.table = node.value("Relation Name", "");
    c.total_cost = node.value("Total Cost", 0.0);
    if (node.contains("Filter") && node["Filter"].is_string()) {
      parseFilter(node["Filter"].get<std::string>(), c);
    }
    c.sort = sort_above;
    if (!c.table.empty()) out.push_back(std::move(c));
  }
  std::vector<std::string> sort;
  if ((type == "Sort" || type == "Incremental Sort") && node.contains("Sort Key")) {
    for (const auto& k : node["Sort Key"]) {
      if (!k.is_string()) continue;
      std::string key = k.get<std::string>();
      for (const char* suffix : {" DESC", " ASC", " NULLS FIRST", " NULLS LAST"}) {
        const std::string s(suffix);
        if (key.size() > s.size() && key.compare(key.size() - s.size(), s.size(), s) == 0) {
          key.erase(key.size() - s.size());
        }
      }
      const std::string column = plainColumn(key);
      if (column.empty()) {
        sort.clear();  // an expression: no plain-column index serves this order
        break;
      }
      sort.push_back(column);
    }
  }
  if (node.contains("Plans")) {
    for (const auto& child : node["Plans"]) {
      // The order only helps the scan right below the Sort.
      const bool direct = child.value("Node Type", "") == "Seq Scan";
      walkPlan(child, direct ? sort : std::vector<std::string>{}, out, depth + 1);
    }
  }
}

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
  double cost = 0;
};

// Plans `text` generically (parameters unknown) inside a read-only transaction; returns
// EXPLAIN's JSON. The statement is never executed.
Result<std::string> genericPlan(SqlSession& session, const std::string& text, int params,
                                int& counter) {
  const std::string name = "dbpulse_advisor_" + std::to_string(++counter);
  if (auto r = session.query("BEGIN READ ONLY"); !r.ok()) return r.status();
  auto rollback = [&session] { (void)session.query("ROLLBACK"); };
  if (auto r = session.query("SET LOCAL plan_cache_mode = force_generic_plan"); !r.ok()) {
    rollback();
    return r.status();
  }
  if (auto r = session.querySingle("PREPARE " + name + " AS " + text); !r.ok()) {
    rollback();
    return r.status();
  }
  std::string args;
  for (int i = 0; i < params; ++i) args += i == 0 ? "NULL" : ", NULL";
  auto plan = session.query("EXPLAIN (FORMAT JSON, VERBOSE) EXECUTE " + name +
                            (params > 0 ? "(" + args + ")" : ""));
  rollback();
  (void)session.query("DEALLOCATE " + name);
  if (!plan.ok()) return plan.status();
  auto v = collectors::fieldAt(*plan, 0, 0);
  if (!v) return internalError("EXPLAIN returned no plan");
  return *v;
}

struct Candidate {
  std::string schema, table;
  std::vector<std::string> columns;
  std::vector<size_t> statements;  // indexes into the examined list
  ScanCandidate scan;              // the first scan that asked for it (for the reason)
};

std::string candidateKey(const std::string& schema, const std::string& table,
                         const std::vector<std::string>& columns) {
  return schema + "." + table + "(" + joined(columns, ",") + ")";
}

}  // namespace

std::vector<std::string> ScanCandidate::indexColumns() const {
  std::vector<std::string> cols = equality;
  if (!range.empty()) {
    cols.push_back(range.front());
  } else if (!cols.empty()) {
    for (const auto& s : sort) addUnique(cols, s);
  }
  if (cols.size() > 3) cols.resize(3);
  return cols;
}

Result<std::vector<ScanCandidate>> seqScansOf(std::string_view explain_json) {
  auto doc = parsePlan(explain_json);
  if (!doc.ok()) return doc.status();
  std::vector<ScanCandidate> out;
  walkPlan((*doc)[0]["Plan"], {}, out);
  return out;
}

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
  std::lock_guard lock(mu_);
  if (busy_) return false;
  busy_ = true;
  return true;
}

bool AdvisorGate::enter(std::chrono::steady_clock::time_point deadline, std::stop_token stop) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_until(lock, stop, deadline, [this] { return !busy_; })) return false;
  busy_ = true;
  return true;
}

void AdvisorGate::leave() {
  {
    std::lock_guard lock(mu_);
    busy_ = false;
  }
  cv_.notify_all();
}

void AdvisorGate::publish(IndexSuggestions suggestions, int64_t at_ms) {
  auto p = std::make_shared<const PublishedSuggestions>(
      PublishedSuggestions{std::move(suggestions), at_ms});
  std::lock_guard lock(mu_);
  latest_ = std::move(p);
}

std::shared_ptr<const PublishedSuggestions> AdvisorGate::latest() const {
  std::lock_guard lock(mu_);
  return latest_;
}

Status AdvisorCollector::collect(const collectors::CollectContext& ctx, SampleBatch& out) {
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
    std::lock_guard lock(mu_);
    session_ = &session;
  }
  auto result = suggestIndexes(session, options_, {});
  {
    std::lock_guard lock(mu_);
    session_ = nullptr;
  }
  if (!result.ok()) return result.status();
  exportSuggestionCounts(*result, out);
  if (gate_) gate_->publish(std::move(*result), toMillis(ctx.now));
  return okStatus();
}

void AdvisorCollector::cancel() {
  std::lock_guard lock(mu_);
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

  std::vector<Examined> examined;
  std::vector<Candidate> candidates;
  std::map<std::string, size_t> by_key;
  int counter = 0;
  size_t skipped = 0;
  for (size_t r = 0; r < top->rows.size(); ++r) {
    Examined e;
    e.queryid = collectors::fieldAt(*top, r, 0).value_or("");
    e.calls = collectors::pgutil::toDoubleOr(collectors::fieldAt(*top, r, 1));
    e.total_ms = collectors::pgutil::toDoubleOr(collectors::fieldAt(*top, r, 2));
    e.text = withoutPrepare(collectors::fieldAt(*top, r, 3).value_or(""));
    if (!plannable(e.text)) {
      ++skipped;
      continue;
    }
    e.params = highestParameter(e.text);
    auto plan = genericPlan(session, e.text, e.params, counter);
    if (!plan.ok()) {
      if (plan.status().code() == StatusCode::kUnavailable) return plan.status();
      out.notes.push_back("queryid " + e.queryid + ": cannot be planned (" +
                          plan.status().message() + ")");
      continue;
    }
    auto cost = planCostOf(*plan);
    e.cost = cost.ok() ? *cost : 0;
    auto scans = seqScansOf(*plan);
    if (!scans.ok()) continue;
    const size_t index = examined.size();
    examined.push_back(e);
    for (auto& scan : *scans) {
      auto cols = scan.indexColumns();
      if (cols.empty()) continue;
      const std::string key = candidateKey(scan.schema, scan.table, cols);
      auto [it, inserted] = by_key.emplace(key, candidates.size());
      if (inserted) candidates.push_back(Candidate{scan.schema, scan.table, cols, {}, scan});
      auto& stmts = candidates[it->second].statements;
      if (std::find(stmts.begin(), stmts.end(), index) == stmts.end()) stmts.push_back(index);
    }
  }
  say("planned " + std::to_string(examined.size()) + " statements (" + std::to_string(skipped) +
      " catalogue or utility statements skipped), " + std::to_string(candidates.size()) +
      " candidate indexes");

  for (const auto& c : candidates) {
    const std::string target = quoteIdent(c.schema) + "." + quoteIdent(c.table);
    // Big enough to matter, and not served by an index that exists already.
    auto facts = session.queryParams(
        "SELECT c.reltuples::float8, (SELECT string_agg(x.cols, ';') FROM (SELECT "
        "(SELECT string_agg(a.attname::text, ',' ORDER BY k.ord) FROM unnest(i.indkey) WITH "
        "ORDINALITY k(attnum, ord) JOIN pg_attribute a ON a.attrelid = i.indrelid AND "
        "a.attnum = k.attnum) AS cols FROM pg_index i WHERE i.indrelid = c.oid AND "
        "i.indisvalid AND i.indpred IS NULL) x) FROM pg_class c JOIN pg_namespace n ON n.oid = "
        "c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
        {c.schema, c.table});
    if (!facts.ok()) return facts.status();
    const double rows = collectors::pgutil::toDoubleOr(collectors::fieldAt(*facts, 0, 0));
    if (rows < options.min_table_rows) continue;
    const std::string wanted = joined(c.columns, ",");
    bool covered = false;
    const std::string existing = collectors::fieldAt(*facts, 0, 1).value_or("");
    size_t start = 0;
    while (start <= existing.size() && !existing.empty()) {
      const auto end = existing.find(';', start);
      const std::string cols = existing.substr(start, end == std::string::npos ? end : end - start);
      if (cols == wanted || cols.rfind(wanted + ",", 0) == 0) covered = true;
      if (end == std::string::npos) break;
      start = end + 1;
    }
    if (covered) continue;

    CreateSuggestion s;
    s.schema = c.schema;
    s.table = c.table;
    s.columns = c.columns;
    s.statement = "CREATE INDEX CONCURRENTLY ON " + target + " (" + columnList(c.columns) + ");";
    double calls = 0, total_ms = 0;
    for (size_t i : c.statements) {
      s.queryids.push_back(examined[i].queryid);
      calls += examined[i].calls;
      total_ms += examined[i].total_ms;
    }
    s.reason = "Seq Scan on " + target + " (" + std::to_string(static_cast<long long>(rows)) +
               " rows) filtering on " +
               joined(c.scan.equality.empty() ? c.scan.range : c.scan.equality, ", ") +
               (c.scan.range.empty() || c.scan.equality.empty()
                    ? ""
                    : " and a range on " + c.scan.range.front()) +
               (c.scan.sort.empty() || !c.scan.range.empty()
                    ? ""
                    : ", ordered by " + joined(c.scan.sort, ", ")) +
               " in " + std::to_string(c.statements.size()) +
               " statement(s): " + std::to_string(static_cast<long long>(calls)) + " calls, " +
               formatMs(total_ms) + " in total";

    if (use_hypopg) {
      say("validating " + s.statement + " with hypopg");
      auto created = session.queryParams(
          "SELECT indexrelid::text, indexname::text FROM hypopg_create_index($1)",
          {"CREATE INDEX ON " + target + " (" + columnList(c.columns) + ")"});
      if (!created.ok()) {
        out.notes.push_back(s.statement + ": hypopg could not create it (" +
                            created.status().message() + ")");
        continue;
      }
      const std::string oid = collectors::fieldAt(*created, 0, 0).value_or("0");
      const std::string name = collectors::fieldAt(*created, 0, 1).value_or("");
      double before = 0, after = 0;
      bool used = false;
      for (size_t i : c.statements) {
        const Examined& e = examined[i];
        auto plan = genericPlan(session, e.text, e.params, counter);
        const double weight = std::max(1.0, e.calls);
        before += weight * e.cost;
        if (plan.ok() && planUsesIndex(*plan, name)) {
          used = true;
          auto cost = planCostOf(*plan);
          after += weight * (cost.ok() ? *cost : e.cost);
        } else {
          after += weight * e.cost;
        }
      }
      (void)session.queryParams("SELECT hypopg_drop_index($1::oid)", {oid});
      const double improvement = before > 0 ? 1.0 - after / before : 0;
      if (!used || improvement < options.min_improvement) {
        out.notes.push_back(
            s.statement + ": the planner would " +
            (used ? "gain only " +
                        std::to_string(static_cast<int>(std::lround(improvement * 100))) + " %"
                  : "not use it") +
            " (hypopg)");
        continue;
      }
      s.estimated_improvement = std::round(improvement * 1000) / 1000;
      s.validated_with = "hypopg";
    } else {
      s.validated_with = "heuristic";
    }
    out.create.push_back(std::move(s));
  }
  std::sort(out.create.begin(), out.create.end(), [](const auto& a, const auto& b) {
    return a.estimated_improvement.value_or(0) > b.estimated_improvement.value_or(0);
  });
  say(std::to_string(out.create.size()) + " indexes to create, " + std::to_string(out.drop.size()) +
      " to drop");
  return out;
}

std::string suggestionsJson(const IndexSuggestions& s) {
  json create = json::array();
  for (const auto& c : s.create) {
    create.push_back({{"table", c.schema + "." + c.table},
                      {"columns", c.columns},
                      {"statement", c.statement},
                      {"reason", c.reason},
                      {"queryids", c.queryids},
                      {"estimated_improvement",
                       c.estimated_improvement ? json(*c.estimated_improvement) : json(nullptr)},
                      {"validated_with", c.validated_with}});
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
  return json{{"create", create}, {"drop", drop}, {"notes", s.notes}}.dump(
             2, ' ', false, json::error_handler_t::replace) +
         "\n";
}

std::string suggestionsTable(const IndexSuggestions& s) {
  std::string out = "CREATE (" + std::to_string(s.create.size()) + ")\n";
  for (const auto& c : s.create) {
    char gain[32] = "heuristic";
    if (c.estimated_improvement) {
      std::snprintf(gain, sizeof gain, "-%.1f%% est. cost", *c.estimated_improvement * 100);
    }
    out += "  " + c.statement + "\n      " + gain + "; " + c.reason +
           "\n      queryids: " + joined(c.queryids, ", ") + "\n";
  }
  out += "DROP (" + std::to_string(s.drop.size()) + ")\n";
  for (const auto& d : s.drop) {
    out += "  " + d.statement + "\n      " + d.reason + ", " +
           std::to_string(static_cast<long long>(d.size_bytes)) + " bytes; " + d.detail + "\n";
  }
  for (const auto& n : s.notes) out += "note: " + n + "\n";
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
  auto plan = session.querySingle(std::string("EXPLAIN (FORMAT JSON") +
                                  (analyze ? ", ANALYZE, BUFFERS" : "") + ") " + query);
  (void)session.query("ROLLBACK");
  if (!plan.ok()) return plan.status();
  QueryAnalysis out;
  out.plan_json = collectors::fieldAt(*plan, 0, 0).value_or("[]");
  auto scans = seqScansOf(out.plan_json);
  if (scans.ok()) {
    for (const auto& scan : *scans) {
      const auto cols = scan.indexColumns();
      auto facts = session.queryParams(
          "SELECT c.reltuples::float8 FROM pg_class c JOIN pg_namespace n ON n.oid = "
          "c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
          {scan.schema.empty() ? "public" : scan.schema, scan.table});
      const double rows =
          facts.ok() ? collectors::pgutil::toDoubleOr(collectors::fieldAt(*facts, 0, 0)) : 0;
      if (rows < options.min_table_rows) continue;
      std::string f = "Seq Scan on " + scan.table + " (about " +
                      std::to_string(static_cast<long long>(rows)) + " rows)";
      if (!cols.empty()) {
        f += ": an index on (" + joined(cols, ", ") + ") could serve it";
      }
      out.findings.push_back(f);
    }
  }
  if (analyze) {
    // Row estimates far from what the execution found: stale statistics (ANALYZE the table).
    std::function<void(const json&, int)> walk = [&](const json& node, int depth) {
      if (!node.is_object() || depth > kMaxPlanDepth) return;
      const double est = node.value("Plan Rows", 0.0);
      const double actual = node.value("Actual Rows", -1.0);
      if (actual >= 0 && std::max(est, actual) >= 1000 &&
          std::max(est, actual) > 10 * std::max(1.0, std::min(est, actual))) {
        out.findings.push_back(
            node.value("Node Type", std::string("node")) +
            (node.contains("Relation Name") ? " on " + node["Relation Name"].get<std::string>()
                                            : std::string()) +
            ": estimated " + std::to_string(static_cast<long long>(est)) + " rows, found " +
            std::to_string(static_cast<long long>(actual)) + " (statistics may be stale: ANALYZE)");
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
