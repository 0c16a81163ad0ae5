#include "integration/harness/alertmanager_server.h"

#include <csignal>

#include "integration/harness/child_process.h"
#include "integration/harness/harness_error.h"
#include "integration/harness/http_client.h"
#include "integration/harness/net.h"
#include "integration/harness/poll.h"
#include "integration/harness/require.h"

namespace dbpulse::testing {

namespace {

constexpr int kPortAttempts = 3;

constexpr std::string_view kDefaultConfig = R"(route:
  receiver: blackhole
  group_wait: 1s
receivers:
  - name: blackhole
)";

}  // namespace

bool requireAlertmanager() { return requireBinary(kAlertmanagerBinary, "prometheus-alertmanager"); }

AlertmanagerServer::AlertmanagerServer(AlertmanagerServerOptions options)
    : options_(std::move(options)), dir_("dbpulse-alertmanager-") {
  writeFile(dir_ / "alertmanager.yml",
            options_.config_yaml.empty() ? kDefaultConfig : options_.config_yaml);
  for (int attempt = 1;; ++attempt) {
    port_ = freeLoopbackPort();
    if (tryStart()) return;
    if (attempt == kPortAttempts) {
      throw HarnessError("alertmanager: port taken " + std::to_string(kPortAttempts) +
                         " times in a row; log:\n" + readTail(logPath()));
    }
  }
}

AlertmanagerServer::~AlertmanagerServer() {
  server_.reset();
  if (currentTestFailed()) dumpFileTail("alertmanager log", logPath());
}

bool AlertmanagerServer::tryStart() {
  ProcessOptions process;
  process.argv = {options_.binary, "--config.file=" + (dir_ / "alertmanager.yml").string(),
                  "--storage.path=" + (dir_ / "data").string(),
                  "--web.listen-address=127.0.0.1:" + std::to_string(port_),
                  // Empty: no gossip cluster, so no second port and no peer lookups.
                  "--cluster.listen-address=", "--log.level=debug"};
  process.argv.insert(process.argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  process.log_file = logPath();
  const std::size_t log_offset = readFile(logPath()).size();
  server_ = std::make_unique<ChildProcess>(process);
  const bool ok = pollUntil([&] { return !server_->alive() || ready(); }, options_.start_timeout);
  if (ok && server_->alive()) return true;

  const std::string this_start = readFile(logPath()).substr(log_offset);
  const std::string status = server_->alive()
                                 ? "did not become ready"
                                 : "exited with code " + std::to_string(*server_->exitCode());
  server_.reset();
  if (this_start.find("address already in use") != std::string::npos) return false;
  throw HarnessError("alertmanager on port " + std::to_string(port_) + " " + status + "; log:\n" +
                     readTail(logPath()));
}

void AlertmanagerServer::start() {
  if (running()) return;
  if (!tryStart()) {
    throw HarnessError("alertmanager: port " + std::to_string(port_) +
                       " was taken while the server was stopped");
  }
}

void AlertmanagerServer::stop() {
  if (!server_) return;
  server_->signal(SIGTERM);
  const std::optional<int> code = server_->waitExit(std::chrono::seconds(15));
  server_.reset();
  if (!code) throw HarnessError("alertmanager did not stop within 15 s (killed)");
}

bool AlertmanagerServer::running() { return server_ != nullptr && server_->alive(); }

std::string AlertmanagerServer::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

bool AlertmanagerServer::ready(std::chrono::milliseconds timeout) const {
  return httpGet(url() + "/-/ready", timeout).status == 200;
}

std::string AlertmanagerServer::alertsJson() const {
  const HttpResponse r = httpGet(url() + "/api/v2/alerts");
  return r.status == 200 ? r.body : "";
}

}  // namespace dbpulse::testing
