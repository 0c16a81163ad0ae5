// libFuzzer target: the companion collector's Prometheus text parser on arbitrary bytes.
// Besides "no crash, no sanitizer report", it checks the parser's promises on every input:
// bounded output, valid names, no empty or reserved labels, no duplicate series.
//
//   clang build:  tests/fuzz/text_parser_fuzzer tests/fuzz/corpus/text_parser
//   any build:    tests/fuzz/text_parser_fuzz_replay tests/fuzz/corpus/text_parser  (ctest)

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "collectors/companion/text_parser.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dbpulse::collectors;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  TextParserOptions options;
  options.max_line_bytes = 4096;
  options.max_samples = 1000;
  options.max_labels = 16;
  options.max_errors_kept = 5;
  const ParsedExposition p = parseTextExposition(text, options);

  check(p.samples.size() <= options.max_samples);
  check(p.errors.size() <= options.max_errors_kept);
  check(p.rejected_lines + p.duplicates <= size);
  std::set<std::string> keys;
  for (const auto& s : p.samples) {
    check(isValidMetricName(s.name));
    check(s.labels.size() <= options.max_labels);
    for (const auto& l : s.labels.items()) {
      check(isValidLabelName(l.name));
      check(!l.value.empty());
      check(l.name.rfind("__", 0) != 0);
    }
    std::string key = s.name;
    s.labels.appendKey(key);
    check(keys.insert(key).second);
    check(s.family == ExpositionSample::kNoFamily || s.family < p.families.size());
  }
  for (const auto& f : p.families) check(isValidMetricName(f.name));
  return 0;
}
