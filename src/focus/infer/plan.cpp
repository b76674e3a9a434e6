// The inference planner's decisions (see plan.hpp).
#include "focus/infer/plan.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <tuple>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "focus/tensor/error.hpp"

namespace focus {

namespace {

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t") - a + 1);
}

bool better_or_equal(const VariantResult& a, const VariantResult& b) {  // a dominates-or-ties b
  return a.accuracy >= b.accuracy && a.p99_ms <= b.p99_ms && a.rss_mb <= b.rss_mb;
}

bool strictly_better_somewhere(const VariantResult& a, const VariantResult& b) {
  return a.accuracy > b.accuracy || a.p99_ms < b.p99_ms || a.rss_mb < b.rss_mb;
}

// The worst ratio of a measured figure to its limit (<= 1: within). Accuracy counts as the
// shortfall ratio min / accuracy, throughput as qps / throughput.
double overrun(const VariantResult& r, const Budget& b) {
  double w = 0;
  if (std::isfinite(b.p99_ms)) w = std::max(w, r.p99_ms / b.p99_ms);
  if (std::isfinite(b.rss_mb)) w = std::max(w, r.rss_mb / b.rss_mb);
  if (b.min_accuracy > 0) w = std::max(w, b.min_accuracy / std::max(r.accuracy, 1e-9));
  if (b.qps > 0) w = std::max(w, b.qps / std::max(r.throughput, 1e-9));
  return w;
}

}  // namespace

Budget parse_budget(const std::string& text) {
  Budget b;
  std::set<std::string> seen;
  size_t start = 0;
  bool any = false;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string part = trim(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    start = comma == std::string::npos ? text.size() + 1 : comma + 1;
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    FOCUS_CHECK(eq != std::string::npos, ValueError, "--budget '{}': '{}' is not KEY=VALUE (keys: p99_ms, rss_mb)",
                text, part);
    const std::string key = trim(part.substr(0, eq)), value = trim(part.substr(eq + 1));
    FOCUS_CHECK(key == "p99_ms" || key == "rss_mb", ValueError,
                "--budget '{}': unknown key '{}' (keys: p99_ms, rss_mb)", text, key);
    FOCUS_CHECK(seen.insert(key).second, ValueError, "--budget '{}': '{}' is given twice", text, key);
    char* end = nullptr;
    const double v = std::strtod(value.c_str(), &end);
    FOCUS_CHECK(!value.empty() && *end == '\0' && std::isfinite(v) && v > 0, ValueError,
                "--budget '{}': {} must be a positive number, got '{}'", text, key, value);
    (key == "p99_ms" ? b.p99_ms : b.rss_mb) = v;
    any = true;
  }
  FOCUS_CHECK(any, ValueError, "--budget '{}' sets no limit (give p99_ms=MS and/or rss_mb=MB)", text);
  return b;
}

std::string format_budget(const Budget& b) {
  std::vector<std::string> parts;
  if (std::isfinite(b.p99_ms)) parts.push_back(fmt::format("p99 <= {:g} ms", b.p99_ms));
  if (std::isfinite(b.rss_mb)) parts.push_back(fmt::format("RSS <= {:g} MB", b.rss_mb));
  if (b.min_accuracy > 0) parts.push_back(fmt::format("accuracy >= {:.2f}%", 100 * b.min_accuracy));
  if (b.qps > 0) parts.push_back(fmt::format("{:g} requests/s sustained", b.qps));
  std::string s;
  for (size_t i = 0; i < parts.size(); ++i) s += (i ? ", " : "") + parts[i];
  return s;
}

std::string Variant::name() const {
  return fmt::format("{}{}{} t{} b{}", label, label.empty() ? "" : " ", weights, threads, batch);
}

void evaluate(std::vector<VariantResult>& r, const Budget& b) {
  for (VariantResult& x : r) {
    const double fill_ms = b.qps > 0 ? 1000.0 * double(x.v.batch - 1) / b.qps : 0.0;
    x.p50_ms = x.batch_p50_ms + fill_ms;
    x.p99_ms = x.batch_p99_ms + fill_ms;
    x.throughput = x.batch_p50_ms > 0 ? 1000.0 * double(x.v.batch) / x.batch_p50_ms : 0.0;
    std::vector<std::string> miss;
    if (x.p99_ms > b.p99_ms) miss.push_back(fmt::format("p99 {:.2f} > {:g} ms", x.p99_ms, b.p99_ms));
    if (x.rss_mb > b.rss_mb) miss.push_back(fmt::format("RSS {:.0f} > {:g} MB", x.rss_mb, b.rss_mb));
    if (x.accuracy < b.min_accuracy)
      miss.push_back(fmt::format("accuracy {:.2f}% < {:.2f}%", 100 * x.accuracy, 100 * b.min_accuracy));
    if (b.qps > 0 && x.throughput < b.qps)
      miss.push_back(fmt::format("{:.0f} < {:g} items/s", x.throughput, b.qps));
    x.within = miss.empty();
    x.misses.clear();
    for (size_t i = 0; i < miss.size(); ++i) x.misses += (i ? "; " : "") + miss[i];
  }
}

void mark_front(std::vector<VariantResult>& r) {
  for (size_t i = 0; i < r.size(); ++i) {
    r[i].on_front = true;
    for (size_t j = 0; j < r.size() && r[i].on_front; ++j)
      if (j != i && better_or_equal(r[j], r[i]) && strictly_better_somewhere(r[j], r[i])) r[i].on_front = false;
  }
}

PlanChoice choose(const std::vector<VariantResult>& r, const Budget& b) {
  FOCUS_CHECK(!r.empty(), ValueError, "plan: no variant was measured");
  PlanChoice c;
  for (size_t i = 0; i < r.size(); ++i) {
    if (!r[i].within) continue;
    if (!c.index) {
      c.index = i;
      continue;
    }
    const VariantResult& a = r[i];
    const VariantResult& best = r[*c.index];
    const auto key = [](const VariantResult& x) {
      return std::make_tuple(-x.accuracy, x.p99_ms, x.rss_mb, x.v.threads);
    };
    if (key(a) < key(best)) c.index = i;
  }
  c.closest = 0;
  c.closest_overrun = overrun(r[0], b);
  for (size_t i = 1; i < r.size(); ++i) {
    const double o = overrun(r[i], b);
    if (o < c.closest_overrun) c.closest = i, c.closest_overrun = o;
  }
  if (c.index) c.closest = *c.index, c.closest_overrun = overrun(r[*c.index], b);
  return c;
}

std::vector<size_t> slo_ladder(const std::vector<VariantResult>& r, size_t chosen) {
  std::vector<size_t> others;
  for (size_t i = 0; i < r.size(); ++i)
    if (i != chosen && r[i].v.file == r[chosen].v.file && r[i].v.threads == r[chosen].v.threads &&
        r[i].v.batch == r[chosen].v.batch && r[i].v.weights != r[chosen].v.weights)
      others.push_back(i);
  std::sort(others.begin(), others.end(), [&](size_t a, size_t b) { return r[a].accuracy > r[b].accuracy; });
  std::vector<size_t> ladder{chosen};
  for (size_t i : others)
    if (r[i].throughput > r[ladder.back()].throughput) ladder.push_back(i);
  return ladder;
}

nlohmann::json variant_json(const VariantResult& r) {
  return {{"name", r.v.name()},           {"file", r.v.file},
          {"weights", r.v.weights},       {"threads", r.v.threads},     {"batch", r.v.batch},
          {"accuracy", r.accuracy},       {"batch_p50_ms", r.batch_p50_ms}, {"batch_p99_ms", r.batch_p99_ms},
          {"p50_ms", r.p50_ms},           {"p99_ms", r.p99_ms},         {"rss_mb", r.rss_mb},
          {"throughput", r.throughput},   {"on_front", r.on_front},     {"within", r.within},
          {"misses", r.misses}};
}

std::string front_svg(const std::vector<VariantResult>& r, const Budget& b, const PlanChoice& c,
                      const std::string& title) {
  const double W = 640, H = 400, L = 70, R = 20, T = 40, B = 50;
  double xlo = 1e300, xhi = 0, ylo = 1, yhi = 0;
  for (const VariantResult& x : r) {
    xlo = std::min(xlo, x.p99_ms), xhi = std::max(xhi, x.p99_ms);
    ylo = std::min(ylo, x.accuracy), yhi = std::max(yhi, x.accuracy);
  }
  if (std::isfinite(b.p99_ms)) xlo = std::min(xlo, b.p99_ms), xhi = std::max(xhi, b.p99_ms);
  xlo = std::max(xlo / 1.3, 1e-3), xhi = std::max(xhi * 1.3, xlo * 2);
  const double pad = std::max(0.002, 0.1 * (yhi - ylo));
  ylo -= pad, yhi += pad;
  const auto X = [&](double v) { return L + (W - L - R) * std::log(v / xlo) / std::log(xhi / xlo); };
  const auto Y = [&](double v) { return T + (H - T - B) * (1 - (v - ylo) / (yhi - ylo)); };
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" "
      "font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{}\" y=\"20\" font-size=\"13\">{}</text>\n"
      "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/>\n"
      "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/>\n"
      "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">p99 latency per request, ms (log scale)</text>\n"
      "<text x=\"14\" y=\"{}\" transform=\"rotate(-90 14 {})\" text-anchor=\"middle\">validation accuracy, %</text>\n",
      W, H, L, title, L, H - B, W - R, H - B, L, T, L, H - B, (L + W - R) / 2, H - 12, (T + H - B) / 2,
      (T + H - B) / 2);
  for (double v = std::pow(10.0, std::floor(std::log10(xlo))); v <= xhi; v *= 10)
    for (double m : {1.0, 2.0, 5.0})
      if (v * m >= xlo && v * m <= xhi)
        s += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#333\"/>"
                         "<text x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"middle\">{4:g}</text>\n",
                         X(v * m), H - B, H - B + 4, H - B + 16, v * m);
  for (int k = 0; k <= 4; ++k) {
    const double v = ylo + (yhi - ylo) * k / 4;
    s += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{:.2f}</text>\n", L - 4, Y(v) + 4, 100 * v);
  }
  if (std::isfinite(b.p99_ms))
    s += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#c00\" "
                     "stroke-dasharray=\"4 3\"/><text x=\"{3:.1f}\" y=\"{4}\" fill=\"#c00\">budget p99 {5:g} ms</text>\n",
                     X(b.p99_ms), T, H - B, X(b.p99_ms) + 4, T + 10, b.p99_ms);
  std::vector<const VariantResult*> front;
  for (const VariantResult& x : r)
    if (x.on_front) front.push_back(&x);
  std::sort(front.begin(), front.end(), [](auto* a, auto* b2) { return a->p99_ms < b2->p99_ms; });
  std::string pts;
  for (const VariantResult* x : front) pts += fmt::format("{:.1f},{:.1f} ", X(x->p99_ms), Y(x->accuracy));
  if (front.size() > 1) s += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"#36c\"/>\n", pts);
  for (size_t i = 0; i < r.size(); ++i) {
    const VariantResult& x = r[i];
    s += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"4\" fill=\"{}\" stroke=\"#36c\"><title>{}: "
                     "p99 {:.2f} ms, {:.2f}%, RSS {:.0f} MB</title></circle>\n",
                     X(x.p99_ms), Y(x.accuracy), x.on_front ? "#36c" : "white", x.v.name(), x.p99_ms,
                     100 * x.accuracy, x.rss_mb);
    s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"#555\" font-size=\"9\">{}</text>\n", X(x.p99_ms) + 6,
                     Y(x.accuracy) - 5, x.v.name());
  }
  if (c.index) {
    const VariantResult& x = r[*c.index];
    s += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"9\" fill=\"none\" stroke=\"#c00\" stroke-width=\"2\"/>\n",
                     X(x.p99_ms), Y(x.accuracy));
  }
  s += "</svg>\n";
  return s;
}

}  // namespace focus
