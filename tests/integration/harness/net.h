#pragma once
// Loopback networking helpers.

#include <chrono>
#include <string>

namespace dbpulse::testing {

// A TCP port on 127.0.0.1 that was free a moment ago: a random one in 20000-32000 (below the
// kernel's ephemeral range, so no client connection takes it meanwhile) that binds, else
// one the kernel picks for bind(0). Another process may still take it before the caller
// binds it; servers in this harness retry their first start on a new port when that happens.
// Throws HarnessError if no socket can be bound.
int freeLoopbackPort();

// A TCP listener on 127.0.0.1 that never accepts or answers: connections complete at the
// kernel level (backlog) and then hang. Plays a server that is up but stuck, e.g. to keep a
// collector busy until its timeout. Throws HarnessError when it cannot listen.
class SilentListener {
 public:
  SilentListener();
  ~SilentListener();
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// True when a TCP connection to 127.0.0.1:`port` succeeds within `timeout`.
bool canConnect(int port, std::chrono::milliseconds timeout = std::chrono::milliseconds(500));

}  // namespace dbpulse::testing
