// int8 inference for image models (ImagePredictor, `focus quantize`): which layers run int8,
// the per-layer error of int8 against F32, and the accuracy guardrail.
//   - Quantisable layers: every Linear and Conv2d (named as Module::named_modules names them);
//     int8 weights per output channel, activations per row (kernels/qgemm.hpp), quantised when
//     the model loads (Module::set_inference_dtype(I8)); the file keeps F32 tensors and, after
//     `focus quantize`, the plan (ModelInfo::int8_layers / f32_layers).
//   - quantize_model_file: runs calibration images through the all-int8 model with a QuantProbe
//     (nn/quant_probe.hpp: each layer's int8 output against its F32 output on the same input),
//     keeps in F32 every layer whose relative L2 error exceeds the tolerance, then measures the
//     accuracy of F32 and of the plan on the validation images (through the layers and, where
//     one exists, the compiled int8 plan), and writes the file (atomically) only when the
//     larger drop is within max_drop points.
#pragma once
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include "focus/data/dataset.hpp"
#include "focus/infer/image_predictor.hpp"

namespace focus {

std::vector<std::string> quantizable_layers(const Module& m);
// F32 everywhere, then int8 for `names`. FormatError naming `where` (the file) and the layer
// for a name that is not a quantisable layer of the model.
void set_int8_layers(Module& m, const std::vector<std::string>& names, const std::string& where);
// The layers `--weights int8` runs int8 for this file: its plan, else every quantisable layer.
std::vector<std::string> int8_plan(const Module& m, const ModelInfo& info);

struct LayerQuantError {
  std::string name, kind;  // kind: "conv KxK" or "linear"
  int64_t weights = 0;     // parameters in the weight
  double rel_l2 = 0;       // ||y_int8 - y_f32|| / ||y_f32|| over the calibration images
  bool int8 = true;        // false: kept in F32 (over the tolerance)
};

// Every quantisable layer int8, `pixels` (N, C, S, S) in [0, 1] through the model in chunks;
// leaves the model's weights as they were (F32 or int8 per the options it was built with).
std::vector<LayerQuantError> measure_layer_errors(const ImagePredictor& p, const Tensor& pixels);

struct QuantizeOptions {
  double layer_tol = 0.05;  // a layer over this relative L2 error stays F32
  double max_drop = 0.3;    // accuracy points (of 100) the int8 plan may lose on validation
};

struct QuantizeResult {
  std::vector<LayerQuantError> layers;
  int64_t calib_images = 0, val_images = 0;
  double acc_f32 = 0, acc_int8 = 0;  // validation accuracy, fractions (int8: the layers' path)
  // The compiled int8 plan's (infer/image_plan.hpp: static activation steps; what ImagePredictor
  // runs where oneDNN is on): NaN where the model has no plan here.
  double acc_int8_compiled = NAN;
  // The larger drop of the two int8 paths, so that whichever runs keeps the guardrail.
  double drop_points() const {
    const double worst = std::isnan(acc_int8_compiled) ? acc_int8 : std::min(acc_int8, acc_int8_compiled);
    return 100 * (acc_f32 - worst);
  }
  bool accepted = false;  // drop <= max_drop: the file was written
};

// Loads `in`, measures on samples `calib` of `ds`, evaluates on samples `val`, writes `out`
// (which may be `in`) iff accepted. ValueError for empty calib or val, a tolerance or max drop
// that is not a non-negative finite number.
QuantizeResult quantize_model_file(const std::string& in, const std::string& out,
                                   const ImageDataset& ds, std::span<const int64_t> calib,
                                   std::span<const int64_t> val, const QuantizeOptions& opt);
// The table `focus quantize` prints: one line per layer, then the accuracies and the verdict.
std::string format_quantize_report(const QuantizeResult& r, const QuantizeOptions& opt);

}  // namespace focus
