// libFuzzer target: the Alertmanager notifier on what it reads from outside: its persisted
// outbox (<state_dir>/alertmanager_outbox.json, read back at start) and the answers of
// Alertmanager to its POSTs (status and the start of the body, which it logs). The notifier
// parses nothing else from an answer.
//
// Input layout: byte 0 = number of scripted answers N (mod 8); then N answers of 2 bytes
// status (big endian, mod 600) + 1 byte length + that many body bytes; the rest is the state
// file. One run: write the state file, start a notifier on it (manual mode, fake clock,
// scripted transport), deliver until the script is used up, flush, then start a second
// notifier on what the first one left and check that it loads the same outboxes: what
// dbpulse writes, dbpulse must read back. The state directory is emptied after every run.

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/clock.h"
#include "exporters/alertmanager/alertmanager_notifier.h"
#include "tests/fakes/fake_clock.h"

namespace {

using namespace dbpulse;
using namespace dbpulse::exporters;

void check(bool ok) {
  if (!ok) std::abort();
}

// readSmallFile's default cap is 64 MiB; 1 MiB holds thousands of alerts and keeps runs short.
constexpr size_t kMaxInput = 1 << 20;

using dbpulse::fakes::FakeClock;

using Script = std::deque<TransportResult>;

class ScriptedTransport final : public AlertTransport {
 public:
  explicit ScriptedTransport(std::shared_ptr<Script> script) : script_(std::move(script)) {}
  TransportResult post(const std::string& json_body) override {
    check(!json_body.empty() && json_body.front() == '[');
    if (script_->empty()) return TransportResult{0, "connection refused", false};
    TransportResult r = script_->front();
    script_->pop_front();
    return r;
  }

 private:
  std::shared_ptr<Script> script_;
};

void removeStateDir();

// One directory per process, under /dev/shm when there is one (no disk syncs per run),
// removed at exit.
const std::string& stateDir() {
  // Never destroyed: removeStateDir runs at exit, possibly after static destructors.
  static const std::string* dir = [] {
    std::string base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    auto* tmpl = new std::string(base + "/dbpulse-am-fuzz-XXXXXX");
    check(mkdtemp(tmpl->data()) != nullptr);
    std::atexit(removeStateDir);
    return tmpl;
  }();
  return *dir;
}

void removeStateDir() {
  std::error_code ec;
  std::filesystem::remove_all(stateDir(), ec);
}

void clearDir(const std::string& dir) {
  for (const auto& e : std::filesystem::directory_iterator(dir)) std::filesystem::remove_all(e);
}

AlertmanagerNotifierOptions options(std::shared_ptr<Script> script) {
  AlertmanagerNotifierOptions o;
  o.urls = {"http://127.0.0.1:9093", "http://127.0.0.1:9094/"};
  o.state_dir = stateDir();
  o.max_batch = 4;
  o.max_outbox = 16;
  o.background = false;
  o.save_debounce = Duration(0);
  o.transport_factory = [script](const std::string&) {
    return std::make_unique<ScriptedTransport>(script);
  };
  return o;
}

std::vector<size_t> outboxSizes(const AlertmanagerNotifier& n) {
  std::vector<size_t> sizes;
  for (const auto& u : n.stats().urls) sizes.push_back(u.outbox);
  return sizes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    spdlog::set_level(spdlog::level::off);
    return true;
  }();
  (void)quiet;
  if (size < 1 || size > kMaxInput) return -1;
  auto script = std::make_shared<Script>();
  size_t pos = 1;
  for (int i = 0; i < data[0] % 8; ++i) {
    if (pos + 3 > size) break;
    const long status = ((data[pos] << 8) | data[pos + 1]) % 600;
    const size_t len = std::min<size_t>(data[pos + 2], size - pos - 3);
    script->push_back(TransportResult{
        status, std::string(reinterpret_cast<const char*>(data + pos + 3), len), false});
    pos += 3 + len;
  }
  const std::string state(reinterpret_cast<const char*>(data + pos), size - std::min(pos, size));

  const std::string path = stateDir() + "/" + AlertmanagerNotifier::kStateFile;
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << state;
    check(out.good());
  }
  FakeClock clock;
  std::vector<size_t> first;
  {
    AlertmanagerNotifier notifier(options(script), clock);
    for (int round = 0; round < 10 && !script->empty(); ++round) {
      notifier.deliverDue();
      clock.advance(std::chrono::minutes(2));  // past any backoff (max 60 s)
    }
    check(notifier.flush().ok());
    first = outboxSizes(notifier);
    // Destruction runs shutdown(), which flushes again: nothing may change in between.
  }
  {
    AlertmanagerNotifier again(options(script), clock);
    check(outboxSizes(again) == first);
  }
  clearDir(stateDir());
  return 0;
}
