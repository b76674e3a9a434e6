// Rendering explanations (see render.hpp): viridis, image overlays, SVG and Unicode heatmaps.
#include "focus/explain/render.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "focus/tensor/error.hpp"

namespace focus {

namespace {

// viridis sampled at 10 evenly spaced points (matplotlib's colormap), interpolated linearly.
constexpr uint8_t kViridis[10][3] = {{68, 1, 84},    {72, 40, 120},  {62, 73, 137},
                                     {49, 104, 142}, {38, 130, 142}, {31, 158, 137},
                                     {53, 183, 121}, {110, 206, 88}, {181, 222, 43},
                                     {253, 231, 37}};

// 3x5 bitmap digits (bit 2 = left column), rows top to bottom; index 10 is '.'.
constexpr uint8_t kDigits[11][5] = {
    {7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7}, {5, 5, 7, 1, 1},
    {7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1}, {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7},
    {0, 0, 0, 0, 2}};

void put(Image& img, int64_t y, int64_t x, const std::array<uint8_t, 3>& c) {
  if (y < 0 || x < 0 || y >= img.height || x >= img.width) return;
  for (int64_t k = 0; k < 3; ++k)
    img.data[(k * img.height + y) * img.width + x] = static_cast<float>(c[k]) / 255.f;
}

// Draws `text` (digits and '.') with its top-left at (y, x), each font pixel `px` wide.
void draw_text(Image& img, const std::string& text, int64_t y, int64_t x, int64_t px) {
  for (char ch : text) {
    const int idx = ch == '.' ? 10 : (ch >= '0' && ch <= '9' ? ch - '0' : -1);
    if (idx < 0) continue;
    for (int64_t r = 0; r < 5; ++r)
      for (int64_t c = 0; c < 3; ++c)
        if (kDigits[idx][r] & (4 >> c))
          for (int64_t dy = 0; dy < px; ++dy)
            for (int64_t dx = 0; dx < px; ++dx)
              put(img, y + r * px + dy, x + c * px + dx, {255, 255, 255});
    x += 4 * px;
  }
}

// Bilinear sample of a (gh, gw) grid at output pixel (y, x) of an (H, W) canvas, half-pixel
// centres, clamped at the borders.
double sample(const std::vector<float>& g, int64_t gh, int64_t gw, int64_t y, int64_t x,
              int64_t H, int64_t W) {
  const double fy = std::clamp((y + 0.5) * gh / H - 0.5, 0.0, gh - 1.0);
  const double fx = std::clamp((x + 0.5) * gw / W - 0.5, 0.0, gw - 1.0);
  const int64_t y0 = static_cast<int64_t>(fy), x0 = static_cast<int64_t>(fx);
  const int64_t y1 = std::min(y0 + 1, gh - 1), x1 = std::min(x0 + 1, gw - 1);
  const double ty = fy - y0, tx = fx - x0;
  return (1 - ty) * ((1 - tx) * g[y0 * gw + x0] + tx * g[y0 * gw + x1]) +
         ty * ((1 - tx) * g[y1 * gw + x0] + tx * g[y1 * gw + x1]);
}

std::vector<double> values_of(const Tensor& m, const char* who) {
  FOCUS_CHECK(m.defined() && m.dim() == 2, ShapeError, "{}: matrix {} must be (R, C)", who,
              m.defined() ? to_string(m.shape()) : std::string("undefined"));
  return m.to_vector<double>();
}

}  // namespace

std::array<uint8_t, 3> viridis(double t) {
  t = std::isnan(t) ? 0.0 : std::clamp(t, 0.0, 1.0) * 9.0;
  const int i = std::min(8, static_cast<int>(t));
  const double f = t - i;
  std::array<uint8_t, 3> c{};
  for (int k = 0; k < 3; ++k)
    c[k] = static_cast<uint8_t>(std::lround((1 - f) * kViridis[i][k] + f * kViridis[i + 1][k]));
  return c;
}

std::string viridis_hex(double t) {
  const auto c = viridis(t);
  return fmt::format("#{:02x}{:02x}{:02x}", c[0], c[1], c[2]);
}

Image heatmap_overlay(const Image& img, const Tensor& relevance, int64_t scale, double alpha) {
  FOCUS_CHECK(img.channels == 1 || img.channels == 3, ShapeError,
              "heatmap_overlay: image with {} channels (1 or 3 expected)", img.channels);
  FOCUS_CHECK(scale >= 1 && scale <= 64, ValueError, "heatmap_overlay: scale {} not in [1, 64]",
              scale);
  FOCUS_CHECK(relevance.defined() && relevance.dim() == 2, ShapeError,
              "heatmap_overlay: relevance must be (gh, gw)");
  const int64_t H = img.height * scale, W = img.width * scale;
  const int64_t bar = std::max<int64_t>(6, 2 * scale), pad = std::max<int64_t>(4, scale);
  const int64_t font = std::max<int64_t>(1, scale / 4), label = 4 * font * 3;
  Image out = make_image(3, H, W + pad + bar + pad + label + pad, 0.f);  // black background
  const int64_t gh = relevance.size(0), gw = relevance.size(1);
  const std::vector<float> g = relevance.to_vector<float>();
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x) {
      const int64_t sy = y / scale, sx = x / scale;
      const auto c = viridis(sample(g, gh, gw, y, x, H, W));
      for (int64_t k = 0; k < 3; ++k) {
        const float base = img.at(img.channels == 3 ? k : 0, sy, sx);
        out.data[(k * H + y) * out.width + x] =
            static_cast<float>((1 - alpha) * base + alpha * c[k] / 255.0);
      }
    }
  for (int64_t y = 0; y < H; ++y) {  // the colour bar: 1 at the top, 0 at the bottom
    const auto c = viridis(1.0 - static_cast<double>(y) / static_cast<double>(H - 1));
    for (int64_t x = W + pad; x < W + pad + bar; ++x) put(out, y, x, c);
  }
  draw_text(out, "1", 0, W + pad + bar + pad, font);
  draw_text(out, "0.5", H / 2 - 2 * font, W + pad + bar + pad, font);
  draw_text(out, "0", H - 5 * font, W + pad + bar + pad, font);
  return out;
}

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&#39;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string svg_heatmap(const Tensor& m, const std::vector<std::string>& row_labels,
                        const std::vector<std::string>& col_labels, const std::string& title,
                        int64_t cell) {
  const std::vector<double> v = values_of(m, "svg_heatmap");
  const int64_t R = m.size(0), C = m.size(1);
  FOCUS_CHECK((row_labels.empty() || int64_t(row_labels.size()) == R) &&
                  (col_labels.empty() || int64_t(col_labels.size()) == C),
              ShapeError, "svg_heatmap: {} row and {} column labels for a {} matrix",
              row_labels.size(), col_labels.size(), to_string(m.shape()));
  const double mx = std::max(1e-12, *std::max_element(v.begin(), v.end()));
  const int64_t left = row_labels.empty() ? 10 : 90, top = (col_labels.empty() ? 10 : 70) +
                                                             (title.empty() ? 0 : 24);
  const int64_t width = left + C * cell + 70, height = top + R * cell + 20;
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n",
      width, height, width, height);
  if (!title.empty())
    s += fmt::format("<text x=\"{}\" y=\"16\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
                     left, xml_escape(title));
  for (int64_t i = 0; i < R; ++i) {
    if (!row_labels.empty())
      s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\" dominant-baseline=\"middle\">"
                       "{}</text>\n",
                       left - 6, top + i * cell + cell / 2, xml_escape(row_labels[i]));
    for (int64_t j = 0; j < C; ++j)
      s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\">"
                       "<title>{:.4f}</title></rect>\n",
                       left + j * cell, top + i * cell, cell, cell, viridis_hex(v[i * C + j] / mx),
                       v[i * C + j]);
  }
  for (int64_t j = 0; j < C && !col_labels.empty(); ++j) {
    const int64_t x = left + j * cell + cell / 2, y = top - 6;
    s += fmt::format("<text x=\"{}\" y=\"{}\" transform=\"rotate(-60 {} {})\">{}</text>\n", x, y,
                     x, y, xml_escape(col_labels[j]));
  }
  const int64_t bx = left + C * cell + 14, bh = std::max<int64_t>(R * cell, 60);
  for (int64_t k = 0; k < 20; ++k)  // colour bar, maximum at the top
    s += fmt::format("<rect x=\"{}\" y=\"{:.1f}\" width=\"12\" height=\"{:.1f}\" fill=\"{}\"/>\n",
                     bx, top + k * bh / 20.0, bh / 20.0 + 0.5, viridis_hex(1.0 - k / 19.0));
  s += fmt::format("<text x=\"{}\" y=\"{}\">{:.2g}</text>\n", bx + 16, top + 10, mx);
  s += fmt::format("<text x=\"{}\" y=\"{}\">0</text>\n", bx + 16, top + bh);
  return s + "</svg>\n";
}

std::string unicode_heatmap(const Tensor& m, const std::vector<std::string>& row_labels,
                            const std::vector<std::string>& col_labels, bool ansi) {
  const std::vector<double> v = values_of(m, "unicode_heatmap");
  const int64_t R = m.size(0), C = m.size(1);
  const double mx = std::max(1e-12, *std::max_element(v.begin(), v.end()));
  size_t width = 0;
  for (const auto& l : row_labels) width = std::max(width, l.size());
  static const char* kShades[] = {"  ", "░░", "▒▒", "▓▓", "██"};
  std::string s;
  if (!col_labels.empty()) {
    s += std::string(width + 1, ' ');
    for (int64_t j = 0; j < C; ++j) {
      std::string l = j < int64_t(col_labels.size()) ? col_labels[j] : "";
      l = l.substr(0, 2);
      s += l + std::string(2 - l.size(), ' ');
    }
    s += '\n';
  }
  for (int64_t i = 0; i < R; ++i) {
    const std::string l = i < int64_t(row_labels.size()) ? row_labels[i] : "";
    if (width) s += l + std::string(width - l.size() + 1, ' ');
    for (int64_t j = 0; j < C; ++j) {
      const double t = std::max(0.0, v[i * C + j] / mx);
      if (ansi) {
        const auto c = viridis(t);
        s += fmt::format("\x1b[48;2;{};{};{}m  ", c[0], c[1], c[2]);
      } else {
        s += kShades[std::min(4, static_cast<int>(std::lround(t * 4)))];
      }
    }
    if (ansi) s += "\x1b[0m";
    s += '\n';
  }
  return s;
}

}  // namespace focus
