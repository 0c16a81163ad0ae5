#pragma once
// The alert as the rule engine hands it to the notifier: the shared vocabulary
// between rules/ (which decides) and exporters/alertmanager/ (which delivers).

#include <string>
#include <vector>

#include "agent/core/clock.h"
#include "agent/core/labels.h"

namespace dbpulse {

// One alert notification, in Alertmanager API v2 terms.
struct AlertNotification {
  Labels labels;       // alertname + the series' labels + rule labels + instance
  Labels annotations;  // templated summary, description, runbook, ...
  WallTime starts_at;  // when it started firing (kept across restarts)
  WallTime
      ends_at;  // firing: now + 4 x max(eval interval, resend interval); resolved: the real end
  std::string generator_url;
  bool resolved = false;
};

// Where the rule engine sends notifications. Implementations must not block on the
// network: they queue (and persist) and deliver in the background.
class AlertSink {
 public:
  virtual ~AlertSink() = default;
  virtual void send(const std::vector<AlertNotification>& alerts) = 0;
};

}  // namespace dbpulse
