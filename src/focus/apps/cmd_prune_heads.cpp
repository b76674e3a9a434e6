// `focus prune-heads --model M --fraction F [--finetune-epochs E] -o OUT`: attention-head pruning
// of a vit (infer/head_pruning.hpp, Michel et al. 2019). Head importance: gate gradients on the
// run's validation split (rebuilt as `focus calibrate` rebuilds it); the round(F * heads) least
// important heads (whole K/V groups with grouped-query attention) are removed physically; the
// pruned model is fine-tuned for E epochs (train/fine_tune.hpp, on training images outside the
// validation split, the trainer's run files in --work-dir) and calibrated on the validation
// split, then written to OUT atomically.
// Prints a table: heads removed against validation accuracy and the measured forward time of
// --time-images images (the unpruned and pruned models timed interleaved in the same run,
// medians of --time-reps, the ratio printed), one row per head removed before fine-tuning and
// a last row for the fine-tuned model. --json writes the same as JSON.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "focus/apps/calibration_cli.hpp"
#include "focus/apps/commands.hpp"
#include "focus/apps/fine_tune_cli.hpp"
#include "focus/infer/head_pruning.hpp"
#include "focus/infer/model_calibration.hpp"
#include "focus/infer/model_file.hpp"
#include "focus/io/atomic_file.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/models/vit.hpp"

namespace focus {

namespace {

struct Opts {
  std::string model, out, data_dir = kFashionMnistDir, work_dir, json_out;
  double fraction = 0.3;
  int64_t importance_images = 0;  // 0: the whole validation split
  int finetune_epochs = 0;
  int64_t finetune_images = 20000;
  double finetune_lr = 3e-4;
  int64_t time_images = 256;
  int time_reps = 9;
  bool table = true;
  SplitFlags split;
  int threads = 0;
};

// Median milliseconds of a forward pass of `pixels` through each predictor, timed interleaved.
std::pair<double, double> time_pair(const ImagePredictor& a, const ImagePredictor& b,
                                    const Tensor& pixels, int reps) {
  auto once = [&](const ImagePredictor& p) {
    const auto t0 = std::chrono::steady_clock::now();
    (void)p.logits(pixels);
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  return interleaved_median_ms([&] { return once(a); }, [&] { return once(b); }, reps);
}

// (n, C, S, S) pixels in [0, 1] of samples `idx` of `ds`.
Tensor pixels_of(const ImageDataset& ds, const std::vector<int64_t>& idx) {
  const int64_t n = int64_t(idx.size()), C = ds.channels(), H = ds.height(), W = ds.width();
  Tensor t = Tensor::empty({n, C, H, W});
  float* dst = t.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* src = ds.image(idx[size_t(i)]);
    for (int64_t j = 0; j < C * H * W; ++j) dst[i * C * H * W + j] = float(src[j]) / 255.f;
  }
  return t;
}

int64_t total_heads(const std::vector<std::vector<int64_t>>& keep) {
  int64_t n = 0;
  for (const auto& k : keep) n += int64_t(k.size());
  return n;
}

std::string heads_list(const std::vector<std::vector<int64_t>>& keep) {
  std::string s;
  for (const auto& k : keep) s += (s.empty() ? "" : ",") + std::to_string(k.size());
  return s;
}

int run_prune(const Opts& o) {
  if (o.threads > 0) set_num_threads(o.threads);
  const SplitSpec s = o.split.resolve(o.model);
  const ImageDataset train = load_fashion_mnist(o.data_dir, Split::Train);
  const std::vector<int64_t> vidx = validation_indices(train, s);
  LoadedModel base = load_model(o.model);
  FOCUS_CHECK(base.model->name() == "vit", ValueError,
              "prune-heads: {} is a {} model; only vit blocks have prunable heads", o.model,
              base.model->name());
  std::vector<int64_t> imp_idx = vidx;
  if (o.importance_images > 0 && o.importance_images < int64_t(imp_idx.size()))
    imp_idx.resize(size_t(o.importance_images));
  std::fprintf(stderr, "prune-heads: scoring heads on %zu validation images\n", imp_idx.size());
  const HeadImportance imp = head_importance(*base.model, train, imp_idx, base.info.norm);
  int64_t heads = 0;
  for (const auto& l : imp.scores) heads += int64_t(l.size());

  ModelInfo info = base.info;
  info.quantized = false;  // an int8 plan measured on the unpruned model no longer holds
  info.int8_layers.clear();
  info.f32_layers.clear();
  info.quantization_report = nlohmann::json();
  const ImagePredictor unpruned(o.model);
  std::vector<int64_t> tidx(vidx.begin(), vidx.begin() + std::min<size_t>(vidx.size(), size_t(o.time_images)));
  const Tensor timing_pixels = pixels_of(train, tidx);
  const double acc0 = dataset_accuracy(unpruned, train, vidx);

  nlohmann::json rows = nlohmann::json::array();
  std::printf("%s: %lld heads (group %lld), importance on %lld validation images, accuracy on %zu\n\n",
              o.model.c_str(), (long long)heads, (long long)imp.group, (long long)imp.images, vidx.size());
  std::printf("%-14s %-12s %-12s %9s %12s %12s %8s\n", "heads removed", "fine-tuned", "per block",
              "val acc %", "unpruned ms", "pruned ms", "speed-up");
  auto add_row = [&](const std::vector<std::vector<int64_t>>& keep, bool tuned, double acc,
                     std::pair<double, double> t) {
    const int64_t removed = heads - total_heads(keep);
    std::printf("%-14s %-12s %-12s %9.2f %12.2f %12.2f %8.3f\n",
                fmt::format("{} ({:.1f}%)", removed, 100.0 * double(removed) / double(heads)).c_str(),
                tuned ? "yes" : "no", heads_list(keep).c_str(), 100 * acc, t.first, t.second,
                t.first / t.second);
    rows.push_back({{"heads_removed", removed}, {"heads_total", heads}, {"fine_tuned", tuned},
                    {"layer_heads", heads_list(keep)}, {"val_accuracy", acc},
                    {"unpruned_ms", t.first}, {"pruned_ms", t.second}, {"speedup", t.first / t.second}});
  };
  const int64_t units = heads / imp.group;
  const int64_t target = std::llround(o.fraction * double(units));
  std::vector<std::vector<int64_t>> keep;
  for (int64_t k = o.table ? 0 : target; k <= target; ++k) {
    keep = choose_heads_to_keep(imp, double(k) / double(units));
    const ImagePredictor p(LoadedModel{prune_heads(*base.model, keep), info});
    add_row(keep, false, dataset_accuracy(p, train, vidx), time_pair(unpruned, p, timing_pixels, o.time_reps));
  }
  std::unique_ptr<ImageClassifier> pruned = prune_heads(*base.model, keep);
  SplitFineTune ft;
  ft.epochs = o.finetune_epochs;
  ft.images = o.finetune_images;
  ft.lr = o.finetune_lr;
  ft.seed = s.seed;
  ft.run_dir = o.work_dir.empty() ? o.out + ".finetune" : o.work_dir;
  ft.data_dir = o.data_dir;
  fine_tune_outside_val(*pruned, info, train, vidx, ft);
  save_model(o.out, *pruned, info);
  calibrate_model_file(o.out, o.out, train, vidx);  // the temperature of the pruned model
  if (o.finetune_epochs > 0) {
    const ImagePredictor p(o.out);
    add_row(keep, true, dataset_accuracy(p, train, vidx), time_pair(unpruned, p, timing_pixels, o.time_reps));
  }
  const nlohmann::json& last = rows.back();
  std::printf("\nunpruned validation accuracy %.2f%%; written: %s (%lld of %lld heads removed, %.2f points "
              "lost, forward of %zu images %.3fx faster, medians of %d interleaved runs)\n",
              100 * acc0, o.out.c_str(), (long long)last["heads_removed"].get<int64_t>(), (long long)heads,
              100 * (acc0 - last["val_accuracy"].get<double>()), tidx.size(), last["speedup"].get<double>(),
              o.time_reps);
  if (!o.json_out.empty()) {
    nlohmann::json imp_j = imp.scores;
    const nlohmann::json j = {{"model", o.model}, {"out", o.out}, {"fraction", o.fraction},
                              {"heads", heads}, {"group", imp.group}, {"importance", imp_j},
                              {"importance_images", imp.images}, {"val_images", vidx.size()},
                              {"val_accuracy_unpruned", acc0}, {"finetune_epochs", o.finetune_epochs},
                              {"time_images", tidx.size()}, {"time_reps", o.time_reps},
                              {"threads", num_threads()}, {"rows", rows}};
    write_file_atomic(o.json_out, j.dump(2) + "\n");
  }
  return 0;
}

}  // namespace

Command add_prune_heads_command(CLI::App& app) {
  CLI::App* sub = app.add_subcommand(
      "prune-heads", "remove the least important attention heads of a vit (gate gradients on the "
                     "validation split), optionally fine-tune, and table heads removed against "
                     "accuracy and measured speed");
  auto o = std::make_shared<Opts>();
  sub->add_option("--model", o->model, "vit model file (.safetensors)")->required();
  sub->add_option("-o,--out", o->out, "the pruned model file")->required();
  sub->add_option("--fraction", o->fraction, "share of the heads to remove, in [0, 1)")
      ->check(CLI::Range(0.0, 0.999))->capture_default_str();
  sub->add_option("--finetune-epochs", o->finetune_epochs, "epochs of fine-tuning after pruning (0 = none)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--finetune-images", o->finetune_images, "training images (outside the validation split) to fine-tune on")
      ->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--finetune-lr", o->finetune_lr, "fine-tuning learning rate (cosine to 1/100 of it)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--work-dir", o->work_dir, "the fine-tuning run's directory (default OUT.finetune)");
  sub->add_option("--importance-images", o->importance_images,
                  "validation images to score the heads on (0 = the whole split)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--time-images", o->time_images, "images per timed forward pass")
      ->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--time-reps", o->time_reps, "timed passes per model (interleaved; medians)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_flag("!--no-table", o->table, "only the row of --fraction (no row per head removed)");
  sub->add_option("--data-dir", o->data_dir, "Fashion-MNIST directory")->capture_default_str();
  sub->add_option("--json", o->json_out, "also write the table and the importance scores to this JSON file");
  o->split.add_to(sub);
  sub->add_option("--threads", o->threads, "threads (0 = all cores)");
  return [o] { return run_prune(*o); };
}

}  // namespace focus
