// Training-loop invariants: k accumulation micro-batches equal one batch of k; resuming from a
// checkpoint equals the uninterrupted run bit for bit (dropout, augmentation and shuffling on);
// checkpoints and model files round-trip and reject mismatches with clear errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <tuple>

#include <nlohmann/json.hpp>

#include "focus/models/image_classifier.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/train/trainer.hpp"

using namespace focus;
namespace fs = std::filesystem;

namespace {

// 10 classes of 28x28 images: class c lights a horizontal band at rows 2c..2c+4, plus noise.
ImageDataset synthetic(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<uint8_t> px(static_cast<size_t>(n * 784));
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    labels[size_t(i)] = i % 10;
    for (int64_t p = 0; p < 784; ++p) {
      const int64_t row = p / 28, c = i % 10;
      const bool band = row >= 2 * c && row < 2 * c + 5;
      px[size_t(i * 784 + p)] = uint8_t(std::min<int64_t>(255, (band ? 180 : 20) + rng.randint(60)));
    }
  }
  std::vector<std::string> names;
  for (int c = 0; c < 10; ++c) names.push_back("c" + std::to_string(c));
  return ImageDataset(std::move(px), std::move(labels), 1, 28, 28, names);
}

const char* kTinyVit = R"({"dim": 16, "depth": 1, "heads": 2, "patch": 7, "mlp_ratio": 2.0, "dropout": 0.1})";

std::unique_ptr<ImageClassifier> tiny_vit(const char* cfg = kTinyVit, uint64_t seed = 7) {
  Rng rng(seed);
  return make_image_model("vit", nlohmann::json::parse(cfg), rng);
}

TrainConfig base_config(const std::string& out) {
  TrainConfig c;
  c.model = "vit";
  c.epochs = 2;
  c.batch = 16;
  c.val_size = 20;
  c.lr = 3e-3;
  c.warmup_epochs = 0.5;
  c.out = out;
  c.seed = 3;
  return c;
}

std::string temp_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("focus_trainer_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

void expect_same_params(const Module& a, const Module& b, double tol) {
  const auto pa = a.state_dict(), pb = b.state_dict();
  ASSERT_EQ(pa.size(), pb.size());
  for (auto& [name, t] : pa) {
    const auto x = t.to_vector<double>(), y = pb.at(name).to_vector<double>();
    for (size_t i = 0; i < x.size(); ++i)
      ASSERT_NEAR(x[i], y[i], tol) << name << "[" << i << "]";
  }
}

}  // namespace

TEST(Trainer, AccumulationEqualsOneBatch) {
  const ImageDataset ds = synthetic(120, 1);
  const char* no_dropout = R"({"dim": 16, "depth": 1, "heads": 2, "patch": 7, "dropout": 0.0})";
  auto m1 = tiny_vit(no_dropout), m4 = tiny_vit(no_dropout);
  // SGD keeps the update linear in the gradient; Adam would amplify the rounding noise of
  // gradients that are zero in exact arithmetic (the key-projection bias under softmax).
  TrainConfig c1 = base_config(temp_dir("acc1"));
  c1.optimizer = "sgd";
  c1.lr = 0.1;
  TrainConfig c4 = c1;
  c4.accum = 4;
  Trainer t1(c1, *m1, ds), t4(c4, *m4, ds);
  Batch b = make_batch(ds, std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
                       Normalization{});
  for (int step = 0; step < 3; ++step) {
    const StepStats s1 = t1.train_step(b.x, b.y), s4 = t4.train_step(b.x, b.y);
    EXPECT_NEAR(s1.loss, s4.loss, 1e-5);
    EXPECT_EQ(s1.correct, s4.correct);
    EXPECT_NEAR(s1.grad_norm, s4.grad_norm, 1e-4 * (1 + s1.grad_norm));
  }
  expect_same_params(*m1, *m4, 2e-5);
}

TEST(Trainer, ResumeEqualsUninterrupted) {
  const ImageDataset ds = synthetic(100, 2);
  // Uninterrupted: 2 epochs.
  auto full = tiny_vit();
  TrainConfig cf = base_config(temp_dir("full"));
  cf.erase_p = 0.5;
  Trainer(cf, *full, ds).fit();
  // Interrupted: 1 epoch, then a fresh process-like restart from the checkpoint.
  // Interrupted: the same run killed right after epoch 1's checkpoint, then restarted.
  const std::string out = temp_dir("split");
  struct Killed {};
  {
    auto first = tiny_vit();
    TrainConfig c = cf;
    c.out = out;
    Trainer t(c, *first, ds);
    t.on_epoch = [](const nlohmann::json&) { throw Killed{}; };
    EXPECT_THROW(t.fit(), Killed);
  }
  auto resumed = tiny_vit(kTinyVit, 99);  // different init: everything must come from the checkpoint
  TrainConfig c = cf;
  c.out = out;
  c.resume = out + "/checkpoint_last.safetensors";
  Trainer t(c, *resumed, ds);
  EXPECT_EQ(t.start_epoch(), 1);
  const auto hist = t.fit();
  ASSERT_EQ(hist.size(), 2u);
  expect_same_params(*full, *resumed, 0.0);  // bit-identical
}

TEST(Trainer, ModelFileRoundTripAndErrors) {
  const std::string dir = temp_dir("files");
  auto m = tiny_vit();
  ModelInfo info;
  info.class_names = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
  save_model(dir + "/m.safetensors", *m, info);
  LoadedModel lm = load_model(dir + "/m.safetensors");
  expect_same_params(*m, *lm.model, 0.0);
  EXPECT_EQ(lm.info.class_names, info.class_names);
  EXPECT_THROW(load_model(dir + "/missing.safetensors"), IOError);
  // A truncated file is corrupt.
  fs::copy_file(dir + "/m.safetensors", dir + "/cut.safetensors");
  fs::resize_file(dir + "/cut.safetensors", fs::file_size(dir + "/cut.safetensors") / 2);
  EXPECT_THROW(load_model(dir + "/cut.safetensors"), FormatError);
  // A checkpoint of another architecture is refused by name.
  auto other = tiny_vit(R"({"dim": 8, "depth": 1, "heads": 2, "patch": 7})");
  TrainConfig c = base_config(dir);
  const ImageDataset ds = synthetic(60, 3);
  Trainer t(c, *m, ds);
  t.save_checkpoint(dir + "/ck.safetensors");
  // A checkpoint is not a model file, nor a model file a checkpoint: each loader refuses the
  // other's file with a FormatError that names the file and the format it found.
  for (const auto& [path, load, message] :
       std::vector<std::tuple<std::string, std::function<void(const std::string&)>, std::string>>{
           {dir + "/ck.safetensors", [](const std::string& p) { load_model(p); }, "unsupported model format 'focus-checkpoint/1'"},
           {dir + "/m.safetensors",
            [&](const std::string& p) {
              TrainConfig r = c;
              r.resume = p;
              Trainer resumed(r, *m, ds);
            },
            "unsupported checkpoint format 'focus-image-classifier/1'"}}) {
    try {
      load(path);
      ADD_FAILURE() << path << " loaded as the other kind of file";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  }
  TrainConfig c2 = c;
  c2.resume = dir + "/ck.safetensors";
  try {
    Trainer bad(c2, *other, ds);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("shape"), std::string::npos) << e.what();
  }
}
