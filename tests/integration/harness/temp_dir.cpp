#include "integration/harness/temp_dir.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <regex>
#include <sstream>
#include <system_error>
#include <vector>

#include "integration/harness/harness_error.h"
#include "integration/harness/os_user.h"

namespace dbpulse::testing {

namespace fs = std::filesystem;

namespace {

bool keepRequested() {
  const char* keep = std::getenv("DBPULSE_TEST_KEEP_TMP");
  return keep != nullptr && std::string_view(keep) == "1";
}

// Directories are named /tmp/<prefix>p<pid>-XXXXXX. A test process killed outright (a ctest
// timeout, SIGKILL) cannot remove its own; the next test process removes those whose
// creator is gone (a PostgreSQL data dir is ~40 MB).
void sweepStaleDirs() {
  if (keepRequested()) return;
  static const std::regex kName(R"(dbpulse-.*-p([0-9]+)-[A-Za-z0-9]{6})");
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator("/tmp", ec)) {
    std::smatch match;
    const std::string name = entry.path().filename().string();
    if (!std::regex_match(name, match, kName)) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(match[1].str()));
    if (::kill(pid, 0) != 0 && errno == ESRCH) {
      std::error_code ignored;
      fs::remove_all(entry.path(), ignored);
    }
  }
}

}  // namespace

TempDir::TempDir(std::string_view prefix, const std::string& owner) {
  static std::once_flag swept;
  std::call_once(swept, sweepStaleDirs);
  std::string pattern =
      "/tmp/" + std::string(prefix) + "p" + std::to_string(::getpid()) + "-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    throw HarnessError("mkdtemp " + pattern + ": " + std::strerror(errno));
  }
  path_ = buf.data();
  if (::chmod(path_.c_str(), 0755) != 0) {
    const int err = errno;
    remove();
    throw HarnessError("chmod 0755 " + path_.string() + ": " + std::strerror(err));
  }
  if (!owner.empty()) {
    const std::optional<OsUser> user = lookupOsUser(owner);
    if (!user) {
      remove();
      throw HarnessError("TempDir: no OS user '" + owner + "'");
    }
    if (::chown(path_.c_str(), user->uid, user->gid) != 0) {
      const int err = errno;
      remove();
      throw HarnessError("chown " + owner + " " + path_.string() + ": " + std::strerror(err));
    }
  }
  keep_ = keepRequested();
}

TempDir::~TempDir() { remove(); }

TempDir::TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)), keep_(other.keep_) {
  other.path_.clear();
}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    remove();
    path_ = std::move(other.path_);
    keep_ = other.keep_;
    other.path_.clear();
  }
  return *this;
}

void TempDir::remove() noexcept {
  if (path_.empty()) return;
  if (!keep_) {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  path_.clear();
}

void writeFile(const fs::path& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  out.close();
  if (!out) throw HarnessError("cannot write " + path.string());
}

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string readTail(const fs::path& path, std::size_t max_bytes) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return {};
  const std::streamoff size = in.tellg();
  const std::streamoff start = size > static_cast<std::streamoff>(max_bytes)
                                   ? size - static_cast<std::streamoff>(max_bytes)
                                   : 0;
  in.seekg(start);
  std::string text(static_cast<std::size_t>(size - start), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (start > 0) {
    const std::size_t nl = text.find('\n');
    if (nl != std::string::npos) text.erase(0, nl + 1);
    text.insert(0, "[...]\n");
  }
  return text;
}

void dumpFileTail(std::string_view title, const fs::path& path, std::size_t max_bytes) {
  std::cerr << "----- " << title << " (" << path.string() << ") -----\n"
            << readTail(path, max_bytes) << "\n----- end of " << title << " -----\n";
}

bool currentTestFailed() {
  const ::testing::UnitTest* unit = ::testing::UnitTest::GetInstance();
  if (unit->current_test_info() != nullptr) return ::testing::Test::HasFailure();
  return unit->Failed();
}

}  // namespace dbpulse::testing
