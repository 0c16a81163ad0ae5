// Review 4(d)1: reload() dropped the old pipeline although its scheduler had not stopped,
// freeing collectors and sessions under a worker still inside collect().
#include "agent/retirer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "agent/scheduler.h"

namespace dbpulse {
namespace {

using namespace std::chrono_literals;

class FixedClock final : public Clock {
 public:
  WallTime now() const override { return WallTime(std::chrono::milliseconds(1'700'000'000'000)); }
};

// collect() blocks until released and ignores cancel(), like a client without a deadline.
class StuckCollector final : public collectors::Collector {
 public:
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    bool released = false;
    std::atomic<bool> entered{false};
    std::atomic<bool> returned{false};
  };
  explicit StuckCollector(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}
  const std::string& name() const override { return name_; }
  Status collect(const collectors::CollectContext&, SampleBatch&) override {
    shared_->entered = true;
    std::unique_lock lock(shared_->mu);
    shared_->cv.wait_for(lock, 5s, [this] { return shared_->released; });
    shared_->returned = true;
    return okStatus();
  }

 private:
  std::string name_ = "stuck";
  std::shared_ptr<Shared> shared_;
};

struct FakePipeline {
  FixedClock clock;
  SampleStore store{clock};
  std::unique_ptr<Scheduler> scheduler = std::make_unique<Scheduler>(store, clock, 1);
};

template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 3s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

TEST(RetirerTest, KeepsAPipelineWhoseSchedulerDidNotStopUntilItDrains) {
  auto shared = std::make_shared<StuckCollector::Shared>();
  auto pipeline = std::make_shared<FakePipeline>();
  JobOptions every;
  every.interval = 10s;
  every.timeout = 10s;
  every.jitter = 0;
  pipeline->scheduler->add(std::make_unique<StuckCollector>(shared), every);
  pipeline->scheduler->start();
  ASSERT_TRUE(eventually([&] { return shared->entered.load(); }));

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
  ASSERT_TRUE(eventually([&] { return retirer.reap() == 0; }));
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
