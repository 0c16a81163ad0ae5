#pragma once
// A real, throwaway Prometheus Alertmanager (Debian package prometheus-alertmanager) for
// integration tests: a free loopback port, clustering off (--cluster.listen-address=), its
// config, storage and log in a temp dir. The default config routes everything to a receiver
// without integrations, so alerts are accepted and listed but notify nobody.
// stop()/start() keep the port (and the storage dir; Alertmanager itself keeps no alerts
// across a restart). Check requireAlertmanager() before constructing one. Not thread-safe.
//
//   if (!requireAlertmanager()) return;
//   AlertmanagerServer am;
//   httpPost(am.url() + "/api/v2/alerts", R"([{"labels":{"alertname":"X"}}])");
//   std::string listed = am.alertsJson();   // GET /api/v2/alerts

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "integration/harness/temp_dir.h"

namespace dbpulse::testing {

class ChildProcess;

inline constexpr std::string_view kAlertmanagerBinary = "/usr/bin/prometheus-alertmanager";

// The Alertmanager binary (package prometheus-alertmanager); see requireBinary().
[[nodiscard]] bool requireAlertmanager();

struct AlertmanagerServerOptions {
  std::string binary = std::string(kAlertmanagerBinary);
  // alertmanager.yml; empty = one route to a receiver named "blackhole" with no integrations.
  std::string config_yaml;
  std::vector<std::string> extra_args;
  std::chrono::milliseconds start_timeout{20000};
};

class AlertmanagerServer {
 public:
  // Starts and waits for GET /-/ready. Throws HarnessError (with the log) on failure.
  explicit AlertmanagerServer(AlertmanagerServerOptions options = {});
  ~AlertmanagerServer();

  AlertmanagerServer(const AlertmanagerServer&) = delete;
  AlertmanagerServer& operator=(const AlertmanagerServer&) = delete;

  // Starts again on the same port; no-op when running. Throws HarnessError.
  void start();
  // SIGTERM and wait for exit; no-op when stopped. Connections are refused afterwards.
  void stop();
  bool running();

  int port() const { return port_; }
  // "http://127.0.0.1:PORT", the form of dbpulse's [alertmanager] urls.
  std::string url() const;

  // True when GET /-/ready answers 200 within `timeout`.
  bool ready(std::chrono::milliseconds timeout = std::chrono::milliseconds(1000)) const;

  // The body of GET /api/v2/alerts (a JSON array; resolved alerts are not listed), or ""
  // when there was no 200 answer.
  std::string alertsJson() const;

  std::filesystem::path logPath() const { return dir_ / "alertmanager.log"; }

 private:
  bool tryStart();

  AlertmanagerServerOptions options_;
  TempDir dir_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> server_;
};

}  // namespace dbpulse::testing
