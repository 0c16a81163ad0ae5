#pragma once
// What the Agent derives from a Config for the parts it wires together: the sample store's
// history and the rule manager's options. Pure functions of the config (and the bound port).

#include "agent/config.h"
#include "agent/core/sample_store.h"
#include "rules/rule_manager.h"

namespace dbpulse {

// [agent] history of points per series, so rule ranges up to that length work.
SampleStoreOptions storeOptions(const Config& config);

// The rule manager's options. `port` is the bound HTTP port (0 before the listener is up),
// for the generatorURL of notifications.
rules::RuleManagerOptions ruleOptions(const Config& config, int port);

}  // namespace dbpulse
