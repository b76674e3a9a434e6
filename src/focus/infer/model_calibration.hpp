// Calibrating image-model files on a dataset: the raw logits of a dataset's samples through an
// ImagePredictor, and fitting a file's temperature on a held-out split (infer/calibration.hpp)
// and writing it into the model file (ModelInfo::temperature; atomically, as save_model).
// Used at the end of `focus train` (on the run's validation split), by `focus calibrate`, and by
// `focus eval` / `focus simulate-review` for the logits.
//
//   const ImageDataset train = load_fashion_mnist(dir, Split::Train);
//   const CalibrationFit fit = calibrate_model_file("m.safetensors", "m_cal.safetensors", train,
//                                                   split_train_val(train, 5000, 1).val);
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "focus/data/dataset.hpp"
#include "focus/infer/calibration.hpp"
#include "focus/infer/image_predictor.hpp"

namespace focus {

// The pixels of samples `indices` of `ds`, in [0, 1]: (n, C, S, S) F32, what predictor.logits
// takes. ShapeError / ValueError as dataset_logits.
Tensor dataset_pixels(const ImagePredictor& predictor, const ImageDataset& ds,
                      std::span<const int64_t> indices);
// The raw logits (no temperature) of samples `indices` of `ds`: (n, K) row-major, doubles.
// ShapeError when the dataset's images do not have the model's (C, S, S) shape; ValueError for an
// index outside the dataset.
std::vector<double> dataset_logits(const ImagePredictor& predictor, const ImageDataset& ds,
                                   std::span<const int64_t> indices);
// The labels of samples `indices` (ValueError for an index outside the dataset).
std::vector<int64_t> dataset_labels(const ImageDataset& ds, std::span<const int64_t> indices);
// Top-1 accuracy of the predictor on samples `indices` (0 for none); errors as dataset_logits.
double dataset_accuracy(const ImagePredictor& predictor, const ImageDataset& ds,
                        std::span<const int64_t> indices);

struct CalibrationFit {
  double temperature = 1;          // the fitted T now in the file
  CalibrationReport before, after;  // on the calibration split: at T = 1 and at the fitted T
};

// Loads `in`, fits its temperature on samples `val` of `ds` (ValueError when `val` is empty) and
// writes the model with that temperature to `out` (which may be `in`). Any temperature `in`
// already had is replaced (the fit starts from the raw logits).
CalibrationFit calibrate_model_file(const std::string& in, const std::string& out,
                                    const ImageDataset& ds, std::span<const int64_t> val);

}  // namespace focus
