#include "integration/harness/require.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "integration/harness/pg_server.h"

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

std::string debianPackage(std::string_view package) {
  return "install the Debian package " + std::string(package) + " (apt-get install " +
         std::string(package) + ")";
}

// `remedy` completes "<path> is missing: ...".
bool requireAccess(const std::filesystem::path& path, const std::string& remedy, int mode) {
  if (::access(path.c_str(), mode) == 0) return true;
  reportMissing(path.string() + " is missing: " + remedy +
                (inCi() ? " [CI=true: a missing test dependency fails the run]" : ""));
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
  return requireAccess(path, debianPackage(debian_package), X_OK);
}

bool requirePostgres() {
  int major = 0;
  try {
    major = testedPgMajor();
  } catch (const std::exception& e) {
    [&] { FAIL() << e.what(); }();
    return false;
  }
  const std::filesystem::path bin = pgBinDir(major);
  const std::string remedy = major == kDebianPgMajor
                                 ? debianPackage("postgresql-15")
                                 : "PostgreSQL " + std::to_string(major) +
                                       " comes from packaging/pg_versions.sh (make test runs it)";
  return requireAccess(bin / "initdb", remedy, X_OK) &&
         requireAccess(bin / "postgres", remedy, X_OK) &&
         requireAccess(pgStatStatementsModule(major), remedy, R_OK);
}

bool requireRedis() { return requireBinary(kRedisServer, "redis-server"); }

bool requirePromtool() { return requireBinary(kPromtool, "prometheus"); }

}  // namespace dbpulse::testing
