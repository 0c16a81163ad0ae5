#include "agent/job.h"

namespace dbpulse {
namespace {

class CollectorJob final : public Job {
 public:
  explicit CollectorJob(std::unique_ptr<collectors::Collector> collector)
      : collector_(std::move(collector)) {}
  const std::string& name() const override { return collector_->name(); }
  Status run(const JobContext& ctx, SampleBatch& out) override {
    return collector_->collect(ctx, out);
  }
  void cancel() override { collector_->cancel(); }

 private:
  const std::unique_ptr<collectors::Collector> collector_;
};

}  // namespace

std::unique_ptr<Job> collectorJob(std::unique_ptr<collectors::Collector> collector) {
  return std::make_unique<CollectorJob>(std::move(collector));
}

}  // namespace dbpulse
