#pragma once
// SchedulePlan: the scheduler's decisions, as a pure function of the time it is given.
// No threads, no clock reads, no calls into collectors or the store: the thread loop
// (agent/scheduler.h) asks it what to do at `now` and carries the answer out.
//
// - Due times are drift-free (next = previous due + interval), plus a random splay of up
//   to `jitter` x interval so agents started together spread out. The first run comes at
//   start, spread over at most 1 s (readiness waits for it). Missed ticks are not made up.
// - A run still going at its next due time is not started twice: the tick is skipped and
//   counted (skipped()).
// - A run past its deadline is recorded as failed (deadline_exceeded "timed out after
//   ...") and runDue() orders its cancellation; whatever it returns later is discarded
//   (onFinished() returns false).
// - kBackoffAfterTimeouts timeouts in a row hold the job back for a while that doubles
//   each time (twice the interval first), up to kMaxBackoff.
// - FailedPrecondition switches the job off: status().disabled_reason is the message's
//   leading "reason_code:" (else "precondition"); it is retried only after
//   max(kDisabledRetry, 10 x interval).
// - A leader_only job runs only while setLeader(true); otherwise its ticks pass without a
//   run and its status says standby. When it becomes leader it is due at once.
// - A run that fails with Unavailable (its server unreachable) is retried after at most
//   kUnreachableRetry, not one interval later: an hourly job that met a short outage
//   catches up soon after the server is back instead of reporting failure for the hour.
// - A job's `probe` is the job that reports its server's up gauge (connections for pg_up).
//   A run that finds the server unreachable while the probe's last run reached it, or that
//   succeeds while the probe's last run found it unreachable, makes the probe due at once:
//   "server down" is published with the failure, not up to one probe interval after it (so
//   rules that set aside failures of a server that is down see both), and "up" comes back
//   with the first run that reaches the server.
// Not thread-safe: the owner serialises every call (Scheduler holds its mutex).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "agent/core/clock.h"
#include "agent/core/duration.h"
#include "agent/core/status.h"

namespace dbpulse {

inline constexpr int kBackoffAfterTimeouts = 3;
inline constexpr Duration kMaxBackoff{10 * 60'000};
inline constexpr Duration kDisabledRetry{5 * 60'000};
inline constexpr Duration kUnreachableRetry{30'000};

struct JobOptions {
  Duration interval{15'000};
  Duration timeout{5000};
  double jitter = 0.1;       // fraction of the interval
  bool leader_only = false;  // database-wide: runs only on the elected leader
  bool background = false;   // slow, hourly work (the advisor): readiness does not wait for it
  std::string probe;         // job reporting this job's server up or down; "" for none
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

  // The one readiness predicate: the agent is not ready while any job holds readiness,
  // i.e. has not finished (or timed out in) a first run, unless it is on standby or
  // background work. A switched-off job has run (it failed its precondition).
  bool holdsReadiness() const { return !has_run && !standby && !background; }
};

// A log line decided by the plan, emitted by its owner outside any lock.
struct PlanLog {
  enum class Level { kInfo, kWarn, kError };
  Level level = Level::kInfo;
  std::string text;
};

// Start run `run` of job `job` now; it is late at `deadline`.
struct Dispatch {
  size_t job = 0;
  uint64_t run = 0;
  MonotonicTime deadline{};
};

// Call cancel() on job `job` if run `run` is still going.
struct CancelRun {
  size_t job = 0;
  uint64_t run = 0;
};

struct PlanStep {
  std::vector<Dispatch> dispatch;
  std::vector<CancelRun> cancel;
  std::vector<size_t> changed;  // jobs whose self-metrics changed (timeout, skip)
  std::vector<PlanLog> logs;
};

class SchedulePlan {
 public:
  explicit SchedulePlan(uint32_t seed = std::random_device{}());

  // Returns the job's index. Only before start().
  size_t add(std::string name, JobOptions options);
  size_t size() const { return jobs_.size(); }
  const JobOptions& options(size_t job) const { return jobs_[job].options; }

  // Every job becomes due within min(splay, 1 s) of `now`.
  void start(MonotonicTime now);
  bool started() const { return started_; }
  // Whether this agent leads database-wide work; read by the next runDue().
  void setLeader(bool leader) { leader_ = leader; }

  // What to do at `now`: runs to start, runs to cancel (timed out), self-metrics that
  // changed, log lines. `wall` stamps a timeout's last_run. Nothing before start().
  PlanStep runDue(MonotonicTime now, WallTime wall);
  // When runDue() has something to do next: the earliest due time or deadline of a
  // running job; MonotonicTime::max() when nothing is planned.
  MonotonicTime nextWakeup() const;

  // Starts a run of `job` now, outside the schedule (`dbpulse once`).
  Dispatch begin(size_t job, MonotonicTime now);
  // Run `run` returned `status` after `took`. False when the result is to be discarded
  // (the run had timed out); otherwise it is recorded in status().
  bool onFinished(size_t job, uint64_t run, const Status& status, Duration took, MonotonicTime now,
                  WallTime wall, std::vector<PlanLog>& logs);
  // Run `run` is over (its result published): the job may run again.
  void onReturned(size_t job, uint64_t run);

  // Every run still going, to cancel at stop.
  std::vector<CancelRun> runningRuns() const;
  bool isRunning(size_t job, uint64_t run) const;

  CollectorStatus status(size_t job) const;  // `running` filled in
  uint64_t skipped(size_t job) const { return jobs_[job].skipped; }
  uint64_t timeouts(size_t job) const { return jobs_[job].timeouts; }
  // True once no job holds readiness (CollectorStatus::holdsReadiness()).
  bool firstCycleDone() const;

 private:
  struct Job {
    JobOptions options;
    MonotonicTime base_due{};  // drift-free schedule
    MonotonicTime due{};       // base_due + splay
    bool running = false;
    uint64_t run_id = 0;
    MonotonicTime deadline{};
    bool timed_out = false;
    bool finishing = false;  // the run's result is recorded; it is being published
    uint64_t skipped = 0;
    uint64_t timeouts = 0;
    int consecutive_timeouts = 0;
    bool unreachable = false;     // the last recorded run failed with Unavailable
    std::optional<size_t> probe;  // options.probe's index (start()); none if absent or itself
    MonotonicTime hold_until{};   // no runs before this (backoff, disabled)
    CollectorStatus status;
  };

  Duration splay(const Job& job);
  bool awaitsDeadline(const Job& job) const {
    return job.running && !job.timed_out && !job.finishing;
  }
  void record(Job& job, const Status& status, Duration took, MonotonicTime now, WallTime wall,
              std::vector<PlanLog>& logs);
  void runProbe(const Job& job, bool unreachable, MonotonicTime now);

  std::vector<Job> jobs_;
  std::mt19937 rng_;
  bool started_ = false;
  bool leader_ = true;
};

}  // namespace dbpulse
