// The scheduler's thread loop around its SchedulePlan (planning is tested on made-up
// time in schedule_plan_test.cpp). Every test runs on a FakeClock that moves only when
// the test advances it (then Scheduler::clockChanged() wakes the dispatcher), so each job
// runs exactly once unless the test moves time. Tests never sleep or poll: they block on
// events (Events below) signalled by the fake collectors and by the scheduler's publish
// observer, re-checking their condition on each signal, with a timeout as failure bound.
#include "agent/scheduler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/fakes/fake_clock.h"
#include "tests/unit/agent/job_options_util.h"

namespace dbpulse {
namespace {

using namespace std::chrono_literals;
using fakes::FakeClock;
using fakes::kFakeWallStartMs;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

// Something happened on another thread (a collector was entered, returned or cancelled; the
// scheduler published): waiters re-check their condition on each signal.
class Events {
 public:
  void signal() {
    std::lock_guard lock(mu_);
    ++generation_;
    cv_.notify_all();
  }
  // Blocks until `pred` holds, re-evaluating it after each signal; gives up after `cap`
  // (a failure bound, not a wait for time to pass). Returns pred's last value.
  template <typename Pred>
  bool waitUntil(Pred pred, milliseconds cap = 5s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, cap, pred);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t generation_ = 0;
};

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
  explicit FakeState(Events& e) : events(e) {}
  Events& events;
  std::atomic<int> calls{0};
  std::atomic<int> returned{0};
  std::atomic<int> cancels{0};
  std::atomic<bool> cancel_opens_gate{true};
  Gate gate;
  // cancel() waits on this before it returns (a PQcancel against a hung server).
  std::atomic<bool> cancel_blocks{false};
  Gate cancel_gate;
  std::atomic<int> cancels_returned{0};
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
    int n = 0;
    {
      std::lock_guard lock(state_->mu);
      state_->contexts.push_back(ctx);
      n = ++state_->calls;
    }
    state_->events.signal();
    Status s = fn_ ? fn_(n, ctx, out, *state_) : okStatus();
    ++state_->returned;
    state_->events.signal();
    return s;
  }

  void cancel() override {
    ++state_->cancels;
    state_->events.signal();
    if (state_->cancel_blocks) state_->cancel_gate.wait(10s);
    if (state_->cancel_opens_gate) state_->gate.open();
    ++state_->cancels_returned;
    state_->events.signal();
  }

 private:
  std::string name_;
  std::shared_ptr<FakeState> state_;
  CollectFn fn_;
};

// Writes fake_value = call number.
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
  Harness() {
    scheduler.setPublishObserver([this](const std::string&) { events.signal(); });
  }

  Events events;  // declared before the scheduler: outlives its threads
  FakeClock clock;
  SampleStore store{clock};
  Scheduler scheduler{store, clock, 3};

  template <typename Pred>
  bool waitUntil(Pred pred, milliseconds cap = 5s) {
    return events.waitUntil(pred, cap);
  }

  // Moves the fake time on and wakes the dispatcher to look at it.
  void advance(milliseconds d) {
    clock.advance(d);
    scheduler.clockChanged();
  }

  std::shared_ptr<FakeState> add(const std::string& name, CollectFn fn, JobOptions options) {
    auto state = std::make_shared<FakeState>(events);
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
  bool metricBecomes(const std::string& metric, const std::string& collector, double value) {
    return waitUntil([&] { return selfMetric(metric, collector) == value; });
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

// ---- the pool, on a clock that does not move: each job runs exactly once ----

TEST(SchedulerTest, RunsEveryJobOnThePoolAndPublishesItsSamplesAndSelfMetrics) {
  Harness h;
  auto a = h.add("a", succeed, every(50ms, 40ms));
  auto b = h.add("b", blockFirst, every(50ms, 40ms));
  h.scheduler.start();
  // b blocks on a pool thread while a runs on another.
  ASSERT_TRUE(h.waitUntil([&] { return b->calls == 1; }));
  EXPECT_TRUE(h.metricBecomes("dbpulse_collector_runs_total", "a", 1.0));
  EXPECT_TRUE(h.hasFamily("fake_value"));
  b->gate.open();
  EXPECT_TRUE(h.metricBecomes("dbpulse_collector_runs_total", "b", 1.0));
  EXPECT_TRUE(h.hasFamily("fake_late"));
  EXPECT_TRUE(h.scheduler.stop(2s));
  EXPECT_EQ(a->calls, 1) << "no time passed: nothing is due again";
  EXPECT_EQ(b->calls, 1);
}

TEST(SchedulerTest, FirstCycleDoneOnlyAfterEveryCollectorRan) {
  Harness h;
  h.add("quick", succeed, every(10s, 5s));
  auto slow = h.add("slow", blockFirst, every(10s, 5s));
  EXPECT_FALSE(h.scheduler.firstCycleDone());
  h.scheduler.start();

  ASSERT_TRUE(h.waitUntil([&] { return h.status("quick")->has_run && slow->calls == 1; }));
  EXPECT_FALSE(h.scheduler.firstCycleDone()) << "slow has not finished its first run";
  slow->gate.open();
  EXPECT_TRUE(h.waitUntil([&] { return h.scheduler.firstCycleDone(); }));
  EXPECT_TRUE(h.status("slow")->has_run);
  EXPECT_TRUE(h.scheduler.stop(2s));
}

TEST(SchedulerTest, BackgroundJobDoesNotHoldTheFirstCycleBack) {
  Harness h;
  JobOptions slow = every(10s, 5s);
  slow.background = true;
  auto advisor = h.add("advisor", blockFirst, slow);
  h.add("process", succeed, every(20ms, 10ms));
  h.scheduler.start();
  EXPECT_TRUE(h.waitUntil([&] { return h.scheduler.firstCycleDone(); }))
      << "the running background job is not waited for";
  EXPECT_TRUE(h.status("advisor")->running);
  advisor->gate.open();
  EXPECT_TRUE(h.scheduler.stop(2s));
}

// With time standing still, only leadershipChanged() can make the standby job run: the
// dispatcher must wake for it rather than wait for the next due time.
TEST(SchedulerTest, LeaderOnlyJobsWaitForTheGateAndTakeOverWhenLeadershipChanges) {
  Harness h;
  std::atomic<bool> leader{false};
  JobOptions database_wide = every(10s, 1s);
  database_wide.leader_only = true;
  auto wide = h.add("statements", succeed, database_wide);
  auto local = h.add("process", succeed, every(20ms, 10ms));
  h.scheduler.setLeaderGate([&] { return leader.load(); });
  h.scheduler.start();

  ASSERT_TRUE(h.waitUntil([&] { return h.status("process")->has_run; }));
  EXPECT_TRUE(h.status("statements")->standby);
  EXPECT_TRUE(h.scheduler.firstCycleDone()) << "standby must not hold readiness back";
  EXPECT_EQ(wide->calls, 0) << "a follower does not run database-wide collectors";

  leader = true;
  h.scheduler.leadershipChanged();
  ASSERT_TRUE(h.waitUntil([&] { return wide->calls == 1; }));
  EXPECT_TRUE(h.metricBecomes("dbpulse_collector_success", "statements", 1.0));
  EXPECT_FALSE(h.status("statements")->standby);
  EXPECT_TRUE(h.scheduler.stop(2s));
  EXPECT_EQ(local->calls, 1);
}

// On a pool thread a non-std exception would reach std::terminate; run in a child process
// so that shows up as this test's failure, not as the whole suite aborting.
Status throwNonStd(int, const collectors::CollectContext&, SampleBatch&, FakeState&) {
  throw 42;  // not derived from std::exception
}

TEST(SchedulerDeathTest, NonStdExceptionOnAPoolThreadIsIsolated) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        Harness h;
        h.add("bad", throwNonStd, every(30ms, 20ms));
        h.add("good", succeed, every(30ms, 20ms));
        h.scheduler.start();
        const bool isolated =
            h.waitUntil([&] { return h.status("bad")->has_run && h.status("good")->has_run; }, 2s);
        const bool failed = !h.status("bad")->last_success;
        h.scheduler.stop(1s);
        std::_Exit(isolated && failed ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

// ---- stop ----

TEST(SchedulerTest, StopCancelsABlockedCollectorAndReturnsWithinGrace) {
  Harness h;
  auto stuck = h.add("stuck", blockFirst, every(10s, 10s));  // cancel() opens the gate
  h.scheduler.start();
  ASSERT_TRUE(h.waitUntil([&] { return stuck->calls == 1; }));

  const auto t0 = steady_clock::now();
  EXPECT_TRUE(h.scheduler.stop(2s));
  EXPECT_LT(steady_clock::now() - t0, 1s);
  EXPECT_EQ(stuck->cancels, 1);
  EXPECT_EQ(stuck->returned, 1);
}

TEST(SchedulerTest, StopRequestsTheRunsStopToken) {
  Harness h;
  auto st = h.add(
      "waits_for_stop",
      [](int, const collectors::CollectContext& ctx, SampleBatch&, FakeState&) {
        // Ignores cancel(); only the stop token ends it (a wait the token interrupts).
        std::mutex mu;
        std::condition_variable_any cv;
        std::unique_lock lock(mu);
        cv.wait_for(lock, ctx.stop, 3s, [] { return false; });
        return ctx.stop.stop_requested() ? cancelled("stopped") : okStatus();
      },
      every(10s, 10s));
  st->cancel_opens_gate = false;
  h.scheduler.start();
  ASSERT_TRUE(h.waitUntil([&] { return st->calls == 1; }));
  const auto t0 = steady_clock::now();
  EXPECT_TRUE(h.scheduler.stop(2s));
  EXPECT_LT(steady_clock::now() - t0, 1s);
}

TEST(SchedulerTest, StopWithoutStartIsANoOp) {
  Harness h;
  h.add("x", succeed, every(1s, 1s));
  EXPECT_TRUE(h.scheduler.stop(100ms));
  EXPECT_TRUE(h.scheduler.drained());
}

// Review 4(d)1 (the scheduler's half): a collector that ignores cancel() keeps a thread
// inside the scheduler; stop() says so and the scheduler reports when it has drained, so
// its owner knows when it may be freed.
TEST(SchedulerTest, StopReportsAThreadLeftBehindUntilItLeaves) {
  Harness h;
  auto stuck = h.add("stuck", blockFirst, every(10s, 10s));
  stuck->cancel_opens_gate = false;  // ignores cancel()
  h.scheduler.start();
  ASSERT_TRUE(h.waitUntil([&] { return stuck->calls == 1; }));

  EXPECT_FALSE(h.scheduler.stop(100ms));
  EXPECT_FALSE(h.scheduler.drained());
  EXPECT_TRUE(h.waitUntil([&] { return stuck->cancels >= 1; }));
  stuck->gate.open();
  EXPECT_TRUE(h.scheduler.waitDrained(5s));
  EXPECT_TRUE(h.scheduler.drained());
  EXPECT_TRUE(h.scheduler.stop(100ms)) << "a later stop() reports the drained scheduler";
}

// ---- timeouts: the test moves the fake time past the deadline ----

TEST(SchedulerTest, TimedOutRunFailsIsCancelledAndItsLateResultIsDiscarded) {
  Harness h;
  auto slow = h.add("slow", blockFirst, every(10s, 50ms));
  slow->cancel_opens_gate = false;  // stays blocked after cancel(), returns late
  h.scheduler.start();

  ASSERT_TRUE(h.waitUntil([&] { return slow->calls == 1; }));
  EXPECT_EQ(slow->cancels, 0) << "no time has passed: not timed out yet";
  h.advance(50ms);
  ASSERT_TRUE(h.waitUntil([&] { return slow->cancels == 1; }));
  const CollectorStatus st = *h.status("slow");
  EXPECT_EQ(st.runs, 1u);
  EXPECT_NE(st.last_error.find("timed out"), std::string::npos) << st.last_error;
  EXPECT_TRUE(st.running) << "the collector has not returned yet";
  EXPECT_EQ(slow->returned, 0);
  EXPECT_TRUE(h.metricBecomes("dbpulse_collector_success", "slow", 0.0));
  EXPECT_TRUE(h.metricBecomes("dbpulse_collector_timeouts_total", "slow", 1.0));

  slow->gate.open();
  ASSERT_TRUE(h.waitUntil([&] { return slow->returned == 1 && !h.status("slow")->running; }));
  EXPECT_FALSE(h.hasFamily("fake_late")) << "samples of a timed-out run must be discarded";
  EXPECT_EQ(h.status("slow")->runs, 1u) << "the late return is not a second run";
  EXPECT_EQ(h.selfMetric("dbpulse_collector_success", "slow"), 0.0);
  EXPECT_TRUE(h.scheduler.stop(2s));
}

// Review 4(d)2: cancel() was called under the scheduler's lock, so a cancel that blocks
// (PQcancel against a hung server) froze every other job and status() with it.
TEST(SchedulerTest, ABlockingCancelDelaysNeitherStatusNorOtherJobs) {
  Harness h;
  auto hung = h.add("hung", blockFirst, every(10s, 50ms));
  hung->cancel_opens_gate = false;
  hung->cancel_blocks = true;  // until the test opens cancel_gate
  auto quick = h.add("quick", succeed, every(20ms, 1s));
  h.scheduler.start();
  ASSERT_TRUE(h.waitUntil(
      [&] { return hung->calls == 1 && quick->calls == 1 && !h.status("quick")->running; }));

  // The hung run times out at 50 ms; its cancel() then blocks.
  h.advance(50ms);
  ASSERT_TRUE(h.waitUntil([&] { return hung->cancels == 1; }));
  ASSERT_TRUE(h.waitUntil([&] { return quick->calls == 2 && !h.status("quick")->running; }));
  const int quick_before = quick->calls;
  const auto st = h.status("hung");  // would wait for cancel() if it ran under the lock
  ASSERT_TRUE(st.has_value());
  EXPECT_NE(st->last_error.find("timed out"), std::string::npos) << st->last_error;
  // Three more of quick's intervals pass while the cancel blocks: quick runs each time.
  for (int i = 1; i <= 3; ++i) {
    h.advance(20ms);
    EXPECT_TRUE(h.waitUntil([&] {
      return quick->calls == quick_before + i && !h.status("quick")->running;
    })) << "quick job ran "
        << quick->calls - quick_before << " times during the blocked cancel";
  }
  EXPECT_TRUE(h.metricBecomes("dbpulse_collector_success", "hung", 0.0));
  EXPECT_EQ(hung->cancels_returned, 0) << "the cancel is still blocking";

  hung->cancel_gate.open();
  hung->gate.open();
  EXPECT_TRUE(h.scheduler.stop(5s));
}

// ---- runAllOnce (`dbpulse once`): the calling thread, no pool ----

TEST(SchedulerTest, WritesSelfMetricsLabelledByCollector) {
  Harness h;
  h.add("alpha", succeed, every(15s, 5s));
  h.add(
      "beta",
      [&h](int, const collectors::CollectContext&, SampleBatch&, FakeState&) {
        h.clock.advance(30ms);  // a measurable run: the duration must come out in seconds
        return okStatus();
      },
      every(15s, 5s));
  h.scheduler.runAllOnce();

  EXPECT_EQ(h.selfMetric("dbpulse_collector_duration_seconds", "alpha"), 0.0);
  EXPECT_EQ(h.selfMetric("dbpulse_collector_duration_seconds", "beta"), 0.03);
  EXPECT_EQ(h.selfMetric("dbpulse_collector_last_run_timestamp_seconds", "alpha"),
            static_cast<double>(kFakeWallStartMs) / 1000.0);
  EXPECT_EQ(h.selfMetric("dbpulse_collector_last_run_timestamp_seconds", "beta"),
            static_cast<double>(kFakeWallStartMs + 30) / 1000.0)
      << "the time the run ended";
  for (const std::string name : {"alpha", "beta"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(h.selfMetric("dbpulse_collector_success", name), 1.0);
    EXPECT_EQ(h.selfMetric("dbpulse_collector_errors_total", name), 0.0);
    EXPECT_EQ(h.selfMetric("dbpulse_collector_runs_total", name), 1.0);
    EXPECT_EQ(h.selfMetric("dbpulse_collector_timeouts_total", name), 0.0);
    EXPECT_EQ(h.selfMetric("dbpulse_collector_backoff_seconds", name), 0.0);
    EXPECT_EQ(h.selfMetric("dbpulse_collector_skipped_runs_total", name), 0.0);
  }
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
  h.add(
      "bad",
      [](int, const collectors::CollectContext&, SampleBatch& out, FakeState&) -> Status {
        out.gauge("bad_partial", "Written before the throw.", {}, 1);
        throw std::runtime_error("boom");
      },
      every(30ms, 20ms));
  auto good = h.add("good", succeed, every(30ms, 20ms));
  EXPECT_NO_THROW(h.scheduler.runAllOnce());
  const CollectorStatus st = *h.status("bad");
  EXPECT_FALSE(st.last_success);
  EXPECT_NE(st.last_error.find("boom"), std::string::npos) << st.last_error;
  EXPECT_EQ(h.selfMetric("dbpulse_collector_success", "bad"), 0.0);
  EXPECT_EQ(h.selfMetric("dbpulse_collector_success", "good"), 1.0);
  EXPECT_EQ(good->calls, 1);
}

// The scheduler promises that an escaping exception "must not take the agent down"; that
// holds for any exception, not only those derived from std::exception.
TEST(SchedulerTest, RunAllOnceSurvivesANonStdException) {
  Harness h;
  h.add("bad", throwNonStd, every(15s, 5s));
  auto good = h.add("good", succeed, every(15s, 5s));
  EXPECT_NO_THROW(h.scheduler.runAllOnce());
  EXPECT_EQ(good->calls, 1) << "collectors after the bad one still run";
  auto st = h.status("bad");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->runs, 1u);
  EXPECT_FALSE(st->last_success);
  EXPECT_FALSE(st->running);
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
  // The context carries the injected clock's times and the job's own timeout.
  std::lock_guard lock(b->mu);
  ASSERT_EQ(b->contexts.size(), 1u);
  EXPECT_EQ(toMillis(b->contexts[0].now), kFakeWallStartMs);
  EXPECT_EQ(b->contexts[0].deadline, h.clock.monotonicNow() + 2s);
}

TEST(SchedulerTest, FailedPreconditionPublishesTheReasonAsALabelAndDropsItWhenFixed) {
  Harness h;
  h.add(
      "statements",
      [](int n, const collectors::CollectContext&, SampleBatch&, FakeState&) {
        return n == 1
                   ? failedPrecondition("extension_missing", "pg_stat_statements is not installed")
                   : okStatus();
      },
      every(20ms, 10ms));
  h.add("other", succeed, every(20ms, 10ms));
  auto enabled = [&] {
    std::map<std::pair<std::string, std::string>, double> out;
    const SnapshotFamily* fam = h.store.snapshot()->family("dbpulse_collector_enabled");
    if (fam == nullptr) return out;
    for (const auto& s : fam->series) {
      out[{std::string(s.labels.get("collector")), std::string(s.labels.get("reason"))}] = s.value;
    }
    return out;
  };

  h.scheduler.runAllOnce();
  EXPECT_EQ(h.status("statements")->disabled_reason, "extension_missing");
  EXPECT_EQ(enabled(), (std::map<std::pair<std::string, std::string>, double>{
                           {{"statements", "extension_missing"}, 0}, {{"other", ""}, 1}}));

  h.scheduler.runAllOnce();  // the operator installed the extension
  EXPECT_EQ(enabled(), (std::map<std::pair<std::string, std::string>, double>{
                           {{"statements", ""}, 1}, {{"other", ""}, 1}}))
      << "the old reason's series is dropped";
}

// A job that is not a collector (the advisor's kind) is scheduled, run and reported like one.
class CountingJob final : public Job {
 public:
  const std::string& name() const override { return name_; }
  Status run(const JobContext&, SampleBatch& out) override {
    ++runs;
    out.gauge("fake_job_result", "h", {}, 7);
    return okStatus();
  }
  int runs = 0;

 private:
  const std::string name_ = "hourly";
};

TEST(SchedulerTest, RunsAJobThatIsNotACollectorWithTheSameSelfMetrics) {
  Harness h;
  auto job = std::make_unique<CountingJob>();
  CountingJob* raw = job.get();
  h.scheduler.add(std::move(job), every(15s, 5s));
  h.scheduler.runAllOnce();
  EXPECT_EQ(raw->runs, 1);
  EXPECT_TRUE(h.hasFamily("fake_job_result"));
  EXPECT_EQ(h.selfMetric("dbpulse_collector_runs_total", "hourly"), 1.0);
  ASSERT_EQ(h.scheduler.status().size(), 1u);
  EXPECT_EQ(h.scheduler.status()[0].name, "hourly");
}
}  // namespace
}  // namespace dbpulse
