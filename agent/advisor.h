#pragma once
// The index advisor: which index to add, which to drop, and why a query is slow.
//
// Create suggestions come from the statements that take the database's time
// (pg_stat_statements, top N by total execution time, in the DSN's database): each is
// planned as PostgreSQL would plan it for any parameters (EXPLAIN (GENERIC_PLAN) on 16+,
// before that PREPARE + EXPLAIN EXECUTE with plan_cache_mode = force_generic_plan; the
// statement is never executed; a custom plan with values from pg_stats bound to EXPLAIN
// where a generic one cannot show an index's use). Every place a plan
// reads a whole big table becomes a candidate (advisor_plan.h: filters, join keys, ORDER BY,
// expressions, LIKE prefixes), and with hypopg the candidates are chosen as a set
// (advisor_select.h): hypothetical indexes (session memory only, never real ones) that the
// planner uses and whose removal would cost their statements at least `min_improvement`,
// and that pay for the rows written to their table. Without hypopg (`[advisor] hypopg =
// "auto"` and the extension not installed, or "off") candidates pass a pg_stats selectivity
// check and say so (validated_with = "heuristic"). Every top statement is reported with
// what became of it.
// Drop suggestions are the indexes collector's findings (invalid, duplicate, unused),
// computed afresh.
//
// Safety: everything runs on a session of its own, read-only from its first statement
// (default_transaction_read_only), under statement_timeout, and closed afterwards (which
// discards every hypothetical index and prepared statement). SQL taken from outside (the
// statements' text, analyze-query's query) goes over the extended protocol, which runs
// exactly one statement.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/mutex.h"
#include "agent/core/status.h"
#include "agent/job.h"
#include "collectors/clients/postgres/pg_session.h"
#include "collectors/postgres/indexes_collector.h"

namespace dbpulse {

enum class HypopgMode { kAuto, kRequire, kOff };

struct AdvisorOptions {
  collectors::PgSessionOptions session;  // the DSN etc.; made read-only by the advisor
  HypopgMode hypopg = HypopgMode::kAuto;
  int top_statements = 20;        // statements by total execution time to examine
  double min_improvement = 0.10;  // hypopg: share of estimated cost an index must save
  double min_table_rows = 1000;   // sequential scans of smaller tables are fine
  std::chrono::milliseconds unused_min_age = collectors::kDefaultUnusedIndexMinAge;
};

// One statement a suggested index helps: its estimated plan cost without the suggested
// set and with it (planner units).
struct StatementGain {
  std::string queryid;
  double cost_before = 0, cost_after = 0;
};

struct CreateSuggestion {
  std::string schema, table;
  std::vector<std::string> columns;  // index keys: columns, or expressions as written
  std::string statement;             // CREATE INDEX CONCURRENTLY ON schema.table (a, b);
  std::string reason;
  std::vector<std::string> queryids;
  std::optional<double> estimated_improvement;  // 0..1 of the statements' plan cost (hypopg)
  std::string validated_with;                   // "hypopg" or "heuristic"
  std::vector<StatementGain> gains;             // hypopg: per statement it helps
  std::optional<double> size_bytes;             // hypopg's estimate of the index's size
  std::optional<double> writes_per_second;      // rows written to the table (index entries)
};

// What the advisor made of one top statement.
struct ExaminedStatement {
  std::string queryid;
  double calls = 0, total_ms = 0;
  // "suggested", "served" (by an existing index), "nothing_to_gain", "not_planned" (why
  // in detail), "skipped" (a catalogue or utility statement).
  std::string outcome;
  std::string detail;
};

struct IndexSuggestions {
  std::vector<CreateSuggestion> create;
  std::vector<collectors::IndexFinding> drop;
  std::vector<std::string> notes;  // statements that could not be planned, hypopg missing...
  std::vector<ExaminedStatement> statements;  // every top statement, in rank order
};

// Pure helpers (unit-tested).
// The estimated total cost of the plan's top node.
Result<double> planCostOf(std::string_view explain_json);
// Whether the plan uses an index whose name contains `index_name`.
bool planUsesIndex(std::string_view explain_json, std::string_view index_name);
// The highest $N parameter in a (normalised) statement text; 0 when none.
int highestParameter(std::string_view sql);
// The first keyword of a statement text, upper-cased, after spaces and comments.
std::string firstKeyword(std::string_view sql);

// The advisor, once. `progress` (may be empty) gets one line per step (the CLI prints
// them on stderr). Errors: Unavailable (PostgreSQL), FailedPrecondition
// ("hypopg_missing: ..." with hypopg = require, "extension_missing: ..." without
// pg_stat_statements), DeadlineExceeded.
Result<IndexSuggestions> suggestIndexes(const AdvisorOptions& options,
                                        const std::function<void(const std::string&)>& progress);
// The same on a session the caller made (from advisorSession(options)) and may cancel().
Result<IndexSuggestions> suggestIndexes(collectors::SqlSession& session,
                                        const AdvisorOptions& options,
                                        const std::function<void(const std::string&)>& progress);
// The advisor's session options: read-only, application_name dbpulse-advisor.
collectors::PgSessionOptions advisorSession(const AdvisorOptions& options);

// dbpulse_index_suggestions{kind="create"|"drop"} from one advisor run (the agent runs it
// hourly on the leader as the `advisor` job, so the counts are always present).
void exportSuggestionCounts(const IndexSuggestions& s, SampleBatch& out);

// An advisor run's answer and when it finished (milliseconds since the epoch).
struct PublishedSuggestions {
  IndexSuggestions suggestions;
  int64_t at_ms = 0;
};

// One advisor run (or analyze-query) at a time per agent, as the README promises: the
// admin routes try once (429 when busy), the hourly `advisor` job waits until its deadline
// or shutdown. It also keeps the latest successful run's answer (the hourly job's or the
// index-suggestions route's), so the status page shows suggestions without database I/O.
// Thread-safe.
class AdvisorGate {
 public:
  // Whether the caller now holds the gate; never waits.
  bool tryEnter();
  // Waits for the gate until `deadline` or a stop request; whether the caller holds it.
  bool enter(std::chrono::steady_clock::time_point deadline, std::stop_token stop);
  void leave();

  // Replaces the latest answer.
  void publish(IndexSuggestions suggestions, int64_t at_ms);
  // The latest answer; null before the first successful run.
  std::shared_ptr<const PublishedSuggestions> latest() const;

 private:
  mutable Mutex mu_;
  std::condition_variable_any cv_;
  bool busy_ GUARDED_BY(mu_) = false;
  std::shared_ptr<const PublishedSuggestions> latest_ GUARDED_BY(mu_);
};

// The hourly run: suggestIndexes() on the leader, published to the gate for the admin
// routes and as dbpulse_index_suggestions. A scheduler job, not a collector.
class AdvisorJob final : public Job {
 public:
  // `gate` (may be null) is shared with the admin routes, so a run never overlaps theirs.
  AdvisorJob(AdvisorOptions options, std::shared_ptr<AdvisorGate> gate)
      : options_(std::move(options)), gate_(std::move(gate)) {}
  const std::string& name() const override { return name_; }
  Status run(const JobContext& ctx, SampleBatch& out) override;
  void cancel() override;

 private:
  const std::string name_ = "advisor";
  const AdvisorOptions options_;
  const std::shared_ptr<AdvisorGate> gate_;
  Mutex mu_;
  collectors::PgSession* session_ GUARDED_BY(mu_) = nullptr;  // the run's, for cancel()
};

// {"create": [...], "drop": [...], "notes": [...]} as DESIGN.md's contract has it.
std::string suggestionsJson(const IndexSuggestions& s);
// A fixed-width table for the CLI.
std::string suggestionsTable(const IndexSuggestions& s);

// POST /admin/database/analyze-query: the plan of one read-only statement (EXPLAIN, JSON)
// and findings (sequential scans of big tables and the index that would serve them,
// estimate misses with analyze). `analyze` runs the statement in a READ ONLY transaction
// that is rolled back, and only when it calls no volatile function with effects outside
// that transaction (query_guard.h). InvalidArgument for anything but one
// SELECT/WITH/VALUES/TABLE statement (with the server's message when it rejects it).
struct QueryAnalysis {
  std::string plan_json;  // EXPLAIN's JSON array as the server printed it
  std::vector<std::string> findings;
};
Result<QueryAnalysis> analyzeQuery(const AdvisorOptions& options, const std::string& query,
                                   bool analyze);

}  // namespace dbpulse
