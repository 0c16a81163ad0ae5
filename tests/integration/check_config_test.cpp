// `dbpulse check-config FILE`: exit 0 for a valid file; exit 2 with one
// `FILE:LINE:COL: message` line per problem otherwise (DESIGN.md, CLI contract).

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "integration/harness/harness.h"

namespace dbpulse::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kExitConfigError = 2;

struct Diagnostic {
  int line = 0;
  int column = 0;
  std::string message;
};

// The `FILE:LINE:COL: message` lines about `file` in the command's output (either stream).
std::vector<Diagnostic> diagnosticsFor(const CommandResult& result, const std::string& file) {
  std::vector<Diagnostic> found;
  const std::regex pattern(
      "^" + std::regex_replace(file, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)") +
      R"(:(\d+):(\d+): (.+)$)");
  std::istringstream lines(result.out + "\n" + result.err);
  std::string line;
  while (std::getline(lines, line)) {
    std::smatch match;
    if (std::regex_match(line, match, pattern)) {
      found.push_back({std::stoi(match[1]), std::stoi(match[2]), match[3]});
    }
  }
  return found;
}

class CheckConfigTest : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& text) {
    const auto path = dir_ / name;
    writeFile(path, text);
    return path.string();
  }

  TempDir dir_{"dbpulse-checkcfg-"};
};

TEST_F(CheckConfigTest, ValidFileExitsZero) {
  const std::string file = write("valid.toml", R"([agent]
listen = "127.0.0.1:9470"
state_dir = "/tmp/dbpulse-check-config-state"
instance = "chat-0"
log_format = "text"

[postgres]
dsn = "host=127.0.0.1 port=5432 dbname=chat user=dbpulse"
statement_timeout = "5s"

[companion]
pid_file = "/run/chat/chat.pid"

[collectors.connections]
enabled = true
interval = "250ms"
timeout = "200ms"

[collectors.process]
enabled = false
interval = "1s"
timeout = "500ms"
)");
  const CommandResult result = runDbpulse({"check-config", file}, 30s);
  EXPECT_EQ(result.exit_code, 0) << result.describe();
  EXPECT_TRUE(diagnosticsFor(result, file).empty()) << result.describe();
}

TEST_F(CheckConfigTest, TypoedKeyAndBadDurationExitTwoNamingEachWithLineAndColumn) {
  // Line 2: unknown key at column 1. Line 6: bad duration; its value starts at column 12.
  const std::string file = write("broken.toml", R"([agent]
listn = "127.0.0.1:9470"
state_dir = "/tmp/dbpulse-check-config-state"

[collectors.connections]
interval = "15x"
)");
  const CommandResult result = runDbpulse({"check-config", file}, 30s);
  EXPECT_EQ(result.exit_code, kExitConfigError) << result.describe();

  const std::vector<Diagnostic> diagnostics = diagnosticsFor(result, file);
  bool typo_reported = false;
  bool duration_reported = false;
  for (const Diagnostic& d : diagnostics) {
    if (d.line == 2 && d.column == 1 && d.message.find("listn") != std::string::npos) {
      typo_reported = true;
    }
    // The contract fixes the line; a tool may point at the key (col 1) or the value (col 12).
    if (d.line == 6 && (d.column == 1 || d.column == 12) &&
        (d.message.find("15x") != std::string::npos ||
         d.message.find("interval") != std::string::npos)) {
      duration_reported = true;
    }
  }
  EXPECT_TRUE(typo_reported) << "expected " << file << ":2:1: ... listn ...\n" << result.describe();
  EXPECT_TRUE(duration_reported) << "expected " << file << ":6:12: ... 15x ...\n"
                                 << result.describe();
}

TEST_F(CheckConfigTest, TomlSyntaxErrorExitsTwoWithPosition) {
  const std::string file = write("syntax.toml", "[agent]\nlisten = \"127.0.0.1:9470\n");
  const CommandResult result = runDbpulse({"check-config", file}, 30s);
  EXPECT_EQ(result.exit_code, kExitConfigError) << result.describe();
  const std::vector<Diagnostic> diagnostics = diagnosticsFor(result, file);
  ASSERT_FALSE(diagnostics.empty()) << result.describe();
  EXPECT_EQ(diagnostics.front().line, 2) << result.describe();
}

TEST_F(CheckConfigTest, MissingFileExitsTwoNamingTheFile) {
  const std::string file = (dir_ / "does-not-exist.toml").string();
  const CommandResult result = runDbpulse({"check-config", file}, 30s);
  EXPECT_EQ(result.exit_code, kExitConfigError) << result.describe();
  EXPECT_NE((result.out + result.err).find(file), std::string::npos) << result.describe();
}

// Hostile files named by the config: check-config answers (exit 2, the key and the file
// named) instead of hanging on a FIFO or reading /dev/zero until memory runs out.
class CheckConfigHostileFilesTest : public CheckConfigTest {
 protected:
  std::string fifo(const std::string& name) {
    const std::string path = (dir_ / name).string();
    if (::mkfifo(path.c_str(), 0600) != 0) ADD_FAILURE() << "mkfifo " << path;
    return path;
  }
  // Runs check-config on `toml`; it must finish quickly with exit 2 and mention `needles`.
  void expectRejected(const std::string& toml, const std::vector<std::string>& needles) {
    const std::string file = write("hostile.toml", toml);
    const CommandResult result = runDbpulse({"check-config", file}, 20s);
    ASSERT_TRUE(result.exit_code.has_value()) << "check-config hung: " << result.describe();
    EXPECT_EQ(*result.exit_code, kExitConfigError) << result.describe();
    for (const auto& needle : needles) {
      EXPECT_NE((result.out + result.err).find(needle), std::string::npos)
          << "missing '" << needle << "': " << result.describe();
    }
  }
};

TEST_F(CheckConfigHostileFilesTest, FifoRuleFileIsRejectedNotWaitedOn) {
  fifo("pipe.yml");
  expectRejected("[rules]\nfiles = [\"*.yml\"]\n", {"pipe.yml", "not a regular file"});
}

TEST_F(CheckConfigHostileFilesTest, FifoPasswordFileIsRejectedNotWaitedOn) {
  const std::string pipe = fifo("password");
  expectRejected(
      "[postgres]\ndsn = \"host=127.0.0.1 dbname=x\"\npassword_file = \"" + pipe + "\"\n",
      {"postgres.password_file", "not a regular file"});
}

TEST_F(CheckConfigHostileFilesTest, DevZeroSecretIsRejectedWithoutReadingIt) {
  expectRejected("[redis]\npassword_file = \"/dev/zero\"\n",
                 {"redis.password_file", "/dev/zero", "not a regular file"});
}

TEST_F(CheckConfigHostileFilesTest, OversizedSecretIsRejected) {
  const std::string big = write("token", std::string(1 << 20, 'x'));
  expectRejected("[agent]\nadmin_token_file = \"" + big + "\"\n",
                 {"agent.admin_token_file", "larger than"});
}

TEST_F(CheckConfigHostileFilesTest, ListenAddressThatIsNotAnIpIsRejected) {
  expectRejected("[agent]\nlisten = \"999.1.1.1:80\"\n",
                 {"agent.listen", "999.1.1.1", "not an IPv4 or IPv6 address"});
}

}  // namespace
}  // namespace dbpulse::testing
