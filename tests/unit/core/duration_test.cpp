#include "agent/core/duration.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace dbpulse {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

struct GoodCase {
  const char* text;
  Duration want;
};

TEST(DurationTest, ParsesEveryUnitAndCompoundSpellings) {
  const GoodCase cases[] = {
      {"250ms", milliseconds(250)},
      {"0ms", milliseconds(0)},
      {"15s", seconds(15)},
      {"5m", minutes(5)},
      {"1h", hours(1)},
      {"2d", hours(48)},
      {"1h30m", minutes(90)},
      {"1m30s", seconds(90)},
      {"1s500ms", milliseconds(1500)},
      {"1d2h3m4s5ms", milliseconds(((24 + 2) * 60 + 3) * 60'000LL + 4000 + 5)},
      {"007s", seconds(7)},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    const auto r = parseDuration(c.text);
    ASSERT_TRUE(r.ok()) << r.status().toString();
    EXPECT_EQ(r.value(), c.want);
  }
}

TEST(DurationTest, RejectsMalformedText) {
  const char* const cases[] = {
      "",      // empty
      "15x",   // unknown unit
      "15",    // bare number
      "s",     // unit without number
      "-5s",   // sign
      "+5s",   // sign
      "1.5s",  // fraction
      " 5s",   // leading space
      "5s ",   // trailing space
      "5 s",   // inner space
      "5sec",  // long unit name
      "5S",    // units are lower case
      "1h30",  // trailing number without unit
      "ms",    // unit only
  };
  for (const char* text : cases) {
    SCOPED_TRACE(std::string("\"") + text + "\"");
    const auto r = parseDuration(text);
    ASSERT_FALSE(r.ok()) << "parsed as " << r.value().count() << "ms";
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    // The message quotes the input and shows what is expected.
    EXPECT_NE(r.status().message().find(std::string("\"") + text + "\""), std::string::npos)
        << r.status().message();
    EXPECT_NE(r.status().message().find("15s"), std::string::npos) << r.status().message();
  }
}

TEST(DurationTest, MessageNamesTheUnknownUnit) {
  const auto r = parseDuration("15x");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("unknown unit \"x\""), std::string::npos)
      << r.status().message();
}

// Values that do not fit in int64 milliseconds must be rejected, not wrapped around
// (signed overflow is undefined behaviour and would yield a negative or bogus duration).
TEST(DurationTest, RejectsValuesThatOverflow) {
  const char* const cases[] = {
      "9223372036854775808ms",  // INT64_MAX + 1 in one group
      "99999999999999999999s",  // far too many digits
      // INT64_MAX / 86'400'000 = 106751991167: one more day does not fit in int64 ms.
      "106751991168d",
      // Each group fits on its own; the sum does not.
      "106751991167d106751991167d",
      "100000000000d100000000000d100000000000d",
  };
  for (const char* text : cases) {
    SCOPED_TRACE(text);
    const auto r = parseDuration(text);
    EXPECT_FALSE(r.ok()) << "parsed as " << r.value().count() << "ms";
  }
}

TEST(DurationTest, LargestDayCountStillParses) {
  const auto r = parseDuration("106751991167d");
  ASSERT_TRUE(r.ok()) << r.status().toString();
  EXPECT_EQ(r.value().count(), 106751991167LL * 86'400'000LL);
}

TEST(DurationTest, FormatsShortestExactSpelling) {
  const struct {
    Duration d;
    const char* want;
  } cases[] = {
      {milliseconds(0), "0s"},      {milliseconds(1), "1ms"},
      {milliseconds(250), "250ms"}, {milliseconds(1500), "1500ms"},
      {seconds(1), "1s"},           {seconds(90), "90s"},
      {minutes(5), "5m"},           {seconds(3600), "1h"},
      {minutes(90), "90m"},         {hours(48), "48h"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.want);
    EXPECT_EQ(formatDuration(c.d), c.want);
  }
}

TEST(DurationTest, FormatThenParseRoundTrips) {
  const Duration cases[] = {milliseconds(0),
                            milliseconds(1),
                            milliseconds(250),
                            milliseconds(1500),
                            seconds(15),
                            seconds(90),
                            minutes(5),
                            minutes(90),
                            hours(1),
                            hours(48),
                            milliseconds(3'600'001)};
  for (const Duration d : cases) {
    SCOPED_TRACE(d.count());
    const std::string text = formatDuration(d);
    const auto back = parseDuration(text);
    ASSERT_TRUE(back.ok()) << text << ": " << back.status().toString();
    EXPECT_EQ(back.value(), d) << text;
  }
}

TEST(DurationTest, ParseThenFormatIsCanonical) {
  const struct {
    const char* in;
    const char* out;
  } cases[] = {
      {"1h30m", "90m"}, {"60s", "1m"}, {"2d", "48h"}, {"1000ms", "1s"}, {"15s", "15s"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    const auto r = parseDuration(c.in);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(formatDuration(r.value()), c.out);
  }
}

}  // namespace
}  // namespace dbpulse
