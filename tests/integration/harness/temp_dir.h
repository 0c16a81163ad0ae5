#pragma once
// Scratch directories and small file helpers for integration tests.

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

namespace dbpulse::testing {

// A fresh directory /tmp/<prefix>p<pid>-XXXXXX with mode 0755 (so a server running as another
// OS user can traverse it), removed recursively on destruction. With a non-empty `owner`
// the directory is chowned to that OS user (needs root), e.g. "postgres" for initdb.
// Set DBPULSE_TEST_KEEP_TMP=1 in the environment to keep every directory for inspection.
// The first TempDir of a process removes directories left by test processes that died
// (the <pid> in the name is not running any more).
// Throws HarnessError when the directory cannot be created or chowned.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "dbpulse-test-", const std::string& owner = "");
  ~TempDir();

  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

  // Leaves the directory in place on destruction.
  void keep() { keep_ = true; }

 private:
  void remove() noexcept;

  std::filesystem::path path_;
  bool keep_ = false;
};

// Writes `content` to `path` (truncating). Throws HarnessError on failure.
void writeFile(const std::filesystem::path& path, std::string_view content);

// The whole file, or "" when it cannot be read.
std::string readFile(const std::filesystem::path& path);

// The last `max_bytes` of the file (from a line start where possible), or "".
std::string readTail(const std::filesystem::path& path, std::size_t max_bytes = 8192);

// Prints "----- <title> (<path>) -----" and the file's tail to stderr.
void dumpFileTail(std::string_view title, const std::filesystem::path& path,
                  std::size_t max_bytes = 8192);

// True when the running test (or, outside a test, the whole run so far) has failed;
// harness destructors use it to print server logs only when they help.
bool currentTestFailed();

}  // namespace dbpulse::testing
