#include "agent/scheduler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace dbpulse {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr int64_t kFakeNowMs = 1'700'000'000'123;

class FakeClock final : public Clock {
 public:
  WallTime now() const override { return WallTime(milliseconds(kFakeNowMs)); }
};

// Polls `pred` until it holds or `timeout` passes; returns its last value.
template <typename Pred>
bool eventually(Pred pred, milliseconds timeout = 3s) {
  const auto deadline = steady_clock::now() + timeout;
  while (!pred()) {
    if (steady_clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// A latch a collector can wait on; opened by the test or by cancel().
class Gate {
 public:
  void open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // Waits until open; gives up after `cap` so a broken scheduler cannot hang the suite.
  bool wait(milliseconds cap = 3s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, cap, [this] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// What a FakeCollector did, shared with the test (the scheduler owns the collector).
struct FakeState {
  std::atomic<int> calls{0};
  std::atomic<int> returned{0};
  std::atomic<int> cancels{0};
  std::atomic<int> max_concurrent{0};
  std::atomic<int> in_flight{0};
  bool cancel_opens_gate = true;
  // cancel() blocks this long before it returns (a PQcancel against a hung server).
  std::atomic<int> cancel_blocks_ms{0};
  std::atomic<int> cancels_returned{0};
  Gate gate;
  std::mutex mu;
  std::vector<collectors::CollectContext> contexts;  // GUARDED_BY(mu)
};

// Behaviour of one collect() call: n is the 1-based call number.
using CollectFn =
    std::function<Status(int n, const collectors::CollectContext&, SampleBatch&, FakeState&)>;

class FakeCollector final : public collectors::Collector {
 public:
  FakeCollector(std::string name, std::shared_ptr<FakeState> state, CollectFn fn)
      : name_(std::move(name)), state_(std::move(state)), fn_(std::move(fn)) {}

  const std::string& name() const override { return name_; }

  Status collect(const collectors::CollectContext& ctx, SampleBatch& out) override {
    const int n = ++state_->calls;
    const int now_in_flight = ++state_->in_flight;
    int prev = state_->max_concurrent.load();
    while (now_in_flight > prev &&
           !state_->max_concurrent.compare_exchange_weak(prev, now_in_flight)) {
    }
    {
      std::lock_guard lock(state_->mu);
      state_->contexts.push_back(ctx);
    }
    Status s = fn_ ? fn_(n, ctx, out, *state_) : okStatus();
    --state_->in_flight;
    ++state_->returned;
    return s;
  }

  void cancel() override {
    ++state_->cancels;
    if (const int ms = state_->cancel_blocks_ms; ms > 0) {
      std::this_thread::sleep_for(milliseconds(ms));  // stands in for blocking I/O
    }
    if (state_->cancel_opens_gate) state_->gate.open();
    ++state_->cancels_returned;
  }

 private:
  std::string name_;
  std::shared_ptr<FakeState> state_;
  CollectFn fn_;
};

// Writes fake_value{collector=...} = call number.
Status succeed(int n, const collectors::CollectContext&, SampleBatch& out, FakeState&) {
  out.gauge("fake_value", "A fake collector's value.", {}, n);
  return okStatus();
}

// Blocks on the gate on the first call (then writes fake_late), succeeds afterwards.
Status blockFirst(int n, const collectors::CollectContext&, SampleBatch& out, FakeState& st) {
  if (n == 1) {
    st.gate.wait();
    out.gauge("fake_late", "Written by a run that was blocked.", {}, 1);
  }
  return okStatus();
}

struct Harness {
  FakeClock clock;
  SampleStore store{clock};
  Scheduler scheduler{store, clock, 3};

  std::shared_ptr<FakeState> add(const std::string& name, CollectFn fn, JobOptions options) {
    auto state = std::make_shared<FakeState>();
    scheduler.add(std::make_unique<FakeCollector>(name, state, std::move(fn)), options);
    return state;
  }

  // The value of metric{collector=name} in the latest snapshot.
  std::optional<double> selfMetric(const std::string& metric, const std::string& collector) const {
    const auto snap = store.snapshot();
    const SnapshotFamily* fam = snap->family(metric);
    if (fam == nullptr) return std::nullopt;
    for (const auto& s : fam->series) {
      if (s.labels == Labels{{"collector", collector}}) return s.value;
    }
    return std::nullopt;
  }

  // Self-metrics are published just after the run's status changes (outside the
  // scheduler's lock): true once metric{collector} reads `value`.
  bool metricBecomes(const std::string& metric, const std::string& collector,
                     double value) const {
    return eventually([&] { return selfMetric(metric, collector) == value; });
  }

  std::optional<CollectorStatus> status(const std::string& name) const {
    for (const auto& s : scheduler.status()) {
      if (s.name == name) return s;
    }
    return std::nullopt;
  }

  bool hasFamily(const std::string& name) const {
    return store.snapshot()->family(name) != nullptr;
  }
};

JobOptions every(milliseconds interval, milliseconds timeout) {
  JobOptions o;
  o.interval = interval;
  o.timeout = timeout;
  o.jitter = 0;
  return o;
}

TEST(SchedulerTest, RunsEachCollectorRepeatedlyAtItsInterval) {
  Harness h;
  auto fast = h.add("fast", succeed, every(50ms, 40ms));
  auto slow = h.add("slow", succeed, every(5s, 40ms));
  const auto t0 = steady_clock::now();
  h.scheduler.start();

  ASSERT_TRUE(eventually([&] { return fast->calls >= 3; })) << fast->calls;
  const auto elapsed = steady_clock::now() - t0;
  // Runs at 0, 50 and 100 ms: the third cannot come before 100 ms.
  EXPECT_GE(elapsed, 100ms);
  ASSERT_TRUE(eventually([&] { return slow->calls >= 1; }));
  EXPECT_EQ(slow->calls, 1) << "a 5 s collector must not run as often as a 50 ms one";
  EXPECT_TRUE(h.scheduler.stop(2s));

  const int after_stop = fast->calls;
  EXPECT_EQ(fast->max_concurrent, 1);
  // The value written is the latest run's.
  ASSERT_TRUE(h.selfMetric("dbpulse_collector_runs_total", "fast").has_value());
  EXPECT_EQ(*h.selfMetric("dbpulse_collector_runs_total", "fast"), after_stop);
  const SnapshotFamily* fam = h.store.snapshot()->family("fake_value");
  ASSERT_NE(fam, nullptr);
}

TEST(SchedulerTest, SkipsRunWhilePreviousStillRunning) {
  Harness h;
  // The ticker shares the blocked collector's schedule: its runs count the ticks.
  auto blocked = h.add("blocked", blockFirst, every(20ms, 10s));
  auto ticker = h.add("ticker", succeed, every(20ms, 10s));
  blocked->cancel_opens_gate = false;
  h.scheduler.start();

  ASSERT_TRUE(eventually([&] { return ticker->calls >= 5; }));
  EXPECT_EQ(blocked->calls, 1) << "a collector must never run concurrently with itself";
  EXPECT_EQ(blocked->max_concurrent, 1);
  auto st = h.status("blocked");
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(st->running);
  EXPECT_EQ(st->runs, 0u);

  blocked->gate.open();
  ASSERT_TRUE(eventually([&] { return h.status("blocked")->runs >= 1; }));
  ASSERT_TRUE(eventually([&] {
    auto skipped = h.selfMetric("dbpulse_collector_skipped_runs_total", "blocked");
    return skipped && *skipped >= 3;
  })) << "skipped ticks are counted";
  EXPECT_EQ(h.selfMetric("dbpulse_collector_skipped_runs_total", "ticker"), 0.0);
  EXPECT_TRUE(h.scheduler.stop(2s));
  EXPECT_EQ(blocked->max_concurrent, 1);
}

// DESIGN: "A run still going at its next due time is not started twice: the tick is
// skipped and counted (dbpulse_collector_skipped_runs_total)". The counter must be
// visible on /metrics while the run is stuck, which is when an operator looks at it.
TEST(SchedulerTest, SkippedRunsCounterGrowsWhileARunIsStuck) {
  Harness h;
  // timeout == interval, as the config allows: the stuck run times out, then ticks are skipped.
  auto blocked = h.add("stuck", blockFirst, every(20ms, 20ms));
  blocked->cancel_opens_gate = false;  // a collector whose I/O ignores cancel
  h.scheduler.start();

  EXPECT_TRUE(eventually(
      [&] {
        auto skipped = h.selfMetric("dbpulse_collector_skipped_runs_total", "stuck");
        return skipped && *skipped >= 2;
      },
      1s))
      << "dbpulse_collector_skipped_runs_total{collector=\"stuck\"} = "
      << h.selfMetric("dbpulse_collector_skipped_runs_total", "stuck").value_or(-1);
  EXPECT_EQ(blocked->calls, 1);

  blocked->gate.open();
  EXPECT_TRUE(h.scheduler.stop(2s));
}

TEST(SchedulerTest, TimedOutRunFailsIsCancelledAndItsLateResultIsDiscarded) {
  Harness h;
  auto slow = h.add("slow", blockFirst, every(10s, 50ms));
  slow->cancel_opens_gate = false;  // stays blocked after cancel(), returns late
  h.scheduler.start();

  ASSERT_TRUE(eventually([&] { return h.status("slow")->runs == 1; }));
  const CollectorStatus st = *h.status("slow");
  EXPECT_FALSE(st.last_success);
  EXPECT_EQ(st.errors, 1u);
  EXPECT_NE(st.last_error.find("deadline_exceeded"), std::string::npos) << st.last_error;
  EXPECT_NE(st.last_error.find("timed out"), std::string::npos) << st.last_error;
  EXPECT_TRUE(st.running) << "the collector has not returned yet";
  // cancel() runs on the scheduler's canceller thread, a moment after the timeout.
  EXPECT_TRUE(eventually([&] { return slow->cancels >= 1; }));
  EXPECT_EQ(slow->returned, 0);
  EXPECT_TRUE(h.scheduler.firstCycleDone()) << "a timed-out run counts as finished";
  EXPECT_TRUE(h.metricBecomes("dbpulse_collector_success", "slow", 0.0));
  EXPECT_TRUE(h.metricBecomes("dbpulse_collector_errors_total", "slow", 1.0));
  EXPECT_TRUE(h.metricBecomes("dbpulse_collector_timeouts_total", "slow", 1.0));

  slow->gate.open();
  ASSERT_TRUE(eventually([&] { return slow->returned == 1 && !h.status("slow")->running; }));
  EXPECT_FALSE(h.hasFamily("fake_late")) << "samples of a timed-out run must be discarded";
  const CollectorStatus after = *h.status("slow");
  EXPECT_EQ(after.runs, 1u) << "the late return is not a second run";
  EXPECT_FALSE(after.last_success) << "the late OK must not overwrite the timeout";
  EXPECT_EQ(h.selfMetric("dbpulse_collector_success", "slow"), 0.0);
  EXPECT_TRUE(h.scheduler.stop(2s));
}

TEST(SchedulerTest, WritesSelfMetricsLabelledByCollector) {
  Harness h;
  h.add("alpha", succeed, every(15s, 5s));
  h.add(
      "beta",
      [](int, const collectors::CollectContext&, SampleBatch&, FakeState&) {
        // A measurable run: the duration must come out in seconds.
        std::this_thread::sleep_for(30ms);
        return okStatus();
      },
      every(15s, 5s));
  h.scheduler.runAllOnce();

  for (const std::string name : {"alpha", "beta"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(h.selfMetric("dbpulse_collector_success", name), 1.0);
    EXPECT_EQ(h.selfMetric("dbpulse_collector_errors_total", name), 0.0);
    EXPECT_EQ(h.selfMetric("dbpulse_collector_runs_total", name), 1.0);
    EXPECT_EQ(h.selfMetric("dbpulse_collector_last_run_timestamp_seconds", name),
              static_cast<double>(kFakeNowMs) / 1000.0);
    ASSERT_TRUE(h.selfMetric("dbpulse_collector_duration_seconds", name).has_value());
  }
  const double beta_duration = *h.selfMetric("dbpulse_collector_duration_seconds", "beta");
  EXPECT_GE(beta_duration, 0.03);
  EXPECT_LT(beta_duration, 5.0) << "seconds, not milliseconds";
  EXPECT_LT(*h.selfMetric("dbpulse_collector_duration_seconds", "alpha"), beta_duration);

  const auto snap = h.store.snapshot();
  EXPECT_EQ(snap->family("dbpulse_collector_duration_seconds")->type, MetricType::kGauge);
  EXPECT_EQ(snap->family("dbpulse_collector_success")->type, MetricType::kGauge);
  EXPECT_EQ(snap->family("dbpulse_collector_last_run_timestamp_seconds")->type, MetricType::kGauge);
  EXPECT_EQ(snap->family("dbpulse_collector_errors_total")->type, MetricType::kCounter);
  EXPECT_FALSE(snap->family("dbpulse_collector_success")->help.empty());
}

TEST(SchedulerTest, ErrorCountsAndPartialSamplesAreStillWritten) {
  Harness h;
  auto st = h.add(
      "pg",
      [](int n, const collectors::CollectContext&, SampleBatch& out, FakeState&) {
        const bool up = n >= 3;
        out.gauge("pg_up", "1 when PostgreSQL answers.", {}, up ? 1 : 0);
        return up ? okStatus() : unavailable("connection refused");
      },
      every(15s, 5s));
  auto pg_up = [&]() -> std::optional<double> {
    const SnapshotFamily* f = h.store.snapshot()->family("pg_up");
    if (f == nullptr || f->series.empty()) return std::nullopt;
    return f->series[0].value;
  };

  h.scheduler.runAllOnce();
  EXPECT_EQ(pg_up(), 0.0) << "samples of a failed run are written";
  EXPECT_EQ(h.selfMetric("dbpulse_collector_success", "pg"), 0.0);
  EXPECT_EQ(h.selfMetric("dbpulse_collector_errors_total", "pg"), 1.0);
  EXPECT_EQ(h.status("pg")->last_error, "unavailable: connection refused");

  h.scheduler.runAllOnce();
  EXPECT_EQ(h.selfMetric("dbpulse_collector_errors_total", "pg"), 2.0);

  h.scheduler.runAllOnce();
  EXPECT_EQ(pg_up(), 1.0);
  EXPECT_EQ(h.selfMetric("dbpulse_collector_success", "pg"), 1.0);
  EXPECT_EQ(h.selfMetric("dbpulse_collector_errors_total", "pg"), 2.0) << "a counter";
  EXPECT_EQ(h.selfMetric("dbpulse_collector_runs_total", "pg"), 3.0);
  EXPECT_TRUE(h.status("pg")->last_error.empty());
  EXPECT_EQ(st->calls, 3);
}

TEST(SchedulerTest, ThrowingCollectorIsIsolated) {
  Harness h;
  auto bad = h.add(
      "bad",
      [](int, const collectors::CollectContext&, SampleBatch& out, FakeState&) -> Status {
        out.gauge("bad_partial", "Written before the throw.", {}, 1);
        throw std::runtime_error("boom");
      },
      every(30ms, 20ms));
  auto good = h.add("good", succeed, every(30ms, 20ms));
  h.scheduler.start();

  ASSERT_TRUE(eventually([&] { return bad->calls >= 2 && good->calls >= 3; }));
  ASSERT_TRUE(eventually([&] { return h.status("bad")->runs >= 2; }));
  const CollectorStatus st = *h.status("bad");
  EXPECT_FALSE(st.last_success);
  EXPECT_NE(st.last_error.find("boom"), std::string::npos) << st.last_error;
  EXPECT_GE(st.errors, 2u);
  EXPECT_TRUE(h.metricBecomes("dbpulse_collector_success", "bad", 0.0));
  EXPECT_TRUE(h.metricBecomes("dbpulse_collector_success", "good", 1.0));
  EXPECT_TRUE(h.scheduler.stop(2s));
}

Status throwNonStd(int, const collectors::CollectContext&, SampleBatch&, FakeState&) {
  throw 42;  // not derived from std::exception
}

// The scheduler promises that an escaping exception "must not take the agent down"; that
// holds for any exception, not only those derived from std::exception.
TEST(SchedulerTest, RunAllOnceSurvivesANonStdException) {
  Harness h;
  h.add("bad", throwNonStd, every(15s, 5s));
  auto good = h.add("good", succeed, every(15s, 5s));
  EXPECT_NO_THROW(h.scheduler.runAllOnce());
  EXPECT_EQ(good->calls, 1) << "the collectors after the bad one still run";
  auto st = h.status("bad");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->runs, 1u);
  EXPECT_FALSE(st->last_success);
  EXPECT_FALSE(st->running);
}

// On a pool thread the same exception would reach std::terminate; run in a child process
// so that shows up as this test's failure, not as the whole suite aborting.
TEST(SchedulerDeathTest, NonStdExceptionOnAPoolThreadIsIsolated) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        Harness h;
        h.add("bad", throwNonStd, every(30ms, 20ms));
        auto good = h.add("good", succeed, every(30ms, 20ms));
        h.scheduler.start();
        const bool isolated =
            eventually([&] { return h.status("bad")->runs >= 2 && good->calls >= 3; }, 2s);
        const bool failed = !h.status("bad")->last_success;
        h.scheduler.stop(1s);
        std::_Exit(isolated && failed ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(SchedulerTest, FirstCycleDoneOnlyAfterEveryCollectorRan) {
  Harness h;
  auto quick = h.add("quick", succeed, every(10s, 5s));
  auto slow = h.add("slow", blockFirst, every(10s, 5s));
  EXPECT_FALSE(h.scheduler.firstCycleDone());
  h.scheduler.start();

  ASSERT_TRUE(eventually([&] { return h.status("quick")->has_run && slow->calls == 1; }));
  EXPECT_FALSE(h.scheduler.firstCycleDone()) << "slow has not finished its first run";
  slow->gate.open();
  EXPECT_TRUE(eventually([&] { return h.scheduler.firstCycleDone(); }));
  EXPECT_TRUE(h.status("slow")->has_run);
  EXPECT_TRUE(h.scheduler.stop(2s));
}

TEST(SchedulerTest, StopCancelsABlockedCollectorAndReturnsWithinGrace) {
  Harness h;
  auto stuck = h.add("stuck", blockFirst, every(10s, 10s));  // cancel() opens the gate
  h.scheduler.start();
  ASSERT_TRUE(eventually([&] { return stuck->calls == 1; }));

  const auto t0 = steady_clock::now();
  EXPECT_TRUE(h.scheduler.stop(2s));
  EXPECT_LT(steady_clock::now() - t0, 1s);
  EXPECT_GE(stuck->cancels, 1);
  EXPECT_EQ(stuck->returned, 1);
  std::lock_guard lock(stuck->mu);
  ASSERT_EQ(stuck->contexts.size(), 1u);
}

TEST(SchedulerTest, StopRequestsTheRunsStopToken) {
  Harness h;
  auto st = h.add(
      "waits_for_stop",
      [](int, const collectors::CollectContext& ctx, SampleBatch&, FakeState&) {
        // Ignores cancel(); only the stop token ends it.
        eventually([&] { return ctx.stop.stop_requested(); }, 3s);
        return ctx.stop.stop_requested() ? cancelled("stopped") : okStatus();
      },
      every(10s, 10s));
  st->cancel_opens_gate = false;
  h.scheduler.start();
  ASSERT_TRUE(eventually([&] { return st->calls == 1; }));
  const auto t0 = steady_clock::now();
  EXPECT_TRUE(h.scheduler.stop(2s));
  EXPECT_LT(steady_clock::now() - t0, 1s);
}

TEST(SchedulerTest, StopWithoutStartIsANoOp) {
  Harness h;
  h.add("x", succeed, every(1s, 1s));
  EXPECT_TRUE(h.scheduler.stop(100ms));
}

TEST(SchedulerTest, RunAllOnceRunsEachCollectorOnceInOrder) {
  Harness h;
  auto order = std::make_shared<std::vector<std::string>>();
  auto record = [order](const std::string& name) {
    return [order, name](int n, const collectors::CollectContext&, SampleBatch& out, FakeState&) {
      order->push_back(name);
      out.gauge("fake_" + name, "h", {}, n);
      return okStatus();
    };
  };
  auto a = h.add("a", record("a"), every(15s, 5s));
  auto b = h.add("b", record("b"), every(15s, 2s));
  auto c = h.add("c", record("c"), every(15s, 5s));
  EXPECT_FALSE(h.scheduler.firstCycleDone());

  const auto before = steady_clock::now();
  h.scheduler.runAllOnce();
  EXPECT_EQ(*order, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(a->calls, 1);
  EXPECT_EQ(b->calls, 1);
  EXPECT_EQ(c->calls, 1);
  EXPECT_TRUE(h.scheduler.firstCycleDone());
  EXPECT_TRUE(h.hasFamily("fake_a"));
  EXPECT_TRUE(h.hasFamily("fake_b"));
  EXPECT_TRUE(h.hasFamily("fake_c"));
  for (const auto& s : h.scheduler.status()) {
    EXPECT_EQ(s.runs, 1u) << s.name;
    EXPECT_TRUE(s.last_success) << s.name;
    EXPECT_FALSE(s.running) << s.name;
  }
  // The context carries the injected clock's time and the job's own timeout.
  std::lock_guard lock(b->mu);
  ASSERT_EQ(b->contexts.size(), 1u);
  EXPECT_EQ(toMillis(b->contexts[0].now), kFakeNowMs);
  EXPECT_GE(b->contexts[0].deadline, before + 2s);
  EXPECT_LT(b->contexts[0].deadline, before + 3s);
}

// Times out on every call (the gate never opens), returning only when cancelled late.
Status hangUntilCancelled(int, const collectors::CollectContext& ctx, SampleBatch&, FakeState&) {
  while (std::chrono::steady_clock::now() < ctx.deadline + 30ms) {
    std::this_thread::sleep_for(1ms);
  }
  return deadlineExceeded("statement timeout");
}

TEST(SchedulerTest, BacksOffAfterRepeatedTimeoutsAndSaysSo) {
  Harness h;
  // 100 ms interval: the first backoff (200 ms) lasts long enough to be observed reliably.
  auto slow = h.add("slow", hangUntilCancelled, every(100ms, 10ms));
  h.scheduler.start();

  ASSERT_TRUE(eventually([&] {
    auto st = h.status("slow");
    return st && st->backoff.count() > 0;
  })) << "no backoff after repeated timeouts";
  const CollectorStatus st = *h.status("slow");
  EXPECT_EQ(st.errors, static_cast<uint64_t>(kBackoffAfterTimeouts));
  EXPECT_EQ(st.backoff, 200ms) << "first backoff: twice the interval";
  EXPECT_EQ(h.selfMetric("dbpulse_collector_backoff_seconds", "slow"), 0.2);
  EXPECT_TRUE(h.scheduler.stop(2s));
}

TEST(SchedulerTest, BackoffGrowsWhileTimeoutsContinueAndIsCapped) {
  Harness h;
  auto slow = h.add("slow", hangUntilCancelled, every(20ms, 10ms));
  h.scheduler.start();
  // Each further timeout doubles the hold: 40, 80, 160 ms ...
  ASSERT_TRUE(eventually(
      [&] {
        auto st = h.status("slow");
        return st && st->backoff >= 160ms;
      },
      5s))
      << h.status("slow")->backoff.count();
  EXPECT_LE(h.status("slow")->backoff, kMaxBackoff);
  EXPECT_TRUE(h.scheduler.stop(2s));
}

TEST(SchedulerTest, FailedPreconditionSwitchesTheCollectorOffWithItsReason) {
  Harness h;
  auto off = h.add(
      "statements",
      [](int, const collectors::CollectContext&, SampleBatch&, FakeState&) {
        return failedPrecondition("extension_missing", "pg_stat_statements is not installed");
      },
      every(20ms, 10ms));
  auto other = h.add("other", succeed, every(20ms, 10ms));
  h.scheduler.start();

  ASSERT_TRUE(eventually([&] { return other->calls >= 5; }));
  // Switched off: retried only after kDisabledRetry, so one call while the other ran on.
  EXPECT_EQ(off->calls, 1);
  const auto st = h.status("statements");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->disabled_reason, "extension_missing");
  EXPECT_TRUE(h.scheduler.firstCycleDone()) << "a switched-off collector must not block readiness";

  const auto snap = h.store.snapshot();
  const SnapshotFamily* fam = snap->family("dbpulse_collector_enabled");
  ASSERT_NE(fam, nullptr);
  bool found_off = false, found_other_on = false;
  for (const auto& s : fam->series) {
    if (s.labels == Labels{{"collector", "statements"}, {"reason", "extension_missing"}}) {
      found_off = s.value == 0;
    }
    if (s.labels == Labels{{"collector", "other"}, {"reason", ""}}) found_other_on = s.value == 1;
  }
  EXPECT_TRUE(found_off);
  EXPECT_TRUE(found_other_on);
  EXPECT_TRUE(h.scheduler.stop(2s));
}

}  // namespace
}  // namespace dbpulse

namespace dbpulse {
namespace {

TEST(SchedulerTest, LeaderOnlyJobsRunOnlyWhileTheGateSaysLeaderAndTakeOverAtOnce) {
  Harness h;
  std::atomic<bool> leader{false};
  JobOptions database_wide = every(10s, 1s);  // due again only in 10 s
  database_wide.leader_only = true;
  auto wide = h.add("statements", succeed, database_wide);
  auto local = h.add("process", succeed, every(20ms, 10ms));
  h.scheduler.setLeaderGate([&] { return leader.load(); });
  h.scheduler.start();

  ASSERT_TRUE(eventually([&] { return local->calls >= 5; }));
  EXPECT_EQ(wide->calls, 0) << "a follower does not run database-wide collectors";
  ASSERT_TRUE(h.status("statements").has_value());
  EXPECT_TRUE(h.status("statements")->standby);
  EXPECT_FALSE(h.status("process")->standby);
  EXPECT_TRUE(h.scheduler.firstCycleDone()) << "standby must not hold readiness back";

  // Elected: the job runs now, not at its next due time 10 s away.
  leader = true;
  h.scheduler.leadershipChanged();
  ASSERT_TRUE(eventually([&] { return wide->calls >= 1; }, 2s));
  EXPECT_FALSE(h.status("statements")->standby);
  EXPECT_TRUE(h.metricBecomes("dbpulse_collector_success", "statements", 1.0));

  // Deposed: no further runs even when due.
  leader = false;
  h.scheduler.leadershipChanged();
  ASSERT_TRUE(eventually([&] { return h.status("statements")->standby; }));
  const int calls = wide->calls;
  const int local_calls = local->calls;
  ASSERT_TRUE(eventually([&] { return local->calls >= local_calls + 5; }));
  EXPECT_EQ(wide->calls, calls);
}

}  // namespace
}  // namespace dbpulse

namespace dbpulse {
namespace {

TEST(SchedulerTest, BackgroundJobDoesNotHoldTheFirstCycleBack) {
  Harness h;
  JobOptions slow = every(10s, 5s);
  slow.background = true;
  auto advisor = h.add("advisor", blockFirst, slow);
  auto local = h.add("process", succeed, every(20ms, 10ms));
  h.scheduler.start();
  ASSERT_TRUE(eventually([&] { return local->calls >= 1 && advisor->calls >= 1; }));
  // calls counts entries into collect(); the cycle is recorded after the job returns,
  // so poll for it while the advisor is still blocked inside its first run.
  EXPECT_TRUE(eventually([&] { return h.scheduler.firstCycleDone(); }))
      << "the running background job is not waited for";
  EXPECT_EQ(advisor->calls, 1) << "the advisor is still inside its first run";
  advisor->gate.open();
}

}  // namespace
}  // namespace dbpulse

namespace dbpulse {
namespace {

// Review 4(d)2: cancel() was called under the scheduler's lock, so a cancel that blocks
// (PQcancel against a hung server) froze every other job and status() with it.
TEST(SchedulerTest, ABlockingCancelDelaysNeitherStatusNorOtherJobs) {
  Harness h;
  auto hung = h.add("hung", blockFirst, every(10s, 50ms));
  hung->cancel_opens_gate = false;
  hung->cancel_blocks_ms = 2000;
  auto quick = h.add("quick", succeed, every(20ms, 1s));
  h.scheduler.start();

  // The hung run times out at 50 ms; its cancel() then blocks for 2 s.
  ASSERT_TRUE(eventually([&] { return hung->cancels >= 1; }));
  const int quick_before = quick->calls;
  const auto t0 = steady_clock::now();
  const auto st = h.status("hung");
  EXPECT_LT(steady_clock::now() - t0, 100ms) << "status() waited for cancel()";
  ASSERT_TRUE(st.has_value());
  EXPECT_NE(st->last_error.find("timed out"), std::string::npos) << st->last_error;
  // At 20 ms the quick job runs ~50 times while cancel() blocks; demand a few.
  EXPECT_TRUE(eventually([&] { return quick->calls >= quick_before + 5; }, 1s))
      << "quick job ran " << quick->calls - quick_before << " times during the blocked cancel";
  EXPECT_EQ(hung->cancels_returned, 0) << "the cancel was expected to be still blocking";
  EXPECT_TRUE(h.metricBecomes("dbpulse_collector_success", "hung", 0.0));

  hung->gate.open();
  EXPECT_TRUE(h.scheduler.stop(5s));
}

// Review 4(d)1 (the scheduler's half): a collector that ignores cancel() keeps a thread
// inside the scheduler; stop() says so and the scheduler reports when it has drained, so
// its owner knows when it may be freed.
TEST(SchedulerTest, StopReportsAThreadLeftBehindUntilItLeaves) {
  Harness h;
  auto stuck = h.add("stuck", blockFirst, every(10s, 10s));
  stuck->cancel_opens_gate = false;  // ignores cancel()
  h.scheduler.start();
  ASSERT_TRUE(eventually([&] { return stuck->calls == 1; }));

  EXPECT_FALSE(h.scheduler.stop(100ms));
  EXPECT_FALSE(h.scheduler.drained());
  EXPECT_TRUE(eventually([&] { return stuck->cancels >= 1; }));
  stuck->gate.open();
  EXPECT_TRUE(eventually([&] { return h.scheduler.drained(); }));
  EXPECT_TRUE(h.scheduler.stop(100ms)) << "a later stop() reports the drained scheduler";
}

}  // namespace
}  // namespace dbpulse
