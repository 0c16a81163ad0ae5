#include "agent/core/text.h"

#include <gtest/gtest.h>

namespace dbpulse {
namespace {

TEST(PercentEncodeTest, KeepsUnreservedAndEncodesEverythingElse) {
  struct Case {
    std::string in, want;
  };
  const Case cases[] = {
      {"abcXYZ019-_.~", "abcXYZ019-_.~"},
      {"a b", "a%20b"},
      {"-c statement_timeout=5000", "-c%20statement_timeout%3D5000"},
      {"p@ss/w&rd?#%", "p%40ss%2Fw%26rd%3F%23%25"},
      {"rate(x[5m])", "rate%28x%5B5m%5D%29"},
      {std::string("\xc3\xa9\x00", 3), "%C3%A9%00"},
      {"", ""},
  };
  for (const auto& c : cases) EXPECT_EQ(percentEncode(c.in), c.want) << c.in;
}

TEST(LineColumnTest, CountsFromOneAndClampsAtTheEnd) {
  const std::string_view text = "ab\ncd\n\nx";
  EXPECT_EQ(lineColumn(text, 0), std::make_pair(size_t{1}, size_t{1}));
  EXPECT_EQ(lineColumn(text, 1), std::make_pair(size_t{1}, size_t{2}));
  EXPECT_EQ(lineColumn(text, 3), std::make_pair(size_t{2}, size_t{1}));
  EXPECT_EQ(lineColumn(text, 7), std::make_pair(size_t{4}, size_t{1}));
  EXPECT_EQ(lineColumn(text, 100), std::make_pair(size_t{4}, size_t{2}));
}

}  // namespace
}  // namespace dbpulse
