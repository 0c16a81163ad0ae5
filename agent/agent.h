#pragma once
// Agent: the composition root. Builds and owns every long-lived component in one visible
// order (store, rule engine, HTTP server with the admin API, leader elector, maintenance
// engine, the collectors' Pipeline) and stops them in reverse.
//
// Threads: start() and stop() come from the main thread; reload() from the main thread
// (SIGHUP) or an HTTP worker (POST /admin/reload). reload_mu_ serialises the three: a
// reload in flight finishes before stop() proceeds, and a reload after stop() is refused.
// Everything replaced by them (pipeline, leader elector, maintenance engine, notifier) is
// replaced under reload_mu_; HTTP handlers read it concurrently through the AgentView
// methods, which take mu_ or maintenance_mu_ or read atomics.

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "agent/admin/admin_api.h"
#include "agent/admin/agent_view.h"
#include "agent/config.h"
#include "agent/core/alert.h"
#include "agent/core/clock.h"
#include "agent/core/mutex.h"
#include "agent/core/sample_store.h"
#include "agent/http_server.h"
#include "agent/pipeline.h"
#include "agent/retirer.h"
#include "exporters/prometheus/exposition.h"

namespace dbpulse {

namespace exporters {
class AlertmanagerNotifier;
}
namespace rules {
class RuleManager;
}
class LeaderElector;
class MaintenanceEngine;
class AdvisorGate;

class Agent final : private admin::AgentView {
 public:
  explicit Agent(Config config);
  ~Agent() override;
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
  std::vector<ConfigError> reloadFromFile() override;
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

 private:
  // admin::AgentView, for the HTTP handlers (any thread).
  std::shared_ptr<Pipeline> pipeline() const override;
  bool isLeader() const override { return is_leader_; }
  bool electionOn() const override { return election_on_; }
  Config config() const override;
  std::string boundHost() const override;
  std::shared_ptr<MaintenanceEngine> maintenance() const override;
  rules::RuleManager& rules() const override { return *rules_; }
  SampleStore& store() const override { return store_; }

  // Builds the notifier, or applies the new URL list to it (outboxes of kept URLs stay).
  void configureAlertmanager(const Config& config);
  exporters::AlertmanagerNotifier* notifier() const;
  // Starts, replaces or stops the leader elector for `config` (under reload_mu_; the
  // scheduler of the old pipeline is stopped, the new one not yet started).
  void configureLeaderElection(const Config& config) REQUIRES(reload_mu_);
  // The gate a new pipeline's scheduler asks before database-wide collectors run.
  void gateOnLeadership(Scheduler& scheduler) REQUIRES(reload_mu_);
  // Starts, replaces or stops the maintenance engine for `config` (under reload_mu_).
  void configureMaintenance(const Config& config) REQUIRES(reload_mu_);

  SystemClock clock_;
  mutable SampleStore store_;
  exporters::Exposition exposition_;
  // One advisor run at a time: shared by the admin routes and the hourly advisor job.
  const std::shared_ptr<AdvisorGate> advisor_gate_;
  admin::AdminApi admin_;  // before http_: its handlers serve http_'s routes
  HttpServer http_;
  Mutex reload_mu_;  // start, reload and stop one at a time (SIGHUP, /admin/reload)
  bool stopped_ GUARDED_BY(reload_mu_) = false;  // stop() began; reloads are refused
  Retirer<Pipeline> retired_ GUARDED_BY(reload_mu_);
  mutable Mutex mu_;
  Config config_ GUARDED_BY(mu_);
  // The host the HTTP listener is bound to (AgentView::boundHost).
  std::string bound_host_ GUARDED_BY(mu_);
  std::shared_ptr<Pipeline> pipeline_ GUARDED_BY(mu_);
  // Leader election: the elector (null when off or nothing database-wide is collected) and
  // its answer, read by the scheduler's gate and HTTP threads.
  std::unique_ptr<LeaderElector> leader_ GUARDED_BY(reload_mu_);
  // The leader lock's session, shared with the pipeline's local PostgreSQL group.
  std::shared_ptr<collectors::PgSession> election_session_ GUARDED_BY(reload_mu_);
  std::string leader_key_ GUARDED_BY(reload_mu_);  // the settings leader_ was made from
  std::atomic<bool> is_leader_{true};
  std::atomic<bool> election_on_{false};  // leader_ != nullptr, for HTTP threads
  // The maintenance engine (null without a DSN) and the settings it was made from;
  // replaced under reload_mu_, read by HTTP threads under maintenance_mu_.
  mutable Mutex maintenance_mu_;
  std::shared_ptr<MaintenanceEngine> maintenance_ GUARDED_BY(maintenance_mu_);
  std::string maintenance_key_ GUARDED_BY(reload_mu_);
  // Last members: destroyed (and their state written) before the store they report into;
  // the rule manager, which sends to the notifier, goes first.
  std::unique_ptr<exporters::AlertmanagerNotifier> notifier_ GUARDED_BY(mu_);  // (the pointer)
  std::unique_ptr<rules::RuleManager> rules_;  // the rule engine's thread; set in the ctor
};

}  // namespace dbpulse
