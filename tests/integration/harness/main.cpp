// main() for dbpulse_integration_tests: GoogleTest plus the environment that stops the
// shared servers at the end. Starts nothing itself (the build runs --gtest_list_tests).

#include <gtest/gtest.h>

#include "integration/harness/shared_servers.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // gtest owns and deletes the environment.
  ::testing::AddGlobalTestEnvironment(new dbpulse::testing::SharedServersEnvironment);
  return RUN_ALL_TESTS();
}
