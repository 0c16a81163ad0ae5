#include "agent/scheduler.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace dbpulse {
namespace {

double seconds(Duration d) { return static_cast<double>(d.count()) / 1000.0; }

}  // namespace

Scheduler::Scheduler(SampleStore& store, const Clock& clock, int threads)
    : store_(store), clock_(clock), threads_(std::max(1, threads)) {}

Scheduler::~Scheduler() {
  if (stop(Duration(10'000))) return;
  // A thread is still inside a collector (or its cancel()): freeing the jobs now would pull
  // them from under it. Owners keep a scheduler that did not stop alive; this wait only
  // guards one that did not.
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [this] { return threads_alive_ == 0; });
}

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
  threads_alive_ = threads_ + 1;
  for (int i = 0; i < threads_; ++i) {
    workers_.emplace_back([this](std::stop_token st) { workerLoop(st); });
  }
  canceller_ = std::jthread([this](std::stop_token st) { cancelLoop(st); });
  dispatcher_ = std::jthread([this](std::stop_token st) { dispatchLoop(st); });
}

void Scheduler::setLeaderGate(std::function<bool()> is_leader) {
  std::lock_guard lock(mu_);
  leader_gate_ = std::move(is_leader);
}

void Scheduler::leadershipChanged() { cv_.notify_all(); }

void Scheduler::emit(const Logs& logs) {
  for (const LogLine& l : logs) {
    if (l.error) {
      spdlog::error("{}", l.text);
    } else if (l.warn) {
      spdlog::warn("{}", l.text);
    } else {
      spdlog::info("{}", l.text);
    }
  }
}

void Scheduler::dispatchLoop(std::stop_token stop) {
  std::unique_lock lock(mu_);
  while (!stop.stop_requested()) {
    const auto now = std::chrono::steady_clock::now();
    auto next_wake = now + std::chrono::hours(1);
    const bool leader = !leader_gate_ || leader_gate_();
    std::vector<Job*> changed;  // self-metrics to write once the lock is released
    Logs logs;
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
      if (job.running && !job.timed_out && !job.finishing && now >= job.deadline) {
        job.timed_out = true;
        ++job.timeouts;
        // The canceller calls cancel(): a cancel that blocks must not stop this loop.
        cancel_queue_.emplace_back(&job, job.run_id);
        cancel_cv_.notify_one();
        recordLocked(job,
                     deadlineExceeded("timed out after " + formatDuration(job.options.timeout)),
                     job.options.timeout, logs);
        changed.push_back(&job);
      }
      if (now >= job.due) {
        if (now < job.hold_until || job.status.standby) {
          // Backed off or switched off: the tick passes without a run (and is not a skip).
        } else if (job.running) {
          ++job.skipped;
          logs.push_back({false, true,
                          "collector " + job.status.name +
                              ": previous run still going, skipping this run"});
          changed.push_back(&job);  // the skip must be visible while the run is stuck
        } else {
          job.running = true;
          job.timed_out = false;
          job.finishing = false;
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
      if (job.running && !job.timed_out && !job.finishing) next_wake = std::min(next_wake, job.deadline);
    }
    if (!changed.empty() || !logs.empty()) {
      lock.unlock();
      for (Job* job : changed) publish(*job);
      emit(logs);
      lock.lock();
      continue;  // time has passed: look again before sleeping
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
  threadExitLocked();
}

void Scheduler::cancelLoop(std::stop_token stop) {
  std::unique_lock lock(mu_);
  while (true) {
    cancel_cv_.wait(lock, stop, [this] { return !cancel_queue_.empty(); });
    if (cancel_queue_.empty()) break;  // stop requested and nothing left to cancel
    auto [job, run_id] = cancel_queue_.front();
    cancel_queue_.pop_front();
    // Only the run that timed out (or was running at stop()): never a later one.
    if (!job->running || job->run_id != run_id) continue;
    cancelling_ = true;
    lock.unlock();
    job->collector->cancel();
    lock.lock();
    cancelling_ = false;
    idle_cv_.notify_all();
  }
  threadExitLocked();
}

void Scheduler::threadExitLocked() {
  --threads_alive_;
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

  Logs logs;
  bool keep = false;
  {
    std::lock_guard lock(mu_);
    keep = !(job.timed_out && job.run_id == run_id);
    if (keep) {
      job.finishing = true;  // no timeout for a run whose result is in
      recordLocked(job, status, took, logs);
    }
  }
  if (keep) publish(job, run_id, &batch);
  emit(logs);
  // Only now is the run over for stop() and the dispatcher: the job (and the store write
  // above) must not be in use when stop() lets the owner free the pipeline.
  std::lock_guard lock(mu_);
  job.running = false;
  --running_;
  idle_cv_.notify_all();
  cv_.notify_all();
}

void Scheduler::recordLocked(Job& job, const Status& status, Duration took, Logs& logs) {
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
      logs.push_back({false, true,
                      "collector " + s.name + ": timed out " +
                          std::to_string(job.consecutive_timeouts) +
                          " runs in a row; backing off for " + formatDuration(s.backoff)});
    }
  } else {
    job.consecutive_timeouts = 0;
    s.backoff = Duration(0);
  }

  // FailedPrecondition switches the collector off until a rare retry.
  if (status.code() == StatusCode::kFailedPrecondition) {
    s.disabled_reason = status.reason().empty() ? "precondition" : status.reason();
    job.hold_until = now + std::max(kDisabledRetry, 10 * job.options.interval);
  } else if (status.ok()) {
    s.disabled_reason.clear();
  }
  ++s.runs;
  s.has_run = true;
  s.last_run = clock_.now();
  s.last_duration = took;
  s.last_success = status.ok();
  if (status.ok()) {
    if (!was_ok) logs.push_back({false, false, "collector " + s.name + ": recovered"});
    s.last_error.clear();
  } else {
    ++s.errors;
    s.last_error = status.toString();
    // One line per change of state, not one per failing run.
    if (was_ok || previous_error != s.last_error) {
      logs.push_back({true, false, "collector " + s.name + ": " + s.last_error});
    }
  }
}

void Scheduler::publish(Job& job, uint64_t run_id, const SampleBatch* samples) {
  std::lock_guard publish_lock(publish_mu_);
  CollectorStatus s;
  uint64_t timeouts = 0;
  uint64_t skipped = 0;
  Duration staleness{0};
  {
    std::lock_guard lock(mu_);
    s = job.status;
    timeouts = job.timeouts;
    skipped = job.skipped;
    staleness = 2 * job.options.interval + job.options.timeout;
  }
  if (samples != nullptr && run_id > job.published_run) {
    job.published_run = run_id;
    store_.write(s.name, *samples, staleness);
  }
  // The reason is a label: when it changes, drop the old series so only the current state
  // remains. Written after every run (not only on change) so its history stays as dense as
  // the other self-metrics' for rules that look back over it.
  if (s.has_run) {
    if (job.published_once && job.published_reason != s.disabled_reason) {
      store_.dropSource("enabled:" + s.name);
    }
    job.published_once = true;
    job.published_reason = s.disabled_reason;
    SampleBatch enabled;
    enabled.gauge("dbpulse_collector_enabled",
                  "0 while the collector is switched off by a missing prerequisite (see reason).",
                  Labels{{"collector", s.name}, {"reason", s.disabled_reason}},
                  s.disabled_reason.empty() ? 1 : 0);
    store_.write("enabled:" + s.name, enabled, std::chrono::hours(24 * 365));
  }

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
            labels, static_cast<double>(timeouts));
  b.gauge("dbpulse_collector_backoff_seconds",
          "How long the collector is backed off after repeated timeouts (0 when not).", labels,
          seconds(s.backoff));
  b.counter("dbpulse_collector_skipped_runs_total",
            "Scheduled runs skipped because the previous run was still going.", labels,
            static_cast<double>(skipped));
  // Self-metrics live as long as the collector is scheduled; a reload that removes a
  // collector drops them explicitly.
  store_.write("scheduler:" + s.name, b, std::chrono::hours(24 * 365));
}

bool Scheduler::stop(Duration grace) {
  {
    std::lock_guard lock(mu_);
    if (!started_) return true;
    if (stopping_) return threads_alive_ == 0;
    stopping_ = true;
    for (auto& job : jobs_) {
      if (job->running) cancel_queue_.emplace_back(job.get(), job->run_id);
    }
    cancel_cv_.notify_one();
  }
  dispatcher_.request_stop();
  for (auto& w : workers_) w.request_stop();
  canceller_.request_stop();
  if (dispatcher_.joinable()) dispatcher_.join();  // it never calls out: joins at once
  bool finished;
  {
    std::unique_lock lock(mu_);
    finished = idle_cv_.wait_for(lock, grace, [this] { return threads_alive_ == 0; });
  }
  if (finished) {
    for (auto& w : workers_) w.join();
    canceller_.join();
  } else {
    // A collector ignored cancel() (or cancel() itself hangs); a thread cannot be killed.
    // Leave it behind; the owner keeps this scheduler alive (see the header).
    spdlog::error("scheduler: a collector did not stop within {}", formatDuration(grace));
    for (auto& w : workers_) w.detach();
    canceller_.detach();
  }
  workers_.clear();
  return finished;
}

bool Scheduler::drained() const {
  std::lock_guard lock(mu_);
  return !started_ || (stopping_ && threads_alive_ == 0);
}

void Scheduler::runAllOnce() {
  for (auto& job_ptr : jobs_) {
    Job& job = *job_ptr;
    uint64_t run_id = 0;
    SteadyTime deadline;
    {
      std::lock_guard lock(mu_);
      job.running = true;
      job.timed_out = false;
      job.finishing = false;
      ++running_;
      job.deadline = std::chrono::steady_clock::now() + job.options.timeout;
      deadline = job.deadline;
      run_id = ++job.run_id;
    }
    execute(job, run_id, deadline, stop_source_.get_token());
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
