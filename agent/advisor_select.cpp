#include "agent/advisor_select.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace dbpulse::advisor {
namespace {

constexpr double kCoveringMinShare = 0.25;

bool uses(const WhatIfPlan& p, size_t c) {
  return std::find(p.uses.begin(), p.uses.end(), c) != p.uses.end();
}

std::string percent(double share) {
  return std::to_string(static_cast<long long>(std::lround(share * 100))) + " %";
}

}  // namespace

Result<Selection> chooseIndexes(WhatIf& what_if, const SelectionInput& input) {
  const size_t n = input.baseline_costs.size();
  auto weight = [&input](size_t s) {
    return s < input.weights.size() ? std::max(1.0, input.weights[s]) : 1.0;
  };
  Selection out;
  std::vector<bool> present(input.candidates, false);
  std::vector<bool> failed(input.candidates, false);
  for (size_t c = 0; c < input.candidates; ++c) {
    if (auto st = what_if.add(c); !st.ok()) {
      // The server is gone: nothing else can be validated either.
      if (st.code() == StatusCode::kUnavailable) return st;
      failed[c] = true;  // this one cannot exist even hypothetically; the others still can
      out.rejected.emplace_back(c, "hypopg could not create it (" + st.message() + ")");
      continue;
    }
    present[c] = true;
  }
  std::vector<WhatIfPlan> plans(n);
  for (size_t s = 0; s < n; ++s) {
    auto p = what_if.plan(s);
    if (!p.ok()) return p.status();
    plans[s] = *p;
  }
  auto usedByAny = [&plans](size_t c) {
    return std::any_of(plans.begin(), plans.end(), [c](const WhatIfPlan& p) { return uses(p, c); });
  };
  // A plain candidate whose covering one is used stays for now: it is what the covering one
  // is measured against.
  std::set<size_t> fallback;
  for (const auto& [cover, plain] : input.covers) {
    if (cover < input.candidates && present[cover] && usedByAny(cover)) fallback.insert(plain);
  }
  // Unused by every plan: gone.
  for (size_t c = 0; c < input.candidates; ++c) {
    if (usedByAny(c) || failed[c] || fallback.count(c)) continue;
    if (auto st = what_if.remove(c); !st.ok()) return st;
    present[c] = false;
    out.rejected.emplace_back(c, "the planner would not use it");
  }
  // Take each used one away in turn, those serving fewer statements first.
  std::vector<size_t> order;
  for (size_t c = 0; c < input.candidates; ++c) {
    if (present[c]) order.push_back(c);
  }
  auto served = [&plans](size_t c) {
    return std::count_if(plans.begin(), plans.end(),
                         [c](const WhatIfPlan& p) { return uses(p, c); });
  };
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return served(a) < served(b); });
  // Covering candidates first, while their plain candidates are still there.
  std::stable_partition(order.begin(), order.end(),
                        [&input](size_t c) { return input.covers.count(c) > 0; });
  for (size_t c : order) {
    std::vector<size_t> affected;
    for (size_t s = 0; s < n; ++s) {
      if (uses(plans[s], c)) affected.push_back(s);
    }
    if (affected.empty()) {  // the plans moved off it when another was taken away
      if (auto st = what_if.remove(c); !st.ok()) return st;
      present[c] = false;
      out.rejected.emplace_back(c, "the planner would not use it beside the others");
      continue;
    }
    if (auto st = what_if.remove(c); !st.ok()) return st;
    std::vector<WhatIfPlan> without;
    double loss = 0, base = 0;
    for (size_t s : affected) {
      auto p = what_if.plan(s);
      if (!p.ok()) return p.status();
      loss += weight(s) * (p->cost - plans[s].cost);
      base += weight(s) * input.baseline_costs[s];
      without.push_back(*p);
    }
    // A covering index is measured against its plain one's plans, which it must beat by a
    // quarter at least (it is wider, and an Index Only Scan needs a vacuumed table), and by
    // `covering_min_saving` per call: a lookup of a row or two saves a heap read or two.
    const bool covering = input.covers.count(c) > 0;
    if (covering) {
      base = 0;
      for (size_t i = 0; i < affected.size(); ++i) base += weight(affected[i]) * without[i].cost;
    }
    const double share = base > 0 ? loss / base : 0;
    double weights = 0;
    for (size_t s : affected) weights += weight(s);
    const bool few_heap_reads = covering && loss < input.covering_min_saving * weights;
    if (few_heap_reads || share < (covering ? std::max(input.min_improvement, kCoveringMinShare)
                                            : input.min_improvement)) {
      present[c] = false;
      for (size_t i = 0; i < affected.size(); ++i) plans[affected[i]] = without[i];
      out.rejected.emplace_back(
          c, covering ? "the plain index serves its statements almost as well (the INCLUDE "
                        "columns save " +
                            percent(share) + " of its plans' cost, " +
                            std::to_string(std::lround(weights > 0 ? loss / weights : 0)) +
                            " planner units a call)"
                      : "the others serve its statements almost as well (" + percent(share) +
                            " of their cost without it)");
    } else if (auto st = what_if.add(c); !st.ok()) {
      return st;
    }
  }
  for (size_t c = 0; c < input.candidates; ++c) {
    if (!present[c]) continue;
    Chosen chosen{c, {}, 0};
    double before = 0, after = 0;
    for (size_t s = 0; s < n; ++s) {
      if (!uses(plans[s], c)) continue;
      chosen.statements.push_back({s, input.baseline_costs[s], plans[s].cost});
      before += weight(s) * input.baseline_costs[s];
      after += weight(s) * plans[s].cost;
    }
    chosen.improvement = before > 0 ? 1.0 - after / before : 0;
    out.chosen.push_back(std::move(chosen));
  }
  out.final_plans = std::move(plans);
  return out;
}

bool paysForItself(double saved_cost_per_second, double index_writes_per_second,
                   double cost_per_entry) {
  return saved_cost_per_second >= index_writes_per_second * cost_per_entry;
}

}  // namespace dbpulse::advisor
