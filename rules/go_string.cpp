#include "rules/go_string.h"

#include <re2/re2.h>

#include <cctype>
#include <cstdint>

namespace dbpulse::rules {
namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void appendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// The character an escape letter stands for, or 0 for one that needs more work.
char simpleEscape(char e) {
  switch (e) {
    case 'a':
      return '\a';
    case 'b':
      return '\b';
    case 'f':
      return '\f';
    case 'n':
      return '\n';
    case 'r':
      return '\r';
    case 't':
      return '\t';
    case 'v':
      return '\v';
    case '\\':
      return '\\';
    default:
      return 0;
  }
}

}  // namespace

GoString readGoString(std::string_view src, size_t start) {
  GoString r;
  const auto fail = [&r](size_t pos, std::string message) {
    r.error = std::move(message);
    r.error_pos = pos;
    return r;
  };
  const char quote = src[start];
  size_t pos = start + 1;
  while (true) {
    if (pos >= src.size() || (quote != '`' && src[pos] == '\n')) {
      return fail(start, "unterminated string");
    }
    const char c = src[pos++];
    if (c == quote) break;
    if (c != '\\' || quote == '`') {
      r.value += c;
      continue;
    }
    if (pos >= src.size()) return fail(start, "unterminated string");
    const size_t esc = pos - 1;
    const char e = src[pos++];
    if (const char s = simpleEscape(e); s != 0) {
      r.value += s;
    } else if (e == '"' || e == '\'') {
      // Go takes an escaped quote only inside its own kind of literal.
      if (e != quote) return fail(esc, "unknown escape sequence \"\\" + std::string(1, e) + "\"");
      r.value += e;
    } else if (e == 'x' || e == 'u' || e == 'U') {
      const int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
      uint32_t v = 0;
      for (int i = 0; i < digits; ++i) {
        const int h = pos < src.size() ? hexValue(src[pos]) : -1;
        if (h < 0) return fail(esc, "bad escape sequence");
        v = v * 16 + static_cast<uint32_t>(h);
        ++pos;
      }
      if (e == 'x') {
        r.value += static_cast<char>(v);
      } else {
        appendUtf8(r.value, v);
      }
    } else if (e >= '0' && e <= '7') {
      uint32_t v = static_cast<uint32_t>(e - '0');
      for (int i = 0; i < 2; ++i) {
        if (pos >= src.size() || src[pos] < '0' || src[pos] > '7') {
          return fail(esc, "bad octal escape sequence");
        }
        v = v * 8 + static_cast<uint32_t>(src[pos++] - '0');
      }
      if (v > 255) return fail(esc, "bad octal escape sequence");
      r.value += static_cast<char>(v);
    } else {
      return fail(esc, "unknown escape sequence \"\\" + std::string(1, e) + "\"");
    }
  }
  r.end = pos;
  return r;
}

std::string expandGoTemplate(const re2::RE2& re, std::string_view repl,
                             const std::vector<std::string_view>& groups) {
  std::string out;
  size_t i = 0;
  auto is_name_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  };
  while (i < repl.size()) {
    const size_t dollar = repl.find('$', i);
    if (dollar == std::string_view::npos) {
      out.append(repl.substr(i));
      break;
    }
    out.append(repl.substr(i, dollar - i));
    size_t j = dollar + 1;
    if (j < repl.size() && repl[j] == '$') {
      out += '$';
      i = j + 1;
      continue;
    }
    const bool brace = j < repl.size() && repl[j] == '{';
    if (brace) ++j;
    size_t k = j;
    while (k < repl.size() && is_name_char(repl[k])) ++k;
    if (k == j || (brace && (k >= repl.size() || repl[k] != '}'))) {
      out += '$';  // malformed: the dollar is literal text
      i = dollar + 1;
      continue;
    }
    const std::string_view name = repl.substr(j, k - j);
    i = brace ? k + 1 : k;
    int num = 0;
    for (char c : name) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || num >= 100'000'000) {
        num = -1;
        break;
      }
      num = num * 10 + (c - '0');
    }
    if (name.size() > 1 && name[0] == '0') num = -1;
    if (num < 0) {
      const auto& named = re.NamedCapturingGroups();
      auto it = named.find(std::string(name));
      if (it != named.end()) num = it->second;
    }
    if (num >= 0 && static_cast<size_t>(num) < groups.size() && groups[num].data() != nullptr) {
      out.append(groups[num].data(), groups[num].size());
    }
  }
  return out;
}

}  // namespace dbpulse::rules
