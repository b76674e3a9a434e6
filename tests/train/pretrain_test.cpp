// Masked-token pretraining (train/pretrain.hpp): the masking's proportions on a seeded run and
// its targets (only at drawn positions); the batches (padding ignored, fixed evaluation draws);
// text_mlm's scored outputs against its full forward; a tiny pretraining run lowering the held-out
// masked-token loss; fine-tuning from a pretrained file copying the encoder exactly; sentences.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "focus/autograd/node.hpp"
#include "focus/infer/model_file.hpp"
#include "focus/models/text_mlm.hpp"
#include "focus/models/text_transformer.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/train/pretrain.hpp"
#include "support/expect_error.hpp"

using namespace focus;
namespace fs = std::filesystem;

namespace {

std::string temp_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("focus_pretrain_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

}  // namespace

TEST(Masking, ProportionsAndTargetsOnASeededRun) {
  Rng rng(17);
  MaskingOptions o;
  o.vocab_size = 500;
  int64_t drawn = 0, masked = 0, kept = 0, random = 0, tokens = 0;
  for (int r = 0; r < 4000; ++r) {
    std::vector<int64_t> row;
    const int64_t n = 8 + rng.randint(30);
    for (int64_t i = 0; i < n; ++i) row.push_back(4 + rng.randint(496));
    const MaskedRow m = mask_tokens(row, o, rng);
    ASSERT_EQ(m.input.size(), row.size());
    ASSERT_EQ(m.target.size(), row.size());
    int64_t in_row = 0;
    for (size_t i = 0; i < row.size(); ++i) {
      if (m.target[i] == kIgnoreTarget) {
        EXPECT_EQ(m.input[i], row[i]) << "an undrawn position changed";
        continue;
      }
      ++in_row;
      EXPECT_EQ(m.target[i], row[i]) << "the target is the original token";
      if (m.input[i] == kMaskTokenId) ++masked;
      else if (m.input[i] == row[i]) ++kept;
      else {
        ++random;
        EXPECT_GE(m.input[i], Vocab::kNumSpecial);
        EXPECT_LT(m.input[i], 500);
      }
    }
    EXPECT_EQ(in_row, std::max<int64_t>(1, std::llround(0.15 * double(n))));
    drawn += in_row;
    tokens += n;
  }
  EXPECT_NEAR(double(drawn) / double(tokens), 0.15, 0.01);
  // ~10,000 drawn positions: 80/10/10 within a few standard deviations (+- 0.4 / 0.3 points).
  EXPECT_NEAR(double(masked) / double(drawn), 0.8, 0.02);
  EXPECT_NEAR(double(random) / double(drawn), 0.1, 0.015);
  EXPECT_NEAR(double(kept) / double(drawn), 0.1, 0.015);
}

TEST(Masking, RejectsBadInput) {
  Rng rng(1);
  MaskingOptions o;
  o.vocab_size = 100;
  focus::testing::expect_error<ValueError>([&] { mask_tokens({}, o, rng); }, {"empty row"});
  o.mask_prob = 1.5;
  focus::testing::expect_error<ValueError>([&] { mask_tokens({5, 6}, o, rng); }, {"mask_prob", "1.5"});
  o.mask_prob = 0.15;
  o.vocab_size = 4;
  focus::testing::expect_error<ValueError>([&] { mask_tokens({5, 6}, o, rng); }, {"no regular token"});
}

TEST(MaskedTokenData, PaddingIgnoredAndEvaluationDrawsFixed) {
  const Vocab vocab({"a", "b", "c", "d", "e", "f"});
  MaskedTokenData data({{4, 5, 6, 7, 8, 9, 4, 5}, {6, 7}}, vocab, {});
  const std::vector<int64_t> idx = {0, 1};
  const Batch e1 = data.batch(idx, BatchDraw{});
  const Batch e2 = data.batch(idx, BatchDraw{});
  ASSERT_EQ(e1.x.shape(), (Shape{2, 8}));
  ASSERT_EQ(e1.y.shape(), (Shape{2, 8}));
  EXPECT_EQ(e1.x.to_vector<int64_t>(), e2.x.to_vector<int64_t>());
  EXPECT_EQ(e1.y.to_vector<int64_t>(), e2.y.to_vector<int64_t>());
  const auto x = e1.x.to_vector<int64_t>(), y = e1.y.to_vector<int64_t>();
  for (int l = 2; l < 8; ++l) {  // row 1's padding
    EXPECT_EQ(x[8 + l], Vocab::kPad);
    EXPECT_EQ(y[8 + l], kIgnoreTarget);
  }
  int drawn0 = 0, drawn1 = 0;
  for (int l = 0; l < 8; ++l) drawn0 += y[l] != kIgnoreTarget;
  for (int l = 0; l < 2; ++l) drawn1 += y[8 + l] != kIgnoreTarget;
  EXPECT_EQ(drawn0, 1);  // round(0.15 * 8)
  EXPECT_EQ(drawn1, 1);  // at least one
  // Training draws move with the epoch (some epoch among 10 draws another position of row 0).
  bool moved = false;
  for (uint64_t ep = 1; ep < 10 && !moved; ++ep)
    moved = data.batch(idx, BatchDraw{true, 3, ep}).y.to_vector<int64_t>() !=
            data.batch(idx, BatchDraw{true, 3, 0}).y.to_vector<int64_t>();
  EXPECT_TRUE(moved);
  focus::testing::expect_error<ValueError>([&] { MaskedTokenData({{4, 99}}, vocab, {}); }, {"99"});
}

TEST(TextMlm, ScoredOutputsAreTheFullForwardsRows) {
  Rng rng(3);
  TextMlm m(TextTransformerConfig::from_json(
                {{"vocab_size", 20}, {"max_len", 6}, {"dim", 8}, {"depth", 1}, {"heads", 2}}),
            rng);
  m.eval();
  NoGradGuard ng;
  const Tensor ids = Tensor::from_vector(std::vector<int64_t>{4, 5, 1, 7, 0, 0, 8, 9, 10, 1, 12, 13}, {2, 6});
  const Tensor tgt = Tensor::from_vector(
      std::vector<int64_t>{-100, -100, 6, -100, -100, -100, -100, 3, -100, 11, -100, -100}, {2, 6});
  const Tensor full = m.forward(ids);  // (2, 6, 20)
  ASSERT_EQ(full.shape(), (Shape{2, 6, 20}));
  const auto [logits, y] = m.forward_scored(ids, tgt);
  ASSERT_EQ(logits.shape(), (Shape{3, 20}));
  EXPECT_EQ(y.to_vector<int64_t>(), (std::vector<int64_t>{6, 3, 11}));
  const auto f = full.to_vector<float>(), s = logits.to_vector<float>();
  const int pos[3] = {2, 7, 9};
  for (int r = 0; r < 3; ++r)
    for (int v = 0; v < 20; ++v) EXPECT_NEAR(s[size_t(r * 20 + v)], f[size_t(pos[r] * 20 + v)], 1e-5);
  focus::testing::expect_error<ShapeError>([&] { m.forward_scored(ids, Tensor::zeros({2, 5}, DType::I64)); },
                                    {"targets"});
  // The n-gram branch is the classifier's: the masked-token model refuses it.
  focus::testing::expect_error<ValueError>(
      [&] { TextMlm(TextTransformerConfig::from_json({{"vocab_size", 20}, {"ngram_buckets", 8}}), rng); },
      {"ngram_buckets 8", "text_transformer"});
}

TEST(Pretrain, TinyRunLowersTheMaskedTokenLoss) {
  // A corpus with structure: "the <animal> sat on the <thing> ." in fixed pairs, so a masked
  // word is predictable from its context.
  const char* animals[] = {"cat", "dog", "cow", "fox", "owl", "bee"};
  const char* things[] = {"mat", "log", "rug", "box", "hat", "bed"};
  std::vector<std::string> texts;
  Rng rng(5);
  for (int i = 0; i < 600; ++i) {
    const int a = int(rng.randint(6));
    texts.push_back(std::string("the ") + animals[a] + " sat on the " + things[a] + " today .");
  }
  TrainConfig cfg;
  cfg.task = "mlm";
  cfg.model = "text-transformer";
  cfg.src_tokenizer = "word";
  cfg.min_count = 1;
  cfg.max_len = 16;
  cfg.epochs = 20;
  cfg.batch = 32;
  cfg.lr = 1e-2;
  cfg.weight_decay = 0.01;
  cfg.val_size = 100;
  cfg.warmup_epochs = 0.2;
  cfg.seed = 3;
  cfg.mask_prob = 0.3;
  cfg.model_config = R"({"dim": 16, "depth": 1, "heads": 2, "dropout": 0.0})";
  cfg.out = temp_dir("tiny");
  const PretrainResult r = run_pretraining(cfg, texts);
  EXPECT_EQ(r.val_rows, 100);
  EXPECT_EQ(r.train_rows, 500);
  std::ifstream f(cfg.out + "/metrics.jsonl");
  std::vector<double> val_loss;
  for (std::string line; std::getline(f, line);)
    val_loss.push_back(nlohmann::json::parse(line).at("val_loss").get<double>());
  ASSERT_EQ(val_loss.size(), 20u);
  // Uniform guessing over the vocabulary costs log V; the run ends well below it and below its
  // first epoch.
  EXPECT_LT(val_loss.back(), val_loss.front());
  EXPECT_LT(val_loss.back(), 0.6 * std::log(double(r.vocab_size)));
  // The model file loads as text_mlm with the tokenizer.
  const LoadedClassifier lc = load_classifier(r.model_path);
  EXPECT_EQ(lc.model->name(), "text_mlm");
  EXPECT_FALSE(lc.info.tokenizer.empty());
  fs::remove_all(cfg.out);
}

TEST(Pretrain, FineTuningStartLoadsTheEncoderExactly) {
  const std::string dir = temp_dir("init");
  Rng rng(11);
  const auto tok = train_tokenizer("word", {"good bad fine awful movie plot"});
  TextMlm mlm(TextTransformerConfig::from_json({{"vocab_size", tok->vocab().size()}, {"max_len", 12},
                                                {"dim", 8}, {"depth", 2}, {"heads", 2}}),
              rng);
  // Move the weights away from any fresh initialisation.
  for (auto& [name, p] : mlm.named_parameters()) {
    Tensor noise = Tensor::randn(p.shape(), rng, DType::F32, 0.5);
    Tensor dst = p;
    dst.copy_(noise);
  }
  ModelInfo info;
  info.tokenizer = tok->to_json().dump();
  save_model(dir + "/mlm.safetensors", mlm, info);
  std::unique_ptr<Tokenizer> got;
  auto clf = text_classifier_from_pretrained(dir + "/mlm.safetensors", 3, {{"dropout", 0.2}}, 7, got);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->vocab().tokens(), tok->vocab().tokens());
  EXPECT_EQ(clf->cfg().num_classes, 3);
  EXPECT_DOUBLE_EQ(clf->cfg().dropout, 0.2);
  const auto src = mlm.state_dict();
  int64_t copied = 0, fresh = 0;
  for (const auto& [name, t] : clf->state_dict()) {
    if (TextEncoderModel::is_encoder_parameter(name)) {
      ASSERT_TRUE(src.count(name)) << name;
      EXPECT_EQ(t.to_vector<float>(), src.at(name).to_vector<float>()) << name;
      ++copied;
    } else {
      EXPECT_TRUE(name.rfind("pool.", 0) == 0 || name.rfind("head.", 0) == 0) << name;
      ++fresh;
    }
  }
  EXPECT_GT(copied, 10);
  EXPECT_GT(fresh, 0);
  focus::testing::expect_error<ValueError>(
      [&] { text_classifier_from_pretrained(dir + "/mlm.safetensors", 2, {{"dim", 16}}, 7, got); },
      {"dim", "16", "8"});
  fs::remove_all(dir);
}

TEST(Pretrain, SplitSentences) {
  EXPECT_EQ(split_sentences("Call me Ishmael. Some years\nago I went.  Hi. Is it so? Yes!"),
            (std::vector<std::string>{"Call me Ishmael.", "Some years ago I went.", "Is it so?"}));
  EXPECT_EQ(split_sentences("e.g.this stays whole and ends", 3),
            (std::vector<std::string>{"e.g.this stays whole and ends"}));
}
