#include "collectors/companion/http_fetcher.h"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <mutex>

namespace dbpulse::collectors {

struct HttpFetcher::Handle {
  Handle() : curl(curl_easy_init()) {}
  ~Handle() {
    if (curl != nullptr) curl_easy_cleanup(curl);  // closes the kept connection
    if (headers != nullptr) curl_slist_free_all(headers);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  CURL* curl;
  curl_slist* headers = nullptr;
  char error[CURL_ERROR_SIZE] = {};
};

namespace {

struct Sink {
  std::string* body;
  size_t cap;
  bool overflow = false;
};

size_t writeBody(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const size_t n = size * count;
  if (sink->body->size() + n > sink->cap) {
    sink->overflow = true;
    return 0;  // makes curl stop with CURLE_WRITE_ERROR
  }
  sink->body->append(data, n);
  return n;
}

bool httpScheme(const std::string& url) {
  auto starts = [&](std::string_view prefix) {
    if (url.size() < prefix.size()) return false;
    for (size_t i = 0; i < prefix.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(url[i])) != prefix[i]) return false;
    }
    return true;
  };
  return starts("http://") || starts("https://");
}

int progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<std::atomic<bool>*>(user)->load() ? 1 : 0;
}

void globalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

std::string redactUrl(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  const size_t host = scheme + 3;
  const size_t end = url.find_first_of("/?#", host);
  const size_t at = url.rfind('@', end == std::string::npos ? url.size() : end);
  if (at == std::string::npos || at < host) return url;
  return url.substr(0, host) + "***" + url.substr(at);
}

HttpFetcher::HttpFetcher(HttpFetchOptions options) : options_(std::move(options)) {
  globalInit();
  auto h = std::make_unique<Handle>();
  if (h->curl == nullptr) return;
  CURL* c = h->curl;
  // Threads: never let curl use signals (SIGALRM for DNS timeouts) in a threaded program.
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_PROXY, "");  // ignore http_proxy & co.
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(c, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options_.max_body_bytes));
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->error);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, writeBody);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &cancel_requested_);
  h->headers = curl_slist_append(nullptr, ("Accept: " + options_.accept).c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->headers);
  handle_ = std::move(h);
}

HttpFetcher::~HttpFetcher() = default;

Result<HttpFetchResult> HttpFetcher::get(const std::string& url, std::chrono::milliseconds timeout,
                                         std::chrono::milliseconds connect_timeout) {
  const std::string shown = redactUrl(url);
  if (!handle_) return internalError("GET " + shown + ": cannot create a curl handle");
  cancel_requested_ = false;
  CURL* c = handle_->curl;
  HttpFetchResult result;
  Sink sink{&result.body, options_.max_body_bytes};
  handle_->error[0] = '\0';
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<int64_t>(timeout.count(), 1)));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::max<int64_t>(connect_timeout.count(), 1)));
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);

  const CURLcode rc = curl_easy_perform(c);

  long connects = 0;
  if (curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK && connects > 0) {
    connections_opened_ += static_cast<uint64_t>(connects);
  }
  curl_easy_setopt(c, CURLOPT_WRITEDATA, nullptr);
  const std::string detail = handle_->error[0] != '\0' ? handle_->error : curl_easy_strerror(rc);
  switch (rc) {
    case CURLE_OK:
      break;
    case CURLE_OPERATION_TIMEDOUT:
      return deadlineExceeded("GET " + shown + ": no answer within " +
                              std::to_string(timeout.count()) + " ms");
    case CURLE_ABORTED_BY_CALLBACK:
      return cancelled("GET " + shown + ": cancelled");
    case CURLE_URL_MALFORMAT:
      return invalidArgument("GET " + shown + ": " + detail);
    case CURLE_UNSUPPORTED_PROTOCOL:
      // Also what curl says when an http:// peer answers with something that is not HTTP
      // ("Received HTTP/0.9 when not allowed"): that is the peer's failure of the moment,
      // not a wrong URL, so only another scheme is a configuration error.
      if (httpScheme(url)) {
        return unavailable("GET " + shown + ": the answer is not HTTP (" + detail + ")");
      }
      return invalidArgument("GET " + shown + ": " + detail);
    case CURLE_FILESIZE_EXCEEDED:
    case CURLE_WRITE_ERROR:
      if (sink.overflow || rc == CURLE_FILESIZE_EXCEEDED) {
        return unavailable("GET " + shown + ": response larger than " +
                           std::to_string(options_.max_body_bytes) + " bytes");
      }
      return unavailable("GET " + shown + ": " + detail);
    default:
      return unavailable("GET " + shown + ": " + detail);
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &result.status);
  char* content_type = nullptr;
  if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &content_type) == CURLE_OK &&
      content_type != nullptr) {
    result.content_type = content_type;
  }
  curl_off_t total_us = 0;
  if (curl_easy_getinfo(c, CURLINFO_TOTAL_TIME_T, &total_us) == CURLE_OK) {
    result.elapsed = std::chrono::duration<double>(static_cast<double>(total_us) / 1e6);
  }
  return result;
}

}  // namespace dbpulse::collectors
