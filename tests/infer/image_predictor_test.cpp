// ImagePredictor: input checks (dtype, shape, non-finite pixels, malformed images, k), batched
// answers equal to single ones (one batch, chunks of max_batch), probabilities equal to the
// pre-existing path (softmax of the model's forward on image_to_tensor), PNG decoding as
// `focus predict` does it, and the CLI printing the predictor's answer.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "data/temp_dir.hpp"
#include "focus/autograd/node.hpp"
#include "focus/data/png.hpp"
#include "focus/infer/image_predictor.hpp"
#include "focus/ops/softmax.hpp"
#include "infer/infer_fixtures.hpp"
#include "support/expect_error.hpp"
#include "support/run_command.hpp"

namespace focus {
namespace {

using testing::expect_error;

// N gray 28 x 28 images with pixels in [0, 1]: (N, 1, 28, 28).
Tensor random_pixels(int64_t n, uint64_t seed) {
  Rng rng(seed);
  Tensor t = Tensor::empty({n, 1, 28, 28});  // (N, 1, 28, 28)
  rng.fill_uniform(t.data<float>(), t.numel(), 0.f, 1.f);
  return t;
}

Image image_of(const Tensor& pixels, int64_t n) {  // (N, 1, S, S) -> image n
  Image img = make_image(1, 28, 28);
  const float* p = pixels.data<float>() + n * 28 * 28;
  std::copy(p, p + 28 * 28, img.data.begin());
  return img;
}

ImagePredictor tiny_predictor(int64_t max_batch = 256) {
  return ImagePredictor(LoadedModel{testing::tiny_cnn(), testing::tiny_image_info()}, {.max_batch = max_batch});
}

TEST(ImagePredictor, InputErrors) {
  const ImagePredictor p = tiny_predictor();
  expect_error<DTypeError>([&] { p.probabilities(random_pixels(2, 1).to(DType::F64)); }, {"F64", "F32"});
  expect_error<ShapeError>([&] { p.probabilities(Tensor::zeros({2, 28, 28})); }, {"(2, 28, 28)", "(N, 1, 28, 28)"});
  expect_error<ShapeError>([&] { p.probabilities(Tensor::zeros({2, 3, 28, 28})); }, {"(2, 3, 28, 28)"});
  expect_error<ShapeError>([&] { p.probabilities(Tensor::zeros({1, 1, 32, 32})); }, {"(1, 1, 32, 32)"});
  Tensor x = random_pixels(3, 2);
  x.data<float>()[28 * 28 + 5] = std::numeric_limits<float>::quiet_NaN();
  expect_error<InputError>([&] { p.probabilities(x); }, {"input 1: pixel 5 is nan"});
  x.data<float>()[28 * 28 + 5] = 0.5f;
  x.data<float>()[2 * 28 * 28] = std::numeric_limits<float>::infinity();
  try {
    p.predict(x);
    ADD_FAILURE() << "an infinite pixel must throw";
  } catch (const InputError& e) {
    EXPECT_EQ(e.index(), 2u);
  }
  Image bad = make_image(1, 4, 4);
  bad.data.pop_back();
  expect_error<InputError>([&] { p.predict({make_image(1, 28, 28), bad}); }, {"input 1: malformed image"});
  expect_error<InputError>([&] { p.predict({make_image(2, 28, 28)}); }, {"input 0: 2 channels"});
  expect_error<ValueError>([&] { p.predict(random_pixels(1, 3), 0); }, {"top k 0"});
  EXPECT_TRUE(p.predict(Tensor::zeros({0, 1, 28, 28})).empty());
}

TEST(ImagePredictor, BatchedEqualsSingle) {
  const Tensor x = random_pixels(7, 4);
  for (int64_t max_batch : {int64_t(256), int64_t(3)}) {
    const ImagePredictor p = tiny_predictor(max_batch);
    const auto all = p.predict(x, 3);
    ASSERT_EQ(all.size(), 7u);
    for (int64_t n = 0; n < 7; ++n) {
      const ImagePrediction one = p.predict({image_of(x, n)}, 3)[0];
      ASSERT_EQ(one.probs.size(), 10u);
      for (size_t c = 0; c < 10; ++c) EXPECT_NEAR(all[size_t(n)].probs[c], one.probs[c], 1e-6) << n;
      ASSERT_EQ(all[size_t(n)].top.size(), 3u);
      for (size_t k = 0; k < 3; ++k) EXPECT_EQ(all[size_t(n)].top[k].name, one.top[k].name) << n;
    }
  }
}

TEST(ImagePredictor, EqualsTheModelsForward) {
  // The pre-existing predict path: softmax(model.forward(image_to_tensor(img, norm))).
  const ImagePredictor p = tiny_predictor();
  const Tensor x = random_pixels(4, 5);
  const auto got = p.predict(x, 10);
  NoGradGuard no_grad;
  for (int64_t n = 0; n < 4; ++n) {
    const Tensor logits = p.model().forward(image_to_tensor(image_of(x, n), p.info().norm));  // (1, K)
    const std::vector<float> want = softmax(logits, 1).to_vector<float>();
    float sum = 0;
    for (size_t c = 0; c < 10; ++c) {
      EXPECT_NEAR(got[size_t(n)].probs[c], want[c], 1e-6);
      sum += got[size_t(n)].probs[c];
    }
    EXPECT_NEAR(sum, 1.f, 1e-5);
    for (size_t k = 1; k < 10; ++k) EXPECT_GE(got[size_t(n)].top[k - 1].prob, got[size_t(n)].top[k].prob);
    EXPECT_EQ(got[size_t(n)].top[0].name, testing::tiny_image_info().class_names[size_t(got[size_t(n)].top[0].index)]);
  }
}

TEST(ImagePredictor, PredictCliPrintsThePredictorsAnswer) {
  testing::TempDir dir;
  const std::string model = dir.file("m.safetensors"), png = dir.file("x.png");
  testing::save_tiny_image_model(model);
  // An RGB 40 x 30 image: converted to gray and resized to 28 x 28 by the predictor.
  Image img = make_image(3, 40, 30);
  for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = float((i * 37) % 256) / 255.f;
  write_png(png, img);
  const ImagePredictor p(model);
  const ImagePrediction r = p.predict({read_png(png)}, 4)[0];
  const ImagePrediction direct = p.predict(image_to_tensor(read_png_gray(png, 28, 28), Normalization{0.f, 1.f}), 4)[0];
  for (size_t c = 0; c < 10; ++c) EXPECT_NEAR(r.probs[c], direct.probs[c], 1e-6);
  std::string want;
  for (const ClassScore& c : r.top) want += fmt::format("{:<12} {:6.2f}%\n", c.name, 100.0 * c.prob);
  const auto cli = testing::run_command(std::string(FOCUS_BINARY) + " predict --top 4 --model " + model +
                                        " --input " + png);
  ASSERT_EQ(cli.code, 0) << cli.out;
  EXPECT_EQ(cli.out, want);
}

}  // namespace
}  // namespace focus
