#include "agent/schedule_plan.h"

#include <algorithm>
#include <utility>

namespace dbpulse {

SchedulePlan::SchedulePlan(uint32_t seed) : rng_(seed) {}

size_t SchedulePlan::add(std::string name, JobOptions options) {
  Job job;
  job.options = std::move(options);
  job.status.name = std::move(name);
  job.status.background = job.options.background;
  jobs_.push_back(std::move(job));
  return jobs_.size() - 1;
}

Duration SchedulePlan::splay(const Job& job) {
  const auto max_ms =
      static_cast<int64_t>(static_cast<double>(job.options.interval.count()) * job.options.jitter);
  if (max_ms <= 0) return Duration(0);
  return Duration(std::uniform_int_distribution<int64_t>(0, max_ms)(rng_));
}

void SchedulePlan::start(MonotonicTime now) {
  if (started_) return;
  started_ = true;
  for (Job& job : jobs_) {
    job.base_due = now;
    job.due = now + std::min(splay(job), Duration(1000));
    // The probe by index, once: every job is added by now.
    const auto probe = std::find_if(jobs_.begin(), jobs_.end(), [&](const Job& j) {
      return j.status.name == job.options.probe;
    });
    if (probe != jobs_.end() && &*probe != &job) job.probe = probe - jobs_.begin();
  }
}

PlanStep SchedulePlan::runDue(MonotonicTime now, WallTime wall) {
  PlanStep step;
  if (!started_) return step;
  for (size_t i = 0; i < jobs_.size(); ++i) {
    Job& job = jobs_[i];
    if (job.options.leader_only) {
      const bool standby = !leader_;
      if (job.status.standby && !standby) {
        // Just became the leader: take over now rather than one interval later.
        job.base_due = now;
        job.due = now;
      }
      job.status.standby = standby;
    }
    if (awaitsDeadline(job) && now >= job.deadline) {
      job.timed_out = true;
      ++job.timeouts;
      step.cancel.push_back({i, job.run_id});
      record(job, deadlineExceeded("timed out after " + formatDuration(job.options.timeout)),
             job.options.timeout, now, wall, step.logs);
      step.changed.push_back(i);
    }
    if (now < job.due) continue;
    if (now < job.hold_until || job.status.standby) {
      // Backed off or switched off: the tick passes without a run (and is not a skip).
    } else if (job.running) {
      ++job.skipped;
      step.logs.push_back(
          {PlanLog::Level::kWarn,
           "collector " + job.status.name + ": previous run still going, skipping this run"});
      step.changed.push_back(i);  // the skip must be visible while the run is stuck
    } else {
      step.dispatch.push_back(begin(i, now));
    }
    // Advance the drift-free base past now; missed ticks are not made up. A run brought
    // forward (retry, probe) leaves a base still ahead of now as it is.
    while (job.base_due <= now) job.base_due += job.options.interval;
    job.due = job.base_due + splay(job);
  }
  return step;
}

MonotonicTime SchedulePlan::nextWakeup() const {
  MonotonicTime next = MonotonicTime::max();
  if (!started_) return next;
  for (const Job& job : jobs_) {
    next = std::min(next, job.due);
    if (awaitsDeadline(job)) next = std::min(next, job.deadline);
  }
  return next;
}

Dispatch SchedulePlan::begin(size_t i, MonotonicTime now) {
  Job& job = jobs_[i];
  job.running = true;
  job.timed_out = false;
  job.finishing = false;
  job.deadline = now + job.options.timeout;
  return {i, ++job.run_id, job.deadline};
}

bool SchedulePlan::onFinished(size_t i, uint64_t run, const Status& status, Duration took,
                              MonotonicTime now, WallTime wall, std::vector<PlanLog>& logs) {
  Job& job = jobs_[i];
  if (job.timed_out && job.run_id == run) return false;  // recorded as a timeout already
  job.finishing = true;                                  // no timeout for a run whose result is in
  record(job, status, took, now, wall, logs);
  if (status.code() == StatusCode::kUnavailable) {
    job.due = std::min(job.due, now + std::min(job.options.interval, kUnreachableRetry));
  }
  // A run that reached its server (or found it unreachable) while the probe says otherwise.
  if (status.ok() || status.code() == StatusCode::kUnavailable) runProbe(job, !status.ok(), now);
  return true;
}

void SchedulePlan::runProbe(const Job& job, bool unreachable, MonotonicTime now) {
  if (!job.probe) return;
  Job& probe = jobs_[*job.probe];
  const bool idle = !probe.running && !probe.status.standby && now >= probe.hold_until;
  if (idle && probe.status.has_run && probe.unreachable != unreachable) {
    probe.due = std::min(probe.due, now);
  }
}

void SchedulePlan::onReturned(size_t i, uint64_t run) {
  Job& job = jobs_[i];
  if (job.run_id == run) job.running = false;
}

std::vector<CancelRun> SchedulePlan::runningRuns() const {
  std::vector<CancelRun> out;
  for (size_t i = 0; i < jobs_.size(); ++i) {
    if (jobs_[i].running) out.push_back({i, jobs_[i].run_id});
  }
  return out;
}

bool SchedulePlan::isRunning(size_t i, uint64_t run) const {
  return jobs_[i].running && jobs_[i].run_id == run;
}

CollectorStatus SchedulePlan::status(size_t i) const {
  CollectorStatus s = jobs_[i].status;
  s.running = jobs_[i].running;
  return s;
}

bool SchedulePlan::firstCycleDone() const {
  return std::none_of(jobs_.begin(), jobs_.end(),
                      [](const Job& j) { return j.status.holdsReadiness(); });
}

void SchedulePlan::record(Job& job, const Status& status, Duration took, MonotonicTime now,
                          WallTime wall, std::vector<PlanLog>& logs) {
  CollectorStatus& s = job.status;
  const bool was_ok = !s.has_run || s.last_success;
  const std::string previous_error = s.last_error;

  // Timeouts in a row back the job off; anything else ends the streak.
  if (status.code() == StatusCode::kDeadlineExceeded && job.timed_out) {
    if (++job.consecutive_timeouts >= kBackoffAfterTimeouts) {
      const int doublings = std::min(job.consecutive_timeouts - kBackoffAfterTimeouts, 10);
      s.backoff = std::min(kMaxBackoff, job.options.interval * (int64_t{2} << doublings));
      job.hold_until = now + s.backoff;
      logs.push_back({PlanLog::Level::kWarn, "collector " + s.name + ": timed out " +
                                                 std::to_string(job.consecutive_timeouts) +
                                                 " runs in a row; backing off for " +
                                                 formatDuration(s.backoff)});
    }
  } else {
    job.consecutive_timeouts = 0;
    s.backoff = Duration(0);
  }
  job.unreachable = status.code() == StatusCode::kUnavailable;

  // FailedPrecondition switches the job off until a rare retry.
  if (status.code() == StatusCode::kFailedPrecondition) {
    s.disabled_reason = status.reason().empty() ? "precondition" : status.reason();
    job.hold_until = now + std::max(kDisabledRetry, 10 * job.options.interval);
  } else if (status.ok()) {
    s.disabled_reason.clear();
  }
  ++s.runs;
  s.has_run = true;
  s.last_run = wall;
  s.last_duration = took;
  s.last_success = status.ok();
  if (status.ok()) {
    if (!was_ok) logs.push_back({PlanLog::Level::kInfo, "collector " + s.name + ": recovered"});
    s.last_error.clear();
  } else {
    ++s.errors;
    s.last_error = status.toString();
    // One line per change of state, not one per failing run.
    if (was_ok || previous_error != s.last_error) {
      logs.push_back({PlanLog::Level::kError, "collector " + s.name + ": " + s.last_error});
    }
  }
}

}  // namespace dbpulse
