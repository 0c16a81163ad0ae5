#pragma once
// Retirer: the one way a pipeline (a scheduler and the collectors and sessions it runs)
// leaves service, used by both reload and stop.
//
// retire() stops the pipeline's scheduler. When it stopped, the pipeline is released
// (freed once its last reader lets go). When a collector did not return within the
// grace, a scheduler thread is still inside the pipeline's collectors and sessions:
// the pipeline is kept here until its scheduler has drained, and freed by a later
// retire() or reap(); abandon() hands what is still kept to the process's life at exit,
// so destroying the owner never waits for a stuck collector.
//
// `Pipeline` needs a `scheduler` member pointing to something with stop(Duration) and
// drained() (Scheduler). Not thread-safe: the owner serialises calls (Agent::reload_mu_).

#include <memory>
#include <vector>

#include "agent/core/duration.h"

namespace dbpulse {

template <typename Pipeline>
class Retirer {
 public:
  Retirer() = default;
  Retirer(const Retirer&) = delete;
  Retirer& operator=(const Retirer&) = delete;
  ~Retirer() { abandon(); }

  // Returns whether `pipeline` stopped within `grace` (true for null).
  bool retire(std::shared_ptr<Pipeline> pipeline, Duration grace) {
    reap();
    if (!pipeline) return true;
    if (pipeline->scheduler->stop(grace)) return true;
    kept_.push_back(std::move(pipeline));
    return false;
  }

  // Frees kept pipelines whose scheduler has drained; returns how many are still kept.
  size_t reap() {
    std::erase_if(kept_, [](const auto& p) { return p->scheduler->drained(); });
    return kept_.size();
  }

  // Frees what has drained and leaks the rest on purpose: their threads may run until
  // the process ends.
  void abandon() {
    if (reap() == 0) return;
    new std::vector<std::shared_ptr<Pipeline>>(std::move(kept_));  // NOLINT: deliberate leak
    kept_.clear();
  }

 private:
  std::vector<std::shared_ptr<Pipeline>> kept_;
};

}  // namespace dbpulse
