#pragma once
// The one exception type the integration harness throws. Harness calls that cannot
// go on (initdb failed, a server never accepted connections, fork failed) throw it
// with a message that names what failed and includes the relevant log tail;
// GoogleTest turns an escaping exception into a test failure carrying that message.

#include <stdexcept>
#include <string>

namespace dbpulse::testing {

class HarnessError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace dbpulse::testing
