#pragma once
// Go string literals, as PromQL, Go templates and promtool's test files write them:
// "..." and '...' with Go's escapes (no newline inside), `...` raw (no escapes).

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace dbpulse::rules {

struct GoString {
  std::string value;
  size_t end = 0;        // offset just past the closing quote
  std::string error;     // empty when the literal is well formed
  size_t error_pos = 0;  // where the error points: the opening quote or the bad escape

  bool ok() const { return error.empty(); }
};

// Reads the literal whose opening quote is src[start]. Errors: "unterminated string",
// "unknown escape sequence \"\\q\"", "bad escape sequence" (\x, \u, \U with too few hex
// digits), "bad octal escape sequence".
GoString readGoString(std::string_view src, size_t start);

// Go's Regexp.Expand (label_replace, reReplaceAll): $1, ${1}, $name, ${name} and $$ in
// `repl`; a group that did not take part (data() == nullptr) or does not exist expands
// to nothing; a malformed reference stays as text. groups[i] is group i of the match.
std::string expandGoTemplate(const re2::RE2& re, std::string_view repl,
                             const std::vector<std::string_view>& groups);

}  // namespace dbpulse::rules
