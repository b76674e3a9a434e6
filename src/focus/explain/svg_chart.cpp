// SVG charts and PNG data URIs for the reports (see svg_chart.hpp).
#include "focus/explain/svg_chart.hpp"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "focus/explain/render.hpp"
#include "focus/tensor/error.hpp"

namespace focus {

namespace {

constexpr const char* kPalette[] = {"#0072B2", "#D55E00", "#009E73", "#E69F00",
                                    "#CC79A7", "#56B4E9", "#000000", "#F0E442"};
constexpr double kCharW = 6.5;  // estimated width of one character of 11 px sans-serif text
constexpr double kPi = 3.14159265358979323846;

const char* color(size_t i) { return kPalette[i % (sizeof(kPalette) / sizeof(kPalette[0]))]; }
std::string px(double v) { return fmt::format("{:.1f}", v); }
double text_w(const std::string& s) { return static_cast<double>(s.size()) * kCharW; }

struct LegendItem {
  std::string name, color;
  bool dashed = false, box = false;  // box: a filled square (bars) instead of a line
};

// The <svg> opening tag, a white background and the title; then the legend (wrapped into rows).
// Returns the y below the legend, where the plot area may start.
double open_chart(std::string& s, const ChartOptions& o, const std::vector<LegendItem>& legend) {
  s += fmt::format(
      "<svg class=\"chart\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"11\" role=\"img\" aria-label=\"{2}\">"
      "<title>{2}</title><rect width=\"{0}\" height=\"{1}\" fill=\"#fff\"/>",
      o.width, o.height, xml_escape(o.title));
  double y = 8;
  if (!o.title.empty()) {
    s += fmt::format("<text class=\"chart-title\" x=\"{}\" y=\"20\" text-anchor=\"middle\" "
                     "font-size=\"13\" font-weight=\"bold\">{}</text>",
                     px(o.width / 2.0), xml_escape(o.title));
    y = 28;
  }
  double x = 12;
  if (!legend.empty()) y += 12;
  for (const LegendItem& it : legend) {
    const double w = 24 + text_w(it.name) + 12;
    if (x > 12 && x + w > static_cast<double>(o.width) - 8) {
      x = 12;
      y += 15;
    }
    if (it.box)
      s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"9\" fill=\"{}\"/>", px(x + 2),
                       px(y - 8), it.color);
    else
      s += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" "
                       "stroke-width=\"2\"{}/>",
                       px(x), px(y - 4), px(x + 18), px(y - 4), it.color,
                       it.dashed ? " stroke-dasharray=\"5 3\"" : "");
    s += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>", px(x + 22), px(y), xml_escape(it.name));
    x += w;
  }
  return y + 8;
}

struct Frame {
  double left, top, right, bottom;  // the plot area, SVG pixels
};

// Maps values to pixels along one axis (optionally log10).
struct Scale {
  double lo, hi, p0, p1;
  bool log = false;
  double operator()(double v) const {
    const double t = log ? (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo))
                         : (v - lo) / (hi - lo);
    return p0 + t * (p1 - p0);
  }
};

double widest_label(const std::vector<double>& ticks) {
  double w = 0;
  for (double t : ticks) w = std::max(w, text_w(format_number(t)));
  return w;
}

// Horizontal grid lines with labels at the y ticks, the frame, and the rotated y label.
void y_axis(std::string& s, const Frame& f, const Axis& a, const Scale& y, const std::string& label) {
  for (double t : a.ticks) {
    const double py = y(t);
    s += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#e3e3e3\"/>"
                     "<text x=\"{3}\" y=\"{4}\" text-anchor=\"end\" fill=\"#333\">{5}</text>",
                     px(f.left), px(py), px(f.right), px(f.left - 6), px(py + 4), format_number(t));
  }
  s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" "
                   "stroke=\"#888\"/>",
                   px(f.left), px(f.top), px(f.right - f.left), px(f.bottom - f.top));
  if (!label.empty())
    s += fmt::format("<text x=\"13\" y=\"{0}\" transform=\"rotate(-90 13 {0})\" "
                     "text-anchor=\"middle\" fill=\"#333\">{1}</text>",
                     px((f.top + f.bottom) / 2), xml_escape(label));
}

void no_data(std::string& s, const Frame& f) {
  s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#888\">no data</text>",
                   px((f.left + f.right) / 2), px((f.top + f.bottom) / 2));
}

void check_size(const ChartOptions& o) {
  FOCUS_CHECK(o.width >= 160 && o.height >= 120, ValueError,
              "chart '{}': size {}x{} is below 160x120", o.title, o.width, o.height);
}

}  // namespace

std::string format_number(double v) {
  if (!std::isfinite(v)) return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
  if (v == 0) return "0";
  const double a = std::fabs(v);
  if (a >= 1e4 && a < 1e6) return fmt::format("{:.0f}", v);
  if (a >= 1e-3 && a < 1e6) return fmt::format("{:.4g}", v);
  const std::string s = fmt::format("{:.2e}", v);  // e.g. -2.50e-04 -> -2.5e-4
  const size_t e = s.find('e');
  std::string mant = s.substr(0, e), exp = s.substr(e + 1);
  mant.erase(mant.find_last_not_of('0') + 1);
  if (mant.back() == '.') mant.pop_back();
  const bool neg = exp[0] == '-';
  exp.erase(0, 1);  // the sign
  exp.erase(0, std::min(exp.find_first_not_of('0'), exp.size() - 1));
  return mant + "e" + (neg ? "-" : "") + exp;
}

Axis nice_axis(double lo, double hi, int64_t max_ticks, bool integer_step) {
  FOCUS_CHECK(std::isfinite(lo) && std::isfinite(hi) && max_ticks >= 1, ValueError,
              "nice_axis: range [{}, {}] with {} ticks", lo, hi, max_ticks);
  if (lo > hi) std::swap(lo, hi);
  if (hi - lo <= 1e-12 * std::max(1.0, std::fabs(hi))) {
    const double pad = integer_step || lo == 0 ? 1.0 : 0.1 * std::fabs(lo);
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / static_cast<double>(max_ticks);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * mag;
  for (double m : {1.0, 2.0, 5.0})
    if (m * mag >= raw * (1 - 1e-9)) {
      step = m * mag;
      break;
    }
  if (integer_step) step = std::max(1.0, std::round(step));
  const double n0 = std::floor(lo / step + 1e-9), n1 = std::ceil(hi / step - 1e-9);
  Axis a;
  a.lo = n0 * step;
  a.hi = n1 * step;
  for (double n = n0; n <= n1 + 0.5; n += 1) {
    const double t = n * step;
    a.ticks.push_back(std::fabs(t) < step * 1e-9 ? 0.0 : t);
  }
  return a;
}

Axis log_axis(double lo, double hi) {
  FOCUS_CHECK(lo > 0 && hi > 0 && std::isfinite(lo) && std::isfinite(hi), ValueError,
              "log_axis: range [{}, {}] must be positive", lo, hi);
  if (lo > hi) std::swap(lo, hi);
  const int e0 = static_cast<int>(std::floor(std::log10(lo) + 1e-12));
  const int e1 = static_cast<int>(std::ceil(std::log10(hi) - 1e-12));
  const bool fine = e1 - e0 <= 2;
  std::vector<double> cand;
  for (int e = e0; e <= std::max(e1, e0 + 1); ++e)
    for (double m : fine ? std::vector<double>{1, 2, 5} : std::vector<double>{1})
      cand.push_back(m * std::pow(10.0, e));
  Axis a;
  a.lo = cand.front();
  a.hi = cand.back();
  for (double c : cand) {
    if (c <= lo * (1 + 1e-9)) a.lo = c;
    if (c >= hi * (1 - 1e-9)) {
      a.hi = c;
      break;
    }
  }
  for (double c : cand)
    if (c >= a.lo * (1 - 1e-9) && c <= a.hi * (1 + 1e-9)) a.ticks.push_back(c);
  return a;
}

std::string svg_line_chart(const std::vector<Series>& series, const ChartOptions& o) {
  check_size(o);
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
  bool integer_x = true;
  std::vector<LegendItem> legend;
  for (size_t i = 0; i < series.size(); ++i) {
    const Series& sr = series[i];
    FOCUS_CHECK(sr.x.size() == sr.y.size(), ValueError,
                "chart '{}': series '{}' has {} x values and {} y values", o.title, sr.name,
                sr.x.size(), sr.y.size());
    for (size_t k = 0; k < sr.x.size(); ++k) {
      const double xv = sr.x[k], yv = sr.y[k];
      if (!std::isfinite(xv) || !std::isfinite(yv) || (o.log_y && yv <= 0)) continue;
      xlo = std::min(xlo, xv);
      xhi = std::max(xhi, xv);
      ylo = std::min(ylo, yv);
      yhi = std::max(yhi, yv);
      integer_x = integer_x && xv == std::round(xv);
    }
    if (!sr.name.empty()) legend.push_back({sr.name, color(i), sr.dashed, false});
  }
  const bool empty = !(xlo <= xhi);
  if (empty) xlo = 0, xhi = 1, ylo = 0, yhi = 1;
  if (o.y_from_zero && !o.log_y) ylo = std::min(ylo, 0.0), yhi = std::max(yhi, 0.0);
  const Axis xa = nice_axis(xlo, xhi, 6, integer_x);
  const Axis ya = o.log_y && !empty ? log_axis(ylo, yhi) : nice_axis(ylo, yhi, 5);
  std::string s;
  const double top = open_chart(s, o, legend) + 4;
  const Frame f{widest_label(ya.ticks) + (o.y_label.empty() ? 12 : 28), top,
                static_cast<double>(o.width) - 14,
                static_cast<double>(o.height) - (o.x_label.empty() ? 24 : 38)};
  const Scale X{xa.lo, xa.hi, f.left, f.right}, Y{ya.lo, ya.hi, f.bottom, f.top, o.log_y && !empty};
  y_axis(s, f, ya, Y, o.y_label);
  for (double t : xa.ticks)
    s += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#888\"/>"
                     "<text x=\"{0}\" y=\"{3}\" text-anchor=\"middle\" fill=\"#333\">{4}</text>",
                     px(X(t)), px(f.bottom), px(f.bottom + 4), px(f.bottom + 16), format_number(t));
  if (!o.x_label.empty())
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#333\">{}</text>",
                     px((f.left + f.right) / 2), px(f.bottom + 31), xml_escape(o.x_label));
  if (empty) no_data(s, f);
  for (size_t i = 0; i < series.size() && !empty; ++i) {
    const Series& sr = series[i];
    std::string path, marks;
    bool pen = false;
    for (size_t k = 0; k < sr.x.size(); ++k) {
      const double xv = sr.x[k], yv = sr.y[k];
      if (!std::isfinite(xv) || !std::isfinite(yv) || (o.log_y && yv <= 0)) {
        pen = false;
        continue;
      }
      path += fmt::format("{}{} {} ", pen ? "L" : "M", px(X(xv)), px(Y(yv)));
      pen = true;
      if (sr.x.size() <= 80)
        marks += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"2.6\" fill=\"{}\"><title>{}: {} = {}, "
                             "{}</title></circle>",
                             px(X(xv)), px(Y(yv)), color(i), xml_escape(sr.name),
                             xml_escape(o.x_label.empty() ? "x" : o.x_label), format_number(xv),
                             format_number(yv));
    }
    if (!path.empty())
      s += fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\"{}/>",
                       path.substr(0, path.size() - 1), color(i),
                       sr.dashed ? " stroke-dasharray=\"5 3\"" : "");
    s += marks;
  }
  return s + "</svg>";
}

std::string svg_bar_chart(const std::vector<std::string>& groups,
                          const std::vector<BarSeries>& series, const ChartOptions& o) {
  check_size(o);
  double lo = 0, hi = 0, widest = 0;
  bool any = false;
  std::vector<LegendItem> legend;
  for (size_t i = 0; i < series.size(); ++i) {
    FOCUS_CHECK(series[i].values.size() == groups.size(), ValueError,
                "chart '{}': series '{}' has {} values for {} groups", o.title, series[i].name,
                series[i].values.size(), groups.size());
    for (double v : series[i].values)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v), any = true;
    if (!series[i].name.empty()) legend.push_back({series[i].name, color(i), false, true});
  }
  for (const std::string& g : groups) widest = std::max(widest, text_w(g));
  if (!any || hi == lo) hi = lo + 1;
  const Axis ya = nice_axis(lo, hi, 5);
  std::string s;
  const double top = open_chart(s, o, legend) + 4;
  const double left = widest_label(ya.ticks) + (o.y_label.empty() ? 12 : 28);
  const double right = static_cast<double>(o.width) - 10;
  const double gw = groups.empty() ? 1 : (right - left) / static_cast<double>(groups.size());
  const bool rotate = widest > gw - 4;
  const double label_h = rotate ? widest * std::sin(35 * kPi / 180) + 14 : 18;
  const Frame f{left, top, right,
                static_cast<double>(o.height) - label_h - (o.x_label.empty() ? 4 : 18)};
  const Scale Y{ya.lo, ya.hi, f.bottom, f.top};
  y_axis(s, f, ya, Y, o.y_label);
  if (!any) no_data(s, f);
  const double bw = series.empty() ? 0 : gw * 0.8 / static_cast<double>(series.size());
  const bool values = groups.size() * series.size() <= 16;
  for (size_t g = 0; g < groups.size(); ++g) {
    const double cx = f.left + (static_cast<double>(g) + 0.5) * gw;
    if (rotate)
      s += fmt::format("<text x=\"{0}\" y=\"{1}\" transform=\"rotate(-35 {0} {1})\" "
                       "text-anchor=\"end\" fill=\"#333\">{2}</text>",
                       px(cx + 3), px(f.bottom + 12), xml_escape(groups[g]));
    else
      s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#333\">{}</text>",
                       px(cx), px(f.bottom + 14), xml_escape(groups[g]));
    for (size_t i = 0; i < series.size(); ++i) {
      const double v = series[i].values[g];
      if (!std::isfinite(v)) continue;
      const double x = f.left + static_cast<double>(g) * gw + gw * 0.1 + static_cast<double>(i) * bw;
      const double y0 = Y(std::max(v, 0.0)), y1 = Y(std::min(v, 0.0));
      s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{}{}{}: "
                       "{}</title></rect>",
                       px(x), px(y0), px(std::max(1.0, bw - 1)), px(std::max(0.5, y1 - y0)),
                       color(i), xml_escape(groups[g]), series[i].name.empty() ? "" : ", ",
                       xml_escape(series[i].name), format_number(v));
      if (values)
        s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"9\" "
                         "fill=\"#333\">{}</text>",
                         px(x + bw / 2), px(y0 - 3), fmt::format("{:.3g}", v));
    }
  }
  if (!o.x_label.empty())
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#333\">{}</text>",
                     px((f.left + f.right) / 2), px(static_cast<double>(o.height) - 6),
                     xml_escape(o.x_label));
  return s + "</svg>";
}

std::string svg_confusion_matrix(const std::vector<int64_t>& counts,
                                 const std::vector<std::string>& names, const std::string& title) {
  const int64_t K = static_cast<int64_t>(names.size());
  FOCUS_CHECK(K >= 1 && counts.size() == static_cast<size_t>(K * K), ValueError,
              "confusion matrix: {} counts for {} class names (need names^2)", counts.size(), K);
  const double cell = std::clamp(380.0 / static_cast<double>(K), 18.0, 40.0);
  double widest = 0;
  for (const std::string& n : names) widest = std::max(widest, text_w(n));
  const double diag = widest * std::sin(45 * kPi / 180);
  const double left = widest + 12, top = 34 + diag + 6, grid = cell * static_cast<double>(K);
  // Right of the grid: the colour bar and its labels, and the last column label's overhang.
  const double bx = left + grid + 12;
  const int64_t width = static_cast<int64_t>(std::ceil(std::max(bx + 44, left + grid - cell / 2 + diag + 6)));
  const int64_t height = static_cast<int64_t>(std::ceil(top + grid + 24));
  std::string s;
  ChartOptions o;
  o.title = title;
  o.width = width;
  o.height = height;
  open_chart(s, o, {});
  s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"10\" fill=\"#555\">"
                   "true \\ predicted</text>",
                   px(left - 4), px(top - 6));
  for (int64_t j = 0; j < K; ++j) {
    const double cx = left + (static_cast<double>(j) + 0.5) * cell;
    s += fmt::format("<text x=\"{0}\" y=\"{1}\" transform=\"rotate(-45 {0} {1})\" fill=\"#333\">"
                     "{2}</text>",
                     px(cx), px(top - 4), xml_escape(names[j]));
  }
  const double font = std::min(11.0, cell * 0.36);
  for (int64_t i = 0; i < K; ++i) {
    int64_t row = 0;
    for (int64_t j = 0; j < K; ++j) row += counts[i * K + j];
    const double y = top + static_cast<double>(i) * cell;
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#333\">{}</text>",
                     px(left - 5), px(y + cell / 2 + 4), xml_escape(names[i]));
    for (int64_t j = 0; j < K; ++j) {
      const int64_t c = counts[i * K + j];
      const double share = row > 0 ? static_cast<double>(c) / static_cast<double>(row) : 0.0;
      const double x = left + static_cast<double>(j) * cell;
      s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>true "
                       "{}, predicted {}: {} ({:.1f}% of the class)</title></rect>",
                       px(x), px(y), px(cell), px(cell), viridis_hex(share), xml_escape(names[i]),
                       xml_escape(names[j]), c, 100 * share);
      if (c > 0)
        s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"{}\" "
                         "fill=\"{}\">{}</text>",
                         px(x + cell / 2), px(y + cell / 2 + font * 0.35), px(font),
                         share < 0.55 ? "#fff" : "#000", c);
    }
  }
  // Colour bar: the row share from 0 (bottom) to 1 (top).
  constexpr int kSteps = 20;
  for (int k = 0; k < kSteps; ++k)
    s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"{}\" fill=\"{}\"/>", px(bx),
                     px(top + grid * (1 - (k + 1.0) / kSteps)), px(grid / kSteps + 0.5),
                     viridis_hex((k + 0.5) / kSteps));
  for (double t : {0.0, 0.5, 1.0})
    s += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"#333\">{}</text>",
                     px(bx + 15), px(top + grid * (1 - t) + 4), format_number(t));
  return s + "</svg>";
}


namespace {

void put_u32(std::string& s, uint32_t v) {
  for (int k = 3; k >= 0; --k) s += static_cast<char>((v >> (8 * k)) & 0xff);
}

void put_chunk(std::string& png, const char* type, const std::string& data) {
  put_u32(png, static_cast<uint32_t>(data.size()));
  const std::string body = std::string(type, 4) + data;
  png += body;
  put_u32(png, static_cast<uint32_t>(
                   crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()))));
}

}  // namespace

std::string png_data_uri(const Image& img) {
  const int64_t C = img.channels, H = img.height, W = img.width;
  FOCUS_CHECK((C == 1 || C == 3) && H > 0 && W > 0 && img.data.size() == size_t(C * H * W),
              ValueError, "png_data_uri: image ({}, {}, {}) with {} values must be gray or RGB",
              C, H, W, img.data.size());
  // Scanlines: filter byte 0 (none), then the row's pixels with interleaved channels.
  std::string raw(static_cast<size_t>(H * (1 + W * C)), '\0');
  for (int64_t y = 0; y < H; ++y) {
    char* row = raw.data() + y * (1 + W * C) + 1;
    for (int64_t x = 0; x < W; ++x)
      for (int64_t c = 0; c < C; ++c) {
        const float v = std::clamp(img.at(c, y, x), 0.f, 1.f);
        row[x * C + c] = static_cast<char>(static_cast<uint8_t>(std::lround(v * 255.f)));
      }
  }
  uLongf n = compressBound(static_cast<uLong>(raw.size()));
  std::string z(n, '\0');
  const int rc = compress2(reinterpret_cast<Bytef*>(z.data()), &n,
                           reinterpret_cast<const Bytef*>(raw.data()), static_cast<uLong>(raw.size()), 9);
  FOCUS_CHECK(rc == Z_OK, ValueError, "png_data_uri: zlib error {}", rc);
  z.resize(n);
  std::string png = "\x89PNG\r\n\x1a\n";
  std::string ihdr;
  put_u32(ihdr, static_cast<uint32_t>(W));
  put_u32(ihdr, static_cast<uint32_t>(H));
  ihdr += std::string{8, static_cast<char>(C == 1 ? 0 : 2), 0, 0, 0};  // depth, type, methods
  put_chunk(png, "IHDR", ihdr);
  put_chunk(png, "IDAT", z);
  put_chunk(png, "IEND", "");
  return "data:image/png;base64," + base64_encode(png);
}

}  // namespace focus
