// int8 image models: layer plans, per-layer errors and the guardrail (see quantize.hpp).
#include "focus/infer/quantize.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include <fmt/format.h>

#include "focus/autograd/node.hpp"
#include "focus/infer/model_calibration.hpp"
#include "focus/nn/conv.hpp"
#include "focus/nn/linear.hpp"
#include "focus/nn/quant_probe.hpp"

namespace focus {

namespace {

bool quantizable(const Module* m) {
  return dynamic_cast<const Linear*>(m) != nullptr || dynamic_cast<const Conv2d*>(m) != nullptr;
}

}  // namespace

std::vector<std::string> quantizable_layers(const Module& m) {
  std::vector<std::string> out;
  for (const auto& [name, mod] : m.named_modules())
    if (quantizable(mod)) out.push_back(name);
  return out;
}

void set_int8_layers(Module& m, const std::vector<std::string>& names, const std::string& where) {
  m.set_inference_dtype(DType::F32);
  const auto mods = m.named_modules();
  for (const std::string& n : names) {
    auto it = std::find_if(mods.begin(), mods.end(), [&](const auto& e) { return e.first == n; });
    FOCUS_CHECK(it != mods.end() && quantizable(it->second), FormatError,
                "'{}': int8 layer '{}' is not a Linear or Conv2d of this model", where, n);
    it->second->set_inference_dtype(DType::I8);
  }
}

std::vector<std::string> int8_plan(const Module& m, const ModelInfo& info) {
  return info.quantized ? info.int8_layers : quantizable_layers(m);
}

std::vector<LayerQuantError> measure_layer_errors(const ImagePredictor& p, const Tensor& pixels) {
  ImageClassifier& model = p.model();
  const auto mods = model.named_modules();
  // Remember which layers run int8 now, to restore them.
  std::vector<std::string> before;
  for (const auto& [name, mod] : mods) {
    if (auto* l = dynamic_cast<const Linear*>(mod); l && l->int8_active()) before.push_back(name);
    if (auto* c = dynamic_cast<const Conv2d*>(mod); c && c->int8_active()) before.push_back(name);
  }
  set_int8_layers(model, quantizable_layers(model), "measure_layer_errors");
  QuantProbe probe;
  {
    QuantProbeScope scope(probe);
    p.logits(pixels);
  }
  std::vector<LayerQuantError> out;
  for (const auto& [name, mod] : mods) {
    if (!quantizable(mod)) continue;
    LayerQuantError e;
    e.name = name;
    if (auto* c = dynamic_cast<const Conv2d*>(mod)) {
      e.kind = fmt::format("conv {}x{}", c->weight.size(2), c->weight.size(3));
      e.weights = c->weight.numel();
    } else {
      const auto* l = dynamic_cast<const Linear*>(mod);
      e.kind = "linear";
      e.weights = l->weight.numel();
    }
    const auto it = probe.sums.find(mod);
    FOCUS_CHECK(it != probe.sums.end(), StateError,
                "measure_layer_errors: layer '{}' did not run on the calibration images", name);
    e.rel_l2 = it->second.ref2 > 0 ? std::sqrt(it->second.err2 / it->second.ref2)
                                   : (it->second.err2 > 0 ? INFINITY : 0.0);
    out.push_back(e);
  }
  set_int8_layers(model, before, "measure_layer_errors");
  return out;
}

QuantizeResult quantize_model_file(const std::string& in, const std::string& out,
                                   const ImageDataset& ds, std::span<const int64_t> calib,
                                   std::span<const int64_t> val, const QuantizeOptions& opt) {
  FOCUS_CHECK(!calib.empty() && !val.empty(), ValueError,
              "quantize: need calibration and validation images (got {} and {})", calib.size(),
              val.size());
  FOCUS_CHECK(std::isfinite(opt.layer_tol) && opt.layer_tol >= 0, ValueError,
              "quantize: layer tolerance {} must be a non-negative number", opt.layer_tol);
  FOCUS_CHECK(std::isfinite(opt.max_drop) && opt.max_drop >= 0, ValueError,
              "quantize: --max-drop {} must be a non-negative number of points", opt.max_drop);
  ImagePredictorOptions po;
  po.compiled = false;  // the model's own layers: int8 is switched on layer by layer below
  ImagePredictor p(in, po);  // F32 weights
  QuantizeResult r;
  r.calib_images = int64_t(calib.size());
  r.val_images = int64_t(val.size());
  const Tensor calib_pixels = dataset_pixels(p, ds, calib);  // (n, C, S, S) in [0, 1]
  r.layers = measure_layer_errors(p, calib_pixels);
  std::vector<std::string> int8, f32;
  for (LayerQuantError& e : r.layers) {
    e.int8 = e.rel_l2 <= opt.layer_tol;
    (e.int8 ? int8 : f32).push_back(e.name);
  }
  r.acc_f32 = dataset_accuracy(p, ds, val);
  // The compiled plan's activation bounds, on the calibration images (F32 layers: measured
  // before the int8 layers are switched on; empty where there is no plan here).
  const std::map<std::string, float> ranges =
      measure_activation_ranges(p.model(), p.normalized(calib_pixels));
  set_int8_layers(p.model(), int8, in);
  r.acc_int8 = dataset_accuracy(p, ds, val);
  {
    LoadedModel planned = load_model(in);
    planned.info.quantized = true;
    planned.info.int8_layers = int8;
    planned.info.activation_ranges = ranges;
    ImagePredictorOptions co;
    co.weights = "int8";
    const ImagePredictor compiled(std::move(planned), co);
    if (compiled.engine() != "native") r.acc_int8_compiled = dataset_accuracy(compiled, ds, val);
  }
  r.accepted = r.drop_points() <= opt.max_drop;
  if (!r.accepted) return r;
  LoadedModel loaded = load_model(in);  // fresh F32 tensors to save, the plan in the metadata
  loaded.info.quantized = true;
  loaded.info.int8_layers = int8;
  loaded.info.f32_layers = f32;
  loaded.info.activation_ranges = ranges;
  nlohmann::json layers = nlohmann::json::array();
  for (const LayerQuantError& e : r.layers)
    layers.push_back({{"name", e.name}, {"rel_l2", e.rel_l2}, {"int8", e.int8}});
  loaded.info.quantization_report = {{"calib_images", r.calib_images},
                                     {"val_images", r.val_images},
                                     {"layer_tol", opt.layer_tol},
                                     {"max_drop_points", opt.max_drop},
                                     {"val_accuracy_f32", r.acc_f32},
                                     {"val_accuracy_int8", r.acc_int8},
                                     {"layers", layers}};
  if (!std::isnan(r.acc_int8_compiled))
    loaded.info.quantization_report["val_accuracy_int8_compiled"] = r.acc_int8_compiled;
  save_model(out, *loaded.model, loaded.info);
  return r;
}

std::string format_quantize_report(const QuantizeResult& r, const QuantizeOptions& opt) {
  std::string s = fmt::format("{:<28} {:<9} {:>9} {:>11}  {}\n", "layer", "kind", "weights",
                              "rel. L2", "runs");
  for (const LayerQuantError& e : r.layers)
    s += fmt::format("{:<28} {:<9} {:>9} {:>10.4f}%  {}\n", e.name, e.kind, e.weights,
                     100 * e.rel_l2, e.int8 ? "int8" : "f32 (over tolerance)");
  const int64_t n8 = std::count_if(r.layers.begin(), r.layers.end(), [](auto& e) { return e.int8; });
  s += fmt::format(
      "\n{} of {} layers int8 (tolerance {:.2f}% relative L2, {} calibration images)\n"
      "validation accuracy ({} images): f32 {:.2f}%, int8 plan {:.2f}%{}: drop {:.2f} points "
      "(max {:.2f})\n{}\n",
      n8, r.layers.size(), 100 * opt.layer_tol, r.calib_images, r.val_images, 100 * r.acc_f32,
      100 * r.acc_int8,
      std::isnan(r.acc_int8_compiled)
          ? std::string()
          : fmt::format(" (compiled, static steps: {:.2f}%)", 100 * r.acc_int8_compiled),
      r.drop_points(), opt.max_drop,
      r.accepted ? "accepted" : "REFUSED: the int8 plan loses more than --max-drop; nothing written");
  return s;
}

}  // namespace focus
