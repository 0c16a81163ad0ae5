#pragma once
// One PostgreSQL and one Redis per test process, started on first use and stopped when
// the test program ends (by SharedServersEnvironment, registered in harness/main.cpp).
// Nothing starts at static-initialization time or in main: `--gtest_list_tests`, which
// the build runs, starts no server.
//
// Tests may stop/start a shared server (e.g. an outage test); the accessor starts it again
// if the previous test left it stopped. Tests must not depend on state left by another test
// (create what you need; createDatabase() is idempotent).
//
// Usage:
//   if (!requirePostgres()) return;
//   PgServer& pg = sharedPostgres();

#include <gtest/gtest.h>

#include "integration/harness/pg_server.h"
#include "integration/harness/redis_server.h"

namespace dbpulse::testing {

// Start on first call; throw HarnessError when the server cannot start (the same error
// again on later calls in this process, without retrying).
PgServer& sharedPostgres();
RedisServer& sharedRedis();

// Stops and deletes the shared servers (idempotent).
void stopSharedServers();

class SharedServersEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { stopSharedServers(); }
};

}  // namespace dbpulse::testing
