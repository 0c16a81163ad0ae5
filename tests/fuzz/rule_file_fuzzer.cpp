// libFuzzer target: Prometheus rule files (YAML, then every rule's PromQL expression and
// label/annotation templates) through parseRuleFile, as check-config, start and reload load
// them. Checks the loader's promises: a usable set has groups with valid rules (a parsed
// expression, recording rules without `for` or annotations), a rejected one says why, each
// error naming the file.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "rules/rule_file.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

// parseRuleFile has no cap of its own: loadRuleFiles refuses files over 8 MiB before
// parsing. Far smaller inputs reach every construct; 1 MiB keeps each run short.
constexpr size_t kMaxInput = 1 << 20;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dbpulse::rules;
  if (size > kMaxInput) return -1;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const RuleSet set = parseRuleFile(text, "fuzz.yml");
  for (const auto& e : set.errors) {
    check(e.file == "fuzz.yml");
    check(!e.message.empty());
  }
  if (!set.ok()) return 0;
  for (const auto& g : set.groups) {
    check(!g.name.empty());
    check(g.file == "fuzz.yml");
    check(g.interval_ms >= 0 && g.limit >= 0);
    for (const auto& r : g.rules) {
      check(r.expr != nullptr);
      check(!r.name.empty());
      check(r.for_ms >= 0 && r.keep_firing_for_ms >= 0);
      if (r.kind == Rule::Kind::kRecording) {
        check(r.for_ms == 0 && r.annotations.empty());
      }
    }
  }
  return 0;
}
