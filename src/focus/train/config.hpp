// TrainConfig: the one typed option schema for training. The same field list (visit_fields)
// binds the CLI flags, reads and validates a JSON config file, and prints the effective
// configuration (--dump-config). Precedence: defaults < --config FILE < flags.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace CLI { class App; }

namespace focus {

struct TrainConfig {
  std::string task = "fashion-mnist";  // fashion-mnist | text | mlm | g2p | translate | recsys
  std::string model;                   // cnn-se | vit | transformer; "" = the task's default
  std::string model_config = "{}";     // JSON object of model hyper-parameters
  int epochs = 10;
  int batch = 128;
  int accum = 1;                       // micro-batches per optimizer step (batch = accum * micro)
  bool data_parallel = false;          // one micro-batch per thread at once (data_parallel.hpp)
  double dist_bucket_mb = 4.0;         // mpirun: gradients all-reduced in buckets of this size
  bool dist_overlap = true;            // mpirun: start each bucket's all-reduce during backward
  int dist_check_every = 100;          // mpirun: steps between parameter checksum compares (0 = off)
  std::string optimizer = "adamw";     // sgd | adam | adamw | rmsprop
  double lr = 1e-3;
  double min_lr = 1e-5;
  double weight_decay = 0.05;
  double momentum = 0.9;
  bool nesterov = true;
  std::string schedule = "cosine";     // cosine | step | constant
  double warmup_epochs = 1.0;
  int step_every = 10;                 // step schedule: epochs between decays
  double step_gamma = 0.1;
  double clip = 1.0;                   // global grad-norm clip, 0 = off
  double label_smoothing = 0.0;
  bool augment = true;                 // random crop (pad 2) + horizontal flip
  double erase_p = 0.0;                // random erasing probability
  int val_size = 5000;
  int patience = 0;                    // early stopping on val accuracy, 0 = off
  double time_limit_min = 0.0;         // stop after this many minutes of training, 0 = off
  std::string time_clock = "wall";     // the budget's clock: wall | unstolen (budget_clock.hpp)
  bool schedule_by_time = false;       // seq2seq: the schedule runs over the time limit, not epochs
  int threads = 0;                     // 0 = FOCUS_NUM_THREADS or all cores
  std::string precision = "f32";       // f32 | bf16: the GEMMs' and convolutions' (kernels/precision.hpp)
  uint64_t seed = 1;
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::string out = "runs/latest";
  std::string resume;                  // checkpoint to resume from
  int limit_train = 0;                 // use only the first N training examples (tests, smoke runs)
  std::string extra_labels;            // images: reviewed labels (`focus review export`) to train on too
  std::string reviewed;                // images: fine-tune --resume's weights on these reviewed labels
  double replay_share = 0.5;           // fine-tuning: share of the training data in the mix
  // Sequence-to-sequence tasks (g2p, translate).
  std::string train_file;              // translate: source<TAB>target training TSV
  std::string valid_file;              // translate: validation TSV
  std::string test_file;               // translate: test TSV (optional)
  std::string cmudict;                 // g2p: CMUdict dict.txt ("" = data cache)
  bool keep_stress = false;            // g2p: keep the vowels' stress digits
  int max_tokens = 4096;               // padded tokens per batch (length-bucketed batches)
  std::string src_tokenizer;           // char | word | bpe; "" = task default (g2p char, else bpe)
  std::string tgt_tokenizer;           // char | word | bpe; "" = task default (g2p word, else bpe)
  int bpe_merges = 8000;               // merges learned by a bpe tokenizer
  double ema = 0.0;                    // decay of the weights' moving average (0 = off)
  int beam = 5;                        // beam size of the final test evaluation
  double length_penalty = 1.0;         // beam search: score = log p / length^alpha
  int eval_limit = 0;                  // validation sentences decoded per epoch (0 = all)
  int keep_epochs = 0;                 // seq2seq: keep the last N epochs' model files (0 = none)
  int average_last = 0;                // seq2seq: average the last N epoch models at the end (0 = off)
  // Text classification (task text).
  std::string data;                    // built-in data: sentiment | sentiment:<site>[,<site>]
  bool class_weights = false;          // weight the loss by balanced class weights
  int min_count = 2;                   // tokenizer: symbols seen fewer times -> <unk>
  int max_len = 64;                    // tokens kept of each text
  double token_dropout = 0.0;          // training tokens replaced by <unk> with this probability
  // Sequential recommendation (task recsys).
  std::string interactions;            // ratings.dat, user,item,timestamp CSV, or "synthetic"
  std::string synthetic = "{}";        // the generator's config (data/synthetic_interactions.hpp)
  int eval_negatives = 100;            // sampled negatives of the (reported apart) sampled metrics
  std::string init;                    // text: start the encoder from this pretrained model file
  // Masked-token pretraining (task mlm, `focus pretrain`; train/pretrain.hpp).
  std::string corpus = "moby-dick,sotu,ham";  // unlabelled corpora of the data cache
  double mask_prob = 0.15;             // share of each sequence's tokens predicted
};

// Fills what "" leaves to the task (model, tokenizers); ValueError for an unknown task.
TrainConfig with_task_defaults(TrainConfig c);
bool is_seq2seq_task(const std::string& task);

// Calls v(name, field&, help) for every field, in a fixed order.
template <class V>
void visit_fields(TrainConfig& c, V&& v) {
  v("task", c.task, "task: fashion-mnist | text | g2p | translate | recsys");
  v("model", c.model,
    "model: cnn-se | vit (images), text-transformer (text), transformer (g2p, translate), "
    "sasrec (recsys); "
    "default by task");
  v("model-config", c.model_config, "model hyper-parameters as a JSON object");
  v("epochs", c.epochs, "training epochs");
  v("batch", c.batch, "images per optimizer step");
  v("accum", c.accum, "micro-batches per optimizer step (gradient accumulation)");
  v("data-parallel", c.data_parallel,
    "split each micro-batch across the threads and run the parts at once, one "
    "single-threaded forward/backward per thread (faster for small models on few cores)");
  v("dist-bucket-mb", c.dist_bucket_mb,
    "under mpirun: all-reduce the gradients in buckets of this many MiB, in a fixed order");
  v("dist-overlap", c.dist_overlap,
    "under mpirun: start a bucket's all-reduce as soon as backward has made its gradients final "
    "(false: all after the backward, the reference; the same sums on 2 ranks)");
  v("dist-check-every", c.dist_check_every,
    "under mpirun: compare a checksum of the parameters across ranks every N steps (0 = off)");
  v("optimizer", c.optimizer, "sgd | adam | adamw | rmsprop");
  v("lr", c.lr, "peak learning rate");
  v("min-lr", c.min_lr, "final learning rate of the cosine schedule");
  v("weight-decay", c.weight_decay, "weight decay (decoupled for adamw)");
  v("momentum", c.momentum, "momentum (sgd, rmsprop)");
  v("nesterov", c.nesterov, "Nesterov momentum (sgd)");
  v("schedule", c.schedule, "learning-rate schedule: cosine | step | constant");
  v("warmup-epochs", c.warmup_epochs, "linear warm-up length in epochs");
  v("step-every", c.step_every, "step schedule: epochs between decays");
  v("step-gamma", c.step_gamma, "step schedule: decay factor");
  v("clip", c.clip, "clip the global gradient norm to this (0 = off)");
  v("label-smoothing", c.label_smoothing, "cross-entropy label smoothing");
  v("augment", c.augment, "random crop and horizontal flip");
  v("erase-p", c.erase_p, "random erasing probability");
  v("val-size", c.val_size, "training images held out for validation");
  v("patience", c.patience, "early stopping: epochs without improvement (0 = off)");
  v("time-limit-min", c.time_limit_min, "stop training after this many minutes (0 = off)");
  v("time-clock", c.time_clock,
    "clock of --time-limit-min: wall | unstolen (wall minus the CPU time the hypervisor gave "
    "other guests, /proc/stat steal)");
  v("schedule-by-time", c.schedule_by_time,
    "seq2seq: with --time-limit-min, the LR schedule advances with the time spent (it ends when "
    "the time runs out) or the steps taken, whichever is further");
  v("threads", c.threads, "threads (0 = FOCUS_NUM_THREADS or all cores)");
  v("precision", c.precision,
    "f32 | bf16: mixed precision, the GEMMs' and convolutions' inputs rounded to bfloat16 with F32 "
    "accumulation, F32 master weights and everything else (needs AVX512-BF16 or AMX)");
  v("seed", c.seed, "random seed");
  v("data-dir", c.data_dir, "Fashion-MNIST directory (Debian's dataset-fashion-mnist)");
  v("out", c.out, "output directory for checkpoints and metrics");
  v("resume", c.resume, "checkpoint to resume from");
  v("limit-train", c.limit_train, "use only the first N training examples (0 = all)");
  v("extra-labels", c.extra_labels,
    "images: also train on the reviewed items of this labels.jsonl (`focus review export`): "
    "their PNG inputs with the reviewers' labels join the training split (never validation)");
  v("reviewed", c.reviewed,
    "images: fine-tune the weights of --resume (a checkpoint or a model file) on the reviewed "
    "items of this queue store (sqlite path or URL, postgresql:// URL) or labels.jsonl export, "
    "mixed with a replay of the training split (train/fine_tune.hpp); writes a candidate for "
    "`focus promote`");
  v("replay-share", c.replay_share,
    "fine-tuning (--reviewed): share of the training data in the fine-tuning mix, in [0, 1) "
    "(it keeps the model from forgetting the training distribution)");
  v("train", c.train_file,
    "translate: training TSV (source<TAB>target per line); text: label<TAB>text TSV or JSON "
    "lines (.jsonl: {\"label\", \"text\"})");
  v("valid", c.valid_file, "translate, text: validation file");
  v("test", c.test_file, "translate, text: test file (optional)");
  v("cmudict", c.cmudict, "g2p: CMUdict dict.txt (default: the data cache)");
  v("keep-stress", c.keep_stress, "g2p: keep stress digits on vowels");
  v("max-tokens", c.max_tokens, "seq2seq: padded tokens per batch");
  v("src-tokenizer", c.src_tokenizer, "seq2seq, text: char | word | bpe (default by task)");
  v("tgt-tokenizer", c.tgt_tokenizer, "seq2seq: char | word | bpe (default by task)");
  v("bpe-merges", c.bpe_merges, "seq2seq, text: merges learned by a bpe tokenizer");
  v("ema", c.ema, "seq2seq: decay of the weights' moving average used for evaluation (0 = off)");
  v("beam", c.beam, "seq2seq: beam size of the final test evaluation");
  v("length-penalty", c.length_penalty, "seq2seq: beam score = log p / length^alpha");
  v("eval-limit", c.eval_limit, "seq2seq: validation sentences decoded per epoch (0 = all)");
  v("keep-epochs", c.keep_epochs,
    "seq2seq: also write each epoch's evaluated weights as model_epoch_NNN.safetensors and keep "
    "the last N of them (0 = none), for `focus average`");
  v("average-last", c.average_last,
    "seq2seq: at the end, average the last N epochs' models (needs --keep-epochs >= N) into "
    "model_avg.safetensors, score it on dev, and keep it as model_best when it is better (0 = off)");
  v("data", c.data,
    "text: built-in data instead of --train/--valid: sentiment (the three sites pooled) or "
    "sentiment:<site>[,<site>] (amazon, imdb, yelp); --val-size held out, stratified");
  v("class-weights", c.class_weights, "text: weight the loss by balanced class weights (imbalance)");
  v("min-count", c.min_count, "text: tokenizer symbols seen fewer times in training become <unk>");
  v("max-len", c.max_len, "text: tokens kept of each text; recsys: items of history kept (default 50)");
  v("token-dropout", c.token_dropout,
    "text: replace each training token by <unk> with this probability (word dropout)");
  v("interactions", c.interactions,
    "recsys: MovieLens ratings.dat (UserID::MovieID::Rating::Timestamp), a user,item,timestamp "
    "CSV, or 'synthetic' (the generator of --synthetic)");
  v("synthetic", c.synthetic,
    "recsys: the synthetic generator's config as a JSON object (users, items, clusters, "
    "successors, min_len, max_len, p_transition, p_taste, zipf, seed)");
  v("eval-negatives", c.eval_negatives,
    "recsys: negatives of the sampled HR/NDCG (reported apart from the full ranking)");
  v("init", c.init,
    "text: start the encoder from this pretrained model (focus pretrain's model_best.safetensors; "
    "its tokenizer and encoder, a fresh pooling and head)");
  v("corpus", c.corpus,
    "mlm: unlabelled corpora, comma-separated: moby-dick, sotu, ham, sentiment (the sentiment "
    "sentences without labels: transductive)");
  v("mask-prob", c.mask_prob, "mlm: share of each sequence's tokens masked and predicted");
}

// Adds one --flag per field to `app` (and --config FILE, --dump-config).
void bind_cli(CLI::App& app, TrainConfig& c, std::string& config_file, bool& dump);
// Reads a JSON object of fields into c; throws ValueError naming an unknown key or a bad type.
void apply_json(TrainConfig& c, const nlohmann::json& j, const std::string& source);
void load_config_file(TrainConfig& c, const std::string& path);
nlohmann::json to_json(const TrainConfig& c);
// Checks ranges and choices; throws ValueError naming the field and the value.
void validate(const TrainConfig& c);

}  // namespace focus
