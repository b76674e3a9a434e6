// Trainer for Seq2Seq models (g2p, translate): length-bucketed batches of about cfg.max_tokens
// padded tokens (text/batching.hpp), teacher forcing with label-smoothed cross-entropy over the
// non-padding target tokens, cfg.accum micro-batches per step (token-weighted, so the gradient
// equals the whole batch's), gradient clipping, the LR schedule (inverse-sqrt or cosine, per
// step), an exponential moving average of the weights (cfg.ema, used for evaluation and the saved
// models), and per epoch: validation loss, greedy decoding of the validation set with its metrics
// (g2p WER / PER, translate BLEU / chrF), a time limit, early stopping, and files in cfg.out:
//   metrics.jsonl               one JSON line per epoch (incl. training time: the dev curve)
//   config.json                 the effective configuration
//   model_last.safetensors      model after the latest epoch (EMA weights when cfg.ema > 0)
//   model_best.safetensors      model with the best validation metric so far
//   checkpoint_last.safetensors model + EMA + optimizer + RNG streams + history (resume)
//   model_epoch_NNN.safetensors with cfg.keep_epochs = K > 0: the last K epochs' models (as
//                               model_last), for checkpoint averaging (train/average.hpp)
//   model_avg.safetensors       with cfg.average_last = N: the mean of the last N epoch models,
//   average.json                scored on dev at the end (it replaces model_best if better)
// Resume starts at the epoch after the checkpoint and equals an uninterrupted run with the same
// seed and threads: batch order depends only on (seed, epoch).
// Several processes (mpirun): as the image trainer (trainer.hpp; train/distributed.hpp): every rank
// makes the same global batches and trains on its rows; rank 0 alone writes and prints; every
// rank evaluates, rank 0's dev metric decides; the time-based schedule runs on rank 0's clock.
// Commit protocol: as the image trainer's (trainer.hpp; train/checkpoint.hpp): the checkpoint is
// written first at an epoch end and is the one commit point; metrics.jsonl, model_last, the
// epoch's model_epoch file (and the removal of the one that left the kept window) and model_best
// (when the epoch set the best) are derived from it, written after it and rewritten from it on
// resume. When the average beats every epoch, the checkpoint is committed once more saying so
// ("best_source": "average"), then model_best is copied from model_avg (written before that
// commit); a resume from that checkpoint copies it again.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "focus/optim/optimizer.hpp"
#include "focus/optim/schedule.hpp"
#include "focus/train/checkpoint.hpp"
#include "focus/train/config.hpp"
#include "focus/train/distributed.hpp"
#include "focus/train/seq2seq_data.hpp"

namespace focus {

class Seq2Seq;

// "<out_dir>/model_epoch_NNN.safetensors" (epoch from 1, three digits or more).
std::string epoch_model_path(const std::string& out_dir, int epoch);

struct Seq2SeqStepStats {
  double loss = 0;       // mean over the batch's target tokens
  int64_t tokens = 0;    // target tokens
  double grad_norm = 0;  // before clipping
};

class Seq2SeqTrainer {
 public:
  // train: the encoded training pairs; dev: validation groups (decoded each epoch) and pairs
  // (teacher-forced loss). `meta` goes into the saved model files' "extra" metadata. `comm`: the
  // ranks training together (nullptr: this process alone); it must outlive the trainer.
  Seq2SeqTrainer(TrainConfig cfg, Seq2Seq& model, const Tokenizer& src_tok,
                 const Tokenizer& tgt_tok, const EncodedPairs& train, const EncodedPairs& dev_pairs,
                 const std::vector<RefGroup>& dev_groups, nlohmann::json meta = nlohmann::json::object(),
                 Communicator* comm = nullptr);
  ~Seq2SeqTrainer();

  std::vector<nlohmann::json> fit();  // epochs [start_epoch, cfg.epochs); returns the history
  // One optimizer step on a global batch (every rank passes the whole batch and trains on its
  // parts of train/distributed.hpp, token-weighted); stats are over the global batch.
  Seq2SeqStepStats train_step(const Seq2SeqBatch& batch);
  // Teacher-forced mean loss per target token on `data` (no graph, eval mode, EMA if on).
  double mean_loss(const EncodedPairs& data);

  void save_checkpoint(const std::string& path) const;
  void load_checkpoint(const std::string& path);  // FormatError on a mismatching checkpoint
  int start_epoch() const { return start_epoch_; }
  Optimizer& optimizer() { return *opt_; }
  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  std::function<void(const nlohmann::json&)> on_epoch;  // after every epoch's record, optional

 private:
  void ema_update();
  void swap_ema();  // exchanges the live weights and the average (no-op when EMA is off)
  void save(const std::string& path) const;
  void save_evaluated(const std::string& path);  // the weights evaluated: EMA when on
  // The files derived from the committed state, in the order the commit writes them.
  std::vector<RunFile> derived_files();
  void average_last_epochs();  // cfg.average_last: model_avg, average.json, maybe model_best

  TrainConfig cfg_;
  Seq2Seq& model_;
  const Tokenizer& src_tok_;
  const Tokenizer& tgt_tok_;
  const EncodedPairs& train_;
  const EncodedPairs& dev_pairs_;
  const std::vector<RefGroup>& dev_groups_;
  nlohmann::json meta_;
  std::unique_ptr<Optimizer> opt_;
  std::unique_ptr<LrSchedule> schedule_;
  std::vector<Tensor> ema_;  // one per parameter, when cfg.ema > 0
  int64_t steps_per_epoch_ = 0;
  double train_seconds_ = 0;  // training time so far (schedule_by_time)
  int start_epoch_ = 0;
  double best_ = 1e300;  // best validation primary metric (lower is better)
  bool best_is_average_ = false;  // model_best is model_avg (cfg.average_last)
  int epochs_since_best_ = 0;
  std::vector<nlohmann::json> history_;
  std::unique_ptr<Communicator> local_comm_;  // when no communicator was given
  std::unique_ptr<ReplicaGroup> group_;
};

}  // namespace focus
