#include "agent/admin/sparkline.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace dbpulse::admin {
namespace {

std::string pointsAttr(const std::string& svg) {
  const std::string key = "points=\"";
  const size_t at = svg.find(key);
  if (at == std::string::npos) return "";
  return svg.substr(at + key.size(), svg.find('"', at + key.size()) - at - key.size());
}

TEST(SparklineTest, ScalesTimeToWidthAndValuesToHeight) {
  const std::vector<Point> pts = {{1000, 10}, {1500, 20}, {2000, 30}};
  const std::string svg = sparklineSvg(pts, {100, 22, 1000, 2000}, "conn");
  // y: 1 px margin; max at the top (1), min at the bottom (21).
  EXPECT_EQ(pointsAttr(svg), "0.0,21.0 50.0,11.0 100.0,1.0");
  EXPECT_NE(svg.find("class=\"spark\""), std::string::npos);
  EXPECT_NE(svg.find("<title>conn</title>"), std::string::npos);
  EXPECT_NE(svg.find("viewBox=\"0 0 100 22\""), std::string::npos);
}

TEST(SparklineTest, FlatSeriesIsAMiddleLineAndBadPointsAreSkipped) {
  const std::vector<Point> pts = {{0, 5}, {50, std::nan("")}, {100, 5}, {200, 5}};
  EXPECT_EQ(pointsAttr(sparklineSvg(pts, {100, 20, 0, 100}, "x")), "0.0,10.0 100.0,10.0")
      << "NaN and the point after to_ms are left out";
}

TEST(SparklineTest, FewerThanTwoPointsIsAnEmptyChartWithoutALine) {
  const std::string svg = sparklineSvg({{10, 1}}, {100, 20, 0, 100}, "x");
  EXPECT_NE(svg.find("class=\"spark empty\""), std::string::npos);
  EXPECT_EQ(svg.find("<polyline"), std::string::npos);
}

TEST(SparklineTest, TitleAndTextAreEscaped) {
  EXPECT_EQ(htmlEscape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
  const std::string svg = sparklineSvg({}, {10, 10, 0, 1}, "<script>");
  EXPECT_EQ(svg.find("<script>"), std::string::npos);
  EXPECT_NE(svg.find("&lt;script&gt;"), std::string::npos);
}

}  // namespace
}  // namespace dbpulse::admin
