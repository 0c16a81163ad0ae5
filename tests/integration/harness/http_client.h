#pragma once
// Plain HTTP requests for tests (libcurl). Never throws on network trouble: a request that
// gets no HTTP answer at all has status 0 and says why in `error`. Proxies from the
// environment are ignored (tests only talk to loopback).

#include <chrono>
#include <map>
#include <string>

namespace dbpulse::testing {

struct HttpResponse {
  long status = 0;  // 0: no HTTP response (connection refused, timeout, ...)
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased; last value wins
  std::string error;                           // curl's message when status == 0

  // The header's value, or "" (name is case-insensitive).
  std::string header(const std::string& name) const;
};

using HttpHeaders = std::map<std::string, std::string>;

HttpResponse httpRequest(const std::string& method, const std::string& url,
                         const std::string& body = "", const HttpHeaders& headers = {},
                         std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

HttpResponse httpGet(const std::string& url,
                     std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

// Content-Type defaults to application/json unless given in `headers`.
HttpResponse httpPost(const std::string& url, const std::string& body,
                      const HttpHeaders& headers = {},
                      std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

}  // namespace dbpulse::testing
