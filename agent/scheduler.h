#pragma once
// Scheduler: runs each job (agent/job.h: a collector, or the advisor) on its own interval,
// with jitter, a timeout and no overlap with its own previous run, on a small fixed thread
// pool.
//
// What runs when is decided by a SchedulePlan (agent/schedule_plan.h: drift-free due
// times, splay, skips, timeouts, backoff, switching off, leader-only standby), driven by
// the injected Clock's monotonicNow(). This class is the thin loop around it: a
// dispatcher thread, a worker pool and a canceller thread.
// - The loop never calls out while holding its lock: cancel() runs on the canceller
//   thread (a cancel that blocks in spite of the Collector contract delays only later
//   cancels, never other jobs or status()), and samples and self-metrics are written to
//   the store and logged after the lock is released.
// - After every run the collector's samples and its self-metrics
//   (dbpulse_collector_duration_seconds, _success, _last_run_timestamp_seconds,
//   _errors_total, _runs_total, _timeouts_total, _backoff_seconds,
//   _skipped_runs_total, all labelled `collector`, and
//   dbpulse_collector_enabled{collector,reason}) go into the SampleStore.
// - A run past its timeout is reported as failed at once and cancel() is called on the
//   collector (PQcancel for PostgreSQL); whatever it returns later is discarded. Clients
//   carry their own timeouts too (statement_timeout, ...), since a thread cannot be killed.
// Thread-safe; add() and setLeaderGate() only before start().
// Lifetime: when stop() returns false a thread of the scheduler is still inside a
// collector; the owner must then keep the Scheduler (and whatever its collectors use)
// alive. The destructor waits for such threads rather than free memory under them.

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <thread>
#include <vector>

#include "agent/core/clock.h"
#include "agent/core/duration.h"
#include "agent/core/mutex.h"
#include "agent/core/sample_store.h"
#include "agent/job.h"
#include "agent/schedule_plan.h"
#include "collectors/collector.h"

namespace dbpulse {

class Scheduler {
 public:
  // `clock` drives both the schedule (monotonicNow) and the timestamps (wallNow).
  Scheduler(SampleStore& store, const Clock& clock, int threads);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  void add(std::unique_ptr<Job> job, JobOptions options);
  // A collector as a job (collectorJob()).
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

  // Wakes the dispatcher to read the clock again: for a clock moved by hand (tests).
  void clockChanged();
  // Waits up to `timeout` for drained().
  bool waitDrained(Duration timeout) const;
  // Observation hook for tests, set before start(): called with the collector's name,
  // outside the scheduler's locks, once a state the scheduler wrote to the store is
  // final for now: at the end of every run (samples and self-metrics written, the run
  // over) and after the dispatcher published a change (a timeout, skip or switch-off).
  void setPublishObserver(std::function<void(const std::string&)> observer);

  // Runs every collector once on the calling thread, in order (for `dbpulse once`).
  void runAllOnce();

  // True once no collector holds readiness (CollectorStatus::holdsReadiness()).
  bool firstCycleDone() const;
  std::vector<CollectorStatus> status() const;

 private:
  // A scheduled job; the plan knows it by its index in slots_.
  struct Slot {
    std::unique_ptr<Job> job;
    // Guarded by publish_mu_ (a comment: an annotation here cannot name the scheduler's
    // mutex): what the store holds, so an older write never lands last.
    uint64_t published_run = 0;
    std::string published_reason;
    bool published_once = false;
  };

  void dispatchLoop(std::stop_token stop);
  void workerLoop(std::stop_token stop);
  void cancelLoop(std::stop_token stop);
  void execute(const Dispatch& run, std::stop_token stop);
  // Writes the job's current self-metrics (and, when `run` is newer than the last written,
  // its samples) to the store. Never called with mu_ held.
  void publish(size_t job, uint64_t run = 0, const SampleBatch* samples = nullptr);
  void observe(size_t job) const;
  static void emit(const std::vector<PlanLog>& logs);
  void threadExitLocked() REQUIRES(mu_);
  bool drainedLocked() const REQUIRES(mu_);

  SampleStore& store_;
  const Clock& clock_;
  const int threads_;

  mutable Mutex mu_;
  SchedulePlan plan_ GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Slot>> slots_;     // fixed after start()
  std::condition_variable_any cv_;               // dispatcher: wake_, due times, stop
  bool wake_ GUARDED_BY(mu_) = false;            // re-run the plan before sleeping
  std::condition_variable_any work_cv_;          // workers: queue, stop
  mutable std::condition_variable_any idle_cv_;  // stop(): threads_alive_
  std::deque<Dispatch> queue_ GUARDED_BY(mu_);
  std::condition_variable_any cancel_cv_;  // canceller: cancel_queue_, stop
  std::deque<CancelRun> cancel_queue_ GUARDED_BY(mu_);
  int threads_alive_ GUARDED_BY(mu_) = 0;  // workers + canceller that have not left their loop
  bool started_ GUARDED_BY(mu_) = false;
  bool stopping_ GUARDED_BY(mu_) = false;
  std::function<bool()> leader_gate_ GUARDED_BY(mu_);  // null: every job runs
  std::function<void(const std::string&)> observer_;   // fixed after start()

  std::stop_source stop_source_;
  std::vector<std::jthread> workers_;
  std::jthread canceller_;
  std::jthread dispatcher_;
  Mutex publish_mu_;  // orders store writes; taken before mu_, never inside it
};

}  // namespace dbpulse
