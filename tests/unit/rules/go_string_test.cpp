#include "rules/go_string.h"

#include <gtest/gtest.h>

#include <string>

namespace dbpulse::rules {
namespace {

std::string valueOf(std::string_view src) {
  GoString s = readGoString(src, 0);
  EXPECT_TRUE(s.ok()) << src << ": " << s.error;
  return s.value;
}

TEST(GoStringTest, InterpretedLiteralsTakeGoEscapes) {
  EXPECT_EQ(valueOf(R"("a\tb\nc\\d")"), "a\tb\nc\\d");
  EXPECT_EQ(valueOf(R"("\a\b\f\r\v")"), "\a\b\f\r\v");
  EXPECT_EQ(valueOf(R"("say \"hi\"")"), "say \"hi\"");
  EXPECT_EQ(valueOf(R"('it\'s')"), "it's");
  EXPECT_EQ(valueOf(R"("\x41\101\u00e9\U0001F600")"), "AA\xC3\xA9\xF0\x9F\x98\x80");
}

TEST(GoStringTest, RawLiteralsKeepBackslashesAndNewlines) {
  EXPECT_EQ(valueOf("`a\\nb\nc`"), "a\\nb\nc");
}

TEST(GoStringTest, EndIsJustPastTheClosingQuote) {
  const std::string src = R"(x="v\"w" rest)";
  GoString s = readGoString(src, 2);
  ASSERT_TRUE(s.ok()) << s.error;
  EXPECT_EQ(s.value, "v\"w");
  EXPECT_EQ(src.substr(s.end), " rest");
}

TEST(GoStringTest, ErrorsNameTheProblemAndPointAtIt) {
  struct Case {
    std::string src;
    std::string error;
    size_t pos;
  };
  for (const Case& c : {
           Case{R"("abc)", "unterminated string", 0},
           Case{"\"ab\ncd\"", "unterminated string", 0},
           Case{R"("ab\)", "unterminated string", 0},
           Case{R"("ab\qc")", "unknown escape sequence \"\\q\"", 3},
           Case{R"("it\'s")", "unknown escape sequence \"\\'\"", 3},
           Case{R"('say \"hi\"')", "unknown escape sequence \"\\\"\"", 5},
           Case{R"("\x4")", "bad escape sequence", 1},
           Case{R"("\u12g4")", "bad escape sequence", 1},
           Case{R"("\18")", "bad octal escape sequence", 1},
           Case{R"("\777")", "bad octal escape sequence", 1},
       }) {
    GoString s = readGoString(c.src, 0);
    EXPECT_EQ(s.error, c.error) << c.src;
    EXPECT_EQ(s.error_pos, c.pos) << c.src;
  }
}

}  // namespace
}  // namespace dbpulse::rules
