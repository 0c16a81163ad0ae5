#include "agent/scheduler.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace dbpulse {
namespace {

double seconds(Duration d) { return static_cast<double>(d.count()) / 1000.0; }

}  // namespace

Scheduler::Scheduler(SampleStore& store, const Clock& clock, int threads)
    : store_(store), clock_(clock), threads_(std::max(1, threads)) {}

Scheduler::~Scheduler() { stop(Duration(10'000)); }

void Scheduler::add(std::unique_ptr<collectors::Collector> collector, JobOptions options) {
  std::lock_guard lock(mu_);
  auto job = std::make_unique<Job>();
  job->status.name = collector->name();
  job->collector = std::move(collector);
  job->options = options;
  job->status.background = options.background;
  jobs_.push_back(std::move(job));
}

Duration Scheduler::jitterFor(const Job& job) {
  const auto max_ms =
      static_cast<int64_t>(static_cast<double>(job.options.interval.count()) * job.options.jitter);
  if (max_ms <= 0) return Duration(0);
  return Duration(std::uniform_int_distribution<int64_t>(0, max_ms)(rng_));
}

void Scheduler::start() {
  std::lock_guard lock(mu_);
  if (started_) return;
  started_ = true;
  const auto now = std::chrono::steady_clock::now();
  for (auto& job : jobs_) {
    // The first run comes soon (readiness waits for it), spread over at most 1 s.
    job->base_due = now;
    job->due = now + std::min(jitterFor(*job), Duration(1000));
  }
  for (int i = 0; i < threads_; ++i) {
    workers_.emplace_back([this](std::stop_token st) { workerLoop(st); });
  }
  dispatcher_ = std::jthread([this](std::stop_token st) { dispatchLoop(st); });
}

void Scheduler::setLeaderGate(std::function<bool()> is_leader) {
  std::lock_guard lock(mu_);
  leader_gate_ = std::move(is_leader);
}

void Scheduler::leadershipChanged() { cv_.notify_all(); }

void Scheduler::dispatchLoop(std::stop_token stop) {
  std::unique_lock lock(mu_);
  while (!stop.stop_requested()) {
    const auto now = std::chrono::steady_clock::now();
    auto next_wake = now + std::chrono::hours(1);
    const bool leader = !leader_gate_ || leader_gate_();
    for (auto& job_ptr : jobs_) {
      Job& job = *job_ptr;
      if (job.options.leader_only) {
        const bool standby = !leader;
        if (job.status.standby && !standby) {
          // Just became the leader: take over now rather than one interval later.
          job.base_due = now;
          job.due = now;
        }
        job.status.standby = standby;
      }
      if (job.running && !job.timed_out && now >= job.deadline) {
        job.timed_out = true;
        ++job.timeouts;
        job.collector->cancel();
        recordLocked(job,
                     deadlineExceeded("timed out after " + formatDuration(job.options.timeout)),
                     job.options.timeout);
      }
      if (now >= job.due) {
        if (now < job.hold_until || job.status.standby) {
          // Backed off or switched off: the tick passes without a run (and is not a skip).
        } else if (job.running) {
          ++job.skipped;
          spdlog::warn("collector {}: previous run still going, skipping this run",
                       job.status.name);
          writeSelfMetrics(job);  // the skip must be visible while the run is stuck
        } else {
          job.running = true;
          job.timed_out = false;
          job.deadline = now + job.options.timeout;
          queue_.emplace_back(&job, ++job.run_id);
          ++running_;
          work_cv_.notify_one();
        }
        // Advance the drift-free base past now; missed ticks are not made up.
        do {
          job.base_due += job.options.interval;
        } while (job.base_due <= now);
        job.due = job.base_due + jitterFor(job);
      }
      next_wake = std::min(next_wake, job.due);
      if (job.running && !job.timed_out) next_wake = std::min(next_wake, job.deadline);
    }
    cv_.wait_until(lock, stop, next_wake, [] { return false; });
  }
}

void Scheduler::workerLoop(std::stop_token stop) {
  std::unique_lock lock(mu_);
  while (true) {
    work_cv_.wait(lock, stop, [this] { return !queue_.empty(); });
    if (stop.stop_requested()) break;
    auto [job, run_id] = queue_.front();
    queue_.pop_front();
    const SteadyTime deadline = job->deadline;
    lock.unlock();
    execute(*job, run_id, deadline, stop);
    lock.lock();
  }
  // Work queued but never started counts as finished for stop().
  while (!queue_.empty()) {
    queue_.front().first->running = false;
    queue_.pop_front();
    --running_;
  }
  idle_cv_.notify_all();
}

void Scheduler::execute(Job& job, uint64_t run_id, SteadyTime deadline, std::stop_token stop) {
  SampleBatch batch;
  collectors::CollectContext ctx{clock_.now(), deadline, stop};
  const auto t0 = std::chrono::steady_clock::now();
  Status status;
  try {
    status = job.collector->collect(ctx, batch);
  } catch (const std::exception& e) {
    // Collectors catch their libraries' exceptions; one escaping is a bug, but it must
    // not take the agent down with it.
    status = internalError(std::string("unexpected exception: ") + e.what());
  } catch (...) {
    status = internalError("unexpected non-standard exception");
  }
  const auto took = std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - t0);

  std::lock_guard lock(mu_);
  job.running = false;
  --running_;
  if (!(job.timed_out && job.run_id == run_id)) {
    const auto staleness = 2 * job.options.interval + job.options.timeout;
    store_.write(job.status.name, batch, staleness);
    recordLocked(job, status, took);
  }
  idle_cv_.notify_all();
  cv_.notify_all();
}

void Scheduler::recordLocked(Job& job, const Status& status, Duration took) {
  CollectorStatus& s = job.status;
  const bool was_ok = !s.has_run || s.last_success;
  const std::string previous_error = s.last_error;
  const auto now = std::chrono::steady_clock::now();

  // Timeouts in a row back the collector off; anything else ends the streak.
  if (status.code() == StatusCode::kDeadlineExceeded && job.timed_out) {
    if (++job.consecutive_timeouts >= kBackoffAfterTimeouts) {
      const int doublings = std::min(job.consecutive_timeouts - kBackoffAfterTimeouts, 10);
      s.backoff = std::min(kMaxBackoff, job.options.interval * (int64_t{2} << doublings));
      job.hold_until = now + s.backoff;
      spdlog::warn("collector {}: timed out {} runs in a row; backing off for {}", s.name,
                   job.consecutive_timeouts, formatDuration(s.backoff));
    }
  } else {
    job.consecutive_timeouts = 0;
    s.backoff = Duration(0);
  }

  // FailedPrecondition switches the collector off until a rare retry.
  const std::string old_reason = s.disabled_reason;
  if (status.code() == StatusCode::kFailedPrecondition) {
    const std::string& m = status.message();
    const auto colon = m.find(':');
    const bool coded = colon != std::string::npos && colon > 0 && colon <= 40 &&
                       std::all_of(m.begin(), m.begin() + static_cast<std::ptrdiff_t>(colon),
                                   [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
    s.disabled_reason = coded ? m.substr(0, colon) : "precondition";
    job.hold_until = now + std::max(kDisabledRetry, 10 * job.options.interval);
  } else if (status.ok()) {
    s.disabled_reason.clear();
  }
  // The reason is a label: when it changes, drop the old series so only the current state
  // remains. Written after every run (not only on change) so its history stays as dense as
  // the other self-metrics' for rules that look back over it.
  if (old_reason != s.disabled_reason) store_.dropSource("enabled:" + s.name);
  SampleBatch enabled;
  enabled.gauge("dbpulse_collector_enabled",
                "0 while the collector is switched off by a missing prerequisite (see reason).",
                Labels{{"collector", s.name}, {"reason", s.disabled_reason}},
                s.disabled_reason.empty() ? 1 : 0);
  store_.write("enabled:" + s.name, enabled, std::chrono::hours(24 * 365));
  ++s.runs;
  s.has_run = true;
  s.last_run = clock_.now();
  s.last_duration = took;
  s.last_success = status.ok();
  if (status.ok()) {
    if (!was_ok) spdlog::info("collector {}: recovered", s.name);
    s.last_error.clear();
  } else {
    ++s.errors;
    s.last_error = status.toString();
    // One line per change of state, not one per failing run.
    if (was_ok || previous_error != s.last_error) {
      spdlog::error("collector {}: {}", s.name, s.last_error);
    }
  }
  writeSelfMetrics(job);
}

void Scheduler::writeSelfMetrics(const Job& job) {
  const CollectorStatus& s = job.status;
  const Labels labels{{"collector", s.name}};
  SampleBatch b;
  b.gauge("dbpulse_collector_duration_seconds", "Duration of the collector's last run.", labels,
          seconds(s.last_duration));
  b.gauge("dbpulse_collector_success", "1 when the collector's last run succeeded.", labels,
          s.last_success ? 1 : 0);
  b.gauge("dbpulse_collector_last_run_timestamp_seconds",
          "Unix time at which the collector's last run ended.", labels,
          static_cast<double>(toMillis(s.last_run)) / 1000.0);
  b.counter("dbpulse_collector_errors_total", "Failed runs of the collector (timeouts included).",
            labels, static_cast<double>(s.errors));
  b.counter("dbpulse_collector_runs_total", "Finished runs of the collector.", labels,
            static_cast<double>(s.runs));
  b.counter("dbpulse_collector_timeouts_total", "Runs of the collector that hit its timeout.",
            labels, static_cast<double>(job.timeouts));
  b.gauge("dbpulse_collector_backoff_seconds",
          "How long the collector is backed off after repeated timeouts (0 when not).", labels,
          seconds(s.backoff));
  b.counter("dbpulse_collector_skipped_runs_total",
            "Scheduled runs skipped because the previous run was still going.", labels,
            static_cast<double>(job.skipped));
  // Self-metrics live as long as the collector is scheduled; a reload that removes a
  // collector drops them explicitly.
  store_.write("scheduler:" + s.name, b, std::chrono::hours(24 * 365));
}

bool Scheduler::stop(Duration grace) {
  {
    std::lock_guard lock(mu_);
    if (!started_ || stopping_) return true;
    stopping_ = true;
    for (auto& job : jobs_) {
      if (job->running) job->collector->cancel();
    }
  }
  dispatcher_.request_stop();
  for (auto& w : workers_) w.request_stop();
  bool finished;
  {
    std::unique_lock lock(mu_);
    finished = idle_cv_.wait_for(lock, grace, [this] { return running_ == 0; });
  }
  if (dispatcher_.joinable()) dispatcher_.join();
  if (finished) {
    for (auto& w : workers_) w.join();
  } else {
    // A collector ignored cancel(); its thread cannot be killed. Leave it behind so the
    // process can still exit on time (main exits without running destructors then).
    spdlog::error("scheduler: a collector did not stop within {}", formatDuration(grace));
    for (auto& w : workers_) w.detach();
  }
  workers_.clear();
  return finished;
}

void Scheduler::runAllOnce() {
  for (auto& job_ptr : jobs_) {
    Job& job = *job_ptr;
    {
      std::lock_guard lock(mu_);
      job.running = true;
      ++running_;
      job.deadline = std::chrono::steady_clock::now() + job.options.timeout;
    }
    execute(job, ++job.run_id, job.deadline, stop_source_.get_token());
  }
}

bool Scheduler::firstCycleDone() const {
  std::lock_guard lock(mu_);
  return std::all_of(jobs_.begin(), jobs_.end(), [](const auto& j) {
    return j->status.has_run || j->status.standby || j->status.background;
  });
}

std::vector<CollectorStatus> Scheduler::status() const {
  std::lock_guard lock(mu_);
  std::vector<CollectorStatus> out;
  for (const auto& j : jobs_) {
    out.push_back(j->status);
    out.back().running = j->running;
  }
  return out;
}

}  // namespace dbpulse
