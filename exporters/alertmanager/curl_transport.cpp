// libcurl adapter behind AlertTransport: the only file of the notifier that includes curl.

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>

#include "exporters/alertmanager/alert_transport.h"

namespace dbpulse::exporters {
namespace {

struct CurlDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

struct Capped {
  std::string* out;
  size_t cap;
};

size_t onBody(char* data, size_t size, size_t count, void* user) {
  auto* capped = static_cast<Capped*>(user);
  const size_t n = size * count;
  if (capped->out->size() < capped->cap) {
    capped->out->append(data, std::min(n, capped->cap - capped->out->size()));
  }
  return n;  // keep reading (and discarding) so the connection stays reusable
}

class CurlTransport final : public AlertTransport {
 public:
  CurlTransport(std::string url, CurlTransportOptions options)
      : url_(std::move(url)), options_(std::move(options)) {
    // Since libcurl 7.84 global init is thread-safe; once is still the documented contract.
    static std::once_flag global_init;
    std::call_once(global_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    handle_.reset(curl_easy_init());
    curl_slist* list = curl_slist_append(nullptr, "Content-Type: application/json");
    if (list) list = curl_slist_append(list, "Accept: application/json");
    headers_.reset(list);
  }

  TransportResult post(const std::string& json_body) override {
    TransportResult result;
    if (cancelled_.load()) {
      result.detail = "cancelled";
      result.cancelled = true;
      return result;
    }
    if (!handle_ || !headers_) {
      result.detail = "curl_easy_init failed";
      return result;
    }
    CURL* h = handle_.get();
    std::string body;
    Capped capped{&body, options_.max_response_bytes};
    char error[CURL_ERROR_SIZE] = {};
    // Options are set on every post: curl_easy_reset is not used, so the handle keeps its
    // connection cache and DNS cache between posts.
    curl_easy_setopt(h, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(h, CURLOPT_PROXY, "");  // ignore http_proxy & co.
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(options_.connect_timeout.count()));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers_.get());
    curl_easy_setopt(h, CURLOPT_USERAGENT, options_.user_agent.c_str());
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, json_body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(json_body.size()));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, onBody);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &capped);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    // The progress callback runs about once a second even while stalled: it lets cancel()
    // end a post that waits on an unresponsive server, so shutdown stays fast.
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, onProgress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, this);
    const CURLcode rc = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, nullptr);
    if (rc != CURLE_OK) {
      result.detail = error[0] != '\0' ? error : curl_easy_strerror(rc);
      if (rc == CURLE_ABORTED_BY_CALLBACK) {
        result.detail = "cancelled";
        result.cancelled = true;
      }
      return result;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &result.status);
    result.detail = std::move(body);
    return result;
  }

  void cancel() override { cancelled_.store(true); }

 private:
  static int onProgress(void* self, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return static_cast<CurlTransport*>(self)->cancelled_.load() ? 1 : 0;
  }

  const std::string url_;
  const CurlTransportOptions options_;
  std::unique_ptr<CURL, CurlDeleter> handle_;
  std::unique_ptr<curl_slist, SlistDeleter> headers_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace

std::unique_ptr<AlertTransport> makeCurlTransport(const std::string& alerts_url,
                                                  CurlTransportOptions options) {
  return std::make_unique<CurlTransport>(alerts_url, std::move(options));
}

}  // namespace dbpulse::exporters
