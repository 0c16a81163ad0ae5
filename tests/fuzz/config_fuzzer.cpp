// libFuzzer target: the config loader (TOML, validation, DBPULSE_* overrides) on arbitrary
// bytes, through loadConfigString as check-config, start and reload use it. Besides "no
// crash, no sanitizer report" it checks the loader's promise: a config or errors, never
// neither, and every error names the file.
//
// The input's first line, when it starts with "#env ", holds KEY=VALUE overrides separated
// by ';' (e.g. "#env DBPULSE_AGENT_LISTEN=[::1]:0;DBPULSE_RULES_FILES=a,b"); the rest of the
// input is the TOML text. Secret files (*_file keys) are read as the loader reads them;
// paths in the corpus name none that exist.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "agent/config.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

// Config files over 1 MiB are refused before parsing (kMaxConfigBytes); the fuzzer stays
// a little above that so the refusal itself is covered, not far beyond.
constexpr size_t kMaxInput = (1 << 20) + 16;

dbpulse::Environment parseEnvLine(std::string_view line) {
  dbpulse::Environment env;
  while (!line.empty()) {
    const size_t semi = line.find(';');
    const std::string_view kv = line.substr(0, semi);
    const size_t eq = kv.find('=');
    if (eq != std::string_view::npos) {
      env[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
    }
    if (semi == std::string_view::npos) break;
    line.remove_prefix(semi + 1);
  }
  return env;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > kMaxInput) return -1;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  dbpulse::Environment env;
  if (input.rfind("#env ", 0) == 0) {
    const size_t nl = input.find('\n');
    env = parseEnvLine(input.substr(5, nl == std::string_view::npos ? nl : nl - 5));
    input.remove_prefix(nl == std::string_view::npos ? input.size() : nl + 1);
  }
  const std::string path = "/nonexistent/dbpulse-fuzz/dbpulse.toml";
  const dbpulse::LoadResult r = dbpulse::loadConfigString(std::string(input), path, env);
  check(r.config.has_value() || !r.errors.empty());
  check(!r.config.has_value() || r.errors.empty());
  for (const auto& e : r.errors) {
    check(!e.message.empty());
    check(e.line >= 0 && e.column >= 0);
    check(e.toString().find(e.message) != std::string::npos);
  }
  return 0;
}
