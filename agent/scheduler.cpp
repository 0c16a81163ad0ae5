#include "agent/scheduler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

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
  MutexLock lock(mu_);
  idle_cv_.wait(lock, [this]() REQUIRES(mu_) { return threads_alive_ == 0; });
}

void Scheduler::add(std::unique_ptr<Job> job, JobOptions options) {
  MutexLock lock(mu_);
  plan_.add(job->name(), std::move(options));
  auto slot = std::make_unique<Slot>();
  slot->job = std::move(job);
  slots_.push_back(std::move(slot));
}

void Scheduler::add(std::unique_ptr<collectors::Collector> collector, JobOptions options) {
  add(collectorJob(std::move(collector)), std::move(options));
}

void Scheduler::start() {
  const MonotonicTime now = clock_.monotonicNow();
  MutexLock lock(mu_);
  if (started_) return;
  started_ = true;
  plan_.start(now);
  threads_alive_ = threads_ + 1;
  for (int i = 0; i < threads_; ++i) {
    workers_.emplace_back([this](std::stop_token st) { workerLoop(st); });
  }
  canceller_ = std::jthread([this](std::stop_token st) { cancelLoop(st); });
  dispatcher_ = std::jthread([this](std::stop_token st) { dispatchLoop(st); });
}

void Scheduler::setLeaderGate(std::function<bool()> is_leader) {
  MutexLock lock(mu_);
  leader_gate_ = std::move(is_leader);
}

void Scheduler::leadershipChanged() {
  MutexLock lock(mu_);
  wake_ = true;
  cv_.notify_all();
}

void Scheduler::clockChanged() {
  MutexLock lock(mu_);
  wake_ = true;
  cv_.notify_all();
}

bool Scheduler::waitDrained(Duration timeout) const {
  MutexLock lock(mu_);
  return idle_cv_.wait_for(lock, timeout, [this]() REQUIRES(mu_) { return drainedLocked(); });
}

void Scheduler::setPublishObserver(std::function<void(const std::string&)> observer) {
  observer_ = std::move(observer);
}

void Scheduler::observe(size_t job) const {
  if (observer_) observer_(slots_[job]->job->name());
}

void Scheduler::emit(const std::vector<PlanLog>& logs) {
  for (const PlanLog& l : logs) {
    switch (l.level) {
      case PlanLog::Level::kError:
        spdlog::error("{}", l.text);
        break;
      case PlanLog::Level::kWarn:
        spdlog::warn("{}", l.text);
        break;
      case PlanLog::Level::kInfo:
        spdlog::info("{}", l.text);
        break;
    }
  }
}

void Scheduler::dispatchLoop(std::stop_token stop) {
  MutexLock lock(mu_);
  while (!stop.stop_requested()) {
    wake_ = false;
    plan_.setLeader(!leader_gate_ || leader_gate_());
    const PlanStep step = plan_.runDue(clock_.monotonicNow(), clock_.now());
    for (const Dispatch& d : step.dispatch) queue_.push_back(d);
    if (!step.dispatch.empty()) work_cv_.notify_all();
    // The canceller calls cancel(): a cancel that blocks must not stop this loop.
    for (const CancelRun& c : step.cancel) cancel_queue_.push_back(c);
    if (!step.cancel.empty()) cancel_cv_.notify_one();
    if (!step.changed.empty() || !step.logs.empty()) {
      lock.unlock();
      for (size_t job : step.changed) publish(job);
      emit(step.logs);
      for (size_t job : step.changed) observe(job);
      lock.lock();
      continue;  // time has passed: look again before sleeping
    }
    // The plan's time is the injected clock's; the wait is real. Capped so a clock that
    // is moved by hand (tests) is looked at again now and then.
    const auto until_next = plan_.nextWakeup() - clock_.monotonicNow();
    const auto wait = std::clamp<std::chrono::steady_clock::duration>(
        until_next, std::chrono::steady_clock::duration::zero(), std::chrono::hours(1));
    cv_.wait_for(lock, stop, wait, [this]() REQUIRES(mu_) { return wake_; });
  }
}

void Scheduler::workerLoop(std::stop_token stop) {
  MutexLock lock(mu_);
  while (true) {
    work_cv_.wait(lock, stop, [this]() REQUIRES(mu_) { return !queue_.empty(); });
    if (stop.stop_requested()) break;
    const Dispatch run = queue_.front();
    queue_.pop_front();
    lock.unlock();
    execute(run, stop);
    lock.lock();
  }
  // Work queued but never started counts as over for stop().
  for (const Dispatch& d : queue_) plan_.onReturned(d.job, d.run);
  queue_.clear();
  threadExitLocked();
}

void Scheduler::cancelLoop(std::stop_token stop) {
  MutexLock lock(mu_);
  while (true) {
    cancel_cv_.wait(lock, stop, [this]() REQUIRES(mu_) { return !cancel_queue_.empty(); });
    if (cancel_queue_.empty()) break;  // stop requested and nothing left to cancel
    const CancelRun c = cancel_queue_.front();
    cancel_queue_.pop_front();
    // Only the run that timed out (or was running at stop()): never a later one.
    if (!plan_.isRunning(c.job, c.run)) continue;
    lock.unlock();
    slots_[c.job]->job->cancel();
    lock.lock();
  }
  threadExitLocked();
}

void Scheduler::threadExitLocked() {
  --threads_alive_;
  idle_cv_.notify_all();
}

void Scheduler::execute(const Dispatch& run, std::stop_token stop) {
  Job& job = *slots_[run.job]->job;
  SampleBatch batch;
  const JobContext ctx{clock_.now(), run.deadline, stop};
  const MonotonicTime t0 = clock_.monotonicNow();
  Status status;
  try {
    status = job.run(ctx, batch);
  } catch (const std::exception& e) {
    // Collectors catch their libraries' exceptions; one escaping is a bug, but it must
    // not take the agent down with it.
    status = internalError(std::string("unexpected exception: ") + e.what());
  } catch (...) {
    status = internalError("unexpected non-standard exception");
  }
  const MonotonicTime t1 = clock_.monotonicNow();
  const WallTime wall = clock_.now();
  const auto took = std::chrono::duration_cast<Duration>(t1 - t0);

  std::vector<PlanLog> logs;
  bool keep = false;
  {
    MutexLock lock(mu_);
    keep = plan_.onFinished(run.job, run.run, status, took, t1, wall, logs);
  }
  if (keep) publish(run.job, run.run, &batch);
  emit(logs);
  // Only now is the run over for stop() and the dispatcher: the job (and the store write
  // above) must not be in use when stop() lets the owner free the pipeline.
  {
    MutexLock lock(mu_);
    plan_.onReturned(run.job, run.run);
    wake_ = true;
    cv_.notify_all();
  }
  observe(run.job);
}

void Scheduler::publish(size_t job, uint64_t run, const SampleBatch* samples) {
  MutexLock publish_lock(publish_mu_);
  Slot& slot = *slots_[job];
  CollectorStatus s;
  uint64_t timeouts = 0;
  uint64_t skipped = 0;
  Duration staleness{0};
  {
    MutexLock lock(mu_);
    s = plan_.status(job);
    timeouts = plan_.timeouts(job);
    skipped = plan_.skipped(job);
    staleness = 2 * plan_.options(job).interval + plan_.options(job).timeout;
  }
  if (samples != nullptr && run > slot.published_run) {
    slot.published_run = run;
    store_.write(s.name, *samples, staleness);
  }
  // The reason is a label: when it changes, drop the old series so only the current state
  // remains. Written after every run (not only on change) so its history stays as dense as
  // the other self-metrics' for rules that look back over it.
  if (s.has_run) {
    if (slot.published_once && slot.published_reason != s.disabled_reason) {
      store_.dropSource("enabled:" + s.name);
    }
    slot.published_once = true;
    slot.published_reason = s.disabled_reason;
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
  // Renewed by every run: what the exposition needs to timestamp the counters among them.
  store_.write("scheduler:" + s.name, b, std::chrono::hours(24 * 365), true, staleness);
}

bool Scheduler::stop(Duration grace) {
  {
    MutexLock lock(mu_);
    if (!started_) return true;
    if (stopping_) return threads_alive_ == 0;
    stopping_ = true;
    for (const CancelRun& c : plan_.runningRuns()) cancel_queue_.push_back(c);
    cancel_cv_.notify_one();
  }
  dispatcher_.request_stop();
  for (auto& w : workers_) w.request_stop();
  canceller_.request_stop();
  if (dispatcher_.joinable()) dispatcher_.join();  // it never calls out: joins at once
  bool finished;
  {
    MutexLock lock(mu_);
    finished =
        idle_cv_.wait_for(lock, grace, [this]() REQUIRES(mu_) { return threads_alive_ == 0; });
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
  MutexLock lock(mu_);
  return drainedLocked();
}

bool Scheduler::drainedLocked() const { return !started_ || (stopping_ && threads_alive_ == 0); }

void Scheduler::runAllOnce() {
  for (size_t job = 0; job < slots_.size(); ++job) {
    Dispatch run;
    {
      const MonotonicTime now = clock_.monotonicNow();
      MutexLock lock(mu_);
      run = plan_.begin(job, now);
    }
    execute(run, stop_source_.get_token());
  }
}

bool Scheduler::firstCycleDone() const {
  MutexLock lock(mu_);
  return plan_.firstCycleDone();
}

std::vector<CollectorStatus> Scheduler::status() const {
  MutexLock lock(mu_);
  std::vector<CollectorStatus> out;
  for (size_t job = 0; job < plan_.size(); ++job) out.push_back(plan_.status(job));
  return out;
}

}  // namespace dbpulse
