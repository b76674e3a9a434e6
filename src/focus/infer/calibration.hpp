// Probability calibration of classifiers: temperature scaling (Guo et al. 2017, "On calibration
// of modern neural networks"), the expected calibration error (ECE) with its reliability-diagram
// bins, and the negative log-likelihood, all in double precision from logits.
//
// Temperature scaling divides the logits by one scalar T > 0 before the softmax: the argmax (the
// accuracy) is unchanged, only the confidence moves. T is fitted on a held-out split by
// minimising the mean NLL. With beta = 1 / T the NLL
//   f(beta) = mean_i [ logsumexp(beta z_i) - beta z_{i,y_i} ]
// is convex in beta (f' = mean(E_p[z] - z_y), f'' = mean(Var_p[z]) >= 0), so a safeguarded
// Newton iteration on a bracket finds the minimum in a few steps; beta is kept in
// [1 / kMaxTemperature, 1 / kMinTemperature] (a minimum outside is clamped to the edge).
//
// ECE (15 equal-width bins by default): confidence = the top probability; bin b holds the
// confidences in (b / B, (b + 1) / B] (0 goes to bin 0); ECE = sum_b (n_b / N) |acc_b - conf_b|.
//
//   const double T = fit_temperature(val_logits, val_labels, 10);
//   const CalibrationReport before = calibration_report(test_logits, test_labels, 10, 1.0);
//   const CalibrationReport after = calibration_report(test_logits, test_labels, 10, T);
//
// Letters: N samples, K classes; logits are (N, K) row-major.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include <nlohmann/json.hpp>

namespace focus {

constexpr double kMinTemperature = 1e-3, kMaxTemperature = 1e3;

struct ReliabilityBin {
  double lo = 0, hi = 0;     // the bin's confidence range (lo, hi]
  int64_t count = 0;         // samples whose top probability falls in it
  double confidence = 0;     // their mean top probability (0 when empty)
  double accuracy = 0;       // the share of them predicted correctly (0 when empty)
};

struct CalibrationReport {
  double temperature = 1;
  double ece = 0;       // expected calibration error, as a fraction (0.015 = 1.5%)
  double nll = 0;       // mean negative log-likelihood of the labels (nats)
  double accuracy = 0;  // share whose argmax is the label (the same for every temperature)
  std::vector<ReliabilityBin> bins;
};

// Softmax of logits / T for each row: (N, K) -> (N, K). ValueError unless T > 0 and finite,
// ShapeError unless logits.size() is a multiple of K >= 1.
std::vector<double> softmax_rows(std::span<const double> logits, int64_t K, double temperature = 1);

// ECE and reliability bins from probabilities (N, K) (rows need not be normalised exactly: the
// top value is the confidence, the first maximum the prediction). ShapeError when the sizes
// disagree (probs.size() != N * K, labels.size() != N); ValueError for a label outside [0, K) or
// bins < 1.
CalibrationReport reliability_from_probs(std::span<const double> probs,
                                         std::span<const int64_t> labels, int64_t K,
                                         int64_t bins = 15);

// The full report of logits at temperature T: ECE and bins of softmax(logits / T), the NLL, the
// accuracy. Errors as softmax_rows and reliability_from_probs; ValueError for a non-finite logit.
CalibrationReport calibration_report(std::span<const double> logits,
                                     std::span<const int64_t> labels, int64_t K,
                                     double temperature = 1, int64_t bins = 15);

// Mean NLL of the labels under softmax(logits / T).
double mean_nll(std::span<const double> logits, std::span<const int64_t> labels, int64_t K,
                double temperature);

// The temperature minimising mean_nll on (logits, labels), in [kMinTemperature, kMaxTemperature].
// ValueError for no samples, a non-finite logit or a bad label; ShapeError as above.
double fit_temperature(std::span<const double> logits, std::span<const int64_t> labels, int64_t K);

// {"temperature", "ece", "nll", "accuracy", "bins": [{"lo", "hi", "count", "confidence",
// "accuracy"}, ...]}: the reliability-diagram data.
nlohmann::json to_json(const CalibrationReport& r);

}  // namespace focus
