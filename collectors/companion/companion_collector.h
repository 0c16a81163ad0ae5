#pragma once
// `companion`: is the chat server beside us healthy, and what do its own metrics say?
//
// Per run, over one kept-alive HTTP connection (HttpClient):
//   GET health_url  -> dbpulse_companion_up (1 on a 2xx answer within the timeout),
//                      dbpulse_companion_health_status_code (0 when nothing answered),
//                      dbpulse_companion_health_latency_seconds (only when it answered)
//   GET metrics_url -> the chat server's Prometheus text exposition, parsed
//                      (text_parser.h) into series under the chat server's own names, so
//                      rules can use http_requests_total, http_request_duration_seconds_bucket
//                      etc.; plus dbpulse_companion_metrics_up,
//                      dbpulse_companion_scrape_duration_seconds, dbpulse_companion_scrape_samples,
//                      dbpulse_companion_scrape_rejected_samples{reason="invalid|duplicate|
//                      reserved_name"}, dbpulse_companion_scrape_truncated.
// Without a health_url, dbpulse_companion_up follows the metrics scrape.
//
// The chat server's series are kept for rules and the admin API but are NOT on dbpulse's
// /metrics (Prometheus scrapes the chat server itself) unless `reexport` is set. They are
// stored flat, as Prometheus stores them: histogram and summary samples under their
// written names (x_bucket{le}, x_sum, x_count, x{quantile}) as untyped families; counters
// and gauges keep their type. Sample timestamps are parsed but not used: every series is
// stored at the scrape's time. Names dbpulse owns (dbpulse_*, pg_up, redis_up, ALERTS,
// ALERTS_FOR_STATE) are never taken from the chat server (counted as reserved_name).
//
// Errors: the client's Status for the first endpoint that did not answer (Unavailable,
// DeadlineExceeded), Unavailable for a non-2xx health answer or a non-200 metrics answer,
// FailedPrecondition "invalid_url" for a URL curl cannot use. No exception escapes.
//
// Threading: per the Collector contract; cancel() may be called from any thread.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "collectors/collector.h"
#include "collectors/companion/text_parser.h"

namespace dbpulse::collectors {

class HttpClient;

struct CompanionCollectorOptions {
  std::string health_url;
  std::string metrics_url;
  bool reexport = false;
  std::chrono::milliseconds timeout{5000};  // per request; the run's deadline also bounds it
  // Bounds on what one scrape may cost in memory, whatever the chat server sends: the body,
  // the series kept (each has a history in the store) and their names and labels.
  size_t max_body_bytes = 4 * 1024 * 1024;
  size_t max_series = 5'000;  // chat-server series per scrape; more are dropped (truncated)
  size_t max_label_bytes = 1024 * 1024;  // names + labels of the kept series
  size_t max_label_value_bytes = 1024;   // a longer label value rejects its line
};

// What chatSeriesToSamples() kept and dropped.
struct ChatSeriesCounts {
  size_t stored = 0;
  size_t reserved = 0;
};

// True for names the chat server may not write into dbpulse's store.
bool isReservedSeriesName(std::string_view name);

// Parsed exposition -> samples under the chat server's names, their families marked
// exported only when `reexport`. Pure.
ChatSeriesCounts chatSeriesToSamples(const ParsedExposition& parsed, bool reexport,
                                     SampleBatch& out);

class CompanionCollector final : public Collector {
 public:
  explicit CompanionCollector(CompanionCollectorOptions options);
  ~CompanionCollector() override;

  const std::string& name() const override { return name_; }
  Status collect(const CollectContext& ctx, SampleBatch& out) override;
  void cancel() override;

  // New TCP connections opened so far (tests check connection reuse).
  uint64_t connectionsOpened() const;

 private:
  Status collectHealth(const CollectContext& ctx, SampleBatch& out, bool& up);
  Status collectMetrics(const CollectContext& ctx, SampleBatch& out, bool& up);
  std::chrono::milliseconds requestTimeout(const CollectContext& ctx) const;

  const std::string name_ = "companion";
  const CompanionCollectorOptions options_;
  std::unique_ptr<HttpClient> fetcher_;
};

}  // namespace dbpulse::collectors
