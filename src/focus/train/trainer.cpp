// Trainer (see trainer.hpp).
#include "focus/train/trainer.hpp"

#include <chrono>
#include <cmath>
#include <filesystem>

#include "focus/autograd/node.hpp"
#include "focus/io/atomic_file.hpp"
#include "focus/io/safetensors.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/ops/loss.hpp"
#include "focus/ops/index.hpp"
#include "focus/ops/reduce.hpp"
#include "focus/ops/softmax.hpp"
#include "focus/ops/view.hpp"
#include "focus/optim/adam.hpp"
#include "focus/optim/clip.hpp"
#include "focus/optim/rmsprop.hpp"
#include "focus/optim/sgd.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/train/budget_clock.hpp"
#include "focus/train/checkpoint.hpp"
#include "focus/train/progress.hpp"

namespace focus {

namespace {

int64_t count_correct(const Tensor& logits, const Tensor& y) {
  const auto pred = argmax(logits.detach(), 1).to_vector<int64_t>();
  const auto tgt = y.to_vector<int64_t>();
  int64_t c = 0;
  for (size_t i = 0; i < pred.size(); ++i) c += pred[i] == tgt[i];
  return c;
}

int64_t count_targets(const Tensor& y) {
  int64_t n = 0;
  for (int64_t t : y.to_vector<int64_t>()) n += t != -100;
  return n;
}

double elapsed(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

std::unique_ptr<LrSchedule> make_schedule(const TrainConfig& c, int64_t steps_per_epoch) {
  const int64_t total = std::max<int64_t>(1, steps_per_epoch * c.epochs);
  const int64_t warmup = std::min<int64_t>(total - 1, int64_t(c.warmup_epochs * steps_per_epoch));
  if (c.schedule == "cosine")
    return std::make_unique<WarmupCosineSchedule>(c.lr, warmup, total, std::min(c.min_lr, c.lr));
  if (c.schedule == "step")
    return std::make_unique<StepDecaySchedule>(c.lr, std::max<int64_t>(1, c.step_every * steps_per_epoch),
                                               c.step_gamma);
  if (c.schedule == "inverse-sqrt")  // peaks at lr after the warm-up, then decays as 1/sqrt(step)
    return std::make_unique<InverseSqrtSchedule>(c.lr * std::sqrt(double(std::max<int64_t>(1, warmup))),
                                                 std::max<int64_t>(1, warmup));
  return std::make_unique<ConstantSchedule>(c.lr);
}

std::unique_ptr<Optimizer> make_optimizer(const TrainConfig& c, NamedTensors params) {
  if (c.optimizer == "sgd")
    return std::make_unique<SGD>(std::move(params),
                                 SGDOptions{c.lr, c.momentum, 0.0, c.weight_decay, c.nesterov && c.momentum > 0});
  if (c.optimizer == "adam") {
    AdamOptions o;
    o.lr = c.lr;
    o.weight_decay = c.weight_decay;
    return std::make_unique<Adam>(std::move(params), o);
  }
  if (c.optimizer == "rmsprop") {
    RMSpropOptions o;
    o.lr = c.lr;
    o.weight_decay = c.weight_decay;
    o.momentum = c.momentum;
    return std::make_unique<RMSprop>(std::move(params), o);
  }
  AdamWOptions o;
  o.lr = c.lr;
  o.weight_decay = c.weight_decay;
  return std::make_unique<AdamW>(std::move(params), o);
}

EvalResult evaluate(Classifier& model, const ClassificationData& data,
                    const std::vector<int64_t>& indices, int64_t batch,
                    std::vector<double>* logits_out) {
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  EvalResult r;
  r.cm = ConfusionMatrix(data.num_classes());
  if (logits_out) logits_out->clear();
  double loss_sum = 0;
  for (size_t s = 0; s < indices.size(); s += size_t(batch)) {
    const size_t n = std::min(indices.size() - s, size_t(batch));
    Batch b = data.batch(std::span<const int64_t>(indices.data() + s, n), BatchDraw{});
    const auto [logits, y] = model.forward_scored(b.x, b.y);  // (B, classes), (B)
    loss_sum += cross_entropy(logits, y).item() * double(n);
    r.cm.add_batch(logits, y);
    if (logits_out) {
      const Tensor z = logits.to(DType::F64).contiguous();
      const double* p = z.data<double>();
      logits_out->insert(logits_out->end(), p, p + z.numel());
    }
  }
  r.loss = indices.empty() ? 0 : loss_sum / double(indices.size());
  model.train(was_training);
  return r;
}

EvalResult evaluate(ImageClassifier& model, const ImageDataset& ds,
                    const std::vector<int64_t>& indices, const Normalization& norm, int64_t batch) {
  return evaluate(model, ImageClassificationData(ds, norm), indices, batch);
}

std::vector<double> balanced_class_weights(const std::vector<int64_t>& labels, int64_t k) {
  const std::vector<int64_t> counts = class_counts(labels, k);
  std::vector<double> w(size_t(k), 0.0);
  for (int64_t c = 0; c < k; ++c)
    if (counts[size_t(c)] > 0) w[size_t(c)] = double(labels.size()) / double(k * counts[size_t(c)]);
  return w;
}

std::unique_ptr<ClassificationData> image_training_data(const ImageDataset& train,
                                                        const TrainConfig& cfg, Normalization norm) {
  std::optional<AugmentOptions> augment;
  if (cfg.augment || cfg.erase_p > 0) {
    AugmentOptions aug;
    if (!cfg.augment) {
      aug.crop_padding = 0;
      aug.hflip_p = 0;
    }
    aug.erase_p = float(cfg.erase_p);
    augment = aug;
  }
  return std::make_unique<ImageClassificationData>(train, norm, augment);
}

TrainValSplit default_split(const std::vector<int64_t>& labels, int64_t num_classes,
                            const TrainConfig& cfg, const std::string& unit) {
  const int64_t base = int64_t(labels.size());
  int64_t n = base;
  if (cfg.limit_train > 0) n = std::min<int64_t>(n, cfg.limit_train);
  FOCUS_CHECK(cfg.val_size < n, ValueError, "--val-size {} must be smaller than the {} training {}",
              cfg.val_size, n, unit);
  if (n == base) return split_train_val(labels, num_classes, cfg.val_size, cfg.seed);
  TrainValSplit split;  // a prefix of the data (smoke runs): first val_size for validation, the rest train
  for (int64_t i = 0; i < n; ++i) (i < cfg.val_size ? split.val : split.train).push_back(i);
  return split;
}

namespace {

ModelInfo image_info(const ImageDataset& train, const TrainConfig& cfg) {
  ModelInfo info;
  info.class_names = train.class_names();
  info.norm = Normalization{};
  info.task = cfg.task;
  return info;
}
}  // namespace

Trainer::Trainer(TrainConfig cfg, ImageClassifier& model, const ImageDataset& train,
                 Communicator* comm, int64_t train_only)
    : Trainer(cfg, model, image_training_data(train, cfg), nullptr, comm, std::nullopt,
              image_info(train, cfg), {}, train_only) {}

Trainer::Trainer(TrainConfig cfg, Classifier& model, const ClassificationData& data,
                 Communicator* comm, std::optional<TrainValSplit> split, ModelInfo info,
                 std::vector<double> class_weights)
    : Trainer(std::move(cfg), model, nullptr, &data, comm, std::move(split), std::move(info),
              std::move(class_weights), 0) {}

Trainer::Trainer(TrainConfig cfg, Classifier& model, std::unique_ptr<ClassificationData> owned,
                 const ClassificationData* data, Communicator* comm,
                 std::optional<TrainValSplit> split, ModelInfo info,
                 std::vector<double> class_weights, int64_t train_only)
    : cfg_(std::move(cfg)), model_(model), owned_(std::move(owned)),
      train_(owned_ ? *owned_ : *data), class_weights_(std::move(class_weights)),
      train_only_(train_only), info_(std::move(info)) {
  validate(cfg_);
  FOCUS_CHECK(class_weights_.empty() || int64_t(class_weights_.size()) == train_.num_classes(),
              ValueError, "{} class weights for {} classes", class_weights_.size(),
              train_.num_classes());
  if (!comm) {
    local_comm_ = make_local_communicator();
    comm = local_comm_.get();
  }
  group_ = std::make_unique<ReplicaGroup>(*comm, model_, cfg_);
  // Threads running parts at once would race on BatchNorm's running statistics.
  FOCUS_CHECK(!cfg_.data_parallel || num_threads() == 1 || model_.named_updated_buffers().empty(),
              ValueError,
              "--data-parallel with {} threads: the {} model has buffers (BatchNorm running "
              "statistics) that parts running at once would race on; use one thread per process "
              "(--threads 1, mpirun for more processes) or drop --data-parallel",
              num_threads(), model_.name());
  const std::string unit = train_.unit();
  FOCUS_CHECK(train_only_ >= 0 && train_only_ < train_.size(), ValueError,
              "Trainer: {} training-only {} of a dataset of {}", train_only_, unit, train_.size());
  const int64_t base = train_.size() - train_only_;
  if (split) {
    FOCUS_CHECK(train_only_ == 0, ValueError, "Trainer: training-only rows with an explicit split");
    split_ = std::move(*split);
    for (const auto* part : {&split_.train, &split_.val})
      for (int64_t i : *part)
        FOCUS_CHECK(i >= 0 && i < train_.size(), ValueError, "split index {} not in [0, {})", i,
                    train_.size());
    FOCUS_CHECK(!split_.val.empty(), ValueError, "the validation split is empty");
  } else {
    const std::vector<int64_t> labels(train_.labels().begin(), train_.labels().begin() + base);
    split_ = default_split(labels, train_.num_classes(), cfg_, unit);
  }
  for (int64_t i = base; i < train_.size(); ++i) split_.train.push_back(i);
  info_.class_names = train_.class_names();
  info_.task = cfg_.task;
  steps_per_epoch_ = int64_t(split_.train.size()) / cfg_.batch;
  FOCUS_CHECK(steps_per_epoch_ >= 1, ValueError, "--batch {} is larger than the {} training {}",
              cfg_.batch, split_.train.size(), unit);
  opt_ = make_optimizer(cfg_, model_.named_parameters());
  schedule_ = make_schedule(cfg_, steps_per_epoch_);
  if (!cfg_.resume.empty()) {
    load_checkpoint(cfg_.resume);
    if (group_->root()) recover_run_dir(cfg_.out, derived_files());
  }
  group_->broadcast_state();
}

Trainer::~Trainer() = default;

std::vector<RunFile> Trainer::derived_files() const {
  auto write_model = [this](const std::string& path) { save_model(path, model_, info_); };
  std::vector<RunFile> files = {
      {"metrics.jsonl",
       [this](const std::string& path) { write_file_atomic(path, to_json_lines(history_)); }},
      {"model_last.safetensors", write_model}};
  if (epochs_since_best_ == 0) files.push_back({"model_best.safetensors", write_model});
  return files;
}

StepStats Trainer::train_step(const Tensor& x, const Tensor& y) {
  const StepPlan plan = group_->plan(x.size(0));
  const auto [lo, hi] = plan.rank_rows();
  return step_rows(plan, x.slice(0, lo, hi), y.slice(0, lo, hi));
}

StepStats Trainer::step_rows(const StepPlan& plan, const Tensor& x, const Tensor& y) {
  const int64_t B = plan.rows, base = plan.rank_rows().first;
  opt_->zero_grad();
  std::vector<int64_t> correct(size_t(plan.last - plan.first), 0);
  std::vector<int64_t> counted(size_t(plan.last - plan.first), 0);
  const int64_t step = opt_->steps() + 1;
  const uint64_t salt = cfg_.seed * 0x100000001B3ull + uint64_t(opt_->steps());
  double stats[3] = {0, 0, 0};  // loss, correct, targets: this rank's, then every rank's
  stats[0] = group_->backward(plan, salt, step, [&](int64_t a, int64_t lo, int64_t hi) {
    const Tensor xm = x.slice(0, lo - base, hi - base).contiguous();
    const Tensor ym = y.slice(0, lo - base, hi - base).contiguous();
    // (b, classes) logits and (b) targets; text_mlm / sasrec: (M, classes), (M)
    auto [logits, targets] = model_.forward_scored(xm, ym);
    Tensor loss = this->loss(logits, targets);
    // Early-exit classifiers (models/vit.hpp): their loss, from the forward just run
    if (const Tensor exits = model_.exit_loss(ym); exits.defined()) loss = add(loss, exits);
    const double w = double(hi - lo) / double(B);
    correct[size_t(a - plan.first)] = count_correct(logits, targets);
    counted[size_t(a - plan.first)] = count_targets(targets);
    const double value = loss.item() * w;
    if (w != 1.0) loss = mul(loss, w);
    loss.backward();
    return value;
  });
  for (int64_t c : correct) stats[1] += double(c);
  for (int64_t c : counted) stats[2] += double(c);
  group_->sum(stats);
  StepStats s;
  s.loss = stats[0];
  s.correct = int64_t(stats[1]);
  s.targets = int64_t(stats[2]);
  kill_point("step");  // mid-step: gradients computed, the weights not yet updated
  const auto params = model_.parameters();
  s.grad_norm = cfg_.clip > 0 ? clip_grad_norm(params, cfg_.clip) : grad_norm(params);
  opt_->set_lr(schedule_->lr_at(opt_->steps()));
  opt_->step();
  group_->after_step(opt_->steps());
  return s;
}

Tensor Trainer::loss(const Tensor& logits, const Tensor& y) const {
  if (class_weights_.empty()) return cross_entropy(logits, y, cfg_.label_smoothing);
  // Weighted mean of the rows' (label-smoothed) cross-entropy, weights w[y_i]:
  //   l_i = (1 - eps) (-log p_i[y_i]) + eps * mean_c(-log p_i[c])
  const int64_t n = logits.size(0);
  const auto labels = y.to_vector<int64_t>();
  double wsum = 0;
  for (int64_t i = 0; i < n; ++i) wsum += class_weights_[size_t(labels[size_t(i)])];
  Tensor w64 = Tensor::empty({n, 1}, DType::F64);  // (n, 1): w[y_i] / sum of them
  double* p = w64.data<double>();
  for (int64_t i = 0; i < n; ++i) p[i] = wsum > 0 ? class_weights_[size_t(labels[size_t(i)])] / wsum : 0;
  const Tensor w = w64.to(logits.dtype());
  const Tensor lp = log_softmax(logits, 1);                                // (n, K)
  Tensor nll = neg(gather(lp, 1, reshape(y, {n, 1})));                     // (n, 1)
  if (cfg_.label_smoothing > 0) {
    const Tensor smooth = neg(mean(lp, {1}, true));                        // (n, 1)
    nll = add(mul(nll, 1 - cfg_.label_smoothing), mul(smooth, cfg_.label_smoothing));
  }
  return sum(mul(nll, w));
}

std::vector<nlohmann::json> Trainer::fit() {
  namespace fs = std::filesystem;
  const bool root = group_->root();
  if (root) {
    fs::create_directories(cfg_.out);
    remove_interrupted_writes(cfg_.out);
    write_file_atomic(cfg_.out + "/config.json", to_json(cfg_).dump(2) + "\n");
  }
  LoaderOptions lo;
  lo.batch_size = cfg_.batch;
  lo.shuffle = true;
  lo.drop_last = true;
  lo.seed = cfg_.seed;
  DataLoader loader(train_, split_.train, lo);  // the data's own augmentation
  Progress progress(stderr, 50, train_.unit() == "images" ? "img" : train_.unit());
  const auto t_start = std::chrono::steady_clock::now();
  double train_seconds = 0;
  for (const auto& h : history_) train_seconds = h.value("train_seconds_total", 0.0);
  for (int epoch = start_epoch_; epoch < cfg_.epochs; ++epoch) {
    model_.train();
    loader.set_epoch(uint64_t(epoch));
    const int64_t nb = loader.num_batches();
    if (root) progress.start_epoch(epoch + 1, cfg_.epochs, nb);
    group_->take_comm_seconds();
    const BudgetClock clock(parse_clock_kind(cfg_.time_clock));
    double loss_sum = 0;
    int64_t correct = 0, seen = 0, targets = 0;
    bool out_of_time = false;
    for (int64_t b = 0; b < nb; ++b) {
      const StepPlan plan = group_->plan(loader.batch_rows(b));
      const auto [r_lo, r_hi] = plan.rank_rows();
      Batch batch = loader.batch(b, r_lo, r_hi);  // this rank's share only
      const StepStats s = step_rows(plan, batch.x, batch.y);
      FOCUS_CHECK(std::isfinite(s.loss), StateError,
                  "training diverged at epoch {} batch {} (loss {}); lower --lr", epoch + 1, b + 1, s.loss);
      const int64_t n = plan.rows;
      loss_sum += s.loss * double(n);
      correct += s.correct;
      targets += s.targets;
      seen += n;
      if (root) progress.update(b, loss_sum / double(seen), double(correct) / double(std::max<int64_t>(targets, 1)), seen);
      if (cfg_.time_limit_min > 0) {  // any rank out of time stops every rank at this batch
        double late = train_seconds + clock.seconds() > cfg_.time_limit_min * 60 ? 1 : 0;
        group_->sum({&late, 1});
        if (late > 0) {
          out_of_time = true;
          break;
        }
      }
    }
    const BudgetReading spent = clock.read();
    const double epoch_seconds = spent.wall, stolen = spent.stolen;
    train_seconds += spent.budget;
    const double comm_seconds = group_->take_comm_seconds();
    EvalResult val = evaluate(model_, train_, split_.val);
    double val_acc = val.accuracy();  // rank 0's decides (every rank computed the same)
    group_->broadcast({&val_acc, 1});
    nlohmann::json rec = {{"epoch", epoch + 1},
                          {"step", opt_->steps()},
                          {"lr", opt_->lr()},
                          {"train_loss", loss_sum / double(std::max<int64_t>(seen, 1))},
                          {"train_acc", double(correct) / double(std::max<int64_t>(targets, 1))},
                          {"val_loss", val.loss},
                          {"val_acc", val.accuracy()},
                          {"epoch_seconds", epoch_seconds},
                          {"images_per_s", double(seen) / epoch_seconds},
                          {"train_seconds_total", train_seconds},
                          {"stolen_seconds", stolen},
                          {"wall_seconds", elapsed(t_start)}};
    if (targets != seen) {  // a sequence model's targets (positions) per second
      rec["train_targets"] = targets;
      rec["targets_per_s"] = double(targets) / epoch_seconds;
    }
    if (train_only_ > 0) rec["extra_train_images"] = train_only_;
    if (group_->size() > 1) {
      rec["ranks"] = group_->size();
      rec["comm_seconds"] = comm_seconds;  // rank 0's gradient exchange this epoch
    }
    history_.push_back(rec);
    if (root) progress.end_epoch(fmt::format(
        "epoch {}/{}: train loss {:.4f} acc {:.2f}% | val loss {:.4f} acc {:.2f}% | {:.0f} {}/s, {:.1f}s",
        epoch + 1, cfg_.epochs, rec["train_loss"].get<double>(), 100 * rec["train_acc"].get<double>(),
        val.loss, 100 * val.accuracy(), rec["images_per_s"].get<double>(),
        train_.unit() == "images" ? std::string("img") : train_.unit(), epoch_seconds));
    if (val_acc > best_val_acc_) {
      best_val_acc_ = val_acc;
      epochs_since_best_ = 0;
    } else {
      ++epochs_since_best_;
    }
    start_epoch_ = epoch + 1;
    if (root) {
      commit_run_state(cfg_.out, [this](const std::string& path) { save_checkpoint(path); },
                       derived_files());
      if (on_epoch) on_epoch(rec);
    }
    if (out_of_time) {
      if (root) std::fprintf(stderr, "time limit of %.1f min reached after epoch %d\n", cfg_.time_limit_min, epoch + 1);
      break;
    }
    if (cfg_.patience > 0 && epochs_since_best_ >= cfg_.patience) {
      if (root) std::fprintf(stderr, "early stopping: no improvement for %d epochs\n", cfg_.patience);
      break;
    }
  }
  return history_;
}

void Trainer::save_checkpoint(const std::string& path) const {
  std::map<std::string, std::string> meta = {
      {"format", "focus-checkpoint/1"},
      {"focus_version", FOCUS_VERSION},
      {"epoch", std::to_string(start_epoch_)},
      {"best_val_acc", fmt::format("{:.17g}", best_val_acc_)},
      {"epochs_since_best", std::to_string(epochs_since_best_)},
      {"model", model_.name()},
      {"model_config", model_.config().dump()},
      {"rngs", rng_states(model_).dump()},
      {"history", to_json_lines(history_)},
      {"config", to_json(cfg_).dump()}};
  save_safetensors(path, checkpoint_tensors(model_, *opt_), meta);
}

void Trainer::load_checkpoint(const std::string& path) {
  SafetensorsFile f = load_safetensors(path);
  auto meta = [&](const char* k) -> const std::string& {
    return metadata_field(f.metadata, k, path, "focus checkpoint");
  };
  FOCUS_CHECK(meta("format") == "focus-checkpoint/1", FormatError, "'{}': unsupported checkpoint format '{}'",
              path, meta("format"));
  FOCUS_CHECK(meta("model") == model_.name(), FormatError, "'{}' holds a {} model, not {}", path,
              meta("model"), model_.name());
  StateDict msd, osd;
  split_checkpoint_tensors(f.tensors, msd, osd);
  read_checkpoint_metadata(path, [&] {
    model_.load_state_dict(msd);
    opt_->load_state_dict(osd);
    restore_rng_states(model_, nlohmann::json::parse(meta("rngs")), path);
    start_epoch_ = std::stoi(meta("epoch"));
    best_val_acc_ = std::stod(meta("best_val_acc"));
    epochs_since_best_ = std::stoi(meta("epochs_since_best"));
    history_ = from_json_lines(meta("history"));
  });
}

}  // namespace focus
