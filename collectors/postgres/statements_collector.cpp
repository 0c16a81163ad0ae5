#include "collectors/postgres/statements_collector.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <set>
#include <tuple>

#include "collectors/clients/postgres/result_reader.h"
#include "collectors/clients/postgres/sql_session.h"
#include "collectors/postgres/pg_collect_util.h"

namespace dbpulse::collectors {
namespace {

constexpr const char* kFix =
    "add pg_stat_statements to shared_preload_libraries (restart) and run CREATE EXTENSION "
    "pg_stat_statements in the database dbpulse connects to";

// "1.10" -> {1, 10}; {0, 0} when it does not parse.
std::pair<int, int> parseExtensionVersion(std::string_view v) {
  int major = 0, minor = 0;
  const char* p = v.data();
  const char* end = v.data() + v.size();
  auto r1 = std::from_chars(p, end, major);
  if (r1.ec != std::errc() || r1.ptr == end || *r1.ptr != '.') return {0, 0};
  auto r2 = std::from_chars(r1.ptr + 1, end, minor);
  if (r2.ec != std::errc()) return {0, 0};
  return {major, minor};
}

std::string quoteIdent(std::string_view id) {
  std::string out = "\"";
  for (char c : id) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

bool isInteger(const std::string& s) {
  if (s.empty() || s.size() > 20) return false;
  size_t i = s[0] == '-' ? 1 : 0;
  if (i == s.size()) return false;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  return true;
}

std::string statementKey(const std::string& queryid, const std::string& datname,
                         const std::string& user) {
  std::string key = queryid;
  key += '\0';
  key += datname;
  key += '\0';
  key += user;
  return key;
}

}  // namespace

StatementsSqlVariant statementsSqlVariant(int server_version, std::string_view extension_version) {
  // What the server version implies: the extension shipped with it, at its newest version.
  bool exec_time = server_version <= 0 || server_version >= 130000;
  bool info_view = server_version <= 0 || server_version >= 140000;
  bool shared_blk_time = server_version >= 170000;
  // An installed extension older than its server keeps its old SQL definition.
  if (const auto [major, minor] = parseExtensionVersion(extension_version); major > 0) {
    // Copied by init-capture: clang before 16 cannot capture a structured binding.
    const auto at_least = [have_major = major, have_minor = minor](int mj, int mn) {
      return std::tie(have_major, have_minor) >= std::tie(mj, mn);
    };
    exec_time = at_least(1, 8);
    info_view = at_least(1, 9);
    shared_blk_time = at_least(1, 11);
  }
  StatementsSqlVariant v;
  v.total_time = exec_time ? "total_exec_time" : "total_time";
  v.max_time = exec_time ? "max_exec_time" : "max_time";
  v.blk_read_time = shared_blk_time ? "shared_blk_read_time" : "blk_read_time";
  v.blk_write_time = shared_blk_time ? "shared_blk_write_time" : "blk_write_time";
  v.has_info_view = info_view;
  v.has_stats_since = shared_blk_time;  // both came with 1.11 (PG17)
  return v;
}

const char* const kStatementsProbeQuery = R"SQL(
SELECT n.nspname::text AS schema, e.extversion::text AS version
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE e.extname = 'pg_stat_statements'
)SQL";

std::string statementsQuery(const StatementsSqlVariant& v, std::string_view schema) {
  const std::string ext = quoteIdent(schema);
  // pg_stat_statements(false): counters only. Reading the text means loading the whole
  // query-text file on every call; texts are fetched separately, only for new top entries.
  // With pg_stat_statements.track = all the same queryid can appear as a top-level and a
  // nested entry: summed here so each (queryid, database, user) is one series.
  std::string sql = R"SQL(
WITH s AS (
  SELECT userid, dbid, queryid, count(*) AS entries,
         sum(calls) AS calls, sum()SQL" +
                    v.total_time + R"SQL() AS total_ms,
         max()SQL" + v.max_time +
                    R"SQL() AS max_ms, sum(rows) AS rows,
         sum(shared_blks_hit) AS blks_hit, sum(shared_blks_read) AS blks_read,
         sum()SQL" + v.blk_read_time +
                    R"SQL() AS blk_read_ms,
         sum()SQL" + v.blk_write_time +
                    R"SQL() AS blk_write_ms,
         )SQL" + (v.has_stats_since ? "extract(epoch FROM max(stats_since))" : "NULL::float8") +
                    R"SQL( AS since
    FROM )SQL" + ext +
                    R"SQL(.pg_stat_statements(false)
   GROUP BY userid, dbid, queryid
)
SELECT 'stmt' AS kind, s.queryid::text AS queryid,
       COALESCE(d.datname::text, s.dbid::text) AS datname,
       COALESCE(r.rolname::text, s.userid::text) AS "user",
       s.entries::float8 AS entries, s.calls::float8 AS calls, s.total_ms::float8 AS total_ms,
       s.max_ms::float8 AS max_ms, s.rows::float8 AS rows, s.blks_hit::float8 AS blks_hit,
       s.blks_read::float8 AS blks_read, s.blk_read_ms::float8 AS blk_read_ms,
       s.blk_write_ms::float8 AS blk_write_ms, s.since::float8 AS since,
       NULL::float8 AS running, NULL::float8 AS longest_running,
       NULL::float8 AS max_entries, NULL::float8 AS deallocations
  FROM s
  LEFT JOIN pg_database d ON d.oid = s.dbid
  LEFT JOIN pg_roles r ON r.oid = s.userid
UNION ALL
SELECT 'summary', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       a.running::float8, a.longest::float8,
       current_setting('pg_stat_statements.max', true)::float8,
       )SQL" +
                    (v.has_info_view
                         ? "(SELECT dealloc FROM " + ext + ".pg_stat_statements_info)::float8"
                         : std::string("NULL::float8")) +
                    R"SQL(
  FROM (SELECT count(*) FILTER (WHERE query_start < now() - make_interval(secs => $1::float8)) AS running,
               COALESCE(max(extract(epoch FROM now() - query_start)), 0) AS longest
          FROM pg_stat_activity
         WHERE state = 'active' AND backend_type = 'client backend'
           AND pid <> pg_backend_pid()) a
)SQL";
  return sql;
}

std::string statementsThresholdParam(std::chrono::milliseconds threshold) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(threshold.count()) / 1000.0);
  return buf;
}

std::string statementTextsParam(const std::vector<std::string>& queryids) {
  std::string list;
  for (const auto& q : queryids) {
    if (!isInteger(q)) continue;
    if (!list.empty()) list += ',';
    list += q;
  }
  return list;
}

std::string statementTextsQuery(std::string_view schema) {
  return R"SQL(
SELECT s.queryid::text AS queryid,
       COALESCE(d.datname::text, s.dbid::text) AS datname,
       COALESCE(r.rolname::text, s.userid::text) AS "user",
       left(s.query, )SQL" +
         std::to_string(kMaxStatementTextChars) + R"SQL() AS query
  FROM )SQL" +
         quoteIdent(schema) +
         R"SQL(.pg_stat_statements(true) s
  LEFT JOIN pg_database d ON d.oid = s.dbid
  LEFT JOIN pg_roles r ON r.oid = s.userid
 WHERE s.queryid = ANY (string_to_array($1, ',')::bigint[])
)SQL";
}

Status StatementsTracker::update(const PgRows& rows, SampleBatch& out) {
  auto reader =
      ResultReader::open("statements", rows,
                         {"kind", "queryid", "datname", "user", "entries", "calls", "total_ms",
                          "max_ms", "rows", "blks_hit", "blks_read", "blk_read_ms", "blk_write_ms",
                          "since", "running", "longest_running", "max_entries", "deallocations"});
  if (!reader.ok()) return reader.status();
  const ResultReader& r = *reader;
  const int c_kind = r.col("kind"), c_qid = r.col("queryid"), c_db = r.col("datname"),
            c_user = r.col("user"), c_entries = r.col("entries"), c_calls = r.col("calls"),
            c_total = r.col("total_ms"), c_max = r.col("max_ms"), c_rows = r.col("rows"),
            c_hit = r.col("blks_hit"), c_read = r.col("blks_read"), c_rd = r.col("blk_read_ms"),
            c_wr = r.col("blk_write_ms"), c_since = r.col("since"), c_running = r.col("running"),
            c_longest = r.col("longest_running"), c_dealloc = r.col("deallocations");

  struct Moved {
    TopStatement s;
    double recent_ms;
    double blk_read_ms, blk_write_ms;
  };
  std::vector<Moved> moved;
  std::unordered_map<std::string, Counters> current;
  current.reserve(r.size());
  double entries = 0, hidden = 0, delta_ms = 0, delta_calls = 0, restarts = 0;
  bool seen_summary = false;
  double running = 0, longest = 0;
  std::optional<double> deallocations;

  for (size_t i = 0; i < r.size(); ++i) {
    const std::string kind = r.text(i, c_kind);
    if (kind == "summary") {
      seen_summary = true;
      running = r.numberOr(i, c_running, 0);
      longest = r.numberOr(i, c_longest, 0);
      deallocations = r.number(i, c_dealloc);
      continue;
    }
    if (kind != "stmt") return internalError("statements: unexpected row kind '" + kind + "'");
    const double n = r.numberOr(i, c_entries, 1);
    entries += n;
    if (r.isNull(i, c_qid)) {
      // Other roles' entries without pg_read_all_stats: no queryid, nothing to key on.
      hidden += n;
      continue;
    }
    Counters c;
    const auto calls = r.number(i, c_calls), total = r.number(i, c_total);
    if (!calls || !total) return internalError("statements: non-numeric counters");
    c.calls = *calls;
    c.total_ms = *total;
    c.max_ms = r.numberOr(i, c_max, 0);
    c.rows = r.numberOr(i, c_rows, 0);
    c.blks_hit = r.numberOr(i, c_hit, 0);
    c.blks_read = r.numberOr(i, c_read, 0);
    c.blk_read_ms = r.numberOr(i, c_rd, 0);
    c.blk_write_ms = r.numberOr(i, c_wr, 0);
    c.since = r.number(i, c_since);

    const std::string queryid = r.text(i, c_qid), datname = r.text(i, c_db),
                      user = r.text(i, c_user);
    std::string key = statementKey(queryid, datname, user);

    // Deltas since the previous run. calls is an exact integer count, so it decides
    // whether an entry restarted (reset or evicted and re-entered); times are sums of
    // doubles and may wobble in the last bit between runs.
    double d_calls = c.calls, d_ms = c.total_ms;
    if (auto p = previous_.find(key); p != previous_.end()) {
      const Counters& prev = p->second;
      const bool restarted =
          c.calls < prev.calls || (c.since && prev.since && *c.since != *prev.since);
      if (restarted) {
        restarts += 1;
      } else {
        d_calls = c.calls - prev.calls;
        d_ms = std::max(0.0, c.total_ms - prev.total_ms);
      }
    }
    delta_calls += d_calls;
    delta_ms += d_ms;
    if (d_calls > 0 || d_ms > 1e-6) {
      Moved m;
      m.s.queryid = queryid;
      m.s.datname = datname;
      m.s.user = user;
      m.s.calls = c.calls;
      m.s.total_seconds = c.total_ms / 1000.0;
      m.s.mean_seconds = c.calls > 0 ? c.total_ms / c.calls / 1000.0 : 0;
      m.s.max_seconds = c.max_ms / 1000.0;
      m.s.rows = c.rows;
      m.s.shared_blks_hit = c.blks_hit;
      m.s.shared_blks_read = c.blks_read;
      m.s.recent_calls = d_calls;
      m.s.recent_seconds = d_ms / 1000.0;
      m.recent_ms = d_ms;
      m.blk_read_ms = c.blk_read_ms;
      m.blk_write_ms = c.blk_write_ms;
      moved.push_back(std::move(m));
    }
    current.emplace(std::move(key), c);
  }
  if (!seen_summary) return internalError("statements: summary row missing from the result");

  const size_t moved_count = moved.size();
  const size_t keep = std::min(moved_count, static_cast<size_t>(top_n_));
  std::partial_sort(moved.begin(), moved.begin() + static_cast<std::ptrdiff_t>(keep), moved.end(),
                    [](const Moved& a, const Moved& b) {
                      if (a.recent_ms != b.recent_ms) return a.recent_ms > b.recent_ms;
                      if (a.s.recent_calls != b.s.recent_calls) {
                        return a.s.recent_calls > b.s.recent_calls;
                      }
                      return std::tie(a.s.queryid, a.s.datname, a.s.user) <
                             std::tie(b.s.queryid, b.s.datname, b.s.user);
                    });
  moved.resize(keep);

  // Commit the new state only now: a malformed result above leaves the old one intact.
  previous_ = std::move(current);
  hidden_ = hidden;
  exec_seconds_total_ += delta_ms / 1000.0;
  calls_total_ += delta_calls;
  restarts_total_ += restarts;
  top_.clear();

  out.describe("pg_stat_statements_calls_total", MetricType::kCounter,
               "Executions of the statement (top statements by recent time only).");
  out.describe("pg_stat_statements_seconds_total", MetricType::kCounter,
               "Execution time of the statement in seconds (top statements only).");
  out.describe("pg_stat_statements_rows_total", MetricType::kCounter,
               "Rows retrieved or affected by the statement (top statements only).");
  out.describe("pg_stat_statements_block_read_seconds_total", MetricType::kCounter,
               "Time the statement spent reading blocks, in seconds (needs track_io_timing).");
  out.describe("pg_stat_statements_block_write_seconds_total", MetricType::kCounter,
               "Time the statement spent writing blocks, in seconds (needs track_io_timing).");
  out.describe("dbpulse_pg_statement_shared_blks_hit_total", MetricType::kCounter,
               "Shared buffer hits of the statement (top statements only).");
  out.describe("dbpulse_pg_statement_shared_blks_read_total", MetricType::kCounter,
               "Shared blocks the statement read from outside shared buffers (top only).");
  out.describe("dbpulse_pg_statement_mean_seconds", MetricType::kGauge,
               "Mean execution time of the statement since its statistics were reset.");
  out.describe("dbpulse_pg_statement_max_seconds", MetricType::kGauge,
               "Longest execution of the statement since its statistics were reset.");
  out.describe("dbpulse_pg_statement_recent_seconds", MetricType::kGauge,
               "Execution time of the statement since the previous run (the top-N ranking key).");
  out.describe("dbpulse_pg_statement_recent_calls", MetricType::kGauge,
               "Executions of the statement since the previous run.");
  for (auto& m : moved) {
    const Labels labels{{"queryid", m.s.queryid}, {"datname", m.s.datname}, {"user", m.s.user}};
    out.add("pg_stat_statements_calls_total", labels, m.s.calls);
    out.add("pg_stat_statements_seconds_total", labels, m.s.total_seconds);
    out.add("pg_stat_statements_rows_total", labels, m.s.rows);
    out.add("pg_stat_statements_block_read_seconds_total", labels, m.blk_read_ms / 1000.0);
    out.add("pg_stat_statements_block_write_seconds_total", labels, m.blk_write_ms / 1000.0);
    out.add("dbpulse_pg_statement_shared_blks_hit_total", labels, m.s.shared_blks_hit);
    out.add("dbpulse_pg_statement_shared_blks_read_total", labels, m.s.shared_blks_read);
    out.add("dbpulse_pg_statement_mean_seconds", labels, m.s.mean_seconds);
    out.add("dbpulse_pg_statement_max_seconds", labels, m.s.max_seconds);
    out.add("dbpulse_pg_statement_recent_seconds", labels, m.s.recent_seconds);
    out.add("dbpulse_pg_statement_recent_calls", labels, m.s.recent_calls);
    top_.push_back(std::move(m.s));
  }

  out.gauge("dbpulse_pg_statements_tracked", "Entries in pg_stat_statements.", {}, entries);
  out.gauge("dbpulse_pg_statements_hidden",
            "pg_stat_statements entries of other roles hidden from dbpulse (no queryid): "
            "grant pg_read_all_stats (part of pg_monitor) to see them.",
            {}, hidden);
  out.gauge("dbpulse_pg_statements_active",
            "Statements (queryid x database x user) that ran since the previous run.", {},
            static_cast<double>(moved_count));
  out.counter("dbpulse_pg_statements_exec_seconds_total",
              "Execution time of all statements, summed from per-run deltas (survives "
              "pg_stat_statements_reset()).",
              {}, exec_seconds_total_);
  out.counter("dbpulse_pg_statements_calls_total",
              "Executions of all statements, summed from per-run deltas.", {}, calls_total_);
  out.counter("dbpulse_pg_statements_restarts_total",
              "Statement entries seen restarting from zero (pg_stat_statements_reset() or "
              "eviction and re-entry).",
              {}, restarts_total_);
  if (deallocations) {
    out.counter("dbpulse_pg_statements_deallocations_total",
                "Entries evicted because pg_stat_statements.max was reached "
                "(pg_stat_statements_info.dealloc).",
                {}, *deallocations);
  }
  out.gauge("dbpulse_pg_long_running_statements",
            "Client statements active for longer than the collector's threshold.", {}, running);
  out.gauge("dbpulse_pg_longest_running_statement_seconds",
            "How long the longest active client statement has been running.", {}, longest);
  return okStatus();
}

StatementsCollector::StatementsCollector(SqlSession& session, StatementsOptions options)
    : session_(session.caller()), options_(options), tracker_(options.top_n) {}

Status StatementsCollector::ensureProbed() {
  const int version = session_->serverVersion();
  if (probe_ && version != 0 && probe_->server_version == version) return okStatus();
  auto rows = session_->query(kStatementsProbeQuery);
  if (!rows.ok()) return collectorQueryError(name_, rows.status());
  auto reader = ResultReader::open(name_, rows.value(), {"schema", "version"});
  if (!reader.ok()) return reader.status();
  if (reader->size() == 0) {
    return failedPrecondition("extension_missing",
                              "pg_stat_statements is not installed in the database dbpulse "
                              "connects to (" +
                                  session_->redactedDsn() + "); fix: " + kFix);
  }
  probe_ = Probe{reader->text(0, reader->col("schema")), reader->text(0, reader->col("version")),
                 session_->serverVersion()};
  return okStatus();
}

Status StatementsCollector::collect(const CollectContext& /*ctx*/, SampleBatch& out) {
  if (Status s = ensureProbed(); !s.ok()) {
    probe_.reset();
    return s;
  }
  const StatementsSqlVariant variant =
      statementsSqlVariant(probe_->server_version, probe_->version);
  auto rows = session_->queryParams(statementsQuery(variant, probe_->schema),
                                    {statementsThresholdParam(options_.long_running_threshold)});
  if (!rows.ok()) {
    const Status& failed = rows.status();
    probe_.reset();
    // Installed but not preloaded: the extension's functions refuse to run (SQLSTATE 55000).
    if (failed.message().find("shared_preload_libraries") != std::string::npos) {
      return failedPrecondition("extension_missing",
                                "pg_stat_statements is installed but not loaded (" +
                                    failed.message() + "); fix: " + kFix);
    }
    return collectorQueryError(name_, failed);
  }
  if (Status s = tracker_.update(rows.value(), out); !s.ok()) return s;

  if (tracker_.hidden() > 0 && !hidden_logged_) {
    hidden_logged_ = true;
    spdlog::warn(
        "collector statements: {} pg_stat_statements entries of other roles are hidden "
        "(privilege missing: pg_read_all_stats; fix: GRANT pg_monitor TO the dbpulse role)",
        tracker_.hidden());
  }

  std::vector<TopStatement> top = tracker_.top();
  fillTexts(top);
  MutexLock lock(top_mu_);
  top_ = std::move(top);
  return okStatus();
}

void StatementsCollector::fillTexts(std::vector<TopStatement>& top) {
  std::vector<std::string> missing;
  std::set<std::string> wanted;
  for (const auto& s : top) {
    const std::string key = statementKey(s.queryid, s.datname, s.user);
    wanted.insert(key);
    if (!texts_.count(key)) missing.push_back(s.queryid);
  }
  if (!missing.empty()) {
    std::sort(missing.begin(), missing.end());
    missing.erase(std::unique(missing.begin(), missing.end()), missing.end());
    const std::string ids = statementTextsParam(missing);
    if (!ids.empty()) {
      auto rows = session_->queryParams(statementTextsQuery(probe_->schema), {ids});
      if (rows.ok()) {
        auto reader =
            ResultReader::open(name_, rows.value(), {"queryid", "datname", "user", "query"});
        if (reader.ok()) {
          const ResultReader& r = *reader;
          for (size_t i = 0; i < r.size(); ++i) {
            texts_[statementKey(r.text(i, r.col("queryid")), r.text(i, r.col("datname")),
                                r.text(i, r.col("user")))] = r.text(i, r.col("query"));
          }
        }
      } else {
        // The metrics of this run are fine without texts; the next run asks again.
        spdlog::debug("collector statements: query texts: {}", rows.status().toString());
      }
    }
  }
  for (auto& s : top) {
    if (auto it = texts_.find(statementKey(s.queryid, s.datname, s.user)); it != texts_.end()) {
      s.query = it->second;
    }
  }
  // Bounded: texts of statements out of the top are dropped once the cache outgrows it.
  const size_t cap = 4 * std::max<size_t>(top.size(), static_cast<size_t>(options_.top_n));
  if (texts_.size() > cap) {
    for (auto it = texts_.begin(); it != texts_.end();) {
      it = wanted.count(it->first) ? std::next(it) : texts_.erase(it);
    }
  }
}

std::vector<TopStatement> StatementsCollector::topStatements() const {
  MutexLock lock(top_mu_);
  return top_;
}

void StatementsCollector::cancel() { session_->cancel(); }

std::any StatementsCollector::details() const { return topStatements(); }

}  // namespace dbpulse::collectors
