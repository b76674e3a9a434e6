// Classification metrics on a hand-made 3-class confusion matrix against fractions worked out by
// hand; the sklearn conventions for absent classes; batches from logits (ties to the first
// index) and from labels; the text tables and the JSON export; typed errors on bad input.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "focus/train/metrics.hpp"

using namespace focus;

namespace {

//        pred 0  1  2
// true 0 [   5  1  0 ]
//      1 [   2  3  1 ]
//      2 [   0  0  4 ]
ConfusionMatrix hand_example() {
  ConfusionMatrix cm(3);
  const int counts[3][3] = {{5, 1, 0}, {2, 3, 1}, {0, 0, 4}};
  for (int t = 0; t < 3; ++t)
    for (int p = 0; p < 3; ++p)
      for (int n = 0; n < counts[t][p]; ++n) cm.add(t, p);
  return cm;
}

}  // namespace

TEST(Metrics, HandExample) {
  const ConfusionMatrix cm = hand_example();
  EXPECT_EQ(cm.total(), 16);
  EXPECT_EQ(cm.correct(), 12);
  EXPECT_EQ(cm.at(1, 0), 2);
  const ClassificationReport r = classification_report(cm);
  EXPECT_DOUBLE_EQ(r.accuracy, 12.0 / 16.0);
  // precision = tp / column sum, recall = tp / row sum, f1 = 2pr / (p + r).
  const double p[3] = {5.0 / 7.0, 3.0 / 4.0, 4.0 / 5.0};
  const double rc[3] = {5.0 / 6.0, 3.0 / 6.0, 4.0 / 4.0};
  const double f1[3] = {10.0 / 13.0, 3.0 / 5.0, 8.0 / 9.0};
  const int64_t support[3] = {6, 6, 4}, predicted[3] = {7, 4, 5};
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(r.per_class[c].precision, p[c], 1e-12) << c;
    EXPECT_NEAR(r.per_class[c].recall, rc[c], 1e-12) << c;
    EXPECT_NEAR(r.per_class[c].f1, f1[c], 1e-12) << c;
    EXPECT_EQ(r.per_class[c].support, support[c]);
    EXPECT_EQ(r.per_class[c].predicted, predicted[c]);
  }
  EXPECT_NEAR(r.macro_precision, (5.0 / 7 + 0.75 + 0.8) / 3, 1e-12);
  EXPECT_NEAR(r.macro_recall, 7.0 / 9.0, 1e-12);
  EXPECT_NEAR(r.macro_f1, (10.0 / 13 + 0.6 + 8.0 / 9) / 3, 1e-12);
}

TEST(Metrics, AbsentClassesFollowSklearn) {
  // 4 classes: class 3 never occurs (left out of the macro average); class 2 is predicted but
  // never true (precision 0, recall 0, counted).
  ConfusionMatrix cm(4);
  cm.add(0, 0);
  cm.add(0, 2);
  cm.add(1, 1);
  cm.add(1, 1);
  const ClassificationReport r = classification_report(cm);
  EXPECT_DOUBLE_EQ(r.accuracy, 0.75);
  EXPECT_EQ(r.per_class[2].precision, 0.0);
  EXPECT_EQ(r.per_class[2].recall, 0.0);
  EXPECT_EQ(r.per_class[3].f1, 0.0);
  EXPECT_NEAR(r.macro_precision, (1.0 + 1.0 + 0.0) / 3, 1e-12);
  EXPECT_NEAR(r.macro_recall, (0.5 + 1.0 + 0.0) / 3, 1e-12);
  EXPECT_NEAR(r.macro_f1, (2.0 / 3 + 1.0 + 0.0) / 3, 1e-12);
  const ClassificationReport empty = classification_report(ConfusionMatrix(2));
  EXPECT_EQ(empty.accuracy, 0.0);
  EXPECT_EQ(empty.macro_f1, 0.0);
}

TEST(Metrics, BatchesFromLogitsAndLabels) {
  ConfusionMatrix cm(3);
  // (4, 3) logits: argmax 1, 0 (tie 0/2 -> first), 2, 1.
  const Tensor logits =
      Tensor::from_vector(std::vector<float>{0, 5, 1, 3, -1, 3, 0, 0, 0.5, 2, 4, -3}, {4, 3});
  const Tensor y = Tensor::from_vector(std::vector<int64_t>{1, 2, 2, 0}, {4});
  cm.add_batch(logits, y);
  EXPECT_EQ(cm.at(1, 1), 1);
  EXPECT_EQ(cm.at(2, 0), 1);
  EXPECT_EQ(cm.at(2, 2), 1);
  EXPECT_EQ(cm.at(0, 1), 1);
  // F64 logits as a transposed (non-contiguous) view give the same argmax.
  const Tensor lt = Tensor::from_vector(std::vector<double>{0, 3, 0, 2, 5, -1, 0, 4, 1, 3, 0.5, -3},
                                        {3, 4}).transpose(0, 1);  // (4, 3)
  ConfusionMatrix cm2(3);
  cm2.add_batch(lt, y);
  EXPECT_EQ(cm2.counts(), cm.counts());
  // Predicted labels, merge, reset.
  ConfusionMatrix cm3(3);
  cm3.add_batch(Tensor::from_vector(std::vector<int64_t>{1, 0, 2, 1}, {4}), y);
  cm3.merge(cm);
  EXPECT_EQ(cm3.total(), 8);
  EXPECT_EQ(cm3.at(2, 0), 2);
  cm3.reset();
  EXPECT_EQ(cm3.total(), 0);
}

TEST(Metrics, BadInputThrows) {
  EXPECT_THROW(ConfusionMatrix(0), ValueError);
  ConfusionMatrix cm(3);
  EXPECT_THROW(cm.add(3, 0), ValueError);
  EXPECT_THROW(cm.add(0, -1), ValueError);
  const Tensor y = Tensor::from_vector(std::vector<int64_t>{0, 1}, {2});
  EXPECT_THROW(cm.add_batch(Tensor::zeros({2, 4}), y), ShapeError);   // 4 classes, not 3
  EXPECT_THROW(cm.add_batch(Tensor::zeros({3, 3}), y), ShapeError);   // batch mismatch
  EXPECT_THROW(cm.add_batch(Tensor::zeros({2, 3}), y.to(DType::F32)), ShapeError);
  EXPECT_THROW(cm.add_batch(Tensor::from_vector(std::vector<int64_t>{0, 5}, {2}), y), ValueError);
  EXPECT_THROW(cm.merge(ConfusionMatrix(4)), ShapeError);
  EXPECT_THROW(format_report(classification_report(cm), {"a", "b"}), ShapeError);
}

TEST(Metrics, TextAndJson) {
  const ConfusionMatrix cm = hand_example();
  const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Ankle boot"};
  const std::string report = format_report(classification_report(cm), names);
  EXPECT_NE(report.find("T-shirt/top"), std::string::npos);
  EXPECT_NE(report.find("Ankle boot"), std::string::npos);
  EXPECT_NE(report.find("0.7143"), std::string::npos);  // precision of class 0
  EXPECT_NE(report.find("0.7500"), std::string::npos);  // accuracy
  EXPECT_NE(report.find("macro avg"), std::string::npos);
  const std::string table = format_confusion(cm, names);
  EXPECT_NE(table.find("Trouser (1)"), std::string::npos);
  EXPECT_NE(table.find("  2   3   1"), std::string::npos);  // the row of class 1
  EXPECT_NE(format_confusion(cm, {}).find("2 (2)"), std::string::npos);  // index names

  const nlohmann::json j = nlohmann::json::parse(metrics_to_json(cm, names).dump());
  EXPECT_EQ(j["total"], 16);
  EXPECT_DOUBLE_EQ(j["accuracy"].get<double>(), 0.75);
  EXPECT_DOUBLE_EQ(j["macro"]["recall"].get<double>(), 7.0 / 9.0);
  EXPECT_EQ(j["per_class"][2]["class"], "Ankle boot");
  EXPECT_DOUBLE_EQ(j["per_class"][1]["f1"].get<double>(), 0.6);
  EXPECT_EQ(j["confusion"][1], (std::vector<int64_t>{2, 3, 1}));
  EXPECT_EQ(j["class_names"], names);
}
