// `focus quantize --model M --calib N --max-drop D -o OUT`: the int8 plan of an image model with
// an accuracy guardrail (infer/quantize.hpp). Calibration images: the first N training images
// outside the run's validation split; the accuracy drop is measured on that validation split
// (rebuilt as `focus calibrate` rebuilds it: the run's config.json beside the model, flags
// override). Prints the per-layer table; exits 3 and writes nothing when the drop exceeds
// --max-drop, else writes OUT atomically (the F32 tensors and the plan: `--weights int8` or
// `auto` then runs it).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>

#include "focus/apps/calibration_cli.hpp"
#include "focus/apps/commands.hpp"
#include "focus/infer/quantize.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/kernels/qgemm.hpp"

namespace focus {

Command add_quantize_command(CLI::App& app) {
  CLI::App* sub = app.add_subcommand(
      "quantize", "int8 inference plan for an image model: per-layer int8 error on calibration "
                  "images, layers over the tolerance kept in f32, refused (exit 3) when the "
                  "validation accuracy drops more than --max-drop points");
  struct Opts {
    std::string model, out, data_dir = kFashionMnistDir;
    int64_t calib = 512;
    QuantizeOptions q;
    SplitFlags split;
    bool json = false;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("--model", o->model, "image model file (.safetensors)")->required();
  sub->add_option("-o,--out", o->out, "the model file with its int8 plan (may be --model)")->required();
  sub->add_option("--calib", o->calib, "calibration images (training images outside the validation split)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--max-drop", o->q.max_drop, "accuracy points the int8 plan may lose on the validation split")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--layer-tol", o->q.layer_tol,
                  "a layer whose int8 output is off by more than this relative L2 error stays f32")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--data-dir", o->data_dir, "Fashion-MNIST directory")->capture_default_str();
  o->split.add_to(sub);
  sub->add_flag("--json", o->json, "print the result as JSON");
  sub->add_option("--threads", o->threads, "threads (0 = all cores)");
  return [o] {
    if (o->threads > 0) set_num_threads(o->threads);
    const SplitSpec s = o->split.resolve(o->model);
    const ImageDataset train = load_fashion_mnist(o->data_dir, Split::Train);
    const std::vector<int64_t> vidx = validation_indices(train, s);
    const std::set<int64_t> in_val(vidx.begin(), vidx.end());
    std::vector<int64_t> cidx;
    for (int64_t i = 0; i < train.size() && int64_t(cidx.size()) < o->calib; ++i)
      if (!in_val.count(i)) cidx.push_back(i);
    const QuantizeResult r = quantize_model_file(o->model, o->out, train, cidx, vidx, o->q);
    if (o->json) {
      nlohmann::json layers = nlohmann::json::array();
      for (const LayerQuantError& e : r.layers)
        layers.push_back({{"name", e.name}, {"kind", e.kind}, {"weights", e.weights},
                          {"rel_l2", e.rel_l2}, {"int8", e.int8}});
      const nlohmann::json j = {{"model", o->model}, {"out", r.accepted ? o->out : ""},
                                {"accepted", r.accepted}, {"int8_path", qpath_name(qgemm_path())},
                                {"calib_images", r.calib_images}, {"val_images", r.val_images},
                                {"val_accuracy_f32", r.acc_f32}, {"val_accuracy_int8", r.acc_int8},
                                {"val_accuracy_int8_compiled", std::isnan(r.acc_int8_compiled) ? nlohmann::json(nullptr) : nlohmann::json(r.acc_int8_compiled)},
                                {"drop_points", r.drop_points()}, {"max_drop", o->q.max_drop},
                                {"layer_tol", o->q.layer_tol}, {"layers", layers}};
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      std::printf("%s: int8 plan (%s kernels, split: %s)\n\n%s", o->model.c_str(),
                  qpath_name(qgemm_path()).c_str(), s.from.empty() ? "defaults" : s.from.c_str(),
                  format_quantize_report(r, o->q).c_str());
      if (r.accepted) std::printf("wrote %s\n", o->out.c_str());
    }
    if (!r.accepted)
      std::fprintf(stderr, "focus quantize: refused: accuracy drop %.2f points > --max-drop %.2f\n",
                   r.drop_points(), o->q.max_drop);
    return r.accepted ? 0 : 3;
  };
}

}  // namespace focus
