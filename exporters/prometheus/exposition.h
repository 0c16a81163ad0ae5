#pragma once
// Renders the sample store's latest snapshot in the Prometheus text format,
// through prometheus-cpp (a Collectable over the snapshot + TextSerializer).
// No database I/O: a scrape only reads memory. The rendered text is cached per
// snapshot version, so repeated scrapes between collector runs cost a copy; so is its
// gzip encoding (compressed once per snapshot, the first time a scraper asks for it).
// Thread-safe.

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "agent/core/mutex.h"

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
  // The same text, gzip-encoded (RFC 1952), for a scraper that accepts gzip.
  std::shared_ptr<const std::string> renderGzip();

 private:
  // Brings cached_ up to the store's latest snapshot.
  void refresh() REQUIRES(mu_);

  const SampleStore& store_;
  Mutex mu_;
  uint64_t cached_version_ GUARDED_BY(mu_) = 0;
  std::shared_ptr<const std::string> cached_ GUARDED_BY(mu_);
  std::shared_ptr<const std::string> cached_gzip_ GUARDED_BY(mu_);  // null until asked
};

// gzip (RFC 1952) of `data` at zlib's default level.
std::string gzipCompress(const std::string& data);

// Counters whose writer renews them at least this often are exposed with their
// collection timestamp while it keeps doing so (see exposition.cpp); other counters and
// every gauge without.
inline constexpr int64_t kTimestampedRenewMaxMs = 300'000;

// One-off rendering of a snapshot (for `dbpulse once` and tests).
std::string renderText(const Snapshot& snapshot);

}  // namespace dbpulse::exporters
