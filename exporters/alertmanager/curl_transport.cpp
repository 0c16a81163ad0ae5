// AlertTransport over the shared libcurl adapter (collectors/clients/http): the notifier
// itself never sees curl.

#include <atomic>
#include <memory>

#include "collectors/clients/http/http_client.h"
#include "exporters/alertmanager/alert_transport.h"

namespace dbpulse::exporters {
namespace {

class CurlTransport final : public AlertTransport {
 public:
  CurlTransport(std::string url, CurlTransportOptions options)
      : url_(std::move(url)), options_(std::move(options)), client_(clientOptions(options_)) {}

  TransportResult post(const std::string& json_body) override {
    TransportResult result;
    // One easy handle, reused between posts: it keeps its connection and DNS caches.
    auto r = client_.post(url_, json_body, "application/json", options_.timeout,
                          options_.connect_timeout, options_.max_response_bytes);
    if (!r.ok()) {
      result.detail = r.status().message();
      result.cancelled = r.status().code() == StatusCode::kCancelled;
      return result;
    }
    result.status = r->status;
    result.detail = std::move(r->body);
    return result;
  }

  // The progress callback runs about once a second even while stalled: cancel() ends a post
  // that waits on an unresponsive server, so shutdown stays fast.
  void cancel() override { client_.shutdown(); }

 private:
  static collectors::HttpClientOptions clientOptions(const CurlTransportOptions& o) {
    collectors::HttpClientOptions c;
    c.accept = "application/json";
    c.user_agent = o.user_agent;
    return c;
  }

  const std::string url_;
  const CurlTransportOptions options_;
  collectors::HttpClient client_;
};

}  // namespace

std::unique_ptr<AlertTransport> makeCurlTransport(const std::string& alerts_url,
                                                  CurlTransportOptions options) {
  return std::make_unique<CurlTransport>(alerts_url, std::move(options));
}

}  // namespace dbpulse::exporters
