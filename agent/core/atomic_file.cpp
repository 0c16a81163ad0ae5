#include "agent/core/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

namespace dbpulse {
namespace {

Status errnoStatus(const std::string& what, int err) {
  std::string msg = what + ": " + std::strerror(err);
  if (err == ENOENT) return notFound(msg);
  if (err == EACCES || err == EPERM) return permissionDenied(msg);
  return unavailable(msg);
}

std::string parentOf(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

Status ensureDirectory(const std::string& dir) {
  if (dir.empty()) return invalidArgument("empty directory name");
  std::string partial;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    partial = dir.substr(0, pos);
    if (partial.empty()) continue;
    if (::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
      return errnoStatus("mkdir " + partial, errno);
    }
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return errnoStatus("stat " + dir, errno);
  if (!S_ISDIR(st.st_mode)) return invalidArgument(dir + " is not a directory");
  return okStatus();
}

Status writeFileAtomic(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return errnoStatus("open " + tmp, errno);
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return errnoStatus("write " + tmp, err);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return errnoStatus("fsync " + tmp, err);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return errnoStatus("rename " + tmp + " -> " + path, err);
  }
  // The rename is durable only once the directory entry is on disk.
  int dfd = ::open(parentOf(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return okStatus();
}

Result<std::string> readSmallFile(const std::string& path, size_t max_bytes) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return errnoStatus("open " + path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return errnoStatus("stat " + path, err);
  }
  // A FIFO never ends until its writer closes, /dev/zero never ends at all: only regular
  // files (symlinks to them, as Kubernetes mounts secrets, are followed) are read.
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return failedPrecondition(path + " is not a regular file");
  }
  std::string out;
  // On the heap: callers include HTTP handlers running on CivetWeb's small thread stacks.
  std::vector<char> buf(65536);
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return errnoStatus("read " + path, err);
    }
    if (n == 0) break;
    out.append(buf.data(), static_cast<size_t>(n));
    if (out.size() > max_bytes) {
      ::close(fd);
      return invalidArgument(path + " is larger than " + std::to_string(max_bytes) + " bytes");
    }
  }
  ::close(fd);
  return out;
}

Result<std::string> moveAside(const std::string& path) {
  const std::string aside = path + ".corrupt";
  if (::rename(path.c_str(), aside.c_str()) != 0) return errnoStatus("rename " + path, errno);
  return aside;
}

}  // namespace dbpulse
