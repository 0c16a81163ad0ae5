#pragma once
// What the integration tests need from the machine, checked in one place.
//
// A missing server or tool is a FAILURE when the environment has CI=true (CI must never
// pass by skipping), and a skip otherwise (a developer without redis-server can still run
// the rest). Either way the message names the Debian package to install.
//
// Usage, in a test body or a fixture's SetUp():
//   if (!requirePostgres()) return;

#include <filesystem>
#include <string_view>

namespace dbpulse::testing {

inline constexpr std::string_view kRedisServer = "/usr/bin/redis-server";
inline constexpr std::string_view kPromtool = "/usr/bin/promtool";

// True when the environment variable CI is "true" (or "1").
bool inCi();

// True when `path` is an executable file. Otherwise records a fatal failure (CI) or a skip
// on the current test, naming `debian_package`, and returns false: the caller returns.
[[nodiscard]] bool requireBinary(const std::filesystem::path& path,
                                 std::string_view debian_package);

// Server binaries (initdb, postgres) and pg_stat_statements of the major under test
// (testedPgMajor(): Debian's 15, or a tree of packaging/pg_versions.sh).
[[nodiscard]] bool requirePostgres();
[[nodiscard]] bool requireRedis();
[[nodiscard]] bool requirePromtool();

}  // namespace dbpulse::testing
