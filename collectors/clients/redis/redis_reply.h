#pragma once
// RedisReply: one Redis reply as a plain owned value (std only), so the parse functions
// can be unit-tested with replies built by hand and hiredis stays inside redis_session.cpp.

#include <cstdint>
#include <string>
#include <vector>

namespace dbpulse::collectors {

struct RedisReply {
  enum class Type { kNil, kString, kStatus, kError, kInteger, kArray };

  Type type = Type::kNil;
  std::string str;                   // kString, kStatus, kError
  int64_t integer = 0;               // kInteger
  std::vector<RedisReply> elements;  // kArray

  static RedisReply string(std::string s) { return {Type::kString, std::move(s), 0, {}}; }
  static RedisReply status(std::string s) { return {Type::kStatus, std::move(s), 0, {}}; }
  static RedisReply error(std::string s) { return {Type::kError, std::move(s), 0, {}}; }
  static RedisReply integerReply(int64_t v) { return {Type::kInteger, {}, v, {}}; }
  static RedisReply array(std::vector<RedisReply> e) { return {Type::kArray, {}, 0, std::move(e)}; }

  bool isError() const { return type == Type::kError; }
  // kString or kStatus.
  bool isText() const { return type == Type::kString || type == Type::kStatus; }
};

}  // namespace dbpulse::collectors
