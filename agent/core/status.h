#pragma once
// Status and Result<T>: the one error vocabulary between dbpulse modules.
// Third-party exceptions are caught in the adapter that calls the library and
// turned into a Status; no exception crosses a folder boundary.

#include <string>
#include <utility>
#include <variant>

namespace dbpulse {

enum class StatusCode {
  kOk,
  kInvalidArgument,  // operator input (config, request) is wrong: do not retry
  kNotFound,
  kUnavailable,         // server down or unreachable: retry with backoff
  kDeadlineExceeded,    // timed out (statement_timeout, collector timeout)
  kPermissionDenied,    // missing privilege: do not retry fast
  kCancelled,           // shutdown or explicit cancel
  kFailedPrecondition,  // a prerequisite is missing (extension, privilege): the collector
                        // is switched off and retried rarely, without failing readiness
  kInternal,
};

const char* statusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  // With a machine-readable reason (snake_case: "extension_missing", "privilege_missing"),
  // which callers switch on and label metrics with; the message is "<reason>: <message>".
  Status(StatusCode code, std::string reason, const std::string& message)
      : code_(code), message_(reason + ": " + message), reason_(std::move(reason)) {}

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // The reason given at construction; empty when none was.
  const std::string& reason() const { return reason_; }
  // "unavailable: connection refused"; "ok" for OK.
  std::string toString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::string reason_;
};

inline Status okStatus() { return {}; }
inline Status invalidArgument(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status notFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status unavailable(std::string reason, const std::string& m) {
  return {StatusCode::kUnavailable, std::move(reason), m};
}
inline Status deadlineExceeded(std::string m) {
  return {StatusCode::kDeadlineExceeded, std::move(m)};
}
inline Status permissionDenied(std::string m) {
  return {StatusCode::kPermissionDenied, std::move(m)};
}
inline Status cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
inline Status internalError(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status failedPrecondition(std::string m) {
  return {StatusCode::kFailedPrecondition, std::move(m)};
}
// A missing prerequisite with its reason: the scheduler reports it as
// dbpulse_collector_enabled{reason} and the admin API as the error code.
inline Status failedPrecondition(std::string reason, const std::string& m) {
  return {StatusCode::kFailedPrecondition, std::move(reason), m};
}

// Either a value or a non-OK Status. Accessing value() of an error is a bug
// (std::bad_variant_access), not an expected failure.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace dbpulse
