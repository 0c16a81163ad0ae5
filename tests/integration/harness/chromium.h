#pragma once
// Headless Chromium (Debian's `chromium`) driven over the DevTools protocol on a pipe
// (--remote-debugging-pipe: JSON messages separated by NUL bytes on fds 3 and 4), so
// browser tests need no npm, no WebDriver and no network port.
//
//   if (!requireBinary(kChromium, "chromium")) return;
//   Chromium browser;
//   ChromiumPage page = browser.open(url, 30s);   // console errors, requests, a screenshot
//   json v = browser.evaluate(page, "document.title");
//
// The browser runs in its own process group with a temporary profile; the destructor asks
// it to close, then kills the group. Not thread-safe. Throws HarnessError when the browser
// cannot be started or does not answer in time.

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "integration/harness/temp_dir.h"

namespace dbpulse::testing {

inline constexpr std::string_view kChromium = "/usr/bin/chromium";

// What one page load produced.
struct ChromiumPage {
  std::string session;                      // the DevTools session of its tab
  int http_status = 0;                      // of the main document
  std::vector<std::string> requests;        // every URL the page asked for, in order
  std::vector<std::string> console_errors;  // console.error, uncaught exceptions, log errors
};

class Chromium {
 public:
  explicit Chromium(int width = 1280, int height = 900);
  ~Chromium();
  Chromium(const Chromium&) = delete;
  Chromium& operator=(const Chromium&) = delete;

  // Opens `url` in a new tab and waits for its load event plus `settle` (scripts run,
  // late console messages arrive).
  ChromiumPage open(const std::string& url, std::chrono::milliseconds timeout,
                    std::chrono::milliseconds settle = std::chrono::milliseconds(500));
  // Runtime.evaluate in the page; the value (returnByValue). Throws HarnessError on an
  // exception in the page.
  nlohmann::json evaluate(const ChromiumPage& page, const std::string& expression);
  // A full-page PNG.
  std::string screenshot(const ChromiumPage& page);
  // The log of the browser process (stderr), for failure messages.
  std::string log() const;

  // One DevTools call; its "result". Events arriving meanwhile are kept for open().
  nlohmann::json call(const std::string& method,
                      const nlohmann::json& params = nlohmann::json::object(),
                      const std::string& session = "",
                      std::chrono::milliseconds timeout = std::chrono::milliseconds(30000));

 private:
  // The next message (response or event); throws on timeout or a closed pipe.
  nlohmann::json receive(std::chrono::steady_clock::time_point deadline);

  TempDir dir_;
  pid_t pid_ = -1;
  int to_browser_ = -1, from_browser_ = -1;
  int next_id_ = 1;
  std::string buffer_;
  std::vector<nlohmann::json> events_;
  int width_, height_;
};

}  // namespace dbpulse::testing
