#pragma once
// AgentView: what the admin API's handlers may see of the running agent — a narrow
// interface, so each handler is unit-tested with a fake view and no sockets. The Agent
// implements it; every method may be called from any HTTP thread at any time.

#include <memory>
#include <string>
#include <vector>

#include "agent/config.h"

namespace dbpulse {

struct Pipeline;
class MaintenanceEngine;
class SampleStore;
namespace rules {
class RuleManager;
}

namespace admin {

class AgentView {
 public:
  virtual ~AgentView() = default;
  // The running pipeline; null before start() and after stop().
  virtual std::shared_ptr<Pipeline> pipeline() const = 0;
  // Whether this agent runs the database-wide work (always true without an election).
  virtual bool isLeader() const = 0;
  virtual bool electionOn() const = 0;
  virtual Config config() const = 0;  // a copy of the running config
  // The host the HTTP listener is bound to (a reload cannot move it; the loopback-only
  // admin rule reads this, never config().agent.listen_addr).
  virtual std::string boundHost() const = 0;
  // The maintenance engine; null without a [postgres] dsn.
  virtual std::shared_ptr<MaintenanceEngine> maintenance() const = 0;
  virtual rules::RuleManager& rules() const = 0;
  virtual SampleStore& store() const = 0;
  // Re-reads the config file (Agent::reloadFromFile): the errors, empty when applied.
  virtual std::vector<ConfigError> reloadFromFile() = 0;
};

}  // namespace admin
}  // namespace dbpulse
