// libFuzzer target: alert label/annotation templates (the Go text/template subset):
// Template::parse on arbitrary bytes, and expand() of what parses against an alert's data,
// with the value taken from the input's first 8 bytes (NaN, Inf and denormals included).
// Checks: a parse error is kInvalidArgument; a constant template expands to its text.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "agent/core/labels.h"
#include "rules/template.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

// Templates are label and annotation values in rule files; 64 KiB is far beyond any.
constexpr size_t kMaxInput = 64 << 10;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dbpulse::rules;
  if (size > kMaxInput) return -1;
  double value = 0;
  if (size >= sizeof value) {
    std::memcpy(&value, data, sizeof value);
    data += sizeof value;
    size -= sizeof value;
  }
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  // Functions that are part of the contract on their own.
  (void)humanize(value);
  (void)humanize1024(value);
  (void)humanizePercentage(value);
  (void)humanizeDuration(value);
  (void)formatGoFloat(value);

  auto tmpl = Template::parse(text);
  if (!tmpl.ok()) {
    check(tmpl.status().code() == dbpulse::StatusCode::kInvalidArgument);
    return 0;
  }
  const dbpulse::Labels labels{{"alertname", "PostgresDown"},
                               {"instance", "chat-0"},
                               {"le", "0.5"},
                               {"datname", "chat\xff"}};
  const dbpulse::Labels external{{"cluster", "eu-1"}};
  TemplateData td;
  td.labels = &labels;
  td.value = value;
  td.external_labels = &external;
  td.external_url = "http://dbpulse:9470/";
  auto out = tmpl->expand(td);
  if (tmpl->isConstant()) check(out.ok() && *out == text);
  return 0;
}
