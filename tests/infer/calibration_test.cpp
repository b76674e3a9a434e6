// Calibration (infer/calibration, infer/model_calibration): ECE and NLL against hand-computed
// values, the temperature fit recovering a known temperature on synthetic logits (double
// precision) and being the NLL minimum, the clamps, bad input, and model files: the temperature
// round-trips, files written without one load with T = 1, a bad one is a FormatError, the
// predictor applies it (or not, uncalibrated), calibrate_model_file writes the fitted T.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "data/temp_dir.hpp"
#include "focus/infer/calibration.hpp"
#include "focus/infer/image_predictor.hpp"
#include "focus/infer/model_calibration.hpp"
#include "focus/io/safetensors.hpp"
#include "focus/tensor/rng.hpp"
#include "infer/infer_fixtures.hpp"
#include "support/expect_error.hpp"

namespace focus {
namespace {

using testing::expect_error;

TEST(Calibration, EceByHand) {
  // 5 bins: (0, .2], (.2, .4], (.4, .6], (.6, .8], (.8, 1]. Confidences .9 (right) and .85
  // (wrong) share bin 4: |0.5 - 0.875| * 2/4; .7 (right) in bin 3: |1 - .7| / 4; .55 (wrong) in
  // bin 2: |0 - .55| / 4. ECE = .1875 + .075 + .1375 = 0.4; accuracy 2/4.
  const std::vector<double> p = {0.9, 0.1, 0.85, 0.15, 0.3, 0.7, 0.45, 0.55};
  const std::vector<int64_t> y = {0, 1, 1, 0};
  const CalibrationReport r = reliability_from_probs(p, y, 2, 5);
  EXPECT_NEAR(r.ece, 0.4, 1e-12);
  EXPECT_DOUBLE_EQ(r.accuracy, 0.5);
  ASSERT_EQ(r.bins.size(), 5u);
  EXPECT_EQ(r.bins[4].count, 2);
  EXPECT_NEAR(r.bins[4].confidence, 0.875, 1e-12);
  EXPECT_NEAR(r.bins[4].accuracy, 0.5, 1e-12);
  EXPECT_EQ(r.bins[3].count, 1);
  EXPECT_EQ(r.bins[2].count, 1);
  EXPECT_EQ(r.bins[0].count + r.bins[1].count, 0);
  // A perfectly calibrated set: confidence .75 and 3 of 4 right.
  const std::vector<double> q = {0.75, 0.25, 0.75, 0.25, 0.75, 0.25, 0.75, 0.25};
  EXPECT_NEAR(reliability_from_probs(q, std::vector<int64_t>{0, 0, 0, 1}, 2).ece, 0, 1e-12);
}

TEST(Calibration, NllByHand) {
  const std::vector<double> z = {2, 0, 0, 1};  // (2, 2)
  const std::vector<int64_t> y = {0, 0};
  const double t1 = (std::log1p(std::exp(-2.0)) + std::log1p(std::exp(1.0))) / 2;
  const double t2 = (std::log1p(std::exp(-1.0)) + std::log1p(std::exp(0.5))) / 2;
  EXPECT_NEAR(mean_nll(z, y, 2, 1.0), t1, 1e-14);
  EXPECT_NEAR(mean_nll(z, y, 2, 2.0), t2, 1e-14);
  const CalibrationReport r = calibration_report(z, y, 2, 2.0);
  EXPECT_NEAR(r.nll, t2, 1e-14);
  EXPECT_DOUBLE_EQ(r.accuracy, 0.5);
  const std::vector<double> p = softmax_rows(z, 2, 2.0);
  EXPECT_NEAR(p[0], 1 / (1 + std::exp(-1.0)), 1e-15);
  EXPECT_NEAR(p[2] + p[3], 1, 1e-15);
}

// Labels drawn from softmax(u) of N(0, s^2) logits u; the model reports u * t_true, so the
// NLL-optimal temperature is t_true.
struct Synthetic {
  std::vector<double> z;
  std::vector<int64_t> y;
};
Synthetic synthetic(int64_t N, int64_t K, double t_true, uint64_t seed) {
  Rng rng(seed);
  Synthetic s;
  std::vector<double> u(static_cast<size_t>(K));
  for (int64_t i = 0; i < N; ++i) {
    for (double& v : u) v = 3 * rng.normal();
    const std::vector<double> p = softmax_rows(u, K);
    double r = rng.uniform(), c = 0;
    int64_t label = K - 1;
    for (int64_t k = 0; k < K; ++k)
      if ((c += p[size_t(k)]) > r) { label = k; break; }
    s.y.push_back(label);
    for (double v : u) s.z.push_back(v * t_true);
  }
  return s;
}

TEST(Calibration, FitRecoversKnownTemperature) {
  for (double t_true : {0.4, 1.0, 2.5}) {
    const Synthetic s = synthetic(20000, 5, t_true, 7);
    const double t = fit_temperature(s.z, s.y, 5);
    EXPECT_NEAR(t / t_true, 1, 0.04) << t_true;
    // The minimum: nudging T either way raises the NLL.
    const double f = mean_nll(s.z, s.y, 5, t);
    EXPECT_LE(f, mean_nll(s.z, s.y, 5, t * 1.001)) << t_true;
    EXPECT_LE(f, mean_nll(s.z, s.y, 5, t / 1.001)) << t_true;
    // and calibrates: the ECE at the fitted T is small, far below the raw one when t_true != 1.
    const double ece = calibration_report(s.z, s.y, 5, t).ece;
    EXPECT_LT(ece, 0.015) << t_true;
    if (t_true != 1.0) {
      EXPECT_GT(calibration_report(s.z, s.y, 5, 1.0).ece, 2 * ece) << t_true;
    }
  }
}

TEST(Calibration, FitClampsAtTheEdges) {
  // Every row right with a margin: the NLL falls as T -> 0, so the fit stops at the lower clamp.
  const std::vector<double> z = {3, 0, 0, 2, 1, 0};
  EXPECT_DOUBLE_EQ(fit_temperature(z, std::vector<int64_t>{0, 1, 0}, 2), kMinTemperature);
  // Every row wrong: the best is no information, T -> infinity.
  EXPECT_DOUBLE_EQ(fit_temperature(z, std::vector<int64_t>{1, 0, 1}, 2), kMaxTemperature);
}

TEST(Calibration, BadInput) {
  const std::vector<double> z = {1, 2, 3, 4};
  expect_error<ShapeError>([&] { mean_nll(z, std::vector<int64_t>{0}, 2, 1); }, {"1 labels for 2 rows"});
  expect_error<ShapeError>([&] { softmax_rows(z, 3); }, {"4 values", "3 classes"});
  expect_error<ValueError>([&] { mean_nll(z, std::vector<int64_t>{0, 2}, 2, 1); }, {"label 2 of row 1"});
  expect_error<ValueError>([&] { mean_nll(z, std::vector<int64_t>{0, 1}, 2, 0); }, {"temperature 0"});
  expect_error<ValueError>([&] { fit_temperature(std::vector<double>{}, std::vector<int64_t>{}, 2); },
                           {"no samples"});
  const std::vector<double> bad = {1, NAN};
  expect_error<ValueError>([&] { fit_temperature(bad, std::vector<int64_t>{0}, 2); }, {"value 1 of row 0"});
  expect_error<ValueError>([&] { reliability_from_probs(z, std::vector<int64_t>{0, 1}, 2, 0); }, {"0 bins"});
}

TEST(CalibrationFile, TemperatureRoundTripsAndOldFilesLoadWithOne) {
  testing::TempDir dir;
  ModelInfo info = testing::tiny_image_info();
  info.temperature = 1.7312345678901234;
  const auto model = testing::tiny_cnn();
  save_model(dir.file("t.safetensors"), *model, info);
  EXPECT_EQ(load_model(dir.file("t.safetensors")).info.temperature, info.temperature);  // exact
  // A file written before the key existed: the same file without "temperature".
  SafetensorsFile f = load_safetensors(dir.file("t.safetensors"));
  ASSERT_EQ(f.metadata.erase("temperature"), 1u);
  save_safetensors(dir.file("old.safetensors"), f.tensors, f.metadata);
  EXPECT_EQ(load_model(dir.file("old.safetensors")).info.temperature, 1.0);
  for (const char* bad : {"-1", "0", "\"x\"", "nan"}) {
    f.metadata["temperature"] = bad;
    const std::string p = dir.file("bad.safetensors");
    save_safetensors(p, f.tensors, f.metadata);
    expect_error<FormatError>([&] { load_model(p); }, {p});
  }
}

TEST(CalibrationFile, PredictorAppliesTheTemperature) {
  testing::TempDir dir;
  ModelInfo info = testing::tiny_image_info();
  info.temperature = 0.25;  // sharpens the untrained model's flat softmax
  save_model(dir.file("m.safetensors"), *testing::tiny_cnn(), info);
  ImagePredictorOptions raw;
  raw.calibrated = false;
  const ImagePredictor cal(dir.file("m.safetensors")), plain(dir.file("m.safetensors"), raw);
  EXPECT_EQ(cal.temperature(), 0.25);
  EXPECT_EQ(plain.temperature(), 1.0);
  Rng rng(2);
  Tensor x = Tensor::empty({3, 1, 28, 28});
  rng.fill_uniform(x.data<float>(), x.numel(), 0.f, 1.f);
  const std::vector<float> z = cal.logits(x).to_vector<float>();  // (3, 10)
  const std::vector<float> pc = cal.probabilities(x).to_vector<float>();
  const std::vector<float> pp = plain.probabilities(x).to_vector<float>();
  const std::vector<double> zd(z.begin(), z.end());
  const std::vector<double> want_c = softmax_rows(zd, 10, 0.25), want_p = softmax_rows(zd, 10, 1.0);
  for (size_t i = 0; i < z.size(); ++i) {
    EXPECT_NEAR(pc[i], want_c[i], 1e-5) << i;
    EXPECT_NEAR(pp[i], want_p[i], 1e-6) << i;
  }
}

TEST(CalibrationFile, CalibrateModelFileWritesTheFit) {
  testing::TempDir dir;
  save_model(dir.file("m.safetensors"), *testing::tiny_cnn(), testing::tiny_image_info());
  // 64 random 28x28 images with random labels: whatever T fits, it is in the output file and
  // lowers the NLL on that split.
  Rng rng(4);
  std::vector<uint8_t> px(64 * 784);
  for (uint8_t& v : px) v = uint8_t(rng.randint(256));
  std::vector<int64_t> labels(64);
  for (int64_t& l : labels) l = rng.randint(10);
  const ImageDataset ds(px, labels, 1, 28, 28, testing::tiny_image_info().class_names);
  std::vector<int64_t> idx(64);
  std::iota(idx.begin(), idx.end(), int64_t(0));
  const CalibrationFit fit = calibrate_model_file(dir.file("m.safetensors"), dir.file("c.safetensors"), ds, idx);
  EXPECT_EQ(load_model(dir.file("c.safetensors")).info.temperature, fit.temperature);
  EXPECT_EQ(load_model(dir.file("m.safetensors")).info.temperature, 1.0);
  EXPECT_LE(fit.after.nll, fit.before.nll);
  EXPECT_EQ(fit.after.accuracy, fit.before.accuracy);
  expect_error<ValueError>([&] { calibrate_model_file(dir.file("m.safetensors"), dir.file("c.safetensors"), ds, {}); },
                           {"empty"});
}

}  // namespace
}  // namespace focus
