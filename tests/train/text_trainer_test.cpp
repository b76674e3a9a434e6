// The one trainer on text: text-transformer learns a separable toy task through
// TextClassificationData; resuming equals the uninterrupted run bit for bit; uniform class
// weights train exactly as no weights; balanced weights, ROC-AUC (hand-computed, ties), the
// stratified folds, and the text corpus's class names and label errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "focus/data/classification_data.hpp"
#include "focus/models/classifier.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/train/text_data.hpp"
#include "focus/text/vocab.hpp"
#include "focus/train/trainer.hpp"
#include "support/expect_error.hpp"

using namespace focus;
namespace fs = std::filesystem;

namespace {

std::string temp_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("focus_text_trainer_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

// Class 1 iff the sentence holds token 4 ("good"); 2-5 filler tokens from 5..11 around it.
TextClassificationData toy(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<std::vector<int64_t>> ids;
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t y = i % 2;
    std::vector<int64_t> row;
    const int64_t len = 2 + rng.randint(4);
    for (int64_t t = 0; t < len; ++t) row.push_back(5 + rng.randint(7));
    row.insert(row.begin() + rng.randint(len + 1), y ? 4 : 5 + rng.randint(7));
    ids.push_back(row);
    labels.push_back(y);
  }
  return TextClassificationData(std::move(ids), std::move(labels), {"neg", "pos"});
}

std::unique_ptr<Classifier> tiny(double dropout, uint64_t seed = 5) {
  Rng rng(seed);
  return make_classifier("text_transformer",
                         {{"vocab_size", 12}, {"max_len", 8}, {"dim", 16}, {"depth", 1},
                          {"heads", 2}, {"dropout", dropout}},
                         rng);
}

// What the model files carry: a tokenizer (the toy ids need none, the files do).
ModelInfo toy_info() {
  ModelInfo info;
  info.tokenizer = train_tokenizer("word", {"good a b c d e f g"})->to_json().dump();
  return info;
}

TrainConfig config(const std::string& out) {
  TrainConfig c;
  c.task = "text";
  c.model = "text-transformer";
  c.data = "toy";  // unused by the Trainer; validate() needs a data source
  c.src_tokenizer = "word";
  c.epochs = 3;
  c.batch = 16;
  c.val_size = 32;
  c.lr = 3e-3;
  c.warmup_epochs = 0.2;
  c.seed = 9;
  c.out = out;
  return c;
}

void expect_same_params(const Module& a, const Module& b, double tol) {
  const auto pa = a.state_dict(), pb = b.state_dict();
  ASSERT_EQ(pa.size(), pb.size());
  for (auto& [name, t] : pa) {
    const auto x = t.to_vector<double>(), y = pb.at(name).to_vector<double>();
    for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(x[i], y[i], tol) << name << "[" << i << "]";
  }
}

}  // namespace

TEST(TextTrainer, LearnsASeparableToyTask) {
  const TextClassificationData data = toy(256, 1);
  auto m = tiny(0.0);
  TrainConfig c = config(temp_dir("learn"));
  c.epochs = 8;
  Trainer t(c, *m, data, nullptr, std::nullopt, toy_info());
  const auto hist = t.fit();
  ASSERT_EQ(hist.size(), 8u);
  EXPECT_GE(hist.back()["val_acc"].get<double>(), 0.95);
  EXPECT_LT(hist.back()["train_loss"].get<double>(), hist.front()["train_loss"].get<double>());
  EXPECT_TRUE(fs::exists(c.out + "/model_best.safetensors"));
}

TEST(TextTrainer, ResumeEqualsUninterrupted) {
  const TextClassificationData data = toy(96, 2);
  auto full = tiny(0.2);
  TrainConfig cf = config(temp_dir("full"));
  Trainer(cf, *full, data, nullptr, std::nullopt, toy_info()).fit();
  const std::string out = temp_dir("split");
  struct Killed {};
  {
    auto first = tiny(0.2);
    TrainConfig c = cf;
    c.out = out;
    Trainer t(c, *first, data, nullptr, std::nullopt, toy_info());
    t.on_epoch = [](const nlohmann::json&) { throw Killed{}; };
    EXPECT_THROW(t.fit(), Killed);
  }
  auto resumed = tiny(0.2, 77);
  TrainConfig c = cf;
  c.out = out;
  c.resume = out + "/checkpoint_last.safetensors";
  Trainer t(c, *resumed, data, nullptr, std::nullopt, toy_info());
  EXPECT_EQ(t.start_epoch(), 1);
  t.fit();
  expect_same_params(*full, *resumed, 0.0);
}

TEST(TextTrainer, UniformClassWeightsTrainAsNone) {
  const TextClassificationData data = toy(64, 3);
  auto a = tiny(0.0), b = tiny(0.0);
  TrainConfig c = config(temp_dir("weights"));
  c.optimizer = "sgd";
  c.lr = 0.1;
  c.label_smoothing = 0.1;
  Trainer ta(c, *a, data), tb(c, *b, data, nullptr, std::nullopt, {}, {2.0, 2.0});
  const Batch batch = data.batch(std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {});
  for (int s = 0; s < 3; ++s) {
    const StepStats sa = ta.train_step(batch.x, batch.y), sb = tb.train_step(batch.x, batch.y);
    EXPECT_NEAR(sa.loss, sb.loss, 1e-5);
  }
  expect_same_params(*a, *b, 1e-5);
  focus::testing::expect_error<ValueError>(
      [&] { Trainer bad(c, *a, data, nullptr, std::nullopt, {}, {1.0, 2.0, 3.0}); },
      {"3 class weights for 2 classes"});
}

TEST(TextTrainer, BalancedWeightsAndRocAuc) {
  const auto w = balanced_class_weights({0, 0, 0, 1}, 3);
  EXPECT_NEAR(w[0], 4.0 / 9.0, 1e-12);
  EXPECT_NEAR(w[1], 4.0 / 3.0, 1e-12);
  EXPECT_EQ(w[2], 0.0);
  EXPECT_NEAR(roc_auc({0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1}), 0.75, 1e-12);
  EXPECT_NEAR(roc_auc({0.5, 0.5, 0.9}, {0, 1, 1}), 0.75, 1e-12);  // the tie counts half
  EXPECT_THROW(roc_auc({0.1, 0.2}, {1, 1}), ValueError);
  EXPECT_THROW(roc_auc({0.1, 0.2}, {0, 2}), ValueError);
}

TEST(TextTrainer, StratifiedFoldsAreBalancedAndSeeded) {
  std::vector<int64_t> labels;
  for (int i = 0; i < 103; ++i) labels.push_back(i % 3 == 0 ? 1 : 0);  // 35 of class 1
  const auto f = stratified_folds(labels, 2, 10, 4);
  EXPECT_EQ(f, stratified_folds(labels, 2, 10, 4));
  EXPECT_NE(f, stratified_folds(labels, 2, 10, 5));
  std::vector<int64_t> size(10, 0), pos(10, 0);
  for (size_t i = 0; i < f.size(); ++i) {
    ++size[size_t(f[i])];
    pos[size_t(f[i])] += labels[i];
  }
  for (int k = 0; k < 10; ++k) {
    EXPECT_GE(size[size_t(k)], 10);
    EXPECT_LE(size[size_t(k)], 11);
    EXPECT_GE(pos[size_t(k)], 3);
    EXPECT_LE(pos[size_t(k)], 4);
  }
  EXPECT_THROW(stratified_folds(labels, 2, 1, 0), ValueError);
}

TEST(TextTrainer, CorpusClassesAndUnknownLabels) {
  const std::string dir = temp_dir("corpus");
  std::ofstream(dir + "/train.tsv") << "10\ta\n2\tb\n2\tc\n";
  std::ofstream(dir + "/valid.tsv") << "2\td\n\n7\te\n";
  TrainConfig c = config(dir);
  c.data.clear();
  c.train_file = dir + "/train.tsv";
  c.valid_file = dir + "/valid.tsv";
  std::vector<LabelledText> rows = {{"10", "a"}, {"2", "b"}, {"b", "x"}};
  EXPECT_EQ(sorted_class_names({{"10", "a"}, {"2", "b"}}), (std::vector<std::string>{"2", "10"}));
  EXPECT_EQ(sorted_class_names(rows), (std::vector<std::string>{"10", "2", "b"}));
  focus::testing::expect_error<FormatError>([&] { load_text_corpus(c); },
                                     {"valid.tsv:3", "label '7'", "classes: 2, 10"});
}

TEST(TextTrainer, TokenDropoutIsSeededAndOnlyInTraining) {
  std::vector<std::vector<int64_t>> ids(4, std::vector<int64_t>(50, 7));
  const TextClassificationData d(ids, {0, 1, 0, 1}, {"a", "b"}, 0.3);
  const std::vector<int64_t> idx = {0, 1, 2, 3};
  const auto plain = d.batch(idx, BatchDraw{}).x.to_vector<int64_t>();
  EXPECT_EQ(plain, std::vector<int64_t>(200, 7));
  const auto a = d.batch(idx, BatchDraw{true, 5, 1}).x.to_vector<int64_t>();
  EXPECT_EQ(a, d.batch(idx, BatchDraw{true, 5, 1}).x.to_vector<int64_t>());
  EXPECT_NE(a, d.batch(idx, BatchDraw{true, 5, 2}).x.to_vector<int64_t>());
  // Row 2 alone draws what it drew inside the batch (the draws depend on the index only).
  const auto row = d.batch(std::vector<int64_t>{2}, BatchDraw{true, 5, 1}).x.to_vector<int64_t>();
  EXPECT_EQ(row, std::vector<int64_t>(a.begin() + 100, a.begin() + 150));
  const auto unk = std::count(a.begin(), a.end(), Vocab::kUnk);
  EXPECT_GT(unk, 30);   // 200 tokens at 0.3: 60 expected
  EXPECT_LT(unk, 100);
  EXPECT_EQ(std::count(a.begin(), a.end(), 7) + unk, 200);
  EXPECT_THROW(TextClassificationData(ids, {0, 1, 0, 1}, {"a", "b"}, 1.0), ValueError);
}
