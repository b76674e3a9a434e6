// Classification metrics: a confusion matrix accumulated over batches, accuracy, per-class
// precision / recall / F1 and their macro averages, a readable text table and a JSON export.
// Conventions (as scikit-learn's classification_report): a class with no prediction has
// precision 0, one with no sample recall 0; macro averages run over the classes that occur in the
// targets or the predictions. Predictions from logits are the first maximal index (torch.argmax).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "focus/tensor/tensor.hpp"

namespace focus {

class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int64_t num_classes);  // ValueError unless num_classes >= 1

  int64_t num_classes() const { return k_; }
  void add(int64_t target, int64_t predicted);  // ValueError when either is out of range
  // outputs: logits (B, K) F32/F64 (argmax taken) or predicted labels (B) I64; targets (B) I64.
  void add_batch(const Tensor& outputs, const Tensor& targets);
  void merge(const ConfusionMatrix& other);  // ShapeError when the class counts differ
  void reset();

  int64_t at(int64_t target, int64_t predicted) const;  // rows: true class, columns: prediction
  int64_t total() const;
  int64_t correct() const;  // trace
  const std::vector<int64_t>& counts() const { return counts_; }  // (K, K) row-major

 private:
  int64_t k_;
  std::vector<int64_t> counts_;
};

struct ClassScores {
  double precision = 0, recall = 0, f1 = 0;
  int64_t support = 0;    // samples of this class (row sum)
  int64_t predicted = 0;  // predictions of this class (column sum)
};

struct ClassificationReport {
  int64_t total = 0;
  double accuracy = 0;  // 0 for an empty matrix
  std::vector<ClassScores> per_class;
  double macro_precision = 0, macro_recall = 0, macro_f1 = 0;
};

ClassificationReport classification_report(const ConfusionMatrix& cm);

// Text tables; class_names must have one name per class (ShapeError otherwise), or be empty
// (classes are then named by index).
std::string format_report(const ClassificationReport& report,
                          const std::vector<std::string>& class_names);
std::string format_confusion(const ConfusionMatrix& cm, const std::vector<std::string>& class_names);

// {"total", "accuracy", "macro": {precision, recall, f1}, "per_class": [{class, index, precision,
//  recall, f1, support, predicted}], "class_names": [...], "confusion": [[...], ...]}
nlohmann::json metrics_to_json(const ConfusionMatrix& cm,
                               const std::vector<std::string>& class_names);

}  // namespace focus

namespace focus {

// Area under the ROC curve of `scores` for the positive class (labels 1 positive, 0 negative):
// the Mann-Whitney probability that a random positive scores above a random negative, ties
// counted half. ValueError for a label other than 0/1, sizes that differ, or a class absent.
double roc_auc(const std::vector<double>& scores, const std::vector<int64_t>& labels);

}  // namespace focus
