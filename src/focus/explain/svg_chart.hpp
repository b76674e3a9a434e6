// Charts drawn by focus as inline SVG for the HTML reports (no plotting runtime needed to view
// them): line charts (axes with "nice" ticks, point markers with hover titles, a legend, optional
// log y axis), grouped bar charts, a confusion-matrix heatmap with counts, and images as PNG
// data URIs (encoded in memory with zlib).
// Output: one <svg> element each, without an xmlns attribute (meant for HTML5 pages, where the
// parser supplies the namespace); text is escaped. Colours: the Okabe-Ito palette (colour-blind
// safe) for series, viridis for heatmaps.
// Limits: text is not measured (widths are estimated at ~6.5 px per character of 11 px text),
// so very long labels may overlap; at most 8 distinct series colours (then they repeat).
#pragma once
#include "focus/io/base64.hpp"  // base64_encode, for the data URLs
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "focus/data/image.hpp"

namespace focus {

struct Series {
  std::string name;
  std::vector<double> x, y;  // same length; non-finite y values (NaN) are gaps
  bool dashed = false;
};

struct ChartOptions {
  std::string title, x_label, y_label;
  int64_t width = 460, height = 290;
  bool log_y = false;        // line charts: log10 y axis (values <= 0 are left out)
  bool y_from_zero = false;  // line charts: the y range includes 0
};

// ValueError when a series' x and y differ in length or the size is below 160 x 120. Charts with
// no finite point say "no data" in the plot area.
std::string svg_line_chart(const std::vector<Series>& series, const ChartOptions& opt);

struct BarSeries {
  std::string name;
  std::vector<double> values;  // one per group; non-finite = no bar
};
// Groups along x, one bar per series in each group; the y axis starts at 0 (or below, for
// negative values). ValueError when a series' length differs from the number of groups.
std::string svg_bar_chart(const std::vector<std::string>& groups,
                          const std::vector<BarSeries>& series, const ChartOptions& opt);

// counts (K, K) row-major, rows = true class, columns = prediction: cells coloured by the row
// share (recall; viridis), the count written in each cell, a colour bar for the share.
// ValueError unless counts.size() == K * K and names.size() == K.
std::string svg_confusion_matrix(const std::vector<int64_t>& counts,
                                 const std::vector<std::string>& names, const std::string& title);

// "Nice" axis: ticks at multiples of 1, 2 or 5 x 10^k covering [lo, hi] with at most
// max_ticks + 1 ticks; integer_step rounds the step up to >= 1 (epoch axes). lo == hi is widened.
struct Axis {
  double lo = 0, hi = 1;  // the axis range (the first and last tick)
  std::vector<double> ticks;
};
Axis nice_axis(double lo, double hi, int64_t max_ticks = 5, bool integer_step = false);
// Decades (and 2x, 5x in between when the range is under two decades) covering [lo, hi] > 0.
Axis log_axis(double lo, double hi);
// Up to 4 significant digits, trailing zeros dropped, "1e-5" style below 1e-3 and from 1e6.
std::string format_number(double v);

// An 8-bit gray (1 channel) or RGB (3 channels) PNG of img (values clamped to [0, 1]) as
// "data:image/png;base64,...". ValueError for other channel counts or an empty image.
std::string png_data_uri(const Image& img);

}  // namespace focus
