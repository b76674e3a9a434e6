// Text classification end to end through the `focus` binary: train --task text on a small
// separable TSV (JSON-lines validation), the run's files and its test metrics; eval and predict
// on raw text from the saved model (tokenizer inside); clear errors for a malformed training
// line, a validation label the training data lacks, and a text model given where a PNG is read;
// `focus bench text` (its JSON, its two inference paths agreeing, a --len past max_len refused);
// `focus cv --refit --seeds 2` with the n-gram branch (each fold's members, refits, cv.json);
// `focus cv` with NB-weighted n-grams (ratios fitted and saved, the held-out validation scores in
// cv.json, explain on the model).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "focus/infer/model_file.hpp"
#include "focus/io/safetensors.hpp"
#include "support/run_command.hpp"

namespace fs = std::filesystem;
using focus::testing::run_command;

namespace {

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

class TextCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("focus_text_cli_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // Positive texts hold "good" or "great", negative ones "bad" or "awful", among fillers.
    const char* fill[] = {"the", "phone", "screen", "battery", "was", "really", "quite", "case"};
    std::ofstream train(path("train.tsv")), valid(path("valid.jsonl")), test(path("test.tsv"));
    for (int i = 0; i < 160; ++i) {
      const bool pos = i % 2 == 0;
      const std::string word = pos ? (i % 4 == 0 ? "good" : "great") : (i % 4 == 1 ? "bad" : "awful");
      const std::string text = std::string(fill[i % 8]) + " " + fill[(i / 8) % 8] + " " + word + " " +
                               fill[(i / 3) % 8];
      if (i < 120) train << (pos ? "pos" : "neg") << "\t" << text << "\n";
      else if (i < 140) valid << nlohmann::json{{"label", pos ? "pos" : "neg"}, {"text", text}}.dump() << "\n";
      else test << (pos ? "pos" : "neg") << "\t" << text << "\n";
    }
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string focus(const std::string& args) const { return std::string(FOCUS_BINARY) + " " + args; }
  std::string dir_;
};

}  // namespace

TEST_F(TextCli, TrainEvalPredict) {
  const auto t = run_command(focus(
      "train --task text --train " + path("train.tsv") + " --valid " + path("valid.jsonl") +
      " --test " + path("test.tsv") + " --epochs 12 --batch 16 --lr 3e-3 --threads 1 --min-count 1"
      " --model-config '{\"dim\": 16, \"depth\": 1, \"heads\": 2, \"dropout\": 0.0}' --out " + path("run")));
  ASSERT_EQ(t.code, 0) << t.out;
  EXPECT_TRUE(contains(t.out, "test accuracy")) << t.out;
  EXPECT_TRUE(contains(t.out, "ROC-AUC")) << t.out;
  for (const char* f : {"model_best.safetensors", "model_last.safetensors", "checkpoint_last.safetensors",
                        "metrics.jsonl", "config.json", "test_metrics.json"})
    EXPECT_TRUE(fs::exists(path("run/") + f)) << f;
  std::ifstream m(path("run/test_metrics.json"));
  const nlohmann::json j = nlohmann::json::parse(m);
  EXPECT_GE(j["accuracy"].get<double>(), 0.9) << j.dump();
  EXPECT_EQ(j["class_names"], nlohmann::json({"neg", "pos"}));
  EXPECT_GT(j["temperature"].get<double>(), 0.0);

  const std::string model = path("run/model_best.safetensors");
  const auto e = run_command(focus("eval --model " + model + " --input " + path("test.tsv") + " --json"));
  ASSERT_EQ(e.code, 0) << e.out;
  EXPECT_NEAR(nlohmann::json::parse(e.out)["accuracy"].get<double>(), j["accuracy"].get<double>(), 1e-12);
  const auto p = run_command(focus("predict --model " + model + " --text 'the battery was great'"
                                   " --text 'really awful screen'"));
  ASSERT_EQ(p.code, 0) << p.out;
  EXPECT_TRUE(contains(p.out, "pos\t")) << p.out;
  EXPECT_TRUE(contains(p.out, "neg\t")) << p.out;
  EXPECT_TRUE(contains(p.out, "pooling:")) << p.out;
}

TEST_F(TextCli, BadInputsNameFileAndLine) {
  std::ofstream(path("bad.tsv")) << "pos\tfine text\nno tab on this line\n";
  const auto a = run_command(focus("train --task text --train " + path("bad.tsv") + " --valid " +
                                   path("valid.jsonl") + " --out " + path("r1")));
  EXPECT_EQ(a.code, 1);
  EXPECT_TRUE(contains(a.out, path("bad.tsv") + ":2")) << a.out;
  std::ofstream(path("odd.tsv")) << "pos\tfine\nmaybe\tunsure\n";
  const auto b = run_command(focus("train --task text --train " + path("train.tsv") + " --valid " +
                                   path("odd.tsv") + " --out " + path("r2")));
  EXPECT_EQ(b.code, 1);
  EXPECT_TRUE(contains(b.out, path("odd.tsv") + ":2")) << b.out;
  EXPECT_TRUE(contains(b.out, "label 'maybe'")) << b.out;
  const auto c = run_command(focus("train --task text --train " + path("train.tsv") + " --out " + path("r3")));
  EXPECT_EQ(c.code, 1);
  EXPECT_TRUE(contains(c.out, "--valid")) << c.out;
}

TEST_F(TextCli, BenchTextReportsBothPathsAndRefusesALengthPastMaxLen) {
  const auto t = run_command(focus(
      "train --task text --train " + path("train.tsv") + " --valid " + path("valid.jsonl") +
      " --epochs 1 --batch 16 --threads 1 --min-count 1"
      " --model-config '{\"dim\": 16, \"depth\": 1, \"heads\": 2, \"max_len\": 12}' --out " + path("run")));
  ASSERT_EQ(t.code, 0) << t.out;
  const std::string model = path("run/model_best.safetensors");
  nlohmann::json out[2];
  const char* paths[2] = {"fast", "reference"};
  for (int i = 0; i < 2; ++i) {
    const auto r = run_command(focus("bench text --model " + model + " --len 12 --requests 7 --warmup 1"
                                     " --train-batch 4 --train-steps 2 --train-warmup 1 --threads 1 --path " +
                                     paths[i] + " 2>/dev/null"));
    ASSERT_EQ(r.code, 0) << r.out;
    out[i] = nlohmann::json::parse(r.out);
    EXPECT_EQ(out[i]["path"], paths[i]);
    EXPECT_EQ(out[i]["infer"]["requests"], 7);
    EXPECT_GE(out[i]["infer"]["p99_ms"].get<double>(), out[i]["infer"]["median_ms"].get<double>());
    EXPECT_GT(out[i]["train"]["tokens_per_s"].get<double>(), 0.0);
    EXPECT_EQ(out[i]["check"]["padded_lengths"], nlohmann::json({12, 12, 12, 5}));  // min(len, 64 40 17 5)
    EXPECT_EQ(out[i]["check"]["padded_logits"].size(), 8u);
  }
  for (const char* key : {"batch1_logits", "padded_logits"})
    for (size_t k = 0; k < out[0]["check"][key].size(); ++k)
      EXPECT_NEAR(out[0]["check"][key][k].get<double>(), out[1]["check"][key][k].get<double>(), 1e-4) << key;
  const auto bad = run_command(focus("bench text --model " + model + " --len 13 --no-train --no-infer"));
  EXPECT_EQ(bad.code, 1);
  EXPECT_TRUE(contains(bad.out, "max_len 12")) << bad.out;
}

TEST_F(TextCli, CvRefitsAndEnsemblesSeedsWithTheNgramBranch) {
  const auto t = run_command(focus(
      "cv --task text --train " + path("train.tsv") + " --valid " + path("valid.jsonl") +
      " --folds 3 --refit --seeds 2 --val-size 20 --epochs 4 --patience 2 --batch 16 --lr 3e-3"
      " --threads 1 --min-count 1 --model-config '{\"dim\": 8, \"depth\": 0, \"heads\": 1,"
      " \"ngram_buckets\": 1000, \"ngram_scale\": 5}' --out " + path("cv")));
  ASSERT_EQ(t.code, 0) << t.out;
  EXPECT_TRUE(contains(t.out, "held-out run: accuracy")) << t.out;
  std::ifstream f(path("cv/cv.json"));
  const nlohmann::json j = nlohmann::json::parse(f);
  ASSERT_EQ(j["folds"].size(), 3u) << j.dump();
  for (const auto& fold : j["folds"]) {
    EXPECT_EQ(fold["seeds"], 2);
    EXPECT_EQ(fold["refit"], true);
    ASSERT_EQ(fold["members"].size(), 2u) << fold.dump();
    EXPECT_NE(fold["members"][0]["seed"], fold["members"][1]["seed"]);
    for (const auto& m : fold["members"]) {
      EXPECT_GE(m["best_epoch"].get<int>(), 1);
      EXPECT_TRUE(m.contains("refit_accuracy")) << m.dump();
    }
  }
  EXPECT_GE(j["mean_accuracy"].get<double>(), 0.8) << j.dump();
  // The refit's scored model is its last epoch's; the model file carries the n-gram branch.
  EXPECT_TRUE(fs::exists(path("cv/fold_0/refit/model_last.safetensors")));
  EXPECT_TRUE(fs::exists(path("cv/fold_0/seed_1/refit/model_last.safetensors")));
  // The refit keeps the held-out run's temperature (its own validation rows were trained on).
  EXPECT_EQ(focus::load_classifier(path("cv/fold_0/refit/model_last.safetensors")).info.temperature,
            focus::load_classifier(path("cv/fold_0/model_best.safetensors")).info.temperature);
  const auto e = run_command(focus("explain --model " + path("cv/fold_0/refit/model_last.safetensors") +
                                   " --input 'the battery was great' --json"));
  ASSERT_EQ(e.code, 0) << e.out;
  EXPECT_EQ(nlohmann::json::parse(e.out)["ngram"].size(), 4u) << e.out;
}

TEST_F(TextCli, EpochsZeroScoresTheConvexFitAlone) {
  const std::string mc = " --model-config '{\"dim\": 8, \"depth\": 0, \"heads\": 1, \"max_len\": 4,"
                         " \"ngram_buckets\": 1000, \"ngram_len\": 64, \"ngram_idf\": true, \"ngram_fit\": 1.0}'";
  const auto t = run_command(focus(
      "train --task text --train " + path("train.tsv") + " --valid " + path("valid.jsonl") +
      " --test " + path("test.tsv") + " --epochs 0 --threads 1 --min-count 1" + mc + " --out " + path("fit")));
  ASSERT_EQ(t.code, 0) << t.out;
  EXPECT_TRUE(contains(t.out, "n-gram branch fitted")) << t.out;
  EXPECT_TRUE(contains(t.out, "--epochs 0: the fitted n-gram branch alone")) << t.out;
  for (const char* f : {"model_best.safetensors", "model_last.safetensors", "metrics.jsonl", "config.json",
                        "test_metrics.json"})
    EXPECT_TRUE(fs::exists(path("fit/") + f)) << f;
  std::ifstream m(path("fit/test_metrics.json"));
  EXPECT_GE(nlohmann::json::parse(m)["accuracy"].get<double>(), 0.9);
  // A text longer than the encoder's 4 ids: the branch reads all of it.
  const auto p = run_command(focus("predict --model " + path("fit/model_best.safetensors") +
                                   " --text 'the battery was great and the screen was great too'"));
  ASSERT_EQ(p.code, 0) << p.out;
  // Refused: nothing to train without the fit; seeds that would all be the same fit.
  const auto none = run_command(focus(
      "train --task text --train " + path("train.tsv") + " --valid " + path("valid.jsonl") +
      " --epochs 0 --threads 1 --model-config '{\"dim\": 8, \"depth\": 0, \"heads\": 1}' --out " + path("none")));
  EXPECT_NE(none.code, 0);
  EXPECT_TRUE(contains(none.out, "--epochs 0 trains nothing")) << none.out;
  const auto seeds = run_command(focus(
      "cv --task text --train " + path("train.tsv") + " --valid " + path("valid.jsonl") +
      " --folds 3 --seeds 2 --epochs 0 --threads 1 --min-count 1" + mc + " --out " + path("cvfit")));
  EXPECT_NE(seeds.code, 0);
  EXPECT_TRUE(contains(seeds.out, "--seeds 2 with --epochs 0")) << seeds.out;
}

TEST_F(TextCli, CvWithNbWeightedNgramsFitsSavesAndReportsValidation) {
  const auto t = run_command(focus(
      "cv --task text --train " + path("train.tsv") + " --valid " + path("valid.jsonl") +
      " --folds 3 --val-size 20 --epochs 4 --patience 2 --batch 16 --lr 3e-3 --threads 1"
      " --min-count 1 --model-config '{\"dim\": 8, \"depth\": 0, \"heads\": 1,"
      " \"ngram_buckets\": 1000, \"ngram_scale\": 5, \"ngram_nb\": 1.0}' --out " + path("cvnb")));
  ASSERT_EQ(t.code, 0) << t.out;
  EXPECT_TRUE(contains(t.out, "held-out validation accuracy")) << t.out;
  std::ifstream f(path("cvnb/cv.json"));
  const nlohmann::json j = nlohmann::json::parse(f);
  ASSERT_EQ(j["folds"].size(), 3u) << j.dump();
  double val = 0;
  for (const auto& fold : j["folds"]) {
    const double v = fold["members"][0]["val_accuracy"].get<double>();
    EXPECT_GT(v, 0.0) << fold.dump();
    EXPECT_LE(v, 1.0) << fold.dump();
    val += v / 3;
  }
  EXPECT_NEAR(j["mean_val_accuracy"].get<double>(), val, 1e-12) << j.dump();
  // The ratios were fitted on the fold's training rows and travel in the model file.
  const std::string model = path("cvnb/fold_0/model_best.safetensors");
  const focus::SafetensorsFile file = focus::load_safetensors(model);
  EXPECT_NE(file.metadata.at("model_config").find("ngram_nb"), std::string::npos);
  const auto r = file.tensors.at("ngram_nb_ratio").to_vector<float>();
  ASSERT_EQ(r.size(), 2000u);
  double largest = 0;
  for (float x : r) largest = std::max(largest, double(std::abs(x)));
  EXPECT_GT(largest, 0.1);
  const auto e = run_command(focus("explain --model " + model + " --input 'the battery was great' --json"));
  ASSERT_EQ(e.code, 0) << e.out;
  EXPECT_EQ(nlohmann::json::parse(e.out)["ngram"].size(), 4u) << e.out;
}
