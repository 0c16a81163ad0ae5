#pragma once
// `statements`: which statements take the database's time?
//
// Reads pg_stat_statements (counters without query text: pg_stat_statements(false)) plus
// one summary row from pg_stat_activity, in one query per run. Exports only the top N
// statements by execution time spent since the previous run (the first run ranks by the
// counters since the last stats reset), labelled queryid/datname/user — never the query
// text. Statements whose counters did not move are not exported again, so their series
// go stale; an entry whose counters went backwards (pg_stat_statements_reset(), or
// eviction and re-entry) restarted from zero: its delta is its current value, never a
// negative rate. Cost: linear in pg_stat_statements' entries (pg_stat_statements.max,
// 5,000 by default) plus the server's backends.
//
// Where the extension lives and which version it is are learned by a probe query once per
// connection; the counter columns are picked from the server version and the installed
// extension version (PG13 renamed total_time -> total_exec_time, PG17 blk_read_time ->
// shared_blk_read_time). Not installed, or installed but not in shared_preload_libraries:
// FailedPrecondition("extension_missing: ...") with the fix, which switches the collector
// off visibly while the rest of the agent goes on.
//
// The query text of the current top statements is fetched (only for statements whose
// text is not cached yet, truncated to kMaxStatementTextChars) and kept for the admin API.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "agent/core/mutex.h"
#include "collectors/clients/postgres/pg_rows.h"
#include "collectors/clients/postgres/sql_session.h"
#include "collectors/collector.h"

namespace dbpulse::collectors {

inline constexpr int kDefaultStatementsTopN = 50;
inline constexpr std::chrono::milliseconds kDefaultLongRunningThreshold{5000};
inline constexpr size_t kMaxStatementTextChars = 4096;

struct StatementsOptions {
  int top_n = kDefaultStatementsTopN;
  // A statement running longer than this counts in dbpulse_pg_long_running_statements.
  std::chrono::milliseconds long_running_threshold = kDefaultLongRunningThreshold;
};

// The version-dependent parts of the per-run query.
struct StatementsSqlVariant {
  std::string total_time = "total_exec_time";     // "total_time" before 1.8 / PG13
  std::string max_time = "max_exec_time";         // "max_time" before 1.8 / PG13
  std::string blk_read_time = "blk_read_time";    // "shared_blk_read_time" from 1.11 / PG17
  std::string blk_write_time = "blk_write_time";  // "shared_blk_write_time" from 1.11 / PG17
  bool has_info_view = true;     // pg_stat_statements_info (dealloc) from 1.9 / PG14
  bool has_stats_since = false;  // per-entry stats_since from 1.11 / PG17
  bool operator==(const StatementsSqlVariant&) const = default;
};

// Picks the variant for a server (server_version_num, e.g. 150004) and the installed
// extension version ("1.10"; "" when unknown). The extension's SQL definition decides
// the column names, and it can lag the server (pg_upgrade without ALTER EXTENSION
// UPDATE), so a known extension version overrides what the server version implies.
StatementsSqlVariant statementsSqlVariant(int server_version, std::string_view extension_version);

// Schema and version of pg_stat_statements in the connected database; no row when the
// extension is not installed there. Columns: schema, version.
extern const char* const kStatementsProbeQuery;

// The per-run query. `schema` is the extension's schema (quoted here); $1 is the
// long-running threshold (statementsThresholdParam). Row kinds: 'stmt' (one per queryid x
// database x user, summed over toplevel) and one 'summary'.
std::string statementsQuery(const StatementsSqlVariant& variant, std::string_view schema);
// statementsQuery's $1: `threshold` in seconds, with milliseconds ("0.250").
std::string statementsThresholdParam(std::chrono::milliseconds threshold);

// Query text of the statements whose queryids $1 lists (queryid, datname, user, query).
std::string statementTextsQuery(std::string_view schema);
// statementTextsQuery's $1: the integer queryids of `queryids`, comma-separated (others are
// left out). Empty when none remain.
std::string statementTextsParam(const std::vector<std::string>& queryids);

// One exported statement: lifetime counters (since the entry's last reset) and the share
// of them since the previous run.
struct TopStatement {
  std::string queryid, datname, user;
  double calls = 0;
  double total_seconds = 0;
  double mean_seconds = 0;
  double max_seconds = 0;
  double rows = 0;
  double shared_blks_hit = 0;
  double shared_blks_read = 0;
  double recent_calls = 0;    // since the previous run
  double recent_seconds = 0;  // execution time since the previous run (the ranking key)
  std::string query;          // filled by the collector; "" when not known (yet)
};

// The pure part of the collector: rows of statementsQuery -> samples, with the counters
// remembered for the next run's deltas. Not thread-safe (one collector run at a time).
class StatementsTracker {
 public:
  explicit StatementsTracker(int top_n) : top_n_(top_n > 0 ? top_n : kDefaultStatementsTopN) {}

  // Errors: Internal on an unexpected result shape (the state is then left unchanged).
  Status update(const PgRows& rows, SampleBatch& out);

  // The statements exported by the last update, largest recent time first.
  const std::vector<TopStatement>& top() const { return top_; }
  // pg_stat_statements entries hidden from us (queryid NULL: the role lacks
  // pg_read_all_stats), as of the last update.
  double hidden() const { return hidden_; }

 private:
  struct Counters {
    double calls = 0, total_ms = 0, max_ms = 0, rows = 0, blks_hit = 0, blks_read = 0,
           blk_read_ms = 0, blk_write_ms = 0;
    std::optional<double> since;  // stats_since (epoch seconds), PG17+
  };
  const int top_n_;
  std::unordered_map<std::string, Counters> previous_;  // key: queryid \0 datname \0 user
  std::vector<TopStatement> top_;
  double hidden_ = 0;
  // Our own monotonic totals: sums of positive deltas, across resets of the extension.
  double exec_seconds_total_ = 0;
  double calls_total_ = 0;
  double restarts_total_ = 0;
};

class StatementsCollector final : public Collector, public DetailsProvider {
 public:
  StatementsCollector(SqlSession& session, StatementsOptions options);
  const std::string& name() const override { return name_; }
  Status collect(const CollectContext& ctx, SampleBatch& out) override;
  void cancel() override;
  // Its details are topStatements(): a std::vector<TopStatement>.
  const DetailsProvider* detailsProvider() const override { return this; }
  std::any details() const override;

  // The top statements of the last successful run with their query text, largest recent
  // execution time first (for GET /admin/database/metrics). Thread-safe.
  std::vector<TopStatement> topStatements() const;

 private:
  struct Probe {
    std::string schema;
    std::string version;
    int server_version = 0;
  };
  Status ensureProbed();
  void fillTexts(std::vector<TopStatement>& top);

  const std::string name_ = "statements";
  std::unique_ptr<SqlSession> session_;  // this collector's handle on the group's session
  const StatementsOptions options_;
  StatementsTracker tracker_;
  std::optional<Probe> probe_;  // reset after any failed query: re-learned on reconnect
  std::map<std::string, std::string> texts_;  // statement key -> query text (bounded)
  bool hidden_logged_ = false;

  mutable Mutex top_mu_;
  std::vector<TopStatement> top_ GUARDED_BY(top_mu_);
};

}  // namespace dbpulse::collectors
