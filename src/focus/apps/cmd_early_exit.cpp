// `focus early-exit --model M [--add-exits 0,1,2 --finetune-epochs E] [--threshold T -o OUT]`:
// early exit for a vit (models/vit.hpp "exits", DeeBERT-style). With --add-exits, exit
// classifiers are added after those blocks (the trained weights kept, the exits fresh) and the
// whole model is fine-tuned jointly (the trainer adds the exits' losses; train/fine_tune.hpp on
// training images outside the validation split). Each exit's temperature is fitted on the run's
// validation split (its calibrated confidence is what the threshold is held against). Then, for
// each of --thresholds: validation accuracy against mean blocks run per image, and the forward
// time of --time-images images against the same model with no early exit (interleaved in the same
// run, medians of --time-reps, the ratio printed). -o writes the model with its temperatures and
// --threshold (the predictors and the server then exit early with it).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "focus/apps/calibration_cli.hpp"
#include "focus/apps/commands.hpp"
#include "focus/apps/fine_tune_cli.hpp"
#include "focus/autograd/node.hpp"
#include "focus/infer/calibration.hpp"
#include "focus/infer/model_calibration.hpp"
#include "focus/infer/model_file.hpp"
#include "focus/io/atomic_file.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/models/vit.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {

namespace {

struct Opts {
  std::string model, out, data_dir = kFashionMnistDir, work_dir, json_out;
  std::vector<int64_t> add_exits;
  std::vector<double> thresholds = {0.5, 0.7, 0.8, 0.9, 0.95, 0.99};
  double threshold = 0.9;
  SplitFineTune ft;
  int64_t time_images = 512;
  int time_reps = 15;
  SplitFlags split;
  int threads = 0;
};

int run_early_exit(Opts o) {
  if (o.threads > 0) set_num_threads(o.threads);
  const SplitSpec s = o.split.resolve(o.model);
  const ImageDataset train = load_fashion_mnist(o.data_dir, Split::Train);
  const std::vector<int64_t> vidx = validation_indices(train, s);
  LoadedModel lm = load_model(o.model);
  FOCUS_CHECK(lm.model->name() == "vit", ValueError, "early-exit: {} is a {} model, not a vit", o.model,
              lm.model->name());
  std::unique_ptr<ImageClassifier> owned = std::move(lm.model);
  VitConfig cfg = VitConfig::from_json(owned->config());
  if (!o.add_exits.empty()) {
    FOCUS_CHECK(cfg.exits.empty(), ValueError, "early-exit: {} already has exits; drop --add-exits", o.model);
    cfg.exits = o.add_exits;
    cfg.exit_temperatures.clear();
    Rng rng(s.seed);
    auto with_exits = std::make_unique<Vit>(VitConfig::from_json(cfg.to_json()), rng);
    with_exits->load_state_dict(owned->state_dict(), /*strict=*/false);  // the exits stay fresh
    with_exits->eval();
    owned = std::move(with_exits);
    o.ft.seed = s.seed;
    o.ft.data_dir = o.data_dir;
    o.ft.run_dir = o.work_dir.empty() ? (o.out.empty() ? o.model : o.out) + ".finetune" : o.work_dir;
    fine_tune_outside_val(*owned, lm.info, train, vidx, o.ft);
  }
  Vit& vit = dynamic_cast<Vit&>(*owned);
  cfg = VitConfig::from_json(vit.config());
  FOCUS_CHECK(!cfg.exits.empty(), ValueError,
              "early-exit: {} has no exit classifiers; add them with --add-exits (block indices)", o.model);
  vit.eval();
  const int64_t K = cfg.num_classes, E = int64_t(cfg.exits.size());
  // Every exit's and the final logits on the validation split.
  std::vector<std::vector<double>> z(size_t(E + 1));
  const std::vector<int64_t> y = dataset_labels(train, vidx);
  {
    NoGradGuard g;
    for (size_t lo = 0; lo < vidx.size(); lo += 256) {
      const std::span<const int64_t> part(vidx.data() + lo, std::min<size_t>(256, vidx.size() - lo));
      const std::vector<Tensor> out = vit.forward_exits(make_batch(train, part, lm.info.norm).x);
      for (size_t j = 0; j < out.size(); ++j) {
        const std::vector<double> v = out[j].to_vector<double>();
        z[j].insert(z[j].end(), v.begin(), v.end());
      }
    }
  }
  auto accuracy = [&](const std::vector<double>& logits) {
    int64_t right = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      const double* row = logits.data() + int64_t(i) * K;
      right += std::max_element(row, row + K) - row == y[i];
    }
    return double(right) / double(y.size());
  };
  std::vector<double> temps;
  std::printf("%s: exits after blocks", o.model.c_str());
  for (int64_t b : cfg.exits) std::printf(" %lld", (long long)b);
  std::printf(" of %lld; validation %zu images\n", (long long)cfg.depth, vidx.size());
  for (int64_t j = 0; j < E; ++j) {
    temps.push_back(fit_temperature(z[size_t(j)], y, K));
    std::printf("  exit %lld (after block %lld): accuracy %.2f%%, temperature %.3f\n", (long long)j,
                (long long)cfg.exits[size_t(j)], 100 * accuracy(z[size_t(j)]), temps.back());
  }
  const double acc_full = accuracy(z.back());
  std::printf("  final (%lld blocks): accuracy %.2f%%\n\n", (long long)cfg.depth, 100 * acc_full);

  // Accuracy, mean blocks and time per threshold; the time against no early exit, interleaved.
  std::vector<int64_t> tidx(vidx.begin(), vidx.begin() + std::min<size_t>(vidx.size(), size_t(o.time_images)));
  const Tensor tx = make_batch(train, tidx, lm.info.norm).x;
  NoGradGuard g;
  auto once = [&](double t) {
    vit.set_exit_policy(t, temps);
    const auto t0 = std::chrono::steady_clock::now();
    (void)vit.forward(tx);
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  nlohmann::json rows = nlohmann::json::array();
  std::printf("%-10s %9s %12s %10s %10s %9s\n", "threshold", "val acc %", "mean blocks", "full ms",
              "exit ms", "saved %");
  for (double t : o.thresholds) {
    vit.set_exit_policy(t, temps);
    int64_t right = 0, blocks = 0;
    for (size_t lo = 0; lo < vidx.size(); lo += 256) {
      const std::span<const int64_t> part(vidx.data() + lo, std::min<size_t>(256, vidx.size() - lo));
      const std::vector<double> v = vit.forward(make_batch(train, part, lm.info.norm).x).to_vector<double>();
      for (size_t i = 0; i < part.size(); ++i) {
        const double* row = v.data() + int64_t(i) * K;
        right += std::max_element(row, row + K) - row == y[lo + i];
        blocks += vit.last_layers_used()[i];
      }
    }
    const auto [full_ms, exit_ms] =
        interleaved_median_ms([&] { return once(2.0); }, [&] { return once(t); }, o.time_reps);
    const double acc = double(right) / double(vidx.size()), mean_blocks = double(blocks) / double(vidx.size());
    std::printf("%-10.3f %9.2f %12.3f %10.2f %10.2f %9.1f\n", t, 100 * acc, mean_blocks, full_ms, exit_ms,
                100 * (1 - exit_ms / full_ms));
    rows.push_back({{"threshold", t}, {"val_accuracy", acc}, {"mean_blocks", mean_blocks},
                    {"full_ms", full_ms}, {"exit_ms", exit_ms}, {"time_saved", 1 - exit_ms / full_ms}});
  }
  std::printf("\nno early exit: accuracy %.2f%%, %lld blocks; times: forward of %zu images, medians of %d "
              "interleaved runs, %d threads\n", 100 * acc_full, (long long)cfg.depth, tidx.size(), o.time_reps,
              num_threads());
  if (!o.out.empty()) {
    vit.set_exit_policy(o.threshold, temps);
    save_model(o.out, vit, lm.info);
    if (!o.add_exits.empty()) calibrate_model_file(o.out, o.out, train, vidx);  // the final classifier's T
    std::printf("wrote %s (exit threshold %.3f)\n", o.out.c_str(), o.threshold);
  }
  if (!o.json_out.empty()) {
    const nlohmann::json j = {{"model", o.model}, {"out", o.out}, {"exits", cfg.exits}, {"depth", cfg.depth},
                              {"exit_temperatures", temps}, {"val_images", vidx.size()},
                              {"val_accuracy_full", acc_full}, {"finetune_epochs", o.add_exits.empty() ? 0 : o.ft.epochs},
                              {"time_images", tidx.size()}, {"time_reps", o.time_reps},
                              {"threads", num_threads()}, {"rows", rows}};
    write_file_atomic(o.json_out, j.dump(2) + "\n");
  }
  return 0;
}

}  // namespace

Command add_early_exit_command(CLI::App& app) {
  CLI::App* sub = app.add_subcommand(
      "early-exit", "early exit for a vit: add exit classifiers and fine-tune jointly, fit their "
                    "temperatures, table accuracy against mean blocks run and measured time per "
                    "confidence threshold, write the model with a threshold");
  auto o = std::make_shared<Opts>();
  sub->add_option("--model", o->model, "vit model file (.safetensors)")->required();
  sub->add_option("-o,--out", o->out, "write the model with its exits, temperatures and --threshold");
  sub->add_option("--add-exits", o->add_exits, "block indices to put exit classifiers after (then fine-tune)")
      ->delimiter(',');
  sub->add_option("--thresholds", o->thresholds, "calibrated confidences to table")->delimiter(',')
      ->capture_default_str();
  sub->add_option("--threshold", o->threshold, "the threshold written with -o (above 1: never exit early)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--finetune-epochs", o->ft.epochs, "epochs of joint fine-tuning after --add-exits")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--finetune-images", o->ft.images, "training images (outside the validation split) to fine-tune on")
      ->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--finetune-lr", o->ft.lr, "fine-tuning learning rate (cosine to 1/100 of it)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--work-dir", o->work_dir, "the fine-tuning run's directory (default OUT.finetune)");
  sub->add_option("--time-images", o->time_images, "images per timed forward pass")
      ->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--time-reps", o->time_reps, "timed passes per setting (interleaved; medians)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--data-dir", o->data_dir, "Fashion-MNIST directory")->capture_default_str();
  sub->add_option("--json", o->json_out, "also write the table to this JSON file");
  o->split.add_to(sub);
  sub->add_option("--threads", o->threads, "threads (0 = all cores)");
  return [o] { return run_early_exit(*o); };
}

}  // namespace focus
