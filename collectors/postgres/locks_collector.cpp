#include "collectors/postgres/locks_collector.h"

#include <algorithm>
#include <charconv>
#include <functional>
#include <map>
#include <set>

#include "collectors/clients/postgres/sql_session.h"
#include "collectors/postgres/pg_collect_util.h"

namespace dbpulse::collectors {

namespace {

constexpr const char* kCollector = "locks";
constexpr const char* kPrivilegeHint = "grant pg_monitor to the dbpulse role";

// pg_locks is read once (MATERIALIZED): every read of the view takes all lock-manager
// partition locks, so counting and timing the waits from one copy halves that cost.
// Row kinds: 'mode' (database x mode, zero-filled like postgres_exporter, which also lists
// template databases), 'waiting' (one per session waiting on a heavyweight lock; value =
// seconds waited). A waiter must be waiting in both reads: pg_stat_activity is read after
// the copy of pg_locks, so a session that began to wait in between (no awaited lock in the
// copy, so no mode and no waitstart) is left to the next run. Deadlocks are the stats collector's
// (pg_stat_database).
constexpr const char* kLocksQueryTemplate = R"SQL(
WITH locks AS MATERIALIZED (
  SELECT database, lower(mode) AS mode, granted, pid, @WAITSTART@ AS waitstart FROM pg_locks
), modes(mode) AS (
  VALUES ('accesssharelock'), ('rowsharelock'), ('rowexclusivelock'),
         ('shareupdateexclusivelock'), ('sharelock'), ('sharerowexclusivelock'),
         ('exclusivelock'), ('accessexclusivelock'), ('sireadlock')
), per_db AS (
  SELECT database, mode, count(*) AS n FROM locks WHERE database IS NOT NULL GROUP BY 1, 2
), awaited AS (
  SELECT pid, min(mode) AS mode, min(waitstart) AS waitstart
    FROM locks WHERE NOT granted GROUP BY pid
)
SELECT 'mode' AS kind, d.datname::text AS datname, m.mode, COALESCE(p.n, 0)::float8 AS value,
       NULL::int AS pid, NULL::text AS blockers, NULL::text AS usename, NULL::text AS query
  FROM pg_database d CROSS JOIN modes m
  LEFT JOIN per_db p ON p.database = d.oid AND p.mode = m.mode
UNION ALL
SELECT 'waiting', COALESCE(a.datname::text, ''), w.mode,
       GREATEST(0, extract(epoch FROM now() - COALESCE(w.waitstart, a.query_start)))::float8,
       a.pid,
       -- Only for waiters: pg_blocking_pids() takes the lock manager's locks.
       array_to_string(pg_blocking_pids(a.pid), ','),
       COALESCE(a.usename::text, ''), left(a.query, @TEXT_CHARS@)
  FROM pg_stat_activity a JOIN awaited w ON w.pid = a.pid
 WHERE a.wait_event_type = 'Lock'
)SQL";

std::string replaceAll(std::string s, std::string_view from, std::string_view to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

std::vector<int> parsePidList(const std::string& text, bool& ok) {
  std::vector<int> pids;
  ok = true;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    int pid = 0;
    auto [ptr, ec] = std::from_chars(text.data() + start, text.data() + end, pid);
    if (ec != std::errc() || ptr != text.data() + end) {
      ok = false;
      return {};
    }
    pids.push_back(pid);
    start = end + 1;
  }
  return pids;
}

// Longest waits-for chain through `pid`: 0 when it waits for nobody. Sessions in a cycle
// (a deadlock the server has not broken yet) count each edge once.
int chainDepth(int pid, const std::map<int, std::vector<int>>& blockers_of,
               std::map<int, int>& memo, std::set<int>& on_path) {
  if (auto it = memo.find(pid); it != memo.end()) return it->second;
  auto it = blockers_of.find(pid);
  if (it == blockers_of.end() || it->second.empty()) return 0;
  if (!on_path.insert(pid).second) return 0;
  int deepest = 0;
  for (int blocker : it->second) {
    deepest = std::max(deepest, chainDepth(blocker, blockers_of, memo, on_path));
  }
  on_path.erase(pid);
  memo[pid] = deepest + 1;
  return deepest + 1;
}

}  // namespace

std::string locksQuery(int server_version_num) {
  // pg_locks.waitstart appeared in PostgreSQL 14.
  const char* waitstart = server_version_num >= 140000 ? "waitstart" : "NULL::timestamptz";
  return replaceAll(replaceAll(kLocksQueryTemplate, "@WAITSTART@", waitstart), "@TEXT_CHARS@",
                    std::to_string(kLockQueryTextChars));
}

Status parseLockRows(const PgRows& rows, int max_details, SampleBatch& out,
                     std::vector<BlockedSession>& waiting) {
  if (Status s = pgutil::requireColumns(
          kCollector, rows,
          {"kind", "datname", "mode", "value", "pid", "blockers", "usename", "query"});
      !s.ok()) {
    return s;
  }
  const int c_kind = rows.column("kind"), c_db = rows.column("datname"),
            c_mode = rows.column("mode"), c_value = rows.column("value"),
            c_pid = rows.column("pid"), c_blockers = rows.column("blockers"),
            c_user = rows.column("usename"), c_query = rows.column("query");

  // postgres_exporter's name and type (promtool's lint reserves _count for histograms; the
  // tests accept that for the peers' names, see collectors/metric_names.tsv).
  out.describe("pg_locks_count", MetricType::kGauge,
               "Locks held or awaited, by database and lock mode.");

  waiting.clear();
  for (const auto& row : rows.rows) {
    if (row.size() != rows.columns.size()) {
      return internalError("locks: row with " + std::to_string(row.size()) + " fields, expected " +
                           std::to_string(rows.columns.size()));
    }
    const std::string kind = row[c_kind].value_or("");
    double value = 0;
    if (!pgutil::toDouble(row[c_value], value)) {
      return internalError("locks: non-numeric value in row of kind '" + kind + "'");
    }
    const std::string datname = row[c_db].value_or("");
    if (kind == "mode") {
      out.add("pg_locks_count", Labels{{"datname", datname}, {"mode", row[c_mode].value_or("")}},
              value);
    } else if (kind == "waiting") {
      long long pid = 0;
      bool blockers_ok = false;
      BlockedSession session;
      session.blocking_pids = parsePidList(row[c_blockers].value_or(""), blockers_ok);
      if (!pgutil::toInt64(row[c_pid], pid) || !blockers_ok) {
        return internalError("locks: bad pid or blocker list in a waiting row");
      }
      session.pid = static_cast<int>(pid);
      session.wait_seconds = value;
      session.datname = datname;
      session.usename = row[c_user].value_or("");
      session.lock_mode = row[c_mode].value_or("");
      // Without pg_read_all_stats, other roles' statements read "<insufficient privilege>".
      session.query = row[c_query].value_or("");
      if (session.query == "<insufficient privilege>") {
        session.query = "<insufficient privilege: needs pg_read_all_stats (pg_monitor)>";
      }
      waiting.push_back(std::move(session));
    } else {
      return internalError("locks: unexpected row kind '" + kind + "'");
    }
  }

  std::map<int, std::vector<int>> blockers_of;
  std::set<int> blocking;
  double longest = 0;
  size_t blocked = 0;
  for (const BlockedSession& s : waiting) {
    longest = std::max(longest, s.wait_seconds);
    if (s.blocking_pids.empty()) continue;
    ++blocked;
    blockers_of[s.pid] = s.blocking_pids;
    blocking.insert(s.blocking_pids.begin(), s.blocking_pids.end());
  }
  size_t roots = 0;
  for (int pid : blocking) {
    if (blockers_of.count(pid) == 0) ++roots;
  }
  int max_depth = 0;
  std::map<int, int> memo;
  std::set<int> on_path;
  for (const auto& entry : blockers_of) {
    max_depth = std::max(max_depth, chainDepth(entry.first, blockers_of, memo, on_path));
  }

  out.gauge("dbpulse_pg_lock_waiting_sessions", "Sessions waiting on a heavyweight lock.", {},
            static_cast<double>(waiting.size()));
  out.gauge("dbpulse_pg_lock_blocked_sessions",
            "Sessions waiting on a lock held or awaited by another session (pg_blocking_pids).", {},
            static_cast<double>(blocked));
  out.gauge("dbpulse_pg_lock_blocking_sessions", "Distinct sessions that block another session.",
            {}, static_cast<double>(blocking.size()));
  out.gauge("dbpulse_pg_lock_root_blockers",
            "Blocking sessions that do not wait themselves: the heads of the blocking chains.", {},
            static_cast<double>(roots));
  out.gauge("dbpulse_pg_lock_chain_max_depth",
            "Longest waits-for chain (1: a session waits for one that runs; 0: no blocking).", {},
            max_depth);
  out.gauge("dbpulse_pg_lock_longest_wait_seconds",
            "Longest current wait for a lock, in seconds (0 when nobody waits).", {}, longest);

  std::stable_sort(
      waiting.begin(), waiting.end(), [](const BlockedSession& a, const BlockedSession& b) {
        return a.wait_seconds != b.wait_seconds ? a.wait_seconds > b.wait_seconds : a.pid < b.pid;
      });
  if (max_details >= 0 && waiting.size() > static_cast<size_t>(max_details)) {
    waiting.resize(static_cast<size_t>(max_details));
  }
  return okStatus();
}

LocksCollector::LocksCollector(SqlSession& session, int max_details)
    : session_(session.caller()),
      max_details_(max_details > 0 ? max_details : kDefaultBlockedDetails) {}

Status LocksCollector::collect(const CollectContext& /*ctx*/, SampleBatch& out) {
  auto version = serverVersionNum(*session_);
  if (!version.ok()) return pgutil::mapQueryError(kCollector, version.status(), kPrivilegeHint);
  auto rows = session_->query(locksQuery(*version));
  if (!rows.ok()) return pgutil::mapQueryError(kCollector, rows.status(), kPrivilegeHint);
  std::vector<BlockedSession> waiting;
  if (Status s = parseLockRows(*rows, max_details_, out, waiting); !s.ok()) return s;
  MutexLock lock(mu_);
  latest_ = std::move(waiting);
  return okStatus();
}

void LocksCollector::cancel() { session_->cancel(); }

std::vector<BlockedSession> LocksCollector::latestBlocked() const {
  MutexLock lock(mu_);
  return latest_;
}

std::any LocksCollector::details() const { return latestBlocked(); }

}  // namespace dbpulse::collectors
