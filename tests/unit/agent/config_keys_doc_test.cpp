// The README is the config key reference users have: every key the loader accepts is in its
// TOML block (under its [section]) or named in its text as `[section] key`. Checked against
// the loader's own key tables, so a new key cannot ship undocumented.

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "agent/config.h"

namespace dbpulse {
namespace {

std::string readme() {
  std::ifstream in(std::string(DBPULSE_SOURCE_DIR) + "/README.md");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// section -> keys written as `key = ...` inside ```toml blocks ([collectors.x] -> NAME).
std::map<std::string, std::set<std::string>> keysInTomlBlocks(const std::string& text) {
  std::map<std::string, std::set<std::string>> out;
  std::istringstream lines(text);
  std::string line, section;
  bool in_toml = false;
  while (std::getline(lines, line)) {
    if (line.rfind("```", 0) == 0) {
      in_toml = !in_toml && line == "```toml";
      continue;
    }
    if (!in_toml || line.empty()) continue;
    if (line[0] == '[') {
      section = line.substr(1, line.find(']') - 1);
      if (section.rfind("collectors.", 0) == 0) section = "collectors.NAME";
      continue;
    }
    const size_t eq = line.find(" =");
    if (eq != std::string::npos && line[0] != '#') out[section].insert(line.substr(0, eq));
  }
  return out;
}

TEST(ConfigKeysDocTest, EveryKeyTheLoaderAcceptsIsInTheReadme) {
  const std::string text = readme();
  ASSERT_FALSE(text.empty());
  const auto blocks = keysInTomlBlocks(text);
  std::string missing;
  for (const std::string& full : knownConfigKeys()) {
    const size_t dot = full.rfind('.');
    const std::string section = full.substr(0, dot), key = full.substr(dot + 1);
    const auto it = blocks.find(section);
    if (it != blocks.end() && it->second.count(key)) continue;
    if (text.find("`[" + section + "] " + key) != std::string::npos) continue;
    missing += "\n  " + full;
  }
  EXPECT_TRUE(missing.empty()) << "config keys the README does not document:" << missing;
}

TEST(ConfigKeysDocTest, TheReadmeDocumentsNoKeyTheLoaderRejects) {
  const std::set<std::string> known = [] {
    const auto keys = knownConfigKeys();
    return std::set<std::string>(keys.begin(), keys.end());
  }();
  std::string unknown;
  for (const auto& [section, keys] : keysInTomlBlocks(readme())) {
    for (const auto& key : keys) {
      if (!known.count(section + "." + key)) unknown += "\n  " + section + "." + key;
    }
  }
  EXPECT_TRUE(unknown.empty()) << "keys in the README's TOML that check-config rejects:" << unknown;
}

}  // namespace
}  // namespace dbpulse
