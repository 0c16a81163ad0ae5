#include "integration/harness/require.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace dbpulse::testing {

namespace {

void reportMissing(const std::string& message) {
  // FAIL()/GTEST_SKIP() return from the function they are in: a lambda keeps them here,
  // and both leave a mark the caller (and gtest, after SetUp) can see.
  if (inCi()) {
    [&] { FAIL() << message; }();
  } else {
    [&] { GTEST_SKIP() << message; }();
  }
}

bool requireAccess(const std::filesystem::path& path, std::string_view debian_package, int mode) {
  if (::access(path.c_str(), mode) == 0) return true;
  reportMissing(path.string() + " is missing: install the Debian package " +
                std::string(debian_package) + " (apt-get install " + std::string(debian_package) +
                ")" + (inCi() ? " [CI=true: a missing test dependency fails the run]" : ""));
  return false;
}

}  // namespace

bool inCi() {
  const char* ci = std::getenv("CI");
  if (ci == nullptr) return false;
  const std::string_view value(ci);
  return value == "true" || value == "1";
}

bool requireBinary(const std::filesystem::path& path, std::string_view debian_package) {
  return requireAccess(path, debian_package, X_OK);
}

bool requirePostgres() {
  const std::filesystem::path bin(kPostgresBinDir);
  return requireBinary(bin / "initdb", "postgresql-15") &&
         requireBinary(bin / "postgres", "postgresql-15") &&
         requireAccess("/usr/lib/postgresql/15/lib/pg_stat_statements.so", "postgresql-15", R_OK);
}

bool requireRedis() { return requireBinary(kRedisServer, "redis-server"); }

bool requirePromtool() { return requireBinary(kPromtool, "prometheus"); }

}  // namespace dbpulse::testing
