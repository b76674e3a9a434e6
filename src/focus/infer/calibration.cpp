// Temperature scaling, ECE and NLL (see calibration.hpp).
#include "focus/infer/calibration.hpp"

#include <algorithm>
#include <cmath>

#include "focus/tensor/error.hpp"

namespace focus {

namespace {

// Rows of (N, K) after checking the sizes; labels may be empty (softmax_rows).
int64_t check_rows(std::span<const double> values, std::span<const int64_t> labels, int64_t K,
                   bool need_labels, const char* what) {
  FOCUS_CHECK(K >= 1, ShapeError, "{}: {} classes (need at least 1)", what, K);
  FOCUS_CHECK(values.size() % size_t(K) == 0, ShapeError,
              "{}: {} values are not rows of {} classes", what, values.size(), K);
  const int64_t N = int64_t(values.size()) / K;
  if (need_labels) {
    FOCUS_CHECK(int64_t(labels.size()) == N, ShapeError, "{}: {} labels for {} rows", what,
                labels.size(), N);
    for (size_t i = 0; i < labels.size(); ++i)
      FOCUS_CHECK(labels[i] >= 0 && labels[i] < K, ValueError,
                  "{}: label {} of row {} is outside [0, {})", what, labels[i], i, K);
  }
  for (size_t i = 0; i < values.size(); ++i)
    FOCUS_CHECK(std::isfinite(values[i]), ValueError, "{}: value {} of row {} is {}", what,
                i % size_t(K), i / size_t(K), values[i]);
  return N;
}

void check_temperature(double t, const char* what) {
  FOCUS_CHECK(std::isfinite(t) && t > 0, ValueError, "{}: temperature {} must be positive and finite",
              what, t);
}

// log sum_k exp(b z_k) of one row.
double logsumexp(const double* z, int64_t K, double b) {
  double m = b * z[0];
  for (int64_t k = 1; k < K; ++k) m = std::max(m, b * z[k]);
  double s = 0;
  for (int64_t k = 0; k < K; ++k) s += std::exp(b * z[k] - m);
  return m + std::log(s);
}

// f'(b) and f''(b) of the mean NLL in b = 1 / T (calibration.hpp).
struct Derivs {
  double g = 0, h = 0;
};
Derivs nll_derivs(std::span<const double> z, std::span<const int64_t> y, int64_t K, double b) {
  const int64_t N = int64_t(y.size());
  Derivs d;
  for (int64_t i = 0; i < N; ++i) {
    const double* row = z.data() + i * K;
    const double lse = logsumexp(row, K, b);
    double mean = 0, sq = 0;
    for (int64_t k = 0; k < K; ++k) {
      const double pk = std::exp(b * row[k] - lse);
      mean += pk * row[k];
      sq += pk * row[k] * row[k];
    }
    d.g += mean - row[y[size_t(i)]];
    d.h += std::max(0.0, sq - mean * mean);
  }
  d.g /= double(N);
  d.h /= double(N);
  return d;
}

}  // namespace

std::vector<double> softmax_rows(std::span<const double> logits, int64_t K, double temperature) {
  check_temperature(temperature, "softmax_rows");
  const int64_t N = check_rows(logits, {}, K, false, "softmax_rows");
  std::vector<double> out(logits.size());
  const double b = 1 / temperature;
  for (int64_t i = 0; i < N; ++i) {
    const double lse = logsumexp(logits.data() + i * K, K, b);
    for (int64_t k = 0; k < K; ++k) out[size_t(i * K + k)] = std::exp(b * logits[size_t(i * K + k)] - lse);
  }
  return out;
}

CalibrationReport reliability_from_probs(std::span<const double> probs,
                                         std::span<const int64_t> labels, int64_t K,
                                         int64_t bins) {
  FOCUS_CHECK(bins >= 1, ValueError, "reliability: {} bins (need at least 1)", bins);
  const int64_t N = check_rows(probs, labels, K, true, "reliability");
  CalibrationReport r;
  r.bins.resize(size_t(bins));
  for (int64_t b = 0; b < bins; ++b) {
    r.bins[size_t(b)].lo = double(b) / double(bins);
    r.bins[size_t(b)].hi = double(b + 1) / double(bins);
  }
  int64_t correct = 0;
  for (int64_t i = 0; i < N; ++i) {
    const double* row = probs.data() + i * K;
    const int64_t pred = int64_t(std::max_element(row, row + K) - row);
    const double conf = row[pred];
    // (b / B, (b + 1) / B]: ceil(conf * B) - 1, with 0 in bin 0 and anything above 1 in the last.
    const int64_t b = std::clamp<int64_t>(int64_t(std::ceil(conf * double(bins))) - 1, 0, bins - 1);
    ReliabilityBin& bin = r.bins[size_t(b)];
    const bool ok = pred == labels[size_t(i)];
    ++bin.count;
    bin.confidence += conf;
    bin.accuracy += ok ? 1 : 0;
    correct += ok ? 1 : 0;
  }
  for (ReliabilityBin& bin : r.bins) {
    if (bin.count == 0) continue;
    bin.confidence /= double(bin.count);
    bin.accuracy /= double(bin.count);
    r.ece += double(bin.count) / double(N) * std::abs(bin.accuracy - bin.confidence);
  }
  r.accuracy = N ? double(correct) / double(N) : 0;
  return r;
}

double mean_nll(std::span<const double> logits, std::span<const int64_t> labels, int64_t K,
                double temperature) {
  check_temperature(temperature, "mean_nll");
  const int64_t N = check_rows(logits, labels, K, true, "mean_nll");
  const double b = 1 / temperature;
  double s = 0;
  for (int64_t i = 0; i < N; ++i) {
    const double* row = logits.data() + i * K;
    s += logsumexp(row, K, b) - b * row[labels[size_t(i)]];
  }
  return N ? s / double(N) : 0;
}

CalibrationReport calibration_report(std::span<const double> logits,
                                     std::span<const int64_t> labels, int64_t K,
                                     double temperature, int64_t bins) {
  const std::vector<double> probs = softmax_rows(logits, K, temperature);
  CalibrationReport r = reliability_from_probs(probs, labels, K, bins);
  r.temperature = temperature;
  r.nll = mean_nll(logits, labels, K, temperature);
  return r;
}

double fit_temperature(std::span<const double> logits, std::span<const int64_t> labels, int64_t K) {
  const int64_t N = check_rows(logits, labels, K, true, "fit_temperature");
  FOCUS_CHECK(N >= 1, ValueError, "fit_temperature: no samples");
  double lo = 1 / kMaxTemperature, hi = 1 / kMinTemperature;  // bracket on b = 1 / T
  if (nll_derivs(logits, labels, K, lo).g >= 0) return kMaxTemperature;  // minimum at b <= lo
  if (nll_derivs(logits, labels, K, hi).g <= 0) return kMinTemperature;  // minimum at b >= hi
  double b = 1;
  for (int it = 0; it < 200; ++it) {
    const Derivs d = nll_derivs(logits, labels, K, b);
    if (d.g == 0) break;
    (d.g > 0 ? hi : lo) = b;  // f is convex: the minimum lies where f' changes sign
    double next = d.h > 0 ? b - d.g / d.h : 0;
    // Outside the bracket (or no curvature): bisect, geometrically since b spans decades.
    if (!(next > lo && next < hi)) next = std::sqrt(lo * hi);
    const bool done = std::abs(next - b) <= 1e-13 * b || (hi - lo) <= 1e-13 * lo;
    b = next;
    if (done) break;
  }
  return 1 / b;
}

nlohmann::json to_json(const CalibrationReport& r) {
  nlohmann::json bins = nlohmann::json::array();
  for (const ReliabilityBin& b : r.bins)
    bins.push_back({{"lo", b.lo}, {"hi", b.hi}, {"count", b.count},
                    {"confidence", b.confidence}, {"accuracy", b.accuracy}});
  return {{"temperature", r.temperature}, {"ece", r.ece}, {"nll", r.nll},
          {"accuracy", r.accuracy}, {"bins", bins}};
}

}  // namespace focus
