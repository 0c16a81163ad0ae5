#pragma once
// Agent: the composition root's product. Builds and owns every long-lived
// component in one visible order (store, PostgreSQL session, collectors,
// scheduler, HTTP server) and stops them in reverse.
// start() and stop() come from the main thread; reload() from the main thread (SIGHUP)
// or an HTTP worker (POST /admin/reload). reload_mu_ serialises the three: a reload in
// flight finishes before stop() proceeds, and a reload after stop() is refused. HTTP
// handlers read state concurrently.

#include <atomic>
#include <iosfwd>
#include <memory>
#include <mutex>
#include <vector>

#include "agent/admin_audit.h"
#include "agent/config.h"
#include "agent/core/alert.h"
#include "agent/core/clock.h"
#include "agent/core/sample_store.h"
#include "agent/http_server.h"
#include "agent/rate_limiter.h"
#include "agent/retirer.h"
#include "exporters/prometheus/exposition.h"

namespace dbpulse {

class Scheduler;
namespace collectors {
class PgSession;
}
namespace exporters {
class AlertmanagerNotifier;
}
namespace rules {
class RuleManager;
}
class LeaderElector;
class MaintenanceEngine;

enum class OutputFormat { kPrometheus, kJson };

class Agent {
 public:
  explicit Agent(Config config);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Binds the HTTP listener and starts the collectors.
  Status start();
  // Swaps in a new, already validated config: collectors are rebuilt; the HTTP
  // listener keeps its address (a changed `listen` needs a restart, and says so).
  // Returns false (and changes nothing) once stop() has begun.
  bool reload(Config config);
  // Re-reads the config file the agent was started with (SIGHUP, POST /admin/reload).
  // A file with errors is rejected and the running config stays; the errors are returned
  // (one error, too, when the agent is stopping).
  std::vector<ConfigError> reloadFromFile();
  // Stops collectors (cancelling in-flight queries) and the HTTP server. Returns
  // false when a collector did not stop within `grace`; its pipeline is then kept for
  // the life of the process (a thread is still inside it).
  bool stop(Duration grace);

  int port() const { return http_.port(); }

  // Where the rule engine sends alert notifications: the Alertmanager notifier, built on the
  // first config with [alertmanager] urls and kept until the agent is destroyed (a reload
  // changes its URL list in place), so the pointer never dangles while the Agent lives.
  // nullptr while no Alertmanager has been configured. Any thread.
  AlertSink* alertSink() const;

  // `dbpulse once`: runs every enabled collector once and prints the samples.
  // Returns the process exit code: 0 when every collector succeeded or is switched off by a
  // missing prerequisite (logged as a warning), 1 when one failed.
  static int runOnce(const Config& config, OutputFormat format, std::ostream& out);

  // `dbpulse suggest-indexes`: the index advisor once; progress on `err`. Exit code 0, or 1
  // when the advisor could not run (the reason on `err`).
  static int suggestIndexes(const Config& config, bool json, std::ostream& out, std::ostream& err);

 private:
  struct Pipeline;
  static std::shared_ptr<Pipeline> buildPipeline(const Config& config, SampleStore& store,
                                                 const Clock& clock);
  void installRoutes();
  // Registers an /admin/* route: needs `Authorization: Bearer <token>` when
  // agent.admin_token_file is set; without a token it answers only when the agent
  // listens on a loopback address (403 otherwise). Calls are rate-limited per client
  // address (agent.admin_rate_limit/_burst: 429 with Retry-After), run on the HTTP
  // server's slow pool (never delaying probes) and each leaves one audit log line.
  void adminRoute(const std::string& method, const std::string& path, HttpHandler handler);
  struct AdminCheck {
    HttpResponse denial;  // status 0 = allowed
    AdminToken token;
  };
  AdminCheck checkAdmin(const HttpRequest& request) const;
  std::shared_ptr<Pipeline> pipeline() const;
  // The one way a pipeline leaves service (reload and stop), through retired_ (see
  // Retirer): a pipeline whose collector did not return within `grace` is kept until its
  // threads have left. Caller holds reload_mu_.
  bool retire(std::shared_ptr<Pipeline> pipeline, Duration grace);
  Config currentConfig() const;  // a copy, any thread
  // Builds the notifier, or applies the new URL list to it (outboxes of kept URLs stay).
  void configureAlertmanager(const Config& config);
  exporters::AlertmanagerNotifier* notifier() const;
  // Starts, replaces or stops the leader elector for `config` (under reload_mu_; the
  // scheduler of the old pipeline is stopped, the new one not yet started).
  void configureLeaderElection(const Config& config);
  // The gate a new pipeline's scheduler asks before database-wide collectors run.
  void gateOnLeadership(Scheduler& scheduler);

  HttpResponse optimize(const HttpRequest& request);
  // Starts, replaces or stops the maintenance engine for `config` (under reload_mu_).
  void configureMaintenance(const Config& config);
  HttpResponse indexSuggestions();
  HttpResponse analyzeQuery(const HttpRequest& request);
  HttpResponse metrics(const HttpRequest& request);
  HttpResponse ready() const;
  // GET /: readiness, alerts (details only for callers the admin routes admit), collectors.
  HttpResponse statusPage(const HttpRequest& request) const;

  SystemClock clock_;
  SampleStore store_;
  exporters::Exposition exposition_;
  RateLimiter admin_limiter_{clock_};  // before http_: its handlers use it
  HttpServer http_;
  std::mutex reload_mu_;  // start, reload and stop one at a time (SIGHUP, /admin/reload)
  bool stopped_ = false;  // GUARDED_BY(reload_mu_): stop() began; reloads are refused
  Retirer<Pipeline> retired_;  // GUARDED_BY(reload_mu_)
  mutable std::mutex mu_;
  Config config_;                       // GUARDED_BY(mu_)
  // The host the HTTP listener is bound to. A reload cannot move the socket, so the
  // loopback-only admin rule reads this, never config_.agent.listen_addr.
  std::string bound_host_;  // GUARDED_BY(mu_)
  std::shared_ptr<Pipeline> pipeline_;  // GUARDED_BY(mu_)
  // Leader election: the elector (null when off or nothing database-wide is collected) and
  // its answer, read by the scheduler's gate. Replaced under reload_mu_.
  std::unique_ptr<LeaderElector> leader_;
  std::string leader_key_;  // the settings leader_ was made from
  std::atomic<bool> is_leader_{true};
  std::atomic<bool> election_on_{false};  // leader_ != nullptr, for HTTP threads
  std::mutex advisor_mu_;                 // one advisor run (or analyze-query) at a time
  // The maintenance engine (null without a DSN) and the settings it was made from;
  // replaced under reload_mu_, read by HTTP threads under maintenance_mu_.
  mutable std::mutex maintenance_mu_;
  std::shared_ptr<MaintenanceEngine> maintenance_;  // GUARDED_BY(maintenance_mu_)
  std::string maintenance_key_;
  // Last members: destroyed (and their state written) before the store they report into;
  // the rule manager, which sends to the notifier, goes first.
  std::unique_ptr<exporters::AlertmanagerNotifier> notifier_;  // GUARDED_BY(mu_) (the pointer)
  std::unique_ptr<rules::RuleManager> rules_;  // the rule engine's thread; set in the ctor
};

}  // namespace dbpulse
