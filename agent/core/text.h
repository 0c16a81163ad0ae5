#pragma once
// Small text helpers shared across folders.

#include <string>
#include <string_view>
#include <utility>

namespace dbpulse {

// RFC 3986 percent-encoding: unreserved characters (ALPHA DIGIT - _ . ~) stay, every
// other byte becomes %XX (upper-case hex). For URI query values and fragments.
std::string percentEncode(std::string_view s);

// 1-based line and column of byte offset `pos` in `text` (clamped to its end), for
// error messages that point into operator input.
std::pair<size_t, size_t> lineColumn(std::string_view text, size_t pos);

}  // namespace dbpulse
