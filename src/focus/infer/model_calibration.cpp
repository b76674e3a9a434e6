// Calibrating image-model files on a dataset (see model_calibration.hpp).
#include "focus/infer/model_calibration.hpp"

#include <algorithm>

namespace focus {

Tensor dataset_pixels(const ImagePredictor& predictor, const ImageDataset& ds,
                      std::span<const int64_t> indices) {
  const int64_t C = predictor.channels(), S = predictor.image_size(), D = C * S * S;
  const int64_t n = int64_t(indices.size());
  FOCUS_CHECK(ds.channels() == C && ds.height() == S && ds.width() == S, ShapeError,
              "dataset images are ({}, {}, {}), the model takes ({}, {}, {})", ds.channels(),
              ds.height(), ds.width(), C, S, S);
  Tensor pixels = Tensor::empty({n, C, S, S});  // (n, C, S, S) in [0, 1]
  float* dst = pixels.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = indices[size_t(i)];
    FOCUS_CHECK(k >= 0 && k < ds.size(), ValueError, "index {} outside the dataset ({} images)", k, ds.size());
    const uint8_t* src = ds.image(k);
    for (int64_t j = 0; j < D; ++j) dst[i * D + j] = float(src[j]) / 255.f;
  }
  return pixels;
}

std::vector<double> dataset_logits(const ImagePredictor& predictor, const ImageDataset& ds,
                                   std::span<const int64_t> indices) {
  const size_t chunk = 1024;
  std::vector<double> out;
  out.reserve(indices.size() * size_t(predictor.num_classes()));
  for (size_t lo = 0; lo < indices.size(); lo += chunk) {
    const Tensor pixels = dataset_pixels(predictor, ds, indices.subspan(lo, std::min(chunk, indices.size() - lo)));
    const std::vector<float> z = predictor.logits(pixels).to_vector<float>();  // (n, K)
    out.insert(out.end(), z.begin(), z.end());
  }
  return out;
}

std::vector<int64_t> dataset_labels(const ImageDataset& ds, std::span<const int64_t> indices) {
  std::vector<int64_t> out;
  out.reserve(indices.size());
  for (int64_t i : indices) out.push_back(ds.label(i));
  return out;
}

double dataset_accuracy(const ImagePredictor& predictor, const ImageDataset& ds,
                        std::span<const int64_t> indices) {
  const std::vector<double> z = dataset_logits(predictor, ds, indices);  // (n, K)
  const std::vector<int64_t> y = dataset_labels(ds, indices);
  const int64_t K = predictor.num_classes();
  int64_t right = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    const double* row = z.data() + int64_t(i) * K;
    right += std::max_element(row, row + K) - row == y[i];
  }
  return y.empty() ? 0.0 : double(right) / double(y.size());
}

CalibrationFit calibrate_model_file(const std::string& in, const std::string& out,
                                    const ImageDataset& ds, std::span<const int64_t> val) {
  FOCUS_CHECK(!val.empty(), ValueError, "calibrate '{}': the calibration split is empty", in);
  LoadedModel lm = load_model(in);
  ModelInfo info = lm.info;
  ImagePredictorOptions raw;
  raw.calibrated = false;
  const ImagePredictor predictor(std::move(lm), raw);
  const std::vector<double> z = dataset_logits(predictor, ds, val);
  const std::vector<int64_t> y = dataset_labels(ds, val);
  const int64_t K = predictor.num_classes();
  CalibrationFit fit;
  fit.temperature = fit_temperature(z, y, K);
  fit.before = calibration_report(z, y, K, 1.0);
  fit.after = calibration_report(z, y, K, fit.temperature);
  info.temperature = fit.temperature;
  save_model(out, predictor.model(), info);
  return fit;
}

}  // namespace focus
