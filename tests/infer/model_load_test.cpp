// Loading model files into the predictors: a missing file (IOError), a truncated one, a file of
// the other model family, a training checkpoint given as a model and a plain safetensors file
// without focus metadata (FormatError naming the file and what it is); the weights choice.
#include <gtest/gtest.h>

#include <filesystem>

#include "data/temp_dir.hpp"
#include "focus/infer/image_predictor.hpp"
#include "focus/infer/translator.hpp"
#include "focus/io/safetensors.hpp"
#include "infer/infer_fixtures.hpp"
#include "support/expect_error.hpp"

namespace focus {
namespace {

namespace fs = std::filesystem;
using testing::expect_error;

auto load_image = [](const std::string& p) { ImagePredictor x(p); };
auto load_translator = [](const std::string& p) { Translator x(p); };

TEST(InferLoad, MissingFile) {
  testing::TempDir dir;
  const std::string p = dir.file("missing.safetensors");
  expect_error<IOError>([&] { load_image(p); }, {p});
  expect_error<IOError>([&] { load_translator(p); }, {p});
}

TEST(InferLoad, TruncatedFile) {
  testing::TempDir dir;
  testing::save_tiny_image_model(dir.file("img.safetensors"));
  testing::save_tiny_seq2seq(dir.file("s2s.safetensors"));
  for (const char* name : {"img.safetensors", "s2s.safetensors"}) {
    const std::string p = dir.file(std::string("cut_") + name);
    fs::copy_file(dir.file(name), p);
    fs::resize_file(p, fs::file_size(p) / 2);
    expect_error<FormatError>([&] { load_image(p); }, {p});
    expect_error<FormatError>([&] { load_translator(p); }, {p});
  }
}

TEST(InferLoad, WrongFamily) {
  testing::TempDir dir;
  const std::string img = dir.file("img.safetensors"), s2s = dir.file("s2s.safetensors");
  testing::save_tiny_image_model(img);
  testing::save_tiny_seq2seq(s2s);
  expect_error<FormatError>([&] { load_image(s2s); },
                            {s2s, "unsupported model format 'focus-seq2seq/1'"});
  expect_error<FormatError>([&] { load_translator(img); },
                            {img, "'focus-image-classifier/1' model, not a sequence-to-sequence"});
}

TEST(InferLoad, CheckpointGivenAsModel) {
  // A training checkpoint: the model's tensors under "model.", the optimizer's under "optim.",
  // and the checkpoint format tag (as the trainers write them).
  testing::TempDir dir;
  const std::string ck = dir.file("checkpoint_last.safetensors");
  StateDict t;
  for (auto& [k, v] : testing::tiny_cnn()->state_dict()) t["model." + k] = v;
  save_safetensors(ck, t, {{"format", "focus-checkpoint/1"}});
  expect_error<FormatError>([&] { load_image(ck); }, {ck, "'focus-checkpoint/1'"});
  expect_error<FormatError>([&] { load_translator(ck); }, {ck, "'focus-checkpoint/1'"});
  // No focus metadata at all: the missing key is named.
  const std::string plain = dir.file("plain.safetensors");
  save_safetensors(plain, testing::tiny_cnn()->state_dict(), {});
  expect_error<FormatError>([&] { load_image(plain); }, {plain, "metadata 'format' is missing"});
  expect_error<FormatError>([&] { load_translator(plain); }, {plain, "metadata 'format' is missing"});
}

TEST(InferLoad, LoadsAndPreparesWeights) {
  testing::TempDir dir;
  testing::save_tiny_image_model(dir.file("img.safetensors"));
  testing::save_tiny_seq2seq(dir.file("s2s.safetensors"), "g2p");
  const ImagePredictor ip(dir.file("img.safetensors"));
  EXPECT_EQ(ip.channels(), 1);
  EXPECT_EQ(ip.image_size(), 28);
  EXPECT_EQ(ip.num_classes(), 10);
  EXPECT_EQ(ip.info().class_names, testing::tiny_image_info().class_names);
  EXPECT_FALSE(ip.model().is_training());
  const Translator tr(dir.file("s2s.safetensors"), {.weights = DType::BF16});
  EXPECT_EQ(tr.task(), "g2p");
  EXPECT_EQ(tr.weights(), DType::BF16);
  EXPECT_FALSE(tr.model().is_training());
  EXPECT_EQ(tr.normalize("ABc"), "abc");  // g2p sources are lower-cased
  // int8 weights are accepted (every Linear int8); a dtype with no inference path is refused.
  const Translator tr8(dir.file("s2s.safetensors"), {.weights = DType::I8});
  EXPECT_EQ(tr8.weights(), DType::I8);
  EXPECT_FALSE(tr8.int8_layers().empty());
  expect_error<DTypeError>([&] { Translator x(dir.file("s2s.safetensors"), {.weights = DType::F64}); },
                           {"F64", "F32, BF16, I8"});
}

}  // namespace
}  // namespace focus
