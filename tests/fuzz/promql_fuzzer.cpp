// libFuzzer target: the PromQL-subset parser (parseExpr) and the duration parser on
// arbitrary bytes. Checks: an error is kInvalidArgument with a "LINE:COL: " prefix; a
// parsed tree has a type, positions inside the text and selectors with sane ranges.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "rules/promql_parser.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

// Rule expressions live in rule files; an expression of 64 KiB is already absurd, and the
// parser's depth cap (48) is reached long before.
constexpr size_t kMaxInput = 64 << 10;

bool hasPositionPrefix(const std::string& message) {
  size_t i = 0;
  auto digits = [&] {
    const size_t start = i;
    while (i < message.size() && message[i] >= '0' && message[i] <= '9') ++i;
    return i > start;
  };
  if (!digits() || i >= message.size() || message[i++] != ':') return false;
  return digits() && i < message.size() && message[i] == ':';
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dbpulse::rules;
  if (size > kMaxInput) return -1;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  auto expr = parseExpr(text);
  if (!expr.ok()) {
    check(expr.status().code() == dbpulse::StatusCode::kInvalidArgument);
    check(hasPositionPrefix(expr.status().message()));
  } else {
    check(*expr != nullptr);
    check((*expr)->pos <= size);
    forEachSelector(**expr, [&](const Expr& sel) {
      check(sel.kind == Expr::Kind::kSelector);
      check(sel.range_ms >= 0);
      check(sel.pos <= size);
      for (const auto& m : sel.matchers) {
        const bool is_regex =
            m.op == LabelMatcher::Op::kRegexMatch || m.op == LabelMatcher::Op::kRegexNoMatch;
        check(!is_regex || m.regex != nullptr);
        // RE2 matches in linear time, so regex matchers run too (with std::regex, a
        // pattern such as "(a|a)*(a|a)*...b" took exponential time on its own text).
        (void)m.matches("");
        (void)m.matches(m.value);
      }
    });
  }

  auto d = parsePromDuration(text);
  if (d.ok()) check(*d >= 0);
  return 0;
}
