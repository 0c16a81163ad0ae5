#include "agent/leader_election.h"

#include <spdlog/spdlog.h>

namespace dbpulse {
namespace {

// Holding the lock already (a bigint key k is classid = k >> 32, objid = k & 0xffffffff,
// objsubid = 1 in pg_locks), or taking it now. CASE evaluates pg_try_advisory_lock only
// when the lock is not held, so the session never stacks a second hold. $1 is the key.
constexpr const char* kRoundSql =
    "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_locks l JOIN pg_database d ON "
    "d.oid = l.database WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() "
    "AND l.granted AND l.classid = ($1::bigint >> 32)::oid "
    "AND l.objid = ($1::bigint & 4294967295)::oid "
    "AND l.objsubid = 1 AND d.datname = current_database()) THEN true "
    "ELSE pg_try_advisory_lock($1::bigint) END AS leader";

}  // namespace

LeaderElector::LeaderElector(LeaderElectorOptions options, SampleStore& store,
                             std::function<void(bool, bool)> on_round)
    : options_(std::move(options)),
      store_(store),
      on_round_(std::move(on_round)),
      session_(options_.shared_session ? options_.shared_session
                                       : std::make_shared<collectors::PgSession>(options_.session)),
      caller_(session_->caller()) {}

LeaderElector::~LeaderElector() { stop(); }

void LeaderElector::start() {
  round();
  if (!leader_.load() && last_error_.empty()) {
    spdlog::info("leader election: another agent holds the leader lock; this one follows");
  }
  thread_ = std::jthread([this](std::stop_token st) { run(st); });
}

void LeaderElector::stop() {
  if (thread_.joinable()) {
    thread_.request_stop();
    cv_.notify_all();
    caller_->cancel();  // a round waiting on a hung server ends now (never blocks)
    thread_.join();
  }
  session_->disconnect();
  if (leader_.exchange(false)) {
    spdlog::info("leader election: stepping down (stopping)");
    ++changes_;
    publish();
    if (on_round_) on_round_(false, true);
  }
}

void LeaderElector::run(std::stop_token stop) {
  MutexLock lock(mu_);
  while (!stop.stop_requested()) {
    cv_.wait_for(lock, stop, options_.period, [] { return false; });
    if (stop.stop_requested()) break;
    lock.unlock();
    round();
    lock.lock();
  }
}

void LeaderElector::round() {
  bool leader = false;
  auto rows = caller_->queryParams(kRoundSql, {std::to_string(kLeaderLockKey)});
  if (!rows.ok()) {
    if (rows.status().message() != last_error_) {
      last_error_ = rows.status().message();
      spdlog::warn("leader election: cannot confirm leadership ({}); acting as a follower",
                   last_error_);
    }
  } else {
    last_error_.clear();
    leader = rows->rows.size() == 1 && !rows->rows[0].empty() && rows->rows[0][0] == "t";
  }
  const bool was = leader_.exchange(leader);
  if (was != leader) {
    ++changes_;
    if (leader) {
      spdlog::info("leader election: this agent now runs the database-wide collectors ({})",
                   session_->redactedDsn());
    } else if (last_error_.empty()) {
      spdlog::warn("leader election: another agent holds the leader lock; this one follows");
    }
  }
  publish();
  if (on_round_) on_round_(leader, was != leader);
}

void LeaderElector::publish() {
  SampleBatch b;
  b.gauge("dbpulse_leader",
          "1 while this agent is the elected leader that runs the database-wide collectors", {},
          leader_.load() ? 1 : 0);
  b.counter("dbpulse_leader_changes_total", "Times this agent gained or lost leadership", {},
            static_cast<double>(changes_));
  store_.write("leader", b, std::chrono::hours(24 * 365));
}

}  // namespace dbpulse
