#pragma once
// Scheduler: runs each collector on its own interval, with jitter, a timeout and
// no overlap with its own previous run, on a small fixed thread pool.
//
// - Due times are drift-free (next = previous due + interval), plus a random
//   splay of up to `jitter` x interval so agents started together spread out.
// - A run still going at its next due time is not started twice: the tick is
//   skipped and counted (dbpulse_collector_skipped_runs_total).
// - A run past its timeout is reported as failed at once and cancel() is called
//   on the collector (PQcancel for PostgreSQL); whatever it returns later is
//   discarded. Clients carry their own timeouts too (statement_timeout, ...),
//   since a thread cannot be killed.
// - The scheduler never calls out while holding its lock: cancel() runs on a
//   canceller thread of its own (a cancel that blocks in spite of the Collector
//   contract delays only later cancels, never other jobs or status()), and samples
//   and self-metrics are written to the store and logged after the lock is released.
// - After every run the collector's samples and its self-metrics
//   (dbpulse_collector_duration_seconds, _success, _last_run_timestamp_seconds,
//   _errors_total, all labelled `collector`) go into the SampleStore.
// - A collector that times out kBackoffAfterTimeouts runs in a row is backed off
//   (not run) for a while that doubles each time, up to 10 minutes, and says so in
//   the log and in dbpulse_collector_backoff_seconds.
// - A collector that returns FailedPrecondition (missing extension or privilege)
//   is switched off: dbpulse_collector_enabled{collector,reason} turns 0 with the
//   reason (the message's leading "reason_code:"), the problem is logged once, and
//   it is retried only every kDisabledRetry (the operator may fix it meanwhile).
// - A job marked leader_only (a database-wide collector) runs only while the leader
//   gate says this agent is the elected leader; otherwise its ticks pass without a run
//   and its status says `standby`. When the gate opens (leadershipChanged()), such a job
//   runs at once instead of waiting for its next due time.
// Thread-safe; add() and setLeaderGate() only before start().
// Lifetime: when stop() returns false a thread of the scheduler is still inside a
// collector; the owner must then keep the Scheduler (and whatever its collectors use)
// alive. The destructor waits for such threads rather than free memory under them.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "agent/core/clock.h"
#include "agent/core/duration.h"
#include "agent/core/sample_store.h"
#include "collectors/collector.h"

namespace dbpulse {

inline constexpr int kBackoffAfterTimeouts = 3;
inline constexpr Duration kMaxBackoff{10 * 60'000};
inline constexpr Duration kDisabledRetry{5 * 60'000};

struct JobOptions {
  Duration interval{15'000};
  Duration timeout{5000};
  double jitter = 0.1;       // fraction of the interval
  bool leader_only = false;  // database-wide: runs only on the elected leader
  bool background = false;   // slow, hourly work (the advisor): readiness does not wait for it
};

struct CollectorStatus {
  std::string name;
  uint64_t runs = 0;
  uint64_t errors = 0;
  bool has_run = false;
  bool last_success = false;
  std::string last_error;  // empty after a success
  WallTime last_run{};
  Duration last_duration{0};
  bool running = false;
  std::string disabled_reason;  // non-empty while switched off (FailedPrecondition)
  Duration backoff{0};          // current timeout backoff, 0 when none
  bool standby = false;         // leader_only and this agent is not the leader
  bool background = false;      // JobOptions::background
};

class Scheduler {
 public:
  Scheduler(SampleStore& store, const Clock& clock, int threads);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  void add(std::unique_ptr<collectors::Collector> collector, JobOptions options);
  void start();
  // Stops scheduling, cancels running collectors and waits up to `grace` for them.
  // Returns false when a collector did not return (or its cancel() did not) in time: its
  // thread is left behind, still using the collector. Later calls return the same answer
  // updated: true once every thread has left.
  bool stop(Duration grace);
  // True once start() was never called, or stop() was and every thread has left.
  bool drained() const;

  // Whether this agent leads database-wide work now; called by the dispatcher (under its
  // lock: keep it cheap, e.g. an atomic load). Without a gate every job runs.
  void setLeaderGate(std::function<bool()> is_leader);
  // The gate's answer may have changed: re-examine leader_only jobs now.
  void leadershipChanged();

  // Runs every collector once on the calling thread, in order (for `dbpulse once`).
  void runAllOnce();

  // True once every collector has finished (or timed out) at least one run; a standby
  // job (leader_only on a follower) does not hold it back.
  bool firstCycleDone() const;
  std::vector<CollectorStatus> status() const;

 private:
  using SteadyTime = std::chrono::steady_clock::time_point;
  struct Job {
    std::unique_ptr<collectors::Collector> collector;
    JobOptions options;
    SteadyTime base_due{};  // drift-free schedule
    SteadyTime due{};       // base_due + jitter
    bool running = false;
    uint64_t run_id = 0;
    SteadyTime deadline{};
    bool timed_out = false;
    bool finishing = false;  // the run's result is recorded; it is being published
    uint64_t skipped = 0;
    uint64_t timeouts = 0;
    int consecutive_timeouts = 0;
    SteadyTime hold_until{};  // no runs before this (backoff, disabled)
    CollectorStatus status;
    // GUARDED_BY(publish_mu_): what the store holds, so an older write never lands last.
    uint64_t published_run = 0;
    std::string published_reason;
    bool published_once = false;
  };

  // Log lines made under mu_, emitted after it is released.
  struct LogLine {
    bool error = false;  // else warn/info by `warn`
    bool warn = false;
    std::string text;
  };
  using Logs = std::vector<LogLine>;

  void dispatchLoop(std::stop_token stop);
  void workerLoop(std::stop_token stop);
  void cancelLoop(std::stop_token stop);
  void execute(Job& job, uint64_t run_id, SteadyTime deadline, std::stop_token stop);
  // Records a finished (or timed-out) run in the job's status. Caller holds mu_; the
  // store is written later by publish().
  void recordLocked(Job& job, const Status& status, Duration took, Logs& logs);
  // Writes the job's current self-metrics (and, when run_id is newer than the last
  // written, the run's samples) to the store. Never called with mu_ held.
  void publish(Job& job, uint64_t run_id = 0, const SampleBatch* samples = nullptr);
  static void emit(const Logs& logs);
  void threadExitLocked();
  Duration jitterFor(const Job& job);

  SampleStore& store_;
  const Clock& clock_;
  const int threads_;

  mutable std::mutex mu_;
  std::condition_variable_any cv_;       // dispatcher: due times, stop
  std::condition_variable_any work_cv_;  // workers: queue, stop
  std::condition_variable_any idle_cv_;  // stop(): running count
  std::vector<std::unique_ptr<Job>> jobs_;
  std::deque<std::pair<Job*, uint64_t>> queue_;
  std::condition_variable_any cancel_cv_;               // canceller: cancel_queue_, stop
  std::deque<std::pair<Job*, uint64_t>> cancel_queue_;  // (job, run to cancel)
  bool cancelling_ = false;                             // the canceller is inside cancel()
  int threads_alive_ = 0;  // workers + canceller that have not left their loop
  int running_ = 0;
  bool started_ = false;
  bool stopping_ = false;
  std::mt19937 rng_{std::random_device{}()};
  std::function<bool()> leader_gate_;  // null: every job runs

  std::stop_source stop_source_;
  std::vector<std::jthread> workers_;
  std::jthread canceller_;
  std::jthread dispatcher_;
  std::mutex publish_mu_;  // orders store writes; taken before mu_, never inside it
};

}  // namespace dbpulse
