// Runs a libFuzzer target's LLVMFuzzerTestOneInput over files and directories of inputs,
// without libFuzzer: the seed corpus becomes a regression test with any compiler (ctest
// runs it; see tests/fuzz/CMakeLists.txt). Exit 0 when every input ran, 1 on a missing
// path or an empty corpus. A failing input aborts inside the target.

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

bool runFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
    return false;
  }
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  size_t ran = 0;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path arg(argv[i]);
    std::error_code ec;
    if (std::filesystem::is_directory(arg, ec)) {
      std::vector<std::filesystem::path> files;
      for (const auto& e : std::filesystem::directory_iterator(arg, ec)) {
        if (e.is_regular_file()) files.push_back(e.path());
      }
      for (const auto& f : files) {
        if (!runFile(f)) return 1;
        ++ran;
      }
    } else if (std::filesystem::is_regular_file(arg, ec)) {
      if (!runFile(arg)) return 1;
      ++ran;
    } else {
      std::fprintf(stderr, "replay: no such file or directory: %s\n", argv[i]);
      return 1;
    }
  }
  std::printf("replay: %zu inputs ran without a failure\n", ran);
  return ran > 0 ? 0 : 1;
}
