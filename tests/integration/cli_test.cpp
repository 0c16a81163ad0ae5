// The dbpulse command line beyond check-config: --help, --version, bad usage.

#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "integration/harness/harness.h"

namespace dbpulse::testing {
namespace {

using namespace std::chrono_literals;

TEST(CliTest, HelpExitsZeroAndListsTheSubcommands) {
  const CommandResult result = runDbpulse({"--help"}, 30s);
  EXPECT_EQ(result.exit_code, 0) << result.describe();
  for (const char* word : {"run", "check-config", "once", "--config"}) {
    EXPECT_NE(result.out.find(word), std::string::npos) << word << "\n" << result.describe();
  }
}

TEST(CliTest, VersionExitsZeroAndPrintsASemanticVersion) {
  const CommandResult result = runDbpulse({"--version"}, 30s);
  EXPECT_EQ(result.exit_code, 0) << result.describe();
  EXPECT_TRUE(std::regex_search(result.out, std::regex(R"(\b\d+\.\d+\.\d+\b)")))
      << result.describe();
}

TEST(CliTest, UnknownSubcommandFails) {
  const CommandResult result = runDbpulse({"no-such-subcommand"}, 30s);
  ASSERT_TRUE(result.exit_code.has_value()) << result.describe();
  EXPECT_NE(*result.exit_code, 0) << result.describe();
}

TEST(CliTest, RunWithoutConfigFailsInsteadOfStartingWithDefaults) {
  const CommandResult result = runDbpulse({"run"}, 30s);
  ASSERT_TRUE(result.exit_code.has_value()) << result.describe();
  EXPECT_NE(*result.exit_code, 0) << result.describe();
}

}  // namespace
}  // namespace dbpulse::testing
