// The scheduler's planning core on made-up time: every decision (what runs, what is
// skipped, cancelled, backed off, switched off, on standby) without threads or sleeps.
#include "agent/schedule_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "tests/unit/agent/job_options_util.h"

namespace dbpulse {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

const MonotonicTime kT0 = MonotonicTime(std::chrono::hours(1000));
const WallTime kWall0 = WallTime(milliseconds(1'700'000'000'000));

std::vector<size_t> jobsOf(const std::vector<Dispatch>& dispatch) {
  std::vector<size_t> out;
  for (const Dispatch& d : dispatch) out.push_back(d.job);
  return out;
}

bool contains(const std::vector<size_t>& v, size_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// A plan started at kT0; time is given as an offset from it.
struct Plan {
  SchedulePlan plan{42};
  std::vector<PlanLog> logs;

  size_t add(const std::string& name, JobOptions options) { return plan.add(name, options); }
  void start() { plan.start(kT0); }
  PlanStep at(milliseconds t) { return plan.runDue(kT0 + t, kWall0 + t); }
  // The run returns at `t` with `status`; true when its result was kept.
  bool finish(const Dispatch& d, milliseconds t, const Status& status = okStatus()) {
    const MonotonicTime started = d.deadline - plan.options(d.job).timeout;
    const auto took = std::chrono::duration_cast<Duration>(kT0 + t - started);
    const bool kept = plan.onFinished(d.job, d.run, status, took, kT0 + t, kWall0 + t, logs);
    plan.onReturned(d.job, d.run);
    return kept;
  }
  milliseconds nextWakeup() const {
    return std::chrono::duration_cast<milliseconds>(plan.nextWakeup() - kT0);
  }
};

TEST(SchedulePlanTest, NothingIsPlannedBeforeStart) {
  Plan p;
  p.add("a", every(50ms, 40ms));
  EXPECT_TRUE(p.at(0ms).dispatch.empty());
  EXPECT_EQ(p.plan.nextWakeup(), MonotonicTime::max());
  EXPECT_FALSE(p.plan.firstCycleDone());
}

TEST(SchedulePlanTest, FirstRunAtStartThenDriftFreeAtEachJobsInterval) {
  Plan p;
  const size_t fast = p.add("fast", every(50ms, 40ms));
  const size_t slow = p.add("slow", every(5s, 40ms));
  p.start();
  EXPECT_EQ(p.nextWakeup(), 0ms);

  PlanStep s = p.at(0ms);
  ASSERT_EQ(jobsOf(s.dispatch), (std::vector<size_t>{fast, slow}));
  EXPECT_EQ(s.dispatch[0].deadline, kT0 + 40ms) << "deadline = start + timeout";
  // The runs end late (7 ms); the schedule does not move with them.
  ASSERT_TRUE(p.finish(s.dispatch[0], 7ms));
  ASSERT_TRUE(p.finish(s.dispatch[1], 7ms));
  EXPECT_EQ(p.nextWakeup(), 50ms);
  EXPECT_TRUE(p.at(49ms).dispatch.empty());
  for (milliseconds t : {50ms, 100ms, 150ms}) {
    SCOPED_TRACE(t.count());
    s = p.at(t);
    ASSERT_EQ(jobsOf(s.dispatch), std::vector<size_t>{fast});
    ASSERT_TRUE(p.finish(s.dispatch[0], t + 9ms));
    EXPECT_EQ(p.nextWakeup(), t + 50ms);
  }
  EXPECT_EQ(p.plan.status(fast).runs, 4u);
  EXPECT_EQ(p.plan.status(slow).runs, 1u) << "a 5 s job must not run as often as a 50 ms one";
  EXPECT_EQ(jobsOf(p.at(5000ms).dispatch), (std::vector<size_t>{fast, slow}));
}

TEST(SchedulePlanTest, MissedTicksAreNotMadeUp) {
  Plan p;
  p.add("a", every(50ms, 40ms));
  p.start();
  ASSERT_TRUE(p.finish(p.at(0ms).dispatch.at(0), 1ms));
  // The loop was late by three ticks: one run, and the next on the original grid.
  const PlanStep s = p.at(175ms);
  ASSERT_EQ(s.dispatch.size(), 1u);
  EXPECT_EQ(p.plan.skipped(0), 0u);
  ASSERT_TRUE(p.finish(s.dispatch[0], 176ms));
  EXPECT_EQ(p.nextWakeup(), 200ms);
}

TEST(SchedulePlanTest, SplayDelaysEachRunByUpToJitterTimesIntervalOnTheDriftFreeGrid) {
  std::set<int64_t> second_runs;
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE(seed);
    SchedulePlan plan(seed);
    JobOptions o = every(10s, 1s);
    o.jitter = 0.5;  // up to 5 s, but the first run comes within 1 s
    plan.add("a", o);
    plan.start(kT0);
    const auto first = plan.nextWakeup() - kT0;
    EXPECT_GE(first, 0ms);
    EXPECT_LE(first, 1s);
    PlanStep s = plan.runDue(plan.nextWakeup(), kWall0);
    ASSERT_EQ(s.dispatch.size(), 1u);
    std::vector<PlanLog> logs;
    plan.onFinished(0, s.dispatch[0].run, okStatus(), Duration(1), kT0 + 1s, kWall0, logs);
    plan.onReturned(0, s.dispatch[0].run);
    for (int k = 1; k <= 3; ++k) {
      const auto due = plan.nextWakeup() - kT0;
      EXPECT_GE(due, k * 10s) << "splay only delays";
      EXPECT_LE(due, k * 10s + 5s) << "by at most jitter x interval";
      if (k == 1) second_runs.insert(std::chrono::duration_cast<milliseconds>(due).count());
      s = plan.runDue(plan.nextWakeup(), kWall0);
      ASSERT_EQ(s.dispatch.size(), 1u);
      plan.onFinished(0, s.dispatch[0].run, okStatus(), Duration(1), plan.nextWakeup(), kWall0,
                      logs);
      plan.onReturned(0, s.dispatch[0].run);
    }
  }
  EXPECT_GT(second_runs.size(), 10u) << "agents started together spread out";
}

TEST(SchedulePlanTest, SkipsAndCountsTicksWhileThePreviousRunIsStillGoing) {
  Plan p;
  const size_t blocked = p.add("blocked", every(20ms, 10s));
  p.start();
  const Dispatch first = p.at(0ms).dispatch.at(0);
  for (milliseconds t : {20ms, 40ms, 60ms}) {
    const PlanStep s = p.at(t);
    EXPECT_TRUE(s.dispatch.empty()) << "a job never runs concurrently with itself";
    EXPECT_TRUE(contains(s.changed, blocked)) << "the skip is published while the run is stuck";
    ASSERT_EQ(s.logs.size(), 1u);
    EXPECT_EQ(s.logs[0].level, PlanLog::Level::kWarn);
    EXPECT_NE(s.logs[0].text.find("skipping"), std::string::npos);
  }
  EXPECT_EQ(p.plan.skipped(blocked), 3u);
  EXPECT_TRUE(p.plan.status(blocked).running);
  EXPECT_EQ(p.plan.status(blocked).runs, 0u);

  ASSERT_TRUE(p.finish(first, 70ms));
  EXPECT_FALSE(p.plan.status(blocked).running);
  EXPECT_EQ(p.plan.status(blocked).runs, 1u);
  EXPECT_EQ(p.at(80ms).dispatch.size(), 1u);
  EXPECT_EQ(p.plan.skipped(blocked), 3u);
}

TEST(SchedulePlanTest, TimedOutRunIsFailedCancelledOnceAndItsLateResultDiscarded) {
  Plan p;
  const size_t slow = p.add("slow", every(10s, 50ms));
  p.start();
  const Dispatch run = p.at(0ms).dispatch.at(0);
  EXPECT_EQ(p.nextWakeup(), 50ms) << "the loop wakes for the deadline";
  EXPECT_TRUE(p.at(49ms).cancel.empty());

  const PlanStep s = p.at(50ms);
  ASSERT_EQ(s.cancel.size(), 1u);
  EXPECT_EQ(s.cancel[0].job, slow);
  EXPECT_EQ(s.cancel[0].run, run.run);
  EXPECT_TRUE(contains(s.changed, slow));
  const CollectorStatus st = p.plan.status(slow);
  EXPECT_EQ(st.runs, 1u);
  EXPECT_EQ(st.errors, 1u);
  EXPECT_FALSE(st.last_success);
  EXPECT_NE(st.last_error.find("deadline_exceeded"), std::string::npos) << st.last_error;
  EXPECT_NE(st.last_error.find("timed out"), std::string::npos) << st.last_error;
  EXPECT_EQ(st.last_run, kWall0 + 50ms);
  EXPECT_TRUE(st.running) << "the collector has not returned yet";
  EXPECT_EQ(p.plan.timeouts(slow), 1u);
  EXPECT_TRUE(p.plan.isRunning(slow, run.run));
  EXPECT_TRUE(p.plan.firstCycleDone()) << "a timed-out run counts as finished";
  EXPECT_TRUE(p.at(60ms).cancel.empty()) << "cancelled once";
  EXPECT_EQ(p.nextWakeup(), 10s) << "no wake-up for a deadline already handled";

  EXPECT_FALSE(p.finish(run, 900ms)) << "the late OK is discarded";
  const CollectorStatus after = p.plan.status(slow);
  EXPECT_EQ(after.runs, 1u) << "the late return is not a second run";
  EXPECT_FALSE(after.last_success);
  EXPECT_FALSE(after.running);
  EXPECT_FALSE(p.plan.isRunning(slow, run.run));
}

TEST(SchedulePlanTest, AResultInBeforeTheDeadlineIsNeverTimedOut) {
  Plan p;
  p.add("a", every(10s, 50ms));
  p.start();
  const Dispatch run = p.at(0ms).dispatch.at(0);
  std::vector<PlanLog> logs;
  // Recorded, not yet returned (its samples are being published) when the deadline passes.
  ASSERT_TRUE(p.plan.onFinished(0, run.run, okStatus(), Duration(49), kT0 + 49ms, kWall0, logs));
  EXPECT_TRUE(p.at(60ms).cancel.empty());
  EXPECT_TRUE(p.plan.status(0).last_success);
  EXPECT_EQ(p.plan.timeouts(0), 0u);
}

TEST(SchedulePlanTest, TimeoutEqualToIntervalTimesOutThenSkipsWhileTheRunIsStuck) {
  Plan p;
  const size_t stuck = p.add("stuck", every(20ms, 20ms));
  p.start();
  p.at(0ms);
  PlanStep s = p.at(20ms);
  EXPECT_EQ(s.cancel.size(), 1u);
  EXPECT_TRUE(s.dispatch.empty());
  EXPECT_EQ(p.plan.skipped(stuck), 1u);
  s = p.at(40ms);
  EXPECT_TRUE(contains(s.changed, stuck));
  EXPECT_EQ(p.plan.skipped(stuck), 2u);
}

// Drives one job whose every run times out and returns late, up to `timeouts` timeouts;
// returns the backoff after each.
std::vector<Duration> backoffsOverTimeouts(Plan& p, int timeouts) {
  std::vector<Duration> out;
  while (static_cast<int>(out.size()) < timeouts) {
    const MonotonicTime t = p.plan.nextWakeup();
    const auto offset = std::chrono::duration_cast<milliseconds>(t - kT0);
    const PlanStep s = p.at(offset);
    for (const Dispatch& d : s.dispatch) EXPECT_EQ(d.job, 0u);
    if (!s.cancel.empty()) {
      out.push_back(p.plan.status(0).backoff);
      // Returns right after the cancel, with the collector's own timeout error.
      EXPECT_FALSE(p.finish({0, s.cancel[0].run, t}, offset + 1ms, deadlineExceeded("statement")));
    }
  }
  return out;
}

TEST(SchedulePlanTest, BacksOffAfterRepeatedTimeoutsAndSaysSo) {
  Plan p;
  p.add("slow", every(100ms, 10ms));
  p.start();
  const std::vector<Duration> backoffs = backoffsOverTimeouts(p, kBackoffAfterTimeouts);
  EXPECT_EQ(backoffs, (std::vector<Duration>{0ms, 0ms, 200ms})) << "first: twice the interval";
  EXPECT_EQ(p.plan.status(0).errors, static_cast<uint64_t>(kBackoffAfterTimeouts));
  // The third run started at 200 ms and timed out at 210 ms: held until 410 ms. Its ticks
  // pass without a run and are not skips.
  EXPECT_TRUE(p.at(300ms).dispatch.empty());
  EXPECT_EQ(p.plan.skipped(0), 0u);
  EXPECT_EQ(p.nextWakeup(), 400ms);
  EXPECT_TRUE(p.at(400ms).dispatch.empty());
  EXPECT_EQ(p.at(500ms).dispatch.size(), 1u);
}

TEST(SchedulePlanTest, BackoffDoublesWhileTimeoutsContinueAndIsCapped) {
  Plan p;
  p.add("slow", every(60s, 1s));
  p.start();
  const std::vector<Duration> backoffs = backoffsOverTimeouts(p, 7);
  EXPECT_EQ(backoffs, (std::vector<Duration>{0s, 0s, 120s, 240s, 480s, kMaxBackoff, kMaxBackoff}));
}

TEST(SchedulePlanTest, AnyOtherOutcomeEndsTheTimeoutStreak) {
  Plan p;
  p.add("flaky", every(100ms, 10ms));
  p.start();
  backoffsOverTimeouts(p, 2);
  const PlanStep s = p.at(p.nextWakeup());
  ASSERT_EQ(s.dispatch.size(), 1u);
  ASSERT_TRUE(p.finish(s.dispatch[0], p.nextWakeup() - 5ms, unavailable("refused")));
  EXPECT_EQ(backoffsOverTimeouts(p, 2), (std::vector<Duration>{0ms, 0ms}));
}

TEST(SchedulePlanTest, FailedPreconditionSwitchesTheJobOffWithItsReasonUntilARareRetry) {
  Plan p;
  const size_t off = p.add("statements", every(20ms, 10ms));
  const size_t other = p.add("other", every(20ms, 10ms));
  p.start();
  PlanStep s = p.at(0ms);
  ASSERT_EQ(s.dispatch.size(), 2u);
  ASSERT_TRUE(
      p.finish(s.dispatch[0], 1ms,
               failedPrecondition("extension_missing", "pg_stat_statements is not installed")));
  ASSERT_TRUE(p.finish(s.dispatch[1], 1ms));
  EXPECT_EQ(p.plan.status(off).disabled_reason, "extension_missing");
  EXPECT_TRUE(p.plan.status(other).disabled_reason.empty());
  EXPECT_TRUE(p.plan.firstCycleDone()) << "a switched-off job must not block readiness";

  // Retried only kDisabledRetry (> 10 x 20 ms) after that run ended; the other job runs on.
  for (milliseconds t = 20ms; t <= kDisabledRetry; t += 20ms) {
    s = p.at(t);
    ASSERT_EQ(jobsOf(s.dispatch), std::vector<size_t>{other}) << t.count();
    ASSERT_TRUE(p.finish(s.dispatch[0], t + 1ms));
  }
  EXPECT_EQ(p.plan.skipped(off), 0u);
  s = p.at(kDisabledRetry + 20ms);
  ASSERT_EQ(jobsOf(s.dispatch), (std::vector<size_t>{off, other}));
  ASSERT_TRUE(p.finish(s.dispatch[0], kDisabledRetry + 21ms));
  EXPECT_TRUE(p.plan.status(off).disabled_reason.empty()) << "fixed meanwhile: switched on";
}

TEST(SchedulePlanTest, AFailedPreconditionWithoutALowerCaseCodeHasAGenericReason) {
  for (const std::string message :
       {"pg_stat_statements is not installed", "Host 10.0.0.1: refused", ": empty code",
        "a_code_much_longer_than_forty_characters_is_not_a_code: x"}) {
    SCOPED_TRACE(message);
    Plan p;
    p.add("a", every(20ms, 10ms));
    p.start();
    ASSERT_TRUE(p.finish(p.at(0ms).dispatch.at(0), 1ms, failedPrecondition(message)));
    EXPECT_EQ(p.plan.status(0).disabled_reason, "precondition");
  }
}

TEST(SchedulePlanTest, LogsOneLinePerChangeOfState) {
  Plan p;
  p.add("pg", every(20ms, 10ms));
  p.start();
  const std::vector<Status> outcomes{unavailable("refused"), unavailable("refused"),
                                     unavailable("reset"), okStatus(), okStatus()};
  milliseconds t = 0ms;
  for (const Status& outcome : outcomes) {
    ASSERT_TRUE(p.finish(p.at(t).dispatch.at(0), t + 1ms, outcome));
    t += 20ms;
  }
  ASSERT_EQ(p.logs.size(), 3u);
  EXPECT_EQ(p.logs[0].level, PlanLog::Level::kError);
  EXPECT_EQ(p.logs[0].text, "collector pg: unavailable: refused");
  EXPECT_EQ(p.logs[1].text, "collector pg: unavailable: reset");
  EXPECT_EQ(p.logs[2].level, PlanLog::Level::kInfo);
  EXPECT_EQ(p.logs[2].text, "collector pg: recovered");
  const CollectorStatus st = p.plan.status(0);
  EXPECT_EQ(st.runs, 5u);
  EXPECT_EQ(st.errors, 3u);
  EXPECT_TRUE(st.last_error.empty());
  EXPECT_EQ(st.last_duration, 1ms);
  EXPECT_EQ(st.last_run, kWall0 + 81ms);
}

TEST(SchedulePlanTest, LeaderOnlyJobsWaitOnStandbyAndTakeOverAtOnceWhenElected) {
  Plan p;
  JobOptions database_wide = every(10s, 1s);
  database_wide.leader_only = true;
  const size_t wide = p.add("statements", database_wide);
  const size_t local = p.add("process", every(20ms, 10ms));
  p.plan.setLeader(false);
  p.start();

  PlanStep s = p.at(0ms);
  ASSERT_EQ(jobsOf(s.dispatch), std::vector<size_t>{local}) << "a follower does not run it";
  ASSERT_TRUE(p.finish(s.dispatch[0], 1ms));
  s = p.at(20ms);
  ASSERT_EQ(jobsOf(s.dispatch), std::vector<size_t>{local});
  ASSERT_TRUE(p.finish(s.dispatch[0], 21ms));
  EXPECT_TRUE(p.plan.status(wide).standby);
  EXPECT_FALSE(p.plan.status(local).standby);
  EXPECT_TRUE(p.plan.firstCycleDone()) << "standby must not hold readiness back";

  // Elected at 30 ms: the job runs now, not at its next due time 10 s away.
  p.plan.setLeader(true);
  s = p.at(30ms);
  ASSERT_EQ(jobsOf(s.dispatch), std::vector<size_t>{wide});
  EXPECT_FALSE(p.plan.status(wide).standby);
  ASSERT_TRUE(p.finish(s.dispatch[0], 31ms));
  EXPECT_EQ(p.nextWakeup(), 40ms);

  // Deposed: no further runs even when due.
  p.plan.setLeader(false);
  for (milliseconds t = 40ms; t <= 20s; t += 20ms) {
    s = p.at(t);
    ASSERT_FALSE(contains(jobsOf(s.dispatch), wide)) << t.count();
    for (const Dispatch& d : s.dispatch) ASSERT_TRUE(p.finish(d, t + 1ms));
  }
  EXPECT_TRUE(p.plan.status(wide).standby);
  EXPECT_EQ(p.plan.status(wide).runs, 1u);
  EXPECT_EQ(p.plan.skipped(wide), 0u);
}

TEST(SchedulePlanTest, AnHourlyJobThatFindsItsServerUnreachableRetriesSoonNotInAnHour) {
  Plan p;
  const size_t hourly = p.add("advisor", every(1h, 2min));
  p.start();
  PlanStep s = p.at(0ms);
  ASSERT_EQ(jobsOf(s.dispatch), std::vector<size_t>{hourly});
  ASSERT_TRUE(p.finish(s.dispatch[0], 1s, unavailable("connection refused")));
  EXPECT_EQ(p.nextWakeup(), 1s + kUnreachableRetry);
  EXPECT_TRUE(p.at(30s).dispatch.empty());
  s = p.at(31s);
  ASSERT_EQ(jobsOf(s.dispatch), std::vector<size_t>{hourly}) << "the retry";
  ASSERT_TRUE(p.finish(s.dispatch[0], 32s));
  EXPECT_TRUE(p.plan.status(hourly).last_success);
  // Back on its hourly grid from the first run: the retry did not move it.
  EXPECT_EQ(p.nextWakeup(), milliseconds(1h));
  s = p.at(1h);
  ASSERT_EQ(jobsOf(s.dispatch), std::vector<size_t>{hourly});
  ASSERT_TRUE(p.finish(s.dispatch[0], 1h + 1s, internalError("syntax error")));
  EXPECT_EQ(p.nextWakeup(), milliseconds(2h)) << "other failures wait for the next tick";
}

TEST(SchedulePlanTest, AJobThatSeesItsServerGoOrComeBackRunsTheServersProbeAtOnce) {
  Plan p;
  JobOptions advisor_options = every(1h, 2min);
  advisor_options.probe = "connections";
  JobOptions stats_options = every(15s, 5s);
  stats_options.probe = "connections";
  const size_t advisor = p.add("advisor", advisor_options);
  const size_t probe = p.add("connections", every(15s, 5s));
  const size_t stats = p.add("stats", stats_options);
  p.start();
  PlanStep s = p.at(0ms);
  ASSERT_EQ(s.dispatch.size(), 3u);
  ASSERT_TRUE(p.finish(s.dispatch[1], 100ms));
  ASSERT_TRUE(p.finish(s.dispatch[2], 100ms));
  EXPECT_EQ(p.nextWakeup(), 15s);

  // The server goes away during the advisor's run: its failure brings the probe forward.
  ASSERT_TRUE(p.finish(s.dispatch[0], 2s, unavailable("connection lost")));
  EXPECT_EQ(p.nextWakeup(), 2s);
  s = p.at(2s);
  ASSERT_EQ(jobsOf(s.dispatch), std::vector<size_t>{probe});
  ASSERT_TRUE(p.finish(s.dispatch[0], 2100ms, unavailable("connection refused")));
  EXPECT_EQ(p.nextWakeup(), 15s) << "the probe keeps its own grid";

  // The probe already says the server is down: another job's failure does not rerun it.
  s = p.at(15s);
  ASSERT_EQ(jobsOf(s.dispatch), (std::vector<size_t>{probe, stats}));
  ASSERT_TRUE(p.finish(s.dispatch[0], 15100ms, unavailable("connection refused")));
  ASSERT_TRUE(p.finish(s.dispatch[1], 15200ms, unavailable("connection refused")));
  EXPECT_EQ(p.nextWakeup(), 30s);
  EXPECT_EQ(p.plan.status(probe).runs, 3u);

  // The probe still finds it down, but the next job reaches it: the probe runs at once.
  s = p.at(30s);
  ASSERT_EQ(jobsOf(s.dispatch), (std::vector<size_t>{probe, stats}));
  ASSERT_TRUE(p.finish(s.dispatch[0], 30100ms, unavailable("connection refused")));
  ASSERT_TRUE(p.finish(s.dispatch[1], 30200ms));
  EXPECT_EQ(p.nextWakeup(), 30200ms);
  s = p.at(30200ms);
  ASSERT_EQ(jobsOf(s.dispatch), std::vector<size_t>{probe});
  ASSERT_TRUE(p.finish(s.dispatch[0], 30300ms));
  EXPECT_EQ(p.nextWakeup(), 32s) << "the advisor's retry, 30 s after its failure";

  // Not for other failures.
  s = p.at(32s);
  ASSERT_EQ(jobsOf(s.dispatch), std::vector<size_t>{advisor});
  ASSERT_TRUE(p.finish(s.dispatch[0], 33s, internalError("bad plan")));
  EXPECT_EQ(p.nextWakeup(), 45s);

  // Nor while the probe is running: its own result is on the way.
  s = p.at(45s);
  ASSERT_EQ(jobsOf(s.dispatch), (std::vector<size_t>{probe, stats}));
  ASSERT_TRUE(p.finish(s.dispatch[1], 45100ms, unavailable("connection lost")));
  ASSERT_TRUE(p.finish(s.dispatch[0], 45200ms));
  EXPECT_EQ(p.nextWakeup(), 60s);
  EXPECT_EQ(p.plan.status(probe).runs, 6u);
}

TEST(SchedulePlanTest, FirstCycleDoneOnlyAfterEveryForegroundJobFinishedOnce) {
  Plan p;
  const size_t quick = p.add("quick", every(10s, 5s));
  p.add("slow", every(10s, 5s));
  JobOptions hourly = every(3600s, 120s);
  hourly.background = true;
  p.add("advisor", hourly);
  p.start();
  const PlanStep s = p.at(0ms);
  ASSERT_EQ(s.dispatch.size(), 3u);
  ASSERT_TRUE(p.finish(s.dispatch[quick], 1ms));
  EXPECT_FALSE(p.plan.firstCycleDone()) << "slow has not finished its first run";
  ASSERT_TRUE(p.finish(s.dispatch[1], 2s));
  EXPECT_TRUE(p.plan.firstCycleDone()) << "the running background job is not waited for";
  EXPECT_TRUE(p.plan.status(2).running);
}

TEST(CollectorStatusTest, HoldsReadinessUntilItsFirstRunUnlessOnStandbyOrInTheBackground) {
  CollectorStatus s;
  EXPECT_TRUE(s.holdsReadiness());
  s.standby = true;
  EXPECT_FALSE(s.holdsReadiness());
  s.standby = false;
  s.background = true;
  EXPECT_FALSE(s.holdsReadiness());
  s.background = false;
  s.has_run = true;  // failed, timed out or switched off all count
  s.last_success = false;
  s.disabled_reason = "privilege_missing";
  EXPECT_FALSE(s.holdsReadiness());
}

}  // namespace
}  // namespace dbpulse
