#include "collectors/companion/companion_collector.h"

#include <algorithm>
#include <exception>

#include "collectors/clients/http/http_client.h"

namespace dbpulse::collectors {
namespace {

using std::chrono::milliseconds;

// Ask for the classic text format: OpenMetrics adds exemplars and `# EOF`, protobuf is
// binary; prom-client serves text either way.
constexpr const char* kAccept = "text/plain;version=0.0.4;q=1.0,*/*;q=0.1";

MetricType storedType(const ExpositionSample& s, const ExpositionFamily* family) {
  // Only a sample named like its family is a plain counter/gauge; histogram and summary
  // pieces (and anything undeclared) are stored untyped, flat, as Prometheus does.
  if (family == nullptr || family->name != s.name) return MetricType::kUntyped;
  switch (family->type) {
    case ExpositionType::kCounter:
      return MetricType::kCounter;
    case ExpositionType::kGauge:
      return MetricType::kGauge;
    default:
      return MetricType::kUntyped;
  }
}

Status failure(const Status& s) {
  if (s.code() == StatusCode::kInvalidArgument) {
    return failedPrecondition(
        "invalid_url", "companion: " + s.message() + " (fix [companion] health_url / metrics_url)");
  }
  return Status(s.code(), "companion: " + s.message());
}

}  // namespace

bool isReservedSeriesName(std::string_view name) {
  return name.rfind("dbpulse_", 0) == 0 || name == "pg_up" || name == "redis_up" ||
         name == "ALERTS" || name == "ALERTS_FOR_STATE";
}

ChatSeriesCounts chatSeriesToSamples(const ParsedExposition& parsed, bool reexport,
                                     SampleBatch& out) {
  ChatSeriesCounts counts;
  for (const auto& s : parsed.samples) {
    if (isReservedSeriesName(s.name)) {
      ++counts.reserved;
      continue;
    }
    const ExpositionFamily* family = parsed.familyOf(s);
    const std::string help = family != nullptr && !family->help.empty()
                                 ? family->help
                                 : std::string("Scraped from the chat server's metrics_url.");
    out.describe(s.name, storedType(s, family), help, reexport);
    out.add(s.name, s.labels, s.value);
    ++counts.stored;
  }
  return counts;
}

CompanionCollector::CompanionCollector(CompanionCollectorOptions options)
    : options_(std::move(options)) {
  HttpClientOptions fetch;
  fetch.max_body_bytes = options_.max_body_bytes;
  fetch.accept = kAccept;
  fetcher_ = std::make_unique<HttpClient>(fetch);
}

CompanionCollector::~CompanionCollector() = default;

void CompanionCollector::cancel() { fetcher_->cancel(); }

uint64_t CompanionCollector::connectionsOpened() const { return fetcher_->connectionsOpened(); }

milliseconds CompanionCollector::requestTimeout(const CollectContext& ctx) const {
  const auto left =
      std::chrono::duration_cast<milliseconds>(ctx.deadline - std::chrono::steady_clock::now());
  return std::max(milliseconds(1), std::min(options_.timeout, left));
}

Status CompanionCollector::collectHealth(const CollectContext& ctx, SampleBatch& out, bool& up) {
  const milliseconds timeout = requestTimeout(ctx);
  auto r = fetcher_->get(options_.health_url, timeout, timeout);
  const long code = r.ok() ? r->status : 0;
  up = r.ok() && code >= 200 && code < 300;
  out.gauge("dbpulse_companion_health_status_code",
            "HTTP status of the chat server's health_url (0: no answer).", {},
            static_cast<double>(code));
  if (r.ok()) {
    out.gauge("dbpulse_companion_health_latency_seconds",
              "Time the chat server's health_url took to answer.", {}, r->elapsed.count());
  }
  if (!r.ok()) return failure(r.status());
  if (!up) {
    return unavailable("companion: GET " + redactUrl(options_.health_url) + " answered " +
                       std::to_string(code));
  }
  return okStatus();
}

Status CompanionCollector::collectMetrics(const CollectContext& ctx, SampleBatch& out, bool& up) {
  const auto t0 = std::chrono::steady_clock::now();
  const milliseconds timeout = requestTimeout(ctx);
  auto r = fetcher_->get(options_.metrics_url, timeout, timeout);
  Status status;
  if (!r.ok()) {
    status = failure(r.status());
  } else if (r->status != 200) {
    status = unavailable("companion: GET " + redactUrl(options_.metrics_url) + " answered " +
                         std::to_string(r->status));
  } else {
    TextParserOptions parse;
    parse.max_samples = options_.max_series;
    parse.max_label_bytes = options_.max_label_bytes;
    parse.max_label_value_bytes = options_.max_label_value_bytes;
    const ParsedExposition parsed = parseTextExposition(r->body, parse);
    const ChatSeriesCounts counts = chatSeriesToSamples(parsed, options_.reexport, out);
    out.gauge("dbpulse_companion_scrape_samples",
              "Chat-server series stored by the last scrape of metrics_url.", {},
              static_cast<double>(counts.stored));
    out.describe("dbpulse_companion_scrape_rejected_samples", MetricType::kGauge,
                 "Lines or samples of the last scrape that were not stored, by reason.");
    out.add("dbpulse_companion_scrape_rejected_samples", Labels{{"reason", "invalid"}},
            static_cast<double>(parsed.rejected_lines));
    out.add("dbpulse_companion_scrape_rejected_samples", Labels{{"reason", "duplicate"}},
            static_cast<double>(parsed.duplicates));
    out.add("dbpulse_companion_scrape_rejected_samples", Labels{{"reason", "reserved_name"}},
            static_cast<double>(counts.reserved));
    out.gauge("dbpulse_companion_scrape_truncated",
              "1 when the last scrape had more series than dbpulse keeps (the rest dropped).", {},
              parsed.truncated ? 1 : 0);
    out.gauge("dbpulse_companion_scrape_size_bytes", "Size of the last metrics_url response.", {},
              static_cast<double>(r->body.size()));
  }
  up = status.ok();
  out.gauge("dbpulse_companion_metrics_up",
            "1 when the last scrape of the chat server's metrics_url succeeded.", {}, up ? 1 : 0);
  out.gauge("dbpulse_companion_scrape_duration_seconds",
            "Time the last scrape of metrics_url took, parsing included.", {},
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return status;
}

Status CompanionCollector::collect(const CollectContext& ctx, SampleBatch& out) {
  try {
    Status first;
    bool health_up = false, metrics_up = false;
    if (!options_.health_url.empty()) first = collectHealth(ctx, out, health_up);
    if (!options_.metrics_url.empty() && !ctx.stop.stop_requested()) {
      Status s = collectMetrics(ctx, out, metrics_up);
      if (first.ok()) first = std::move(s);
    }
    const bool up = options_.health_url.empty() ? metrics_up : health_up;
    out.gauge("dbpulse_companion_up",
              "1 when the chat server answered its health_url with 2xx (without a health_url: "
              "when its metrics_url was scraped).",
              {}, up ? 1 : 0);
    return first;
  } catch (const std::exception& e) {
    return internalError(std::string("companion: ") + e.what());
  }
}

}  // namespace dbpulse::collectors
