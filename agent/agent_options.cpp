#include "agent/agent_options.h"

#include <unistd.h>

#include <algorithm>

namespace dbpulse {
namespace {

// A store that keeps [agent] history of points per series, so rule ranges up to that length
// work: history / (shortest collector or rule interval) points at most, capped (points
// cost 16 bytes each); a series written less often holds only its window's points.
constexpr int64_t kMaxHistoryPoints = 1000;

int64_t shortestIntervalMs(const Config& config) {
  Duration shortest = config.rules.evaluation_interval;
  for (const auto& [name, c] : config.collectors) {
    if (c.enabled) shortest = std::min(shortest, c.interval);
  }
  return std::max<int64_t>(shortest.count(), 1);
}

std::string configDir(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

SampleStoreOptions storeOptions(const Config& config) {
  const int64_t points = config.agent.history.count() / shortestIntervalMs(config) + 1;
  SampleStoreOptions o;
  o.history_points = static_cast<size_t>(std::clamp<int64_t>(points, 2, kMaxHistoryPoints));
  // Each series keeps only that window: slower series hold fewer points.
  o.history_ms = config.agent.history.count();
  return o;
}

rules::RuleManagerOptions ruleOptions(const Config& config, int port) {
  rules::RuleManagerOptions o;
  o.files = config.rules.files;
  o.base_dir = configDir(config.path);
  o.state_dir = config.agent.state_dir;
  const int64_t points = static_cast<int64_t>(storeOptions(config).history_points);
  o.history_ms =
      std::min<int64_t>(config.agent.history.count(), (points - 1) * shortestIntervalMs(config));
  o.engine.default_interval_ms = config.rules.evaluation_interval.count();
  // Prometheus steps a subquery written without a step ("x[5m:]") at its global
  // evaluation_interval: ours is [rules] evaluation_interval.
  o.engine.eval.default_step_ms = config.rules.evaluation_interval.count();
  o.engine.resend_interval_ms = config.alertmanager.resend_interval.count();
  o.engine.instance = config.agent.instance;
  // Prometheus looks back 5 minutes because it scrapes every series every interval; our
  // collectors write a series once per run (size every 10 minutes), and the store already
  // drops a series 2 x interval + timeout after its last write. So an instant selector sees
  // the latest value for as long as the store keeps the series.
  int64_t lookback = 5 * 60'000;
  for (const auto& [name, c] : config.collectors) {
    if (c.enabled) lookback = std::max<int64_t>(lookback, (2 * c.interval + c.timeout).count());
  }
  o.engine.eval.lookback_ms = lookback;
  std::string host = config.agent.listen_addr.host;
  if (host.empty() || host == "0.0.0.0" || host == "::") {
    char name[256] = {};
    host = gethostname(name, sizeof name - 1) == 0 && name[0] != '\0' ? name : "localhost";
  } else if (host.find(':') != std::string::npos) {
    host = "[" + host + "]";
  }
  o.engine.generator_url = "http://" + host + ":" + std::to_string(port);
  return o;
}

}  // namespace dbpulse
