#include "integration/harness/chromium.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "integration/harness/harness_error.h"

namespace dbpulse::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string base64Decode(const std::string& in) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned buf = 0;
  int bits = 0;
  for (char c : in) {
    const size_t v = kAlphabet.find(c);
    if (v == std::string::npos) continue;  // '=' and line breaks
    buf = (buf << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buf >> bits) & 0xff);
    }
  }
  return out;
}

// The text of a console call's arguments.
std::string consoleText(const json& params) {
  std::string text;
  for (const auto& a : params.value("args", json::array())) {
    if (!text.empty()) text += ' ';
    if (a.contains("value")) {
      text += a["value"].is_string() ? a["value"].get<std::string>() : a["value"].dump();
    } else {
      text += a.value("description", a.value("type", std::string("?")));
    }
  }
  return text;
}

}  // namespace

Chromium::Chromium(int width, int height)
    : dir_("dbpulse-chromium-"), width_(width), height_(height) {
  std::signal(SIGPIPE, SIG_IGN);  // a browser that died must not kill the test with it
  int to[2], from[2];
  if (pipe2(to, O_CLOEXEC) != 0 || pipe2(from, O_CLOEXEC) != 0) {
    throw HarnessError(std::string("chromium: pipe: ") + std::strerror(errno));
  }
  const std::string profile = "--user-data-dir=" + (dir_ / "profile").string();
  const std::string window =
      "--window-size=" + std::to_string(width) + "," + std::to_string(height);
  const std::string log = (dir_ / "chromium.log").string();
  std::vector<std::string> args = {
      std::string(kChromium), "--headless", "--remote-debugging-pipe",
      // Tests run as root in containers, where the sandbox
      // cannot start; the page is our own.
      "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
      "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--mute-audio", profile,
      window, "about:blank"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_ = fork();
  if (pid_ < 0) throw HarnessError(std::string("chromium: fork: ") + std::strerror(errno));
  if (pid_ == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    // Out of the way of 3 and 4 first, then onto them (dup2 clears close-on-exec).
    const int r = fcntl(to[0], F_DUPFD, 10), w = fcntl(from[1], F_DUPFD, 10);
    dup2(r, 3);
    dup2(w, 4);
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    const int in = ::open("/dev/null", O_RDONLY);
    if (out >= 0) {
      dup2(out, 1);
      dup2(out, 2);
    }
    if (in >= 0) dup2(in, 0);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(to[0]);
  close(from[1]);
  to_browser_ = to[1];
  from_browser_ = from[0];
  try {
    call("Browser.getVersion", json::object(), "", std::chrono::seconds(30));
  } catch (const HarnessError& e) {
    throw HarnessError(std::string(e.what()) + "; chromium log:\n" + this->log());
  }
}

Chromium::~Chromium() {
  if (pid_ <= 0) return;
  try {
    call("Browser.close", json::object(), "", std::chrono::seconds(5));
  } catch (const std::exception&) {  // gone already, or hung: killed below
  }
  if (to_browser_ >= 0) close(to_browser_);
  if (from_browser_ >= 0) close(from_browser_);
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      kill(-pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(-pid_, SIGKILL);  // helpers (renderer, GPU, zygote) left in the group
}

std::string Chromium::log() const {
  std::ifstream in(dir_ / "chromium.log");
  std::stringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  return text.size() > 8192 ? text.substr(text.size() - 8192) : text;
}

json Chromium::receive(Clock::time_point deadline) {
  for (;;) {
    const size_t nul = buffer_.find('\0');
    if (nul != std::string::npos) {
      json msg = json::parse(buffer_.substr(0, nul), nullptr, false);
      buffer_.erase(0, nul + 1);
      if (!msg.is_discarded()) return msg;
      continue;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) throw HarnessError("chromium: no answer in time");
    pollfd p{from_browser_, POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(left));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;  // the deadline check above ends it
    char chunk[65536];
    const ssize_t n = read(from_browser_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw HarnessError("chromium: the DevTools pipe closed (the browser exited)");
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

json Chromium::call(const std::string& method, const json& params, const std::string& session,
                    std::chrono::milliseconds timeout) {
  const int id = next_id_++;
  json msg{{"id", id}, {"method", method}, {"params", params}};
  if (!session.empty()) msg["sessionId"] = session;
  std::string text = msg.dump();
  text.push_back('\0');
  for (size_t off = 0; off < text.size();) {
    const ssize_t n = write(to_browser_, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw HarnessError("chromium: cannot write to the DevTools pipe");
    off += static_cast<size_t>(n);
  }
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    json in = receive(deadline);
    if (!in.contains("id")) {
      events_.push_back(std::move(in));
      continue;
    }
    if (in["id"] != id) continue;
    if (in.contains("error")) {
      throw HarnessError("chromium: " + method + ": " + in["error"].dump());
    }
    return in.value("result", json::object());
  }
}

ChromiumPage Chromium::open(const std::string& url, std::chrono::milliseconds timeout,
                            std::chrono::milliseconds settle) {
  const json target = call("Target.createTarget", {{"url", "about:blank"}});
  const json attached = call("Target.attachToTarget",
                             {{"targetId", target.value("targetId", "")}, {"flatten", true}});
  ChromiumPage page;
  page.session = attached.value("sessionId", "");
  for (const char* domain : {"Page.enable", "Runtime.enable", "Log.enable", "Network.enable"}) {
    call(domain, json::object(), page.session);
  }
  call("Emulation.setDeviceMetricsOverride",
       {{"width", width_}, {"height", height_}, {"deviceScaleFactor", 1}, {"mobile", false}},
       page.session);
  events_.clear();
  const json nav = call("Page.navigate", {{"url", url}}, page.session, timeout);
  if (nav.contains("errorText")) {
    throw HarnessError("chromium: cannot load " + url + ": " + nav["errorText"].dump());
  }
  const auto deadline = Clock::now() + timeout;
  auto loaded = [&] {
    for (const auto& e : events_) {
      if (e.value("method", "") == "Page.loadEventFired" &&
          e.value("sessionId", "") == page.session)
        return true;
    }
    return false;
  };
  while (!loaded()) events_.push_back(receive(deadline));
  const auto quiet_until = Clock::now() + settle;
  try {
    for (;;) events_.push_back(receive(quiet_until));
  } catch (const HarnessError&) {  // nothing more within `settle`
  }
  for (const auto& e : events_) {
    if (e.value("sessionId", "") != page.session) continue;
    const std::string method = e.value("method", "");
    const json& p = e.contains("params") ? e["params"] : json::object();
    if (method == "Network.requestWillBeSent") {
      page.requests.push_back(p["request"].value("url", ""));
    } else if (method == "Network.responseReceived" && p.value("type", "") == "Document") {
      page.http_status = p["response"].value("status", 0);
    } else if (method == "Runtime.consoleAPICalled" &&
               (p.value("type", "") == "error" || p.value("type", "") == "assert")) {
      page.console_errors.push_back("console." + p.value("type", "") + ": " + consoleText(p));
    } else if (method == "Runtime.exceptionThrown") {
      const json& d = p["exceptionDetails"];
      page.console_errors.push_back(
          "exception: " + d.value("text", std::string()) + " " +
          (d.contains("exception") ? d["exception"].value("description", std::string()) : ""));
    } else if (method == "Log.entryAdded" && p["entry"].value("level", "") == "error") {
      page.console_errors.push_back("log: " + p["entry"].value("text", std::string()) + " (" +
                                    p["entry"].value("url", std::string()) + ")");
    }
  }
  return page;
}

json Chromium::evaluate(const ChromiumPage& page, const std::string& expression) {
  const json r = call("Runtime.evaluate",
                      {{"expression", expression}, {"returnByValue", true}, {"awaitPromise", true}},
                      page.session);
  if (r.contains("exceptionDetails")) {
    throw HarnessError("chromium: evaluating " + expression + ": " + r["exceptionDetails"].dump());
  }
  return r.contains("result") ? r["result"].value("value", json()) : json();
}

std::string Chromium::screenshot(const ChromiumPage& page) {
  const json metrics = call("Page.getLayoutMetrics", json::object(), page.session);
  const json size = metrics.value("cssContentSize", metrics.value("contentSize", json::object()));
  const double w = std::max(1.0, size.value("width", static_cast<double>(width_)));
  const double h =
      std::min(20000.0, std::max(1.0, size.value("height", static_cast<double>(height_))));
  const json shot =
      call("Page.captureScreenshot",
           {{"format", "png"},
            {"captureBeyondViewport", true},
            {"clip", {{"x", 0}, {"y", 0}, {"width", w}, {"height", h}, {"scale", 1}}}},
           page.session, std::chrono::seconds(60));
  return base64Decode(shot.value("data", ""));
}

}  // namespace dbpulse::testing
