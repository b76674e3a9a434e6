// Seq2Seq trainer (see seq2seq_trainer.hpp).
#include "focus/train/seq2seq_trainer.hpp"

#include <chrono>
#include <cmath>
#include <filesystem>

#include "focus/autograd/node.hpp"
#include "focus/infer/seq2seq_file.hpp"
#include "focus/io/atomic_file.hpp"
#include "focus/io/safetensors.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/models/seq2seq.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/optim/clip.hpp"
#include "focus/optim/optimizer.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/text/batching.hpp"
#include "focus/train/average.hpp"
#include "focus/train/budget_clock.hpp"
#include "focus/train/checkpoint.hpp"
#include "focus/train/data_parallel.hpp"
#include "focus/train/trainer.hpp"

namespace focus {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::vector<int64_t> lengths(const std::vector<std::vector<int64_t>>& seqs, int64_t extra) {
  std::vector<int64_t> out;
  out.reserve(seqs.size());
  for (const auto& s : seqs) out.push_back(int64_t(s.size()) + extra);
  return out;
}

std::vector<std::vector<int64_t>> batches_for(const EncodedPairs& d, const TrainConfig& cfg,
                                              uint64_t epoch, bool shuffle) {
  TokenBatchOptions o;
  o.max_tokens = cfg.max_tokens;
  o.shuffle = shuffle;
  o.seed = cfg.seed;
  return make_token_batches(lengths(d.src, 0), lengths(d.tgt, 1), o, epoch);
}

// (rows lo..hi) of a batch, trimmed to its own longest source and target.
Seq2SeqBatch rows_of(const Seq2SeqBatch& b, int64_t lo, int64_t hi) {
  Seq2SeqBatch m;
  const std::vector<int64_t> len = b.src_len.slice(0, lo, hi).to_vector<int64_t>();
  int64_t S = 1, T = 1;
  for (int64_t l : len) S = std::max(S, l);
  const Tensor out = b.tgt_out.slice(0, lo, hi).contiguous();
  const std::vector<int64_t> y = out.to_vector<int64_t>();
  const int64_t Tb = out.size(1);
  for (int64_t r = 0; r < hi - lo; ++r)
    for (int64_t t = 0; t < Tb; ++t)
      if (y[size_t(r * Tb + t)] != Seq2Seq::kPad) {
        T = std::max(T, t + 1);
        ++m.tgt_tokens;
      }
  m.src = b.src.slice(0, lo, hi).slice(1, 0, S).contiguous();
  m.src_len = b.src_len.slice(0, lo, hi).contiguous();
  m.tgt_in = b.tgt_in.slice(0, lo, hi).slice(1, 0, T).contiguous();
  m.tgt_out = out.slice(1, 0, T).contiguous();
  return m;
}

// The task's dev metrics into an epoch's (or the average's) record; returns them as a log phrase.
std::string add_dev_metrics(nlohmann::json& rec, const std::string& task, const CorpusScore& dev) {
  if (task == "g2p") {
    rec["val_wer"] = dev.wer;
    rec["val_per"] = dev.per;
    return fmt::format("dev WER {:.2f}% PER {:.2f}%", dev.wer, dev.per);
  }
  rec["val_bleu"] = dev.bleu;
  rec["val_chrf"] = dev.chrf;
  return fmt::format("dev BLEU {:.2f} chrF {:.2f}", dev.bleu, dev.chrf);
}

std::string epoch_model_name(int epoch) { return fmt::format("model_epoch_{:03d}.safetensors", epoch); }

}  // namespace

std::string epoch_model_path(const std::string& out_dir, int epoch) {
  return out_dir + "/" + epoch_model_name(epoch);
}

Seq2SeqTrainer::Seq2SeqTrainer(TrainConfig cfg, Seq2Seq& model, const Tokenizer& src_tok,
                               const Tokenizer& tgt_tok, const EncodedPairs& train,
                               const EncodedPairs& dev_pairs,
                               const std::vector<RefGroup>& dev_groups, nlohmann::json meta,
                               Communicator* comm)
    : cfg_(std::move(cfg)),
      model_(model),
      src_tok_(src_tok),
      tgt_tok_(tgt_tok),
      train_(train),
      dev_pairs_(dev_pairs),
      dev_groups_(dev_groups),
      meta_(std::move(meta)) {
  validate(cfg_);
  FOCUS_CHECK(!train_.src.empty(), ValueError, "Seq2SeqTrainer: no training pairs");
  if (!comm) {
    local_comm_ = make_local_communicator();
    comm = local_comm_.get();
  }
  group_ = std::make_unique<ReplicaGroup>(*comm, model_, cfg_);
  steps_per_epoch_ = int64_t(batches_for(train_, cfg_, 0, true).size());
  opt_ = make_optimizer(cfg_, model_.named_parameters());
  schedule_ = make_schedule(cfg_, steps_per_epoch_);
  if (cfg_.ema > 0)
    for (const Tensor& p : model_.parameters()) ema_.push_back(p.detach().clone());
  if (!cfg_.resume.empty()) {
    load_checkpoint(cfg_.resume);
    if (group_->root()) recover_run_dir(cfg_.out, derived_files());
  }
  group_->broadcast_state();
}

Seq2SeqTrainer::~Seq2SeqTrainer() = default;

std::vector<RunFile> Seq2SeqTrainer::derived_files() {
  auto evaluated = [this](const std::string& path) { save_evaluated(path); };
  std::vector<RunFile> files = {
      {"metrics.jsonl",
       [this](const std::string& path) { write_file_atomic(path, to_json_lines(history_)); }},
      {"model_last.safetensors", evaluated}};
  if (cfg_.keep_epochs > 0) {
    files.push_back({epoch_model_name(start_epoch_), evaluated});
    if (start_epoch_ > cfg_.keep_epochs)
      files.push_back({epoch_model_name(start_epoch_ - cfg_.keep_epochs), nullptr});  // removed
  }
  if (epochs_since_best_ > 0) return files;  // model_best was written by an earlier commit
  if (!best_is_average_) {
    files.push_back({"model_best.safetensors", evaluated});
  } else {  // the commit of average_last_epochs: model_avg, written before it, is the best
    files.push_back({"model_best.safetensors", [this](const std::string& path) {
                       const Seq2SeqModelFile f = load_seq2seq(cfg_.out + "/model_avg.safetensors");
                       save_seq2seq(path, *f.model, *f.src_tok, *f.tgt_tok, f.task, f.extra);
                     }});
  }
  return files;
}

Seq2SeqStepStats Seq2SeqTrainer::train_step(const Seq2SeqBatch& b) {
  // Parts (train/distributed.hpp): --accum of them per rank, each split once more across the
  // threads with --data-parallel; this rank runs its own.
  const int64_t B = b.src.size(0);
  const StepPlan plan = group_->plan(B);
  opt_->zero_grad();
  Seq2SeqStepStats s;
  s.tokens = b.tgt_tokens;
  const uint64_t salt = cfg_.seed * 0x100000001B3ull + uint64_t(opt_->steps());
  double stats[2] = {0, group_->root() ? train_seconds_ : 0.0};  // loss; rank 0's clock
  stats[0] = group_->backward(plan, salt, opt_->steps() + 1, [&](int64_t, int64_t lo, int64_t hi) {
    const Seq2SeqBatch m = lo == 0 && hi == B ? b : rows_of(b, lo, hi);
    Tensor loss = model_.loss(m.src, m.src_len, m.tgt_in, m.tgt_out, cfg_.label_smoothing);
    const double w = double(m.tgt_tokens) / double(b.tgt_tokens);  // token-weighted mean
    if (w != 1.0) loss = mul(loss, w);
    loss.backward();
    return loss.item();
  });
  group_->sum(stats);
  s.loss = stats[0];
  if (group_->size() > 1) train_seconds_ = stats[1];
  kill_point("step");  // mid-step: gradients computed, the weights not yet updated
  const auto params = model_.parameters();
  s.grad_norm = cfg_.clip > 0 ? clip_grad_norm(params, cfg_.clip) : grad_norm(params);
  int64_t at = opt_->steps();
  if (cfg_.schedule_by_time && cfg_.time_limit_min > 0) {  // the share of the time spent
    const double total = double(steps_per_epoch_) * cfg_.epochs;
    at = std::max(at, int64_t(total * std::min(1.0, train_seconds_ / (cfg_.time_limit_min * 60))));
  }
  opt_->set_lr(schedule_->lr_at(at));
  opt_->step();
  ema_update();
  group_->after_step(opt_->steps());
  return s;
}

void Seq2SeqTrainer::ema_update() {
  if (ema_.empty()) return;
  // Warm start (as TensorFlow's ExponentialMovingAverage with num_updates): early averages do
  // not drag the random initialisation along.
  const double t = double(opt_->steps());
  const double d = std::min(cfg_.ema, (1.0 + t) / (10.0 + t));
  const auto params = model_.parameters();
  NoGradGuard no_grad;
  for (size_t i = 0; i < params.size(); ++i)
    dispatch_float(params[i].dtype(), "ema", [&]<class T>() {
      T* e = ema_[i].data<T>();
      const T* p = params[i].data<T>();
      const int64_t n = params[i].numel();
#pragma omp parallel for simd if (parallel : n > kOptimParallelMin)
      for (int64_t j = 0; j < n; ++j) e[j] = T(d * double(e[j]) + (1.0 - d) * double(p[j]));
    });
}

void Seq2SeqTrainer::swap_ema() {
  if (ema_.empty()) return;
  const auto params = model_.parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor live = params[i].detach().clone();
    Tensor p = params[i];
    p.copy_(ema_[i]);
    ema_[i] = live;
  }
}

double Seq2SeqTrainer::mean_loss(const EncodedPairs& data) {
  NoGradGuard no_grad;
  model_.eval();
  double sum = 0;
  int64_t tokens = 0;
  for (const auto& idx : batches_for(data, cfg_, 0, false)) {
    const Seq2SeqBatch b = make_batch(data, idx);
    sum += model_.loss(b.src, b.src_len, b.tgt_in, b.tgt_out, 0.0).item() * double(b.tgt_tokens);
    tokens += b.tgt_tokens;
  }
  return tokens ? sum / double(tokens) : 0.0;
}

void Seq2SeqTrainer::save(const std::string& path) const {
  save_seq2seq(path, model_, src_tok_, tgt_tok_, cfg_.task, meta_);
}

void Seq2SeqTrainer::save_evaluated(const std::string& path) {
  swap_ema();
  try {
    save(path);
  } catch (...) {
    swap_ema();
    throw;
  }
  swap_ema();
}

std::vector<nlohmann::json> Seq2SeqTrainer::fit() {
  namespace fs = std::filesystem;
  const bool root = group_->root();
  if (root) {
    fs::create_directories(cfg_.out);
    remove_interrupted_writes(cfg_.out);
    write_file_atomic(cfg_.out + "/config.json", to_json(cfg_).dump(2) + "\n");
  }
  const auto t_start = std::chrono::steady_clock::now();
  double train_seconds = history_.empty() ? 0 : history_.back().value("train_seconds_total", 0.0);
  const bool tty = root && isatty(fileno(stderr));
  for (int epoch = start_epoch_; epoch < cfg_.epochs; ++epoch) {
    model_.train();
    const auto batches = batches_for(train_, cfg_, uint64_t(epoch), true);
    const BudgetClock clock(parse_clock_kind(cfg_.time_clock));
    double loss_sum = 0;
    int64_t tokens = 0, src_tokens = 0;
    bool out_of_time = false;
    group_->take_comm_seconds();
    for (size_t i = 0; i < batches.size(); ++i) {
      const Seq2SeqBatch b = make_batch(train_, batches[i]);
      train_seconds_ = train_seconds + clock.seconds();
      const Seq2SeqStepStats s = train_step(b);
      FOCUS_CHECK(std::isfinite(s.loss), StateError,
                  "training diverged at epoch {} batch {} (loss {}); lower --lr", epoch + 1, i + 1,
                  s.loss);
      loss_sum += s.loss * double(s.tokens);
      tokens += s.tokens;
      src_tokens += b.src_tokens;
      const double sec = clock.wall_seconds();
      if (root && ((i + 1) % 100 == 0 || i + 1 == batches.size()))
        std::fprintf(stderr, tty ? "\r  epoch %d: %zu/%zu loss %.4f, %.0f tokens/s   " : "  epoch %d: %zu/%zu loss %.4f, %.0f tokens/s\n",
                     epoch + 1, i + 1, batches.size(), loss_sum / double(tokens),
                     double(tokens + src_tokens) / sec);
      if (cfg_.time_limit_min > 0) {  // any rank out of time stops every rank at this batch
        double late = train_seconds + clock.seconds() > cfg_.time_limit_min * 60 ? 1 : 0;
        group_->sum({&late, 1});
        if (late > 0) {
          out_of_time = true;
          break;
        }
      }
    }
    if (tty) std::fprintf(stderr, "\n");
    const double comm_seconds = group_->take_comm_seconds();
    const BudgetReading spent = clock.read();
    const double epoch_seconds = spent.wall, stolen = spent.stolen;
    train_seconds += spent.budget;
    swap_ema();  // evaluate the averaged weights
    model_.eval();
    const double dev_loss = mean_loss(dev_pairs_);
    SearchOptions greedy;
    CorpusScore dev =
        score_corpus(model_, cfg_.task, src_tok_, tgt_tok_, dev_groups_, greedy, cfg_.eval_limit);
    swap_ema();  // back to the live weights
    group_->broadcast({&dev.primary, 1});  // rank 0's decides (every rank computed the same)
    nlohmann::json rec = {{"epoch", epoch + 1},
                          {"step", opt_->steps()},
                          {"lr", opt_->lr()},
                          {"train_loss", loss_sum / double(std::max<int64_t>(tokens, 1))},
                          {"val_loss", dev_loss},
                          {"epoch_seconds", epoch_seconds},
                          {"tokens_per_s", double(tokens + src_tokens) / epoch_seconds},
                          {"train_seconds_total", train_seconds},
                          {"stolen_seconds", stolen},
                          {"val_decode_seconds", dev.seconds},
                          {"wall_seconds", seconds_since(t_start)}};
    const std::string summary = add_dev_metrics(rec, cfg_.task, dev);
    if (group_->size() > 1) {
      rec["ranks"] = group_->size();
      rec["comm_seconds"] = comm_seconds;  // rank 0's gradient exchange this epoch
    }
    history_.push_back(rec);
    if (root) std::fprintf(stderr, "epoch %d/%d: train loss %.4f | val loss %.4f, %s | %.0f tokens/s, %.1fs (%.1f min total)\n",
                 epoch + 1, cfg_.epochs, rec["train_loss"].get<double>(), dev_loss, summary.c_str(),
                 rec["tokens_per_s"].get<double>(), epoch_seconds, train_seconds / 60);
    if (dev.primary < best_) {
      best_ = dev.primary;
      best_is_average_ = false;
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
      if (root)
        std::fprintf(stderr, "time limit of %.1f min reached in epoch %d\n", cfg_.time_limit_min,
                     epoch + 1);
      break;
    }
    if (cfg_.patience > 0 && epochs_since_best_ >= cfg_.patience) {
      if (root) std::fprintf(stderr, "early stopping: no improvement for %d epochs\n", cfg_.patience);
      break;
    }
  }
  if (cfg_.average_last > 0 && root) average_last_epochs();  // rank 0's files
  return history_;
}

void Seq2SeqTrainer::average_last_epochs() {
  std::vector<std::string> in;  // the last epochs' files, oldest first
  for (int e = start_epoch_; e >= 1 && int(in.size()) < cfg_.average_last; --e) {
    std::string path = epoch_model_path(cfg_.out, e);
    if (!std::filesystem::exists(path)) break;
    in.insert(in.begin(), std::move(path));
  }
  if (in.size() < 2) {
    std::fprintf(stderr, "--average-last %d: %zu epoch model(s) in %s, nothing to average\n",
                 cfg_.average_last, in.size(), cfg_.out.c_str());
    return;
  }
  const std::string out = cfg_.out + "/model_avg.safetensors";
  average_model_files(in, out);
  Seq2SeqModelFile f = load_seq2seq(out);
  const CorpusScore dev = score_corpus(*f.model, cfg_.task, *f.src_tok, *f.tgt_tok, dev_groups_,
                                       SearchOptions{}, cfg_.eval_limit);
  const bool better = dev.primary < best_;
  nlohmann::json rec = {{"averaged", in},
                        {"val_primary", dev.primary},
                        {"best_epoch_val_primary", best_},
                        {"kept_as_best", better}};
  add_dev_metrics(rec, cfg_.task, dev);
  write_file_atomic(cfg_.out + "/average.json", rec.dump(2) + "\n");
  std::fprintf(stderr, "average of the last %zu epochs: dev %s %.2f (best epoch %.2f)%s\n",
               in.size(), cfg_.task == "g2p" ? "WER" : "100 - BLEU", dev.primary, best_,
               better ? ": kept as model_best" : "");
  if (better) {  // committed as an epoch is: model_best is derived from model_avg
    best_ = dev.primary;
    best_is_average_ = true;
    epochs_since_best_ = 0;
    commit_run_state(cfg_.out, [this](const std::string& path) { save_checkpoint(path); },
                     derived_files());
  }
}

void Seq2SeqTrainer::save_checkpoint(const std::string& path) const {
  StateDict t = checkpoint_tensors(model_, *opt_);
  for (size_t i = 0; i < ema_.size(); ++i) t["ema." + std::to_string(i)] = ema_[i];
  std::map<std::string, std::string> meta = {
      {"format", "focus-seq2seq-checkpoint/1"},
      {"focus_version", FOCUS_VERSION},
      {"epoch", std::to_string(start_epoch_)},
      {"best", fmt::format("{:.17g}", best_)},
      {"best_source", best_is_average_ ? "average" : "epoch"},
      {"epochs_since_best", std::to_string(epochs_since_best_)},
      {"model_config", to_json(model_.config()).dump()},
      {"rngs", rng_states(model_).dump()},
      {"history", to_json_lines(history_)},
      {"config", to_json(cfg_).dump()}};
  save_safetensors(path, t, meta);
}

void Seq2SeqTrainer::load_checkpoint(const std::string& path) {
  SafetensorsFile f = load_safetensors(path);
  auto meta = [&](const char* k) -> const std::string& {
    return metadata_field(f.metadata, k, path, "focus seq2seq checkpoint");
  };
  FOCUS_CHECK(meta("format") == "focus-seq2seq-checkpoint/1", FormatError,
              "'{}': not a seq2seq checkpoint (format '{}')", path, meta("format"));
  StateDict msd, osd;
  split_checkpoint_tensors(f.tensors, msd, osd);
  read_checkpoint_metadata(path, [&] {
    FOCUS_CHECK(meta("model_config") == to_json(model_.config()).dump(), FormatError,
                "'{}' holds a different model ({})", path, meta("model_config"));
    model_.load_state_dict(msd);
    opt_->load_state_dict(osd);
    for (size_t i = 0; i < ema_.size(); ++i) {
      auto it = f.tensors.find("ema." + std::to_string(i));
      FOCUS_CHECK(it != f.tensors.end(), FormatError, "'{}': no moving average 'ema.{}'", path, i);
      ema_[i].copy_(it->second);
    }
    restore_rng_states(model_, nlohmann::json::parse(meta("rngs")), path);
    start_epoch_ = std::stoi(meta("epoch"));
    best_ = std::stod(meta("best"));
    const auto source = f.metadata.find("best_source");  // absent in older checkpoints
    best_is_average_ = source != f.metadata.end() && source->second == "average";
    epochs_since_best_ = std::stoi(meta("epochs_since_best"));
    history_ = from_json_lines(meta("history"));
  });
}

}  // namespace focus
