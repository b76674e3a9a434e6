// The report's chart primitives: nice / log axes, number formatting, base64 (RFC 4648 vectors),
// PNG data URIs (decoded back through libpng), and the SVG charts' structure (markers per finite
// point, gaps, bars per value, confusion-matrix cells) and their errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "explain/report_support.hpp"
#include "focus/data/png.hpp"
#include "focus/explain/svg_chart.hpp"
#include "focus/tensor/error.hpp"
#include "support/expect_error.hpp"

using namespace focus;
using focus::report_test::count;
using focus::testing::expect_error;

namespace {

std::string base64_decode(const std::string& s) {  // independent decoder for the round trip
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
  };
  std::string out;
  int bits = 0, acc = 0;
  for (char c : s) {
    const int v = val(c);
    if (v < 0) break;  // '=' padding
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

}  // namespace

TEST(SvgChart, NiceAxis) {
  Axis a = nice_axis(0, 1);
  ASSERT_EQ(a.ticks.size(), 6u);  // 0, 0.2, ..., 1
  EXPECT_DOUBLE_EQ(a.lo, 0);
  EXPECT_DOUBLE_EQ(a.hi, 1);
  EXPECT_NEAR(a.ticks[3], 0.6, 1e-12);
  a = nice_axis(3, 97);  // step 20 -> 0..100
  EXPECT_DOUBLE_EQ(a.lo, 0);
  EXPECT_DOUBLE_EQ(a.hi, 100);
  EXPECT_EQ(a.ticks.size(), 6u);
  a = nice_axis(1, 1, 6, true);  // one epoch: widened, integer steps
  EXPECT_EQ(a.ticks, (std::vector<double>{0, 1, 2}));
  a = nice_axis(1, 3, 6, true);  // step 0.5 would be finer than an epoch
  EXPECT_EQ(a.ticks, (std::vector<double>{1, 2, 3}));
  a = nice_axis(0.2134, 0.2391);  // step 0.01 (0.005 would give 6 intervals)
  EXPECT_NEAR(a.lo, 0.21, 1e-12);
  EXPECT_NEAR(a.hi, 0.24, 1e-12);
  EXPECT_LE(a.lo, 0.2134);
  EXPECT_GE(a.hi, 0.2391);
  a = nice_axis(-3, 2);
  EXPECT_DOUBLE_EQ(a.ticks.front(), -3);
  EXPECT_DOUBLE_EQ(a.ticks.back(), 2);
  EXPECT_EQ(std::count(a.ticks.begin(), a.ticks.end(), 0.0), 1);  // exactly 0, no -1e-17
  expect_error<ValueError>([] { nice_axis(0, std::numeric_limits<double>::infinity()); }, {"inf"});
}

TEST(SvgChart, LogAxis) {
  const Axis a = log_axis(1e-5, 1e-3);  // two decades: 1, 2, 5 steps
  ASSERT_EQ(a.ticks.size(), 7u);
  EXPECT_NEAR(a.ticks[0], 1e-5, 1e-18);
  EXPECT_NEAR(a.ticks[1], 2e-5, 1e-18);
  EXPECT_NEAR(a.ticks[6], 1e-3, 1e-15);
  const Axis b = log_axis(3e-6, 2e-2);  // four decades: powers of ten only
  EXPECT_NEAR(b.lo, 1e-6, 1e-18);
  EXPECT_NEAR(b.hi, 1e-1, 1e-15);
  EXPECT_EQ(b.ticks.size(), 6u);
  const Axis c = log_axis(1.2e-3, 1.9e-3);  // tight around the data
  EXPECT_NEAR(c.lo, 1e-3, 1e-15);
  EXPECT_NEAR(c.hi, 2e-3, 1e-15);
  expect_error<ValueError>([] { log_axis(0, 1); }, {"positive"});
}

TEST(SvgChart, FormatNumber) {
  EXPECT_EQ(format_number(0), "0");
  EXPECT_EQ(format_number(0.30000000000000004), "0.3");
  EXPECT_EQ(format_number(12.5), "12.5");
  EXPECT_EQ(format_number(2e-5), "2e-5");
  EXPECT_EQ(format_number(-2.5e-4), "-2.5e-4");
  EXPECT_EQ(format_number(0.001), "0.001");
  EXPECT_EQ(format_number(45000), "45000");
  EXPECT_EQ(format_number(3e7), "3e7");
}

TEST(SvgChart, Base64Rfc4648) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\x00\xfe", 3)), "/wD+");
}

TEST(SvgChart, PngDataUriDecodes) {
  for (int64_t C : {1, 3}) {
    Image img = make_image(C, 5, 7);
    for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = static_cast<float>((i * 37) % 256) / 255.f;
    const std::string uri = png_data_uri(img);
    const std::string prefix = "data:image/png;base64,";
    ASSERT_EQ(uri.rfind(prefix, 0), 0u);
    const std::string path = (std::filesystem::temp_directory_path() /
                              ("focus_png_uri_" + std::to_string(::getpid()) + ".png")).string();
    std::ofstream(path, std::ios::binary) << base64_decode(uri.substr(prefix.size()));
    const Image back = read_png(path);
    std::filesystem::remove(path);
    ASSERT_EQ(back.channels, C);
    ASSERT_EQ(back.height, 5);
    ASSERT_EQ(back.width, 7);
    for (size_t i = 0; i < img.data.size(); ++i) EXPECT_NEAR(back.data[i], img.data[i], 0.5 / 255) << i;
  }
  expect_error<ValueError>([] { png_data_uri(make_image(2, 3, 3)); }, {"(2, 3, 3)"});
}

TEST(SvgChart, LineChart) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  ChartOptions o;
  o.title = "Loss <train>";
  o.x_label = "epoch";
  const Series a{"train", {1, 2, 3, 4}, {1.0, 0.5, nan, 0.2}};  // a gap at epoch 3
  const Series b{"val", {1, 2, 3, 4}, {1.1, 0.7, 0.6, 0.5}, true};
  const std::string s = svg_line_chart({a, b}, o);
  EXPECT_EQ(s.rfind("<svg", 0), 0u);
  EXPECT_EQ(s.substr(s.size() - 6), "</svg>");
  EXPECT_EQ(count(s, "<circle"), 7);        // finite points only
  EXPECT_EQ(count(s, "<path"), 2);
  EXPECT_NE(s.find("d=\"M"), std::string::npos);
  const size_t p = s.find("<path d=\"");
  const std::string d = s.substr(p, s.find('"', p + 9) - p);
  EXPECT_EQ(count(d, "M"), 2) << d;         // the gap starts a new sub-path
  EXPECT_NE(s.find("Loss &lt;train&gt;"), std::string::npos);  // escaped title
  EXPECT_NE(s.find("stroke-dasharray"), std::string::npos);    // val is dashed
  EXPECT_EQ(s.find("http"), std::string::npos);                // no namespace, no links
  // Log scale drops non-positive values; no data at all says so.
  o.log_y = true;
  EXPECT_EQ(count(svg_line_chart({Series{"lr", {1, 2, 3}, {1e-3, 0, 1e-5}}}, o), "<circle"), 2);
  EXPECT_NE(svg_line_chart({Series{"x", {1}, {nan}}}, o).find("no data"), std::string::npos);
  expect_error<ValueError>([&] { svg_line_chart({Series{"bad", {1, 2}, {1}}}, o); }, {"bad", "2 x values"});
  o.width = 100;
  expect_error<ValueError>([&] { svg_line_chart({a}, o); }, {"100x290"});
}

TEST(SvgChart, BarChart) {
  ChartOptions o;
  o.title = "Scores";
  const std::vector<std::string> groups{"T-shirt/top", "Trouser", "Pullover"};
  const std::string s = svg_bar_chart(groups, {{"precision", {0.9, 0.8, 0.7}}, {"recall", {0.5, 0.6, 0.4}}}, o);
  EXPECT_EQ(count(s, "</title></rect>"), 6);  // one bar per value, each with a hover title
  EXPECT_NE(s.find("Trouser, recall: 0.6"), std::string::npos);
  EXPECT_NE(s.find("T-shirt/top"), std::string::npos);
  expect_error<ValueError>([&] { svg_bar_chart(groups, {{"short", {1, 2}}}, o); }, {"short", "3 groups"});
}

TEST(SvgChart, ConfusionMatrix) {
  const std::vector<int64_t> counts{5, 1, 0, 2, 3, 1, 0, 0, 4};
  const std::string s = svg_confusion_matrix(counts, {"a", "b", "c"}, "Confusion");
  EXPECT_EQ(count(s, "</title></rect>"), 9);
  EXPECT_NE(s.find("true a, predicted b: 1 (16.7% of the class)"), std::string::npos);
  EXPECT_NE(s.find(">4</text>"), std::string::npos);
  expect_error<ValueError>([&] { svg_confusion_matrix(counts, {"a", "b"}, "x"); }, {"9 counts", "2 class"});
}
