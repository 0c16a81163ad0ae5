#pragma once
// Renders the sample store's latest snapshot in the Prometheus text format,
// through prometheus-cpp (a Collectable over the snapshot + TextSerializer).
// No database I/O: a scrape only reads memory. The rendered text is cached per
// snapshot version, so repeated scrapes between collector runs cost a copy.
// Thread-safe.

#include <memory>
#include <mutex>
#include <string>

namespace dbpulse {
class SampleStore;
struct Snapshot;
}  // namespace dbpulse

namespace dbpulse::exporters {

class Exposition {
 public:
  explicit Exposition(const SampleStore& store) : store_(store) {}

  // The text for GET /metrics.
  std::shared_ptr<const std::string> render();

 private:
  const SampleStore& store_;
  std::mutex mu_;
  uint64_t cached_version_ = 0;
  std::shared_ptr<const std::string> cached_;
};

// One-off rendering of a snapshot (for `dbpulse once` and tests).
std::string renderText(const Snapshot& snapshot);

}  // namespace dbpulse::exporters
