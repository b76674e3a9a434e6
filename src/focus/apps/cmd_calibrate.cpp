// `focus calibrate --model M -o OUT`: fits the temperature of an existing image-model file on the
// validation split its training held out (infer/model_calibration.hpp) and writes the calibrated
// file. The split is rebuilt as `focus train` built it from --val-size, --seed and --limit-train,
// read from the run's config.json beside the model when there is one (flags override).
// Also the calibration pieces `focus eval` and `focus simulate-review` share: the validation
// indices of a run and the reliability diagram as an SVG chart.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "focus/apps/calibration_cli.hpp"
#include "focus/apps/commands.hpp"
#include "focus/explain/svg_chart.hpp"
#include "focus/infer/model_calibration.hpp"
#include "focus/kernels/cpu.hpp"

namespace focus {

std::vector<int64_t> validation_indices(const ImageDataset& train, const SplitSpec& s) {
  const int64_t n = s.limit_train > 0 ? std::min<int64_t>(s.limit_train, train.size()) : train.size();
  FOCUS_CHECK(s.val_size > 0 && s.val_size < n, ValueError,
              "--val-size {} must be in [1, {}) (the training images used)", s.val_size, n);
  if (n == train.size()) return split_train_val(train, s.val_size, s.seed).val;
  std::vector<int64_t> val(size_t(s.val_size));  // a prefix run: the first val_size images
  for (int64_t i = 0; i < s.val_size; ++i) val[size_t(i)] = i;
  return val;
}

SplitSpec run_split_spec(const std::string& model_path) {
  SplitSpec s;
  const auto cfg = std::filesystem::path(model_path).parent_path() / "config.json";
  if (!std::filesystem::exists(cfg)) return s;
  std::ifstream f(cfg);
  const nlohmann::json j = nlohmann::json::parse(f, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return s;
  s.val_size = j.value("val-size", s.val_size);
  s.seed = j.value("seed", s.seed);
  s.limit_train = j.value("limit-train", s.limit_train);
  s.from = cfg.string();
  return s;
}

void SplitFlags::add_to(CLI::App* sub) {
  val_ = sub->add_option("--val-size", given_.val_size, "validation images (default: the run's config.json, else 5000)");
  seed_ = sub->add_option("--seed", given_.seed, "seed of the validation split (default: the run's, else 1)");
  limit_ = sub->add_option("--limit-train", given_.limit_train, "the run's --limit-train (default: the run's, else 0)");
}

SplitSpec SplitFlags::resolve(const std::string& model_path) const {
  SplitSpec s = run_split_spec(model_path);
  if (val_ && val_->count()) s.val_size = given_.val_size;
  if (seed_ && seed_->count()) s.seed = given_.seed;
  if (limit_ && limit_->count()) s.limit_train = given_.limit_train;
  return s;
}

std::string reliability_svg(const CalibrationReport& before, const CalibrationReport& after,
                            const std::string& title) {
  auto series = [](const CalibrationReport& r, const std::string& name) {
    Series s{name, {}, {}, false};
    for (const ReliabilityBin& b : r.bins) {
      if (b.count == 0) continue;
      s.x.push_back(b.confidence);
      s.y.push_back(b.accuracy);
    }
    return s;
  };
  ChartOptions o;
  o.title = title;
  o.x_label = "confidence (mean top probability in the bin)";
  o.y_label = "accuracy in the bin";
  return svg_line_chart({Series{"perfect calibration", {0, 1}, {0, 1}, true},
                         series(before, fmt::format("T = 1 (ECE {:.2f}%)", 100 * before.ece)),
                         series(after, fmt::format("T = {:.3f} (ECE {:.2f}%)", after.temperature,
                                                   100 * after.ece))},
                        o);
}

std::string standalone_svg(const std::string& svg) {
  if (svg.rfind("<svg ", 0) != 0) return svg;
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" " + svg.substr(5);
}

Command add_calibrate_command(CLI::App& app) {
  CLI::App* sub = app.add_subcommand(
      "calibrate", "fit an image model's temperature (temperature scaling) on its run's validation "
                   "split and write the calibrated model file");
  struct Opts {
    std::string model, out, data_dir = kFashionMnistDir;
    SplitFlags split;
    bool json = false;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("--model", o->model, "image model file (.safetensors)")->required();
  sub->add_option("-o,--out", o->out, "calibrated model file (may be --model itself)")->required();
  sub->add_option("--data-dir", o->data_dir, "Fashion-MNIST directory")->capture_default_str();
  o->split.add_to(sub);
  sub->add_flag("--json", o->json, "print the fit as JSON (reliability bins included)");
  sub->add_option("--threads", o->threads, "threads (0 = all cores)");
  return [o] {
    if (o->threads > 0) set_num_threads(o->threads);
    const SplitSpec s = o->split.resolve(o->model);
    const ImageDataset train = load_fashion_mnist(o->data_dir, Split::Train);
    const std::vector<int64_t> idx = validation_indices(train, s);
    const CalibrationFit fit = calibrate_model_file(o->model, o->out, train, idx);
    if (o->json) {
      nlohmann::json j = {{"model", o->model}, {"out", o->out}, {"temperature", fit.temperature},
                          {"validation_images", idx.size()}, {"split_from", s.from},
                          {"before", to_json(fit.before)}, {"after", to_json(fit.after)}};
      std::printf("%s\n", j.dump(2).c_str());
      return 0;
    }
    std::printf("%s: temperature %.4f fitted on %zu validation images (split: %s)\n"
                "validation ECE %.2f%% -> %.2f%%, NLL %.4f -> %.4f, accuracy %.2f%%\nwrote %s\n",
                o->model.c_str(), fit.temperature, idx.size(),
                s.from.empty() ? "defaults" : s.from.c_str(), 100 * fit.before.ece,
                100 * fit.after.ece, fit.before.nll, fit.after.nll, 100 * fit.after.accuracy,
                o->out.c_str());
    return 0;
  };
}

}  // namespace focus
