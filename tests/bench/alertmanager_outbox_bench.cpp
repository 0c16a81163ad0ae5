// What the Alertmanager notifier's outbox costs: queueing (send), writing the state file
// (flush, with fsync) and reading it back at start, at the default bound of 10,000
// notifications per URL. No network: a transport that is never called (manual mode).

#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <filesystem>

#include "exporters/alertmanager/alertmanager_notifier.h"

namespace dbpulse::exporters {
namespace {

namespace fs = std::filesystem;

class NullTransport final : public AlertTransport {
 public:
  TransportResult post(const std::string&) override { return {200, "", false}; }
};

AlertmanagerNotifierOptions benchOptions(int urls, const std::string& state_dir) {
  AlertmanagerNotifierOptions o;
  for (int i = 0; i < urls; ++i) o.urls.push_back("http://am-" + std::to_string(i) + ":9093");
  o.state_dir = state_dir;
  o.background = false;
  o.probe_interval = Duration(0);
  o.transport_factory = [](const std::string&) { return std::make_unique<NullTransport>(); };
  return o;
}

// A notification shaped like the rule pack's: a handful of labels, three annotations.
AlertNotification benchAlert(int i) {
  AlertNotification a;
  a.labels = Labels{{"alertname", "PostgresLongRunningTransaction"},
                    {"datname", "chat"},
                    {"instance", "chat-0"},
                    {"pid", std::to_string(10000 + i)},
                    {"severity", "warning"}};
  a.annotations = Labels{
      {"summary", "Transaction open for 12m on chat (pid " + std::to_string(10000 + i) + ")"},
      {"description",
       "A transaction has been open for longer than 5 minutes; it holds back "
       "VACUUM and may hold locks that block other sessions."},
      {"runbook",
       "Find it in GET /admin/database/metrics (longest transaction) and end it "
       "with pg_terminate_backend(pid) if it is stuck."}};
  a.starts_at = WallTime(std::chrono::milliseconds(1'714'564'800'000 + i));
  a.ends_at = a.starts_at + std::chrono::minutes(4);
  a.generator_url = "http://chat-0:9470/admin/rules#postgres";
  return a;
}

struct TempDir {
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "dbpulse-am-bench-XXXXXX").string();
    path = ::mkdtemp(templ.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path path;
};

// send() of one rule-evaluation batch of 64 notifications, queued for 3 URLs.
void BM_SendBatchToThreeUrls(benchmark::State& state) {
  SystemClock clock;
  AlertmanagerNotifier n(benchOptions(3, ""), clock);
  std::vector<AlertNotification> batch;
  for (int i = 0; i < 64; ++i) batch.push_back(benchAlert(i));
  for (auto _ : state) n.send(batch);
  state.SetItemsProcessed(state.iterations() * 64);
}
BENCHMARK(BM_SendBatchToThreeUrls);

// flush(): serialise a full outbox (10,000 notifications, 1 URL) and write it atomically.
void BM_FlushFullOutbox(benchmark::State& state) {
  TempDir dir;
  SystemClock clock;
  AlertmanagerNotifier n(benchOptions(1, dir.path.string()), clock);
  std::vector<AlertNotification> all;
  for (int i = 0; i < 10'000; ++i) all.push_back(benchAlert(i));
  n.send(all);
  int i = 0;
  for (auto _ : state) {
    n.send({benchAlert(i++ % 10'000)});  // a change, so flush() writes
    benchmark::DoNotOptimize(n.flush());
  }
  state.counters["file_bytes"] =
      static_cast<double>(fs::file_size(dir.path / AlertmanagerNotifier::kStateFile));
}
BENCHMARK(BM_FlushFullOutbox)->Unit(benchmark::kMillisecond);

// Start-up: read and parse that file.
void BM_LoadFullOutbox(benchmark::State& state) {
  TempDir dir;
  SystemClock clock;
  {
    AlertmanagerNotifier n(benchOptions(1, dir.path.string()), clock);
    std::vector<AlertNotification> all;
    for (int i = 0; i < 10'000; ++i) all.push_back(benchAlert(i));
    n.send(all);
    n.shutdown();
  }
  for (auto _ : state) {
    AlertmanagerNotifier n(benchOptions(1, dir.path.string()), clock);
    benchmark::DoNotOptimize(n.stats().urls[0].outbox);
  }
}
BENCHMARK(BM_LoadFullOutbox)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace dbpulse::exporters
