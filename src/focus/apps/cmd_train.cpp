// `focus train` and `focus demo`: build the model from the typed config, train it with
// train/Trainer, fit the best model's temperature on the validation split (image models;
// infer/model_calibration.hpp), evaluate it on the test set, and say where everything is.
// --extra-labels F appends the reviewed images of a `focus review export` file to the training
// split (review/reviewed_labels.hpp). --resume CKPT --reviewed SOURCE fine-tunes CKPT's weights on
// the reviewed images of a queue store or export mixed with a replay of the training split
// (train/fine_tune.hpp) into a candidate model for `focus promote`.
// --task recsys trains sasrec on --interactions (train/recsys_data.hpp) and prints the test fold's
// HR@10 / NDCG@10 beside the baselines (docs/RESULTS_RECSYS.md).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "focus/apps/commands.hpp"
#include "focus/data/dataset.hpp"
#include "focus/dist/communicator.hpp"
#include "focus/infer/model_calibration.hpp"
#include "focus/io/atomic_file.hpp"
#include "focus/io/safetensors.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/kernels/gemm.hpp"
#include "focus/kernels/precision.hpp"
#include "focus/review/reviewed_labels.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/train/fine_tune.hpp"
#include "focus/train/recsys_data.hpp"
#include "focus/train/trainer.hpp"

namespace focus {

namespace {

std::string registry_name(const std::string& cli_name) {
  std::string n = cli_name;
  for (char& c : n)
    if (c == '-') c = '_';
  return n;
}

// Temperature scaling on the held-out validation split, written into model_best (atomically).
void calibrate_best(const std::string& best, const ImageDataset& train, const std::vector<int64_t>& val) {
  const CalibrationFit cal = calibrate_model_file(best, best, train, val);
  std::fprintf(stderr, "focus: temperature %.4f fitted on %zu validation images: ECE %.2f%% -> %.2f%%, NLL %.4f -> %.4f\n",
               cal.temperature, val.size(), 100 * cal.before.ece, 100 * cal.after.ece,
               cal.before.nll, cal.after.nll);
}

// The training images: Fashion-MNIST's, then the reviewed images of --extra-labels (`extra` of
// them, training split only).
ImageDataset training_images(const TrainConfig& cfg, int64_t& extra, bool root) {
  ImageDataset train = load_fashion_mnist(cfg.data_dir, Split::Train);
  extra = 0;
  if (cfg.extra_labels.empty()) return train;
  const review::ReviewedImages rv =
      review::read_reviewed_images(cfg.extra_labels, train.class_names(), train.height(), train.width());
  FOCUS_CHECK(rv.size() > 0, ValueError, "--extra-labels '{}': no reviewed image/png item in it ({} other items)",
              cfg.extra_labels, rv.skipped);
  if (root) std::fprintf(stderr, "focus: %lld reviewed images from %s join the training split (%lld non-image items skipped)\n",
                         (long long)rv.size(), cfg.extra_labels.c_str(), (long long)rv.skipped);
  std::vector<uint8_t> pixels(train.pixels(), train.pixels() + train.size() * train.image_numel());
  pixels.insert(pixels.end(), rv.pixels.begin(), rv.pixels.end());
  std::vector<int64_t> labels = train.labels();
  labels.insert(labels.end(), rv.labels.begin(), rv.labels.end());
  extra = rv.size();
  return ImageDataset(std::move(pixels), std::move(labels), train.channels(), train.height(), train.width(),
                      train.class_names());
}

// The share of samples `idx` of `ds` the model answers with their label.
double accuracy_on(ImageClassifier& model, const ImageDataset& ds, const std::vector<int64_t>& idx,
                 const Normalization& norm) {
  return evaluate(model, ds, idx, norm).accuracy();
}

// `focus train --resume CKPT --reviewed SOURCE`: fine-tunes CKPT's weights on the reviewed images
// mixed with a replay of the run's training split; validates on the run's validation split (as
// `focus promote` rebuilds it from the candidate's config.json) and says how to promote it.
int fine_tune_and_report(const TrainConfig& cfg) {
  namespace fs = std::filesystem;
  FOCUS_CHECK(!cfg.resume.empty(), ValueError,
              "--reviewed fine-tunes a trained model: give its checkpoint or model file with --resume");
  FOCUS_CHECK(world().size() == 1, ValueError, "--reviewed: fine-tuning runs in one process (no mpirun)");
  std::error_code ec;
  FOCUS_CHECK(!fs::equivalent(fs::path(cfg.resume).parent_path().empty() ? "." : fs::path(cfg.resume).parent_path(),
                              cfg.out, ec),
              ValueError, "--out {} is the directory of --resume {}: fine-tuning would overwrite the run it "
              "starts from; give another --out", cfg.out, cfg.resume);
  if (cfg.threads > 0) set_num_threads(cfg.threads);
  const ImageDataset train = load_fashion_mnist(cfg.data_dir, Split::Train);
  LoadedModel start = load_fine_tune_start(cfg.resume, train.class_names());
  FOCUS_CHECK(start.info.class_names == train.class_names(), ValueError,
              "{}: its {} classes are not the training data's {}", cfg.resume, start.info.class_names.size(),
              train.num_classes());
  const review::ReviewedImages rv =
      review::load_reviewed_images(cfg.reviewed, train.class_names(), train.height(), train.width());
  FOCUS_CHECK(rv.size() > 0, ValueError, "--reviewed '{}': no labelled image/png item in it ({} other items)",
              cfg.reviewed, rv.skipped);
  const TrainValSplit split = default_split(train.labels(), train.num_classes(), cfg);
  // The reviewed images as a dataset of their own, to measure the agreement before and after.
  const ImageDataset reviewed(rv.pixels, rv.labels, train.channels(), train.height(), train.width(),
                              train.class_names());
  std::vector<int64_t> all_reviewed(size_t(rv.size()));
  for (int64_t i = 0; i < rv.size(); ++i) all_reviewed[size_t(i)] = i;
  const double agree0 = accuracy_on(*start.model, reviewed, all_reviewed, start.info.norm);
  const double val0 = accuracy_on(*start.model, train, split.val, start.info.norm);
  FineTuneSpec spec;
  spec.replay_share = cfg.replay_share;
  spec.replay_pool = split.train;
  spec.val = split.val;
  std::fprintf(stderr, "focus: fine-tuning %s on %lld reviewed images from %s (%lld non-image items skipped), "
               "replay share %.2f of the %zu training images; validating on %zu\n",
               cfg.resume.c_str(), (long long)rv.size(), cfg.reviewed.c_str(), (long long)rv.skipped,
               cfg.replay_share, split.train.size(), split.val.size());
  const FineTuneResult r = fine_tune(cfg, *start.model, start.info, train, rv.pixels, rv.labels, spec);
  // The candidate is the last epoch's model: fine-tuning is there to fit the reviewed labels, and
  // the gate (`focus promote`) decides on the validation split; picking the epoch best on that
  // split here would favour the least-moved model before the gate.
  const std::string candidate = cfg.out + "/model_last.safetensors";
  calibrate_best(candidate, train, split.val);
  LoadedModel cand = load_model(candidate);
  const double agree1 = accuracy_on(*cand.model, reviewed, all_reviewed, cand.info.norm);
  const double val1 = accuracy_on(*cand.model, train, split.val, cand.info.norm);
  const nlohmann::json summary = {{"start", cfg.resume}, {"reviewed", cfg.reviewed},
                                  {"reviewed_images", r.reviewed}, {"replay_images", r.replay},
                                  {"replay_share", cfg.replay_share}, {"epochs", r.history.size()},
                                  {"reviewed_agreement_before", agree0}, {"reviewed_agreement_after", agree1},
                                  {"val_accuracy_before", val0}, {"val_accuracy_after", val1},
                                  {"validation_images", split.val.size()}, {"candidate", candidate}};
  write_file_atomic(cfg.out + "/fine_tune.json", summary.dump(2) + "\n");
  std::printf("fine-tuned on %lld reviewed + %lld replay images, %zu epochs: agreement with the reviewed labels "
              "%.2f%% -> %.2f%%, validation accuracy %.2f%% -> %.2f%% (%zu images)\n",
              (long long)r.reviewed, (long long)r.replay, r.history.size(), 100 * agree0, 100 * agree1,
              100 * val0, 100 * val1, split.val.size());
  std::printf("candidate: %s\nsummary:   %s/fine_tune.json\nthe gate:  focus promote --candidate %s --served FILE\n",
              candidate.c_str(), cfg.out.c_str(), candidate.c_str());
  return 0;
}

// Trains per `cfg`, evaluates the best model on the test split and prints a summary.
int train_recsys_and_report(const TrainConfig& cfg);  // below

int train_and_report(const TrainConfig& cfg_in) {
  const TrainConfig cfg = with_task_defaults(cfg_in);
  // Training, its validations and the final test evaluation run at the precision asked for.
  const ScopedPrecision precision(supported_precision(cfg.precision));
  for (const auto& [flag, value] : {std::pair{"--extra-labels", &cfg.extra_labels}, std::pair{"--reviewed", &cfg.reviewed}})
    FOCUS_CHECK(value->empty() || (!is_seq2seq_task(cfg.task) && cfg.task != "text"), ValueError,
                "{}: reviewed labels are images; the {} task cannot use them", flag, cfg.task);
  if (!cfg.reviewed.empty()) {
    validate(cfg);
    return fine_tune_and_report(cfg);
  }
  if (is_seq2seq_task(cfg.task)) return train_seq2seq_and_report(cfg);
  if (cfg.task == "text") {
    validate(cfg);
    return train_text_and_report(cfg);
  }
  if (cfg.task == "recsys") {
    validate(cfg);
    return train_recsys_and_report(cfg);
  }
  validate(cfg);
  if (cfg.threads > 0) set_num_threads(cfg.threads);
  Communicator& comm = world();  // mpirun: MPI's ranks; else this process alone
  const bool root = comm.rank() == 0;
  report_ranks(comm);
  if (root)
    std::fprintf(stderr, "focus: %d threads, GEMM: %s\n", num_threads(), gemm_backend_info().c_str());
  int64_t extra = 0;
  const ImageDataset train = training_images(cfg, extra, root);
  Rng rng(cfg.seed);
  auto model = make_image_model(registry_name(cfg.model), nlohmann::json::parse(cfg.model_config), rng);
  // The Trainer holds val_size of the images it uses out for validation and trains on the rest.
  const int64_t base = train.size() - extra;
  const int64_t used = (cfg.limit_train > 0 ? std::min<int64_t>(cfg.limit_train, base) : base) + extra;
  if (root) std::fprintf(stderr, "focus: model %s, %lld parameters; training on %lld images (%lld more held out for validation)\n",
               cfg.model.c_str(), (long long)model->num_parameters(), (long long)(used - cfg.val_size),
               (long long)cfg.val_size);
  Trainer trainer(cfg, *model, train, &comm, extra);
  const std::string best = cfg.out + "/model_best.safetensors";
  if (already_trained(trainer.start_epoch(), cfg.epochs, root)) {
    // Resuming rewrote the files derived from the checkpoint, model_best without its temperature
    // perhaps: fit it again (deterministic: the same T as the uninterrupted run wrote).
    if (root && std::filesystem::exists(best)) calibrate_best(best, train, trainer.split().val);
    return 1;
  }
  const auto history = trainer.fit();
  if (!root) return 0;  // rank 0 calibrates and evaluates the saved model and reports
  calibrate_best(best, train, trainer.split().val);
  LoadedModel lm = load_model(best);
  const ImageDataset test = load_fashion_mnist(cfg.data_dir, Split::Test);
  std::vector<int64_t> all(size_t(test.size()));
  for (int64_t i = 0; i < test.size(); ++i) all[size_t(i)] = i;
  const EvalResult r = evaluate(*lm.model, test, all, lm.info.norm);
  double train_seconds = history.empty() ? 0 : history.back().value("train_seconds_total", 0.0);
  std::printf("test accuracy %.2f%% (loss %.4f) after %zu epochs, %.1f min of training\n",
              100 * r.accuracy(), r.loss, history.size(), train_seconds / 60);
  std::printf("model:   %s\nmetrics: %s/metrics.jsonl\nresume:  %s/checkpoint_last.safetensors\n",
              best.c_str(), cfg.out.c_str(), cfg.out.c_str());
  return 0;
}

// `focus train --task recsys`: one run (train/recsys_data.hpp) and its table.
int train_recsys_and_report(const TrainConfig& cfg) {
  if (cfg.threads > 0) set_num_threads(cfg.threads);
  Communicator& comm = world();  // mpirun: MPI's ranks; else this process alone
  report_ranks(comm);
  const nlohmann::json r = run_recsys(cfg, &comm);
  if (comm.rank() != 0) return 0;  // rank 0 reports
  std::printf("test fold, %lld users, %lld items; HR@10 / NDCG@10 against every item (sampled: "
              "against %d negatives, reported apart: it overstates)\n",
              r["data"]["users"].get<long long>(), r["data"]["items"].get<long long>(), cfg.eval_negatives);
  std::printf("%-12s %8s %8s %11s %13s\n", "ranker", "HR@10", "NDCG@10", "sampled HR", "sampled NDCG");
  for (const char* name : {"model", "markov", "popularity"}) {
    const auto& m = r[name];
    std::printf("%-12s %8.4f %8.4f %11.4f %13.4f\n", name == std::string("model") ? "sasrec" : name,
                m["hr"].get<double>(), m["ndcg"].get<double>(), m["sampled_hr"].get<double>(),
                m["sampled_ndcg"].get<double>());
  }
  if (r.contains("oracle"))
    std::printf("%-12s %8.4f %8.4f %11s %13s   (expected, from the generator's true next-item distribution)\n",
                "oracle", r["oracle"]["hr"].get<double>(), r["oracle"]["ndcg"].get<double>(), "-", "-");
  std::printf("training: %.0f targets/s over %lld epochs, %.1f s\n", r["train"]["targets_per_s"].get<double>(),
              r["train"]["epochs"].get<long long>(), r["train"]["seconds"].get<double>());
  std::printf("model:   %s/model_best.safetensors\nmetrics: %s/metrics.jsonl, %s/test_metrics.json\n",
              cfg.out.c_str(), cfg.out.c_str(), cfg.out.c_str());
  return 0;
}

// Pre-scans argv for an option's value (CLI11 parses later; the config base must exist first).
std::string find_option(int argc, char** argv, const char* name) {
  const std::string eq = std::string(name) + "=";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0 && i + 1 < argc) return argv[i + 1];
    if (std::strncmp(argv[i], eq.c_str(), eq.size()) == 0) return argv[i] + eq.size();
  }
  return "";
}

}  // namespace

void prepare_train_defaults(int argc, char** argv, TrainConfig& cfg);

bool already_trained(int start_epoch, int epochs, bool print) {
  if (start_epoch < epochs) return false;
  if (print) std::fprintf(stderr, "focus: the checkpoint already finished %d of %d epochs; raise --epochs\n",
               start_epoch, epochs);
  return true;
}

void report_ranks(const Communicator& comm) {
  if (comm.size() == 1 || comm.rank() != 0) return;
  std::fprintf(stderr,
               "focus: data-parallel training on %d ranks (%s), %d threads each; rank 0 writes "
               "the run directory\n",
               comm.size(), comm.backend().c_str(), num_threads());
}

Command add_train_command(CLI::App& app, int argc, char** argv) {
  CLI::App* sub = app.add_subcommand("train", "train a model (fashion-mnist: cnn-se | vit; text: text-transformer; g2p, translate: transformer)");
  struct State {
    TrainConfig cfg;
    std::string config_file;
    bool dump = false;
  };
  auto st = std::make_shared<State>();
  bind_cli(*sub, st->cfg, st->config_file, st->dump);
  // Base layers under the flags: a checkpoint's config (resume), then --config FILE. CLI11 only
  // writes the flags that were given, so these must be in place before parsing.
  sub->preparse_callback([st, argc, argv](size_t) { prepare_train_defaults(argc, argv, st->cfg); });
  return [st] {
    if (st->dump) {
      const TrainConfig cfg = with_task_defaults(st->cfg);
      validate(cfg);
      std::printf("%s\n", to_json(cfg).dump(2).c_str());
      return 0;
    }
    return train_and_report(st->cfg);
  };
}

// Applies --resume's stored config, then --config FILE, under the flags. Fine-tuning (--reviewed):
// a model file's run config.json (beside it) when there is one instead of a checkpoint's config,
// then the fine-tuning defaults: 2 epochs at lr 3e-4 (a tenth of cnn-se's training lr), no
// warm-up, a constant schedule, into runs/finetune (never the run it starts from).
void prepare_train_defaults(int argc, char** argv, TrainConfig& cfg) {
  const std::string resume = find_option(argc, argv, "--resume");
  const bool fine_tuning = !find_option(argc, argv, "--reviewed").empty();
  if (!resume.empty()) {
    SafetensorsFile f = load_safetensors(resume);
    auto it = f.metadata.find("config");
    if (it != f.metadata.end()) {
      apply_json(cfg, nlohmann::json::parse(it->second), resume);
    } else {
      FOCUS_CHECK(fine_tuning, FormatError, "'{}' is not a focus checkpoint (no config)", resume);
      const auto run_config = std::filesystem::path(resume).parent_path() / "config.json";
      if (std::filesystem::exists(run_config)) load_config_file(cfg, run_config.string());
    }
  }
  if (fine_tuning) {
    cfg.epochs = 2;
    cfg.lr = 3e-4;
    cfg.warmup_epochs = 0;
    cfg.schedule = "constant";
    cfg.patience = 0;
    cfg.time_limit_min = 0;
    cfg.extra_labels.clear();
    cfg.out = "runs/finetune";
  }
  const std::string file = find_option(argc, argv, "--config");
  if (!file.empty()) load_config_file(cfg, file);
}

Command add_demo_command(CLI::App& app) {
  CLI::App* sub = app.add_subcommand(
      "demo", "train the default attention model (CNN with squeeze-and-excitation) on Fashion-MNIST "
              "in about 5 minutes, then evaluate it on the test set");
  auto out = std::make_shared<std::string>("runs/demo");
  auto threads = std::make_shared<int>(0);
  sub->add_option("--out", *out, "output directory")->capture_default_str();
  sub->add_option("--threads", *threads, "threads (0 = all cores)");
  return [out, threads] {
    // Sized for ~5 minutes on 2 cores: 2 epochs over 40k images (5k held out), no augmentation
    // (it pays off only over longer runs), AdamW with a short warm-up and cosine decay.
    TrainConfig cfg;
    cfg.model = "cnn-se";
    cfg.optimizer = "adamw";
    cfg.lr = 3e-3;
    cfg.weight_decay = 0.05;
    cfg.epochs = 2;
    cfg.batch = 128;
    cfg.warmup_epochs = 0.2;
    cfg.augment = false;
    cfg.limit_train = 45000;
    cfg.time_limit_min = 7;
    cfg.out = *out;
    cfg.threads = *threads;
    std::fprintf(stderr, "focus demo: training cnn-se on Fashion-MNIST (%d epochs, at most %.0f min)\n",
                 cfg.epochs, cfg.time_limit_min);
    return train_and_report(cfg);
  };
}

}  // namespace focus
