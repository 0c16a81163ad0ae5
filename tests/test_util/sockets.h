#pragma once
// Small socket helpers shared by the unit tests and the integration harness (header-only:
// the two test binaries link nothing in common but the production libraries).

#include <netinet/in.h>
#include <sys/resource.h>

#include <cstdint>

namespace dbpulse::testing {

// 127.0.0.1:port.
inline sockaddr_in loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// Raises this process' soft open-file limit to `wanted` (within the hard limit); true when
// the limit is at least `wanted` afterwards.
inline bool raiseFdLimit(rlim_t wanted) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return false;
  if (rl.rlim_cur >= wanted) return true;
  if (rl.rlim_max < wanted) return false;
  rl.rlim_cur = wanted;
  return ::setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

}  // namespace dbpulse::testing
