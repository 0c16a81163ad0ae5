#pragma once
// Choosing a set of indexes, not single ones: the planner is asked what it would do with
// every candidate present at once (hypothetical indexes), then each index the plans use is
// taken away in turn and kept only if the statements it serves would lose at least
// `min_improvement` of their cost without it. An index that only helps together with
// another (an EXISTS that needs both sides indexed) survives, because taking away either
// one loses the gain; a narrow index that a wider one covers goes, because the plans move
// to the wider one at almost no cost.
//
// The planner is behind `WhatIf` so the choice is unit-tested with a fake; the advisor
// implements it with hypopg on its read-only session.

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "agent/core/status.h"

namespace dbpulse::advisor {

// A plan's answer: its estimated total cost and which hypothetical indexes it uses.
struct WhatIfPlan {
  double cost = 0;
  std::vector<size_t> uses;  // candidate numbers
};

class WhatIf {
 public:
  virtual ~WhatIf() = default;
  // Makes candidate `c` exist (hypothetically) or not.
  virtual Status add(size_t c) = 0;
  virtual Status remove(size_t c) = 0;
  // Plans statement `s` with the candidates that exist now.
  virtual Result<WhatIfPlan> plan(size_t s) = 0;
};

struct SelectionInput {
  size_t candidates = 0;
  std::vector<double> weights;         // per statement: calls (at least 1)
  std::vector<double> baseline_costs;  // per statement: cost with no candidate
  double min_improvement = 0.10;
  // Covering candidate -> the plain candidate with the same keys. A covering index is taken
  // away before anything else, with its plain one still there: it stays only when the
  // Index Only Scan saves a quarter (or `min_improvement`, if more) of the cost of the plans
  // with the plain index, and at least `covering_min_saving` per call (about ten heap pages
  // read at random: a lookup of a row or two is not worth the wider index).
  std::map<size_t, size_t> covers;
  double covering_min_saving = 40;
};

struct StatementGain {
  size_t statement;
  double before, after;  // estimated cost without any and with the chosen candidates
};

struct Chosen {
  size_t candidate;
  std::vector<StatementGain> statements;  // whose chosen plan uses it
  double improvement = 0;                 // weighted share of those statements' cost saved
};

struct Selection {
  std::vector<Chosen> chosen;
  // Candidates left out, with why ("the planner would not use it", "covered by the others:
  // 2 % without it").
  std::vector<std::pair<size_t, std::string>> rejected;
  std::vector<WhatIfPlan> final_plans;  // per statement, with the chosen set
};

// On return only the chosen candidates exist in `what_if`. A candidate that cannot be
// created is rejected with the reason and the others go on; errors are the planner's, and
// Unavailable from add().
Result<Selection> chooseIndexes(WhatIf& what_if, const SelectionInput& input);

// Whether an index pays for itself: the plan cost it saves per second against what keeping
// it costs on writes (one index entry per row written, at about `cost_per_entry` planner
// units: the CPU of a B-tree descent and insert plus a share of a page write). Both rates
// over the same window.
bool paysForItself(double saved_cost_per_second, double index_writes_per_second,
                   double cost_per_entry = 1.0);

}  // namespace dbpulse::advisor
