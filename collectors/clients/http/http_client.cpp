#include "collectors/clients/http/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <mutex>

namespace dbpulse::collectors {

struct HttpClient::Handle {
  Handle() : curl(curl_easy_init()) {}
  ~Handle() {
    if (curl != nullptr) curl_easy_cleanup(curl);  // closes the kept connection
    if (get_headers != nullptr) curl_slist_free_all(get_headers);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  CURL* curl;
  curl_slist* get_headers = nullptr;
  char error[CURL_ERROR_SIZE] = {};
};

struct HttpClient::Outcome {
  CURLcode rc = CURLE_OK;
  std::string detail;     // curl's message when rc != CURLE_OK
  bool overflow = false;  // get(): the body went over the cap
};

namespace {

struct Sink {
  std::string* body;
  size_t cap;
  bool fail_over_cap;  // get(): stop at the cap; post(): keep reading, drop the rest
  bool overflow = false;
};

size_t writeBody(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const size_t n = size * count;
  if (!sink->fail_over_cap) {
    if (sink->body->size() < sink->cap) {
      sink->body->append(data, std::min(n, sink->cap - sink->body->size()));
    }
    return n;
  }
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

struct Flags {
  const std::atomic<bool>* cancel;
  const std::atomic<bool>* shut_down;
};

int progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* flags = static_cast<const Flags*>(user);
  return flags->cancel->load() || flags->shut_down->load() ? 1 : 0;
}

// The one libcurl global init of the process (every HttpClient goes through it).
void globalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

long millis(std::chrono::milliseconds d) {
  return static_cast<long>(std::max<int64_t>(d.count(), 1));
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

HttpClient::HttpClient(HttpClientOptions options) : options_(std::move(options)) {
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
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->error);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, writeBody);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress);
  h->get_headers = curl_slist_append(nullptr, ("Accept: " + options_.accept).c_str());
  handle_ = std::move(h);
}

HttpClient::~HttpClient() = default;

HttpClient::Outcome HttpClient::perform(const std::string& url, std::chrono::milliseconds timeout,
                                        std::chrono::milliseconds connect_timeout,
                                        HttpResponse& response) {
  CURL* c = handle_->curl;
  handle_->error[0] = '\0';
  Flags flags{&cancel_requested_, &shut_down_};
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &flags);
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, millis(timeout));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, millis(connect_timeout));

  Outcome outcome;
  outcome.rc = curl_easy_perform(c);

  long connects = 0;
  if (curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK && connects > 0) {
    connections_opened_ += static_cast<uint64_t>(connects);
  }
  curl_easy_setopt(c, CURLOPT_WRITEDATA, nullptr);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, nullptr);
  if (outcome.rc != CURLE_OK) {
    outcome.detail = handle_->error[0] != '\0' ? handle_->error : curl_easy_strerror(outcome.rc);
    return outcome;
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  char* content_type = nullptr;
  if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &content_type) == CURLE_OK &&
      content_type != nullptr) {
    response.content_type = content_type;
  }
  curl_off_t total_us = 0;
  if (curl_easy_getinfo(c, CURLINFO_TOTAL_TIME_T, &total_us) == CURLE_OK) {
    response.elapsed = std::chrono::duration<double>(static_cast<double>(total_us) / 1e6);
  }
  return outcome;
}

Result<HttpResponse> HttpClient::get(const std::string& url, std::chrono::milliseconds timeout,
                                     std::chrono::milliseconds connect_timeout) {
  const std::string shown = redactUrl(url);
  if (!handle_) return internalError("GET " + shown + ": cannot create a curl handle");
  cancel_requested_ = false;
  if (shut_down_) return cancelled("GET " + shown + ": cancelled");
  CURL* c = handle_->curl;
  HttpResponse result;
  Sink sink{&result.body, options_.max_body_bytes, true};
  curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, handle_->get_headers);
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options_.max_body_bytes));
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  const Outcome o = perform(url, timeout, connect_timeout, result);
  switch (o.rc) {
    case CURLE_OK:
      return result;
    case CURLE_OPERATION_TIMEDOUT:
      return deadlineExceeded("GET " + shown + ": no answer within " +
                              std::to_string(timeout.count()) + " ms");
    case CURLE_ABORTED_BY_CALLBACK:
      return cancelled("GET " + shown + ": cancelled");
    case CURLE_URL_MALFORMAT:
      return invalidArgument("GET " + shown + ": " + o.detail);
    case CURLE_UNSUPPORTED_PROTOCOL:
      // Also what curl says when an http:// peer answers with something that is not HTTP
      // ("Received HTTP/0.9 when not allowed"): that is the peer's failure of the moment,
      // not a wrong URL, so only another scheme is a configuration error.
      if (httpScheme(url)) {
        return unavailable("GET " + shown + ": the answer is not HTTP (" + o.detail + ")");
      }
      return invalidArgument("GET " + shown + ": " + o.detail);
    case CURLE_FILESIZE_EXCEEDED:
    case CURLE_WRITE_ERROR:
      if (sink.overflow || o.rc == CURLE_FILESIZE_EXCEEDED) {
        return unavailable("GET " + shown + ": response larger than " +
                           std::to_string(options_.max_body_bytes) + " bytes");
      }
      return unavailable("GET " + shown + ": " + o.detail);
    default:
      return unavailable("GET " + shown + ": " + o.detail);
  }
}

Result<HttpResponse> HttpClient::post(const std::string& url, const std::string& body,
                                      const std::string& content_type,
                                      std::chrono::milliseconds timeout,
                                      std::chrono::milliseconds connect_timeout,
                                      size_t keep_body_bytes) {
  if (!handle_) return internalError("curl_easy_init failed");
  cancel_requested_ = false;
  if (shut_down_) return cancelled("cancelled");
  curl_slist* headers = curl_slist_append(nullptr, ("Content-Type: " + content_type).c_str());
  if (headers != nullptr) {
    curl_slist* more = curl_slist_append(headers, ("Accept: " + options_.accept).c_str());
    if (more == nullptr) {
      curl_slist_free_all(headers);
      headers = nullptr;
    }
  }
  if (headers == nullptr) return internalError("curl_slist_append failed");
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> owned(headers, curl_slist_free_all);
  CURL* c = handle_->curl;
  HttpResponse result;
  Sink sink{&result.body, keep_body_bytes, false};
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, curl_off_t{0});  // no cap: the rest is dropped
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  const Outcome o = perform(url, timeout, connect_timeout, result);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, handle_->get_headers);  // `headers` is freed below
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, nullptr);
  switch (o.rc) {
    case CURLE_OK:
      return result;
    case CURLE_OPERATION_TIMEDOUT:
      return deadlineExceeded(o.detail);
    case CURLE_ABORTED_BY_CALLBACK:
      return cancelled("cancelled");
    default:
      return unavailable(o.detail);
  }
}

}  // namespace dbpulse::collectors
