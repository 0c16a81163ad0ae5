// Review 4(d)1: reload() dropped the old pipeline although its scheduler had not stopped,
// freeing collectors and sessions under a worker still inside collect().
#include "agent/retirer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>

#include "agent/scheduler.h"
#include "tests/fakes/fake_clock.h"

namespace dbpulse {
namespace {

using namespace std::chrono_literals;

// collect() blocks until released and ignores cancel(), like a client without a deadline.
class StuckCollector final : public collectors::Collector {
 public:
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    bool released = false;  // guarded by mu
    bool entered = false;   // guarded by mu
    std::atomic<bool> returned{false};
    // Blocks until collect() was entered (a failure bound of `cap`).
    bool waitEntered(std::chrono::milliseconds cap = 5s) {
      std::unique_lock lock(mu);
      return cv.wait_for(lock, cap, [this] { return entered; });
    }
  };
  explicit StuckCollector(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}
  const std::string& name() const override { return name_; }
  Status collect(const collectors::CollectContext&, SampleBatch&) override {
    std::unique_lock lock(shared_->mu);
    shared_->entered = true;
    shared_->cv.notify_all();
    shared_->cv.wait_for(lock, 5s, [this] { return shared_->released; });
    shared_->returned = true;
    return okStatus();
  }

 private:
  std::string name_ = "stuck";
  std::shared_ptr<Shared> shared_;
};

struct FakePipeline {
  fakes::FakeClock clock;
  SampleStore store{clock};
  std::unique_ptr<Scheduler> scheduler = std::make_unique<Scheduler>(store, clock, 1);
};

TEST(RetirerTest, KeepsAPipelineWhoseSchedulerDidNotStopUntilItDrains) {
  auto shared = std::make_shared<StuckCollector::Shared>();
  auto pipeline = std::make_shared<FakePipeline>();
  JobOptions every;
  every.interval = 10s;
  every.timeout = 10s;
  every.jitter = 0;
  pipeline->scheduler->add(std::make_unique<StuckCollector>(shared), every);
  pipeline->scheduler->start();
  ASSERT_TRUE(shared->waitEntered());

  Retirer<FakePipeline> retirer;
  std::weak_ptr<FakePipeline> watch = pipeline;
  EXPECT_FALSE(retirer.retire(std::move(pipeline), 100ms));
  EXPECT_FALSE(watch.expired()) << "freed while a worker is inside collect()";
  EXPECT_EQ(retirer.reap(), 1u);

  {
    std::lock_guard lock(shared->mu);
    shared->released = true;
  }
  shared->cv.notify_all();
  {
    // Blocks until the worker has left (no reference kept past this scope).
    const std::shared_ptr<FakePipeline> kept = watch.lock();
    ASSERT_TRUE(kept);
    ASSERT_TRUE(kept->scheduler->waitDrained(5s));
  }
  EXPECT_EQ(retirer.reap(), 0u);
  EXPECT_TRUE(watch.expired()) << "a drained pipeline is freed";
  EXPECT_TRUE(shared->returned);
}

TEST(RetirerTest, FreesAPipelineThatStopped) {
  auto pipeline = std::make_shared<FakePipeline>();
  pipeline->scheduler->start();
  std::weak_ptr<FakePipeline> watch = pipeline;
  Retirer<FakePipeline> retirer;
  EXPECT_TRUE(retirer.retire(std::move(pipeline), 1s));
  EXPECT_TRUE(watch.expired());
  EXPECT_TRUE(retirer.retire(nullptr, 1s));
}

}  // namespace
}  // namespace dbpulse
