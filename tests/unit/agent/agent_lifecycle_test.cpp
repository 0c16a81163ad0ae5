// Review 4(d)4: stop() raced an in-flight POST /admin/reload, which could reset the
// leader elector under stop() or install a fresh, started pipeline after stop() had
// taken the old one. stop() now waits for a reload in flight and refuses later ones.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "agent/agent.h"
#include "agent/config.h"

namespace dbpulse {
namespace {

using namespace std::chrono_literals;

// Only the process collector (no server needed), no rules, no election, no maintenance.
Config lifecycleConfig(const std::filesystem::path& dir) {
  std::string text = "[agent]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"" + dir.string() +
                     "\"\nleader_election = false\nlog_format = \"text\"\n\n"
                     "[rules]\nfiles = []\n\n[maintenance]\nenabled = false\n\n";
  for (const std::string& name : knownCollectorNames()) {
    text +=
        "[collectors." + name + "]\nenabled = " + (name == "process" ? "true" : "false") + "\n\n";
  }
  auto loaded = loadConfigString(text, (dir / "dbpulse.toml").string(), {});
  EXPECT_TRUE(loaded.config.has_value())
      << (loaded.errors.empty() ? std::string() : loaded.errors[0].toString());
  return loaded.config ? *loaded.config : Config{};
}

class AgentLifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/dbpulse-lifecycle-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::filesystem::path dir_;
};

TEST_F(AgentLifecycleTest, AReloadAfterStopIsRefused) {
  const Config config = lifecycleConfig(dir_);
  Agent agent(config);
  ASSERT_TRUE(agent.start().ok());
  EXPECT_TRUE(agent.reload(config));
  EXPECT_TRUE(agent.stop(5s));
  EXPECT_FALSE(agent.reload(config)) << "a reload after stop() installed a new pipeline";
}

TEST_F(AgentLifecycleTest, StopWaitsForAReloadInFlightAndRefusesLaterOnes) {
  const Config config = lifecycleConfig(dir_);
  Agent agent(config);
  ASSERT_TRUE(agent.start().ok());
  std::atomic<int> applied{0};
  std::atomic<int> refused{0};
  std::thread reloader([&] {
    // POST /admin/reload, again and again, on another thread.
    for (int i = 0; i < 200 && refused == 0; ++i) (agent.reload(config) ? applied : refused)++;
  });
  while (applied == 0 && refused == 0) std::this_thread::yield();
  EXPECT_TRUE(agent.stop(5s));
  reloader.join();
  EXPECT_GE(applied, 1);
  EXPECT_EQ(refused, 1) << "the first reload after stop() must be refused, and end the loop";
}

}  // namespace
}  // namespace dbpulse
