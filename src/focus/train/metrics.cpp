// Confusion matrix, derived scores and their text / JSON forms (see metrics.hpp).
#include "focus/train/metrics.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace focus {
namespace {

std::vector<std::string> names_or_indices(const std::vector<std::string>& names, int64_t k,
                                          const char* what) {
  if (names.empty()) {
    std::vector<std::string> out;
    for (int64_t c = 0; c < k; ++c) out.push_back(std::to_string(c));
    return out;
  }
  FOCUS_CHECK(static_cast<int64_t>(names.size()) == k, ShapeError,
              "{}: {} class names for {} classes", what, names.size(), k);
  return names;
}

// Index of the first maximum of row[0..k) (NaN never wins).
template <class T>
int64_t argmax_row(const T* row, int64_t k) {
  int64_t best = 0;
  for (int64_t j = 1; j < k; ++j)
    if (row[j] > row[best] || (row[best] != row[best] && row[j] == row[j])) best = j;
  return best;
}

}  // namespace

ConfusionMatrix::ConfusionMatrix(int64_t num_classes) : k_(num_classes) {
  FOCUS_CHECK(num_classes >= 1, ValueError, "ConfusionMatrix: {} classes (need >= 1)",
              num_classes);
  counts_.assign(static_cast<size_t>(k_ * k_), 0);
}

void ConfusionMatrix::add(int64_t target, int64_t predicted) {
  FOCUS_CHECK(target >= 0 && target < k_ && predicted >= 0 && predicted < k_, ValueError,
              "ConfusionMatrix: target {} / prediction {} not in [0, {})", target, predicted, k_);
  ++counts_[target * k_ + predicted];
}

void ConfusionMatrix::add_batch(const Tensor& outputs, const Tensor& targets) {
  FOCUS_CHECK(targets.dim() == 1 && targets.dtype() == DType::I64, ShapeError,
              "ConfusionMatrix: targets must be I64 (B), got {}", describe(targets));
  const int64_t B = targets.size(0);
  const std::vector<int64_t> y = targets.to_vector<int64_t>();
  std::vector<int64_t> pred(static_cast<size_t>(B));
  if (outputs.dim() == 1) {
    FOCUS_CHECK(outputs.dtype() == DType::I64 && outputs.size(0) == B, ShapeError,
                "ConfusionMatrix: predictions must be I64 ({}), got {}", B, describe(outputs));
    pred = outputs.to_vector<int64_t>();
  } else {
    FOCUS_CHECK(outputs.dim() == 2 && outputs.size(0) == B && outputs.size(1) == k_, ShapeError,
                "ConfusionMatrix: logits must be ({}, {}), got {}", B, k_, describe(outputs));
    const Tensor c = outputs.contiguous();  // (B, K)
    dispatch_float(c.dtype(), "ConfusionMatrix", [&]<class T>() {
      const T* p = c.data<T>();
      for (int64_t b = 0; b < B; ++b) pred[b] = argmax_row(p + b * k_, k_);
    });
  }
  for (int64_t b = 0; b < B; ++b) add(y[b], pred[b]);
}

void ConfusionMatrix::merge(const ConfusionMatrix& other) {
  FOCUS_CHECK(other.k_ == k_, ShapeError, "ConfusionMatrix: merging {} classes into {}", other.k_,
              k_);
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
}

void ConfusionMatrix::reset() { std::fill(counts_.begin(), counts_.end(), 0); }

int64_t ConfusionMatrix::at(int64_t target, int64_t predicted) const {
  FOCUS_CHECK(target >= 0 && target < k_ && predicted >= 0 && predicted < k_, ValueError,
              "ConfusionMatrix: cell ({}, {}) not in [0, {})", target, predicted, k_);
  return counts_[target * k_ + predicted];
}

int64_t ConfusionMatrix::total() const {
  int64_t s = 0;
  for (int64_t v : counts_) s += v;
  return s;
}

int64_t ConfusionMatrix::correct() const {
  int64_t s = 0;
  for (int64_t c = 0; c < k_; ++c) s += counts_[c * k_ + c];
  return s;
}

ClassificationReport classification_report(const ConfusionMatrix& cm) {
  const int64_t k = cm.num_classes();
  ClassificationReport r;
  r.total = cm.total();
  r.accuracy = r.total > 0 ? static_cast<double>(cm.correct()) / r.total : 0.0;
  r.per_class.resize(k);
  int64_t present = 0;
  for (int64_t c = 0; c < k; ++c) {
    ClassScores& s = r.per_class[c];
    for (int64_t j = 0; j < k; ++j) {
      s.support += cm.at(c, j);
      s.predicted += cm.at(j, c);
    }
    const double tp = static_cast<double>(cm.at(c, c));
    s.precision = s.predicted > 0 ? tp / s.predicted : 0.0;
    s.recall = s.support > 0 ? tp / s.support : 0.0;
    s.f1 = s.precision + s.recall > 0 ? 2 * s.precision * s.recall / (s.precision + s.recall) : 0.0;
    if (s.support == 0 && s.predicted == 0) continue;
    ++present;
    r.macro_precision += s.precision;
    r.macro_recall += s.recall;
    r.macro_f1 += s.f1;
  }
  if (present > 0) {
    r.macro_precision /= present;
    r.macro_recall /= present;
    r.macro_f1 /= present;
  }
  return r;
}

std::string format_report(const ClassificationReport& report,
                          const std::vector<std::string>& class_names) {
  const auto names = names_or_indices(class_names, static_cast<int64_t>(report.per_class.size()),
                                      "format_report");
  size_t w = std::string("macro avg").size();
  for (const auto& n : names) w = std::max(w, n.size());
  std::string out = fmt::format("{:<{}}  {:>9}  {:>9}  {:>9}  {:>9}\n", "", w, "precision",
                                "recall", "f1-score", "support");
  for (size_t c = 0; c < names.size(); ++c) {
    const ClassScores& s = report.per_class[c];
    out += fmt::format("{:<{}}  {:>9.4f}  {:>9.4f}  {:>9.4f}  {:>9}\n", names[c], w, s.precision,
                       s.recall, s.f1, s.support);
  }
  out += fmt::format("\n{:<{}}  {:>9}  {:>9}  {:>9.4f}  {:>9}\n", "accuracy", w, "", "",
                     report.accuracy, report.total);
  out += fmt::format("{:<{}}  {:>9.4f}  {:>9.4f}  {:>9.4f}  {:>9}\n", "macro avg", w,
                     report.macro_precision, report.macro_recall, report.macro_f1, report.total);
  return out;
}

std::string format_confusion(const ConfusionMatrix& cm, const std::vector<std::string>& class_names) {
  const int64_t k = cm.num_classes();
  const auto names = names_or_indices(class_names, k, "format_confusion");
  // Rows "name (i)", columns headed by the predicted class index.
  std::vector<std::string> rows;
  size_t w = std::string("true \\ pred").size();
  for (int64_t c = 0; c < k; ++c) {
    rows.push_back(fmt::format("{} ({})", names[c], c));
    w = std::max(w, rows.back().size());
  }
  size_t cw = 3;
  for (int64_t v : cm.counts()) cw = std::max(cw, std::to_string(v).size());
  std::string out = fmt::format("{:<{}}", "true \\ pred", w);
  for (int64_t c = 0; c < k; ++c) out += fmt::format(" {:>{}}", c, cw);
  out += "\n";
  for (int64_t r = 0; r < k; ++r) {
    out += fmt::format("{:<{}}", rows[r], w);
    for (int64_t c = 0; c < k; ++c) out += fmt::format(" {:>{}}", cm.at(r, c), cw);
    out += "\n";
  }
  return out;
}

nlohmann::json metrics_to_json(const ConfusionMatrix& cm,
                               const std::vector<std::string>& class_names) {
  const int64_t k = cm.num_classes();
  const auto names = names_or_indices(class_names, k, "metrics_to_json");
  const ClassificationReport r = classification_report(cm);
  nlohmann::json j;
  j["total"] = r.total;
  j["accuracy"] = r.accuracy;
  j["macro"] = {{"precision", r.macro_precision}, {"recall", r.macro_recall}, {"f1", r.macro_f1}};
  j["per_class"] = nlohmann::json::array();
  for (int64_t c = 0; c < k; ++c) {
    const ClassScores& s = r.per_class[c];
    j["per_class"].push_back({{"class", names[c]},
                              {"index", c},
                              {"precision", s.precision},
                              {"recall", s.recall},
                              {"f1", s.f1},
                              {"support", s.support},
                              {"predicted", s.predicted}});
  }
  j["class_names"] = names;
  j["confusion"] = nlohmann::json::array();
  for (int64_t t = 0; t < k; ++t) {
    std::vector<int64_t> row(cm.counts().begin() + t * k, cm.counts().begin() + (t + 1) * k);
    j["confusion"].push_back(row);
  }
  return j;
}

}  // namespace focus

namespace focus {

double roc_auc(const std::vector<double>& scores, const std::vector<int64_t>& labels) {
  FOCUS_CHECK(scores.size() == labels.size(), ValueError, "roc_auc: {} scores for {} labels",
              scores.size(), labels.size());
  std::vector<size_t> order(scores.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  // Mid-ranks over tied scores; AUC = (sum of positive ranks - P (P + 1) / 2) / (P N).
  double pos_rank_sum = 0;
  int64_t P = 0, N = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) ++j;
    const double rank = 0.5 * double(i + 1 + j);  // mean of ranks i+1 .. j
    for (size_t k = i; k < j; ++k) {
      const int64_t y = labels[order[k]];
      FOCUS_CHECK(y == 0 || y == 1, ValueError, "roc_auc: label {} is not 0 or 1", y);
      if (y == 1) {
        pos_rank_sum += rank;
        ++P;
      } else {
        ++N;
      }
    }
    i = j;
  }
  FOCUS_CHECK(P > 0 && N > 0, ValueError, "roc_auc: needs both classes ({} positive, {} negative)",
              P, N);
  return (pos_rank_sum - 0.5 * double(P) * double(P + 1)) / (double(P) * double(N));
}

}  // namespace focus
