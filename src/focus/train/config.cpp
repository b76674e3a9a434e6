// TrainConfig binding to CLI11 and JSON (see config.hpp).
#include "focus/train/config.hpp"

#include <CLI/CLI.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "focus/io/config_json.hpp"
#include "focus/tensor/error.hpp"

namespace focus {

void bind_cli(CLI::App& app, TrainConfig& c, std::string& config_file, bool& dump) {
  app.add_option("--config", config_file, "JSON config file (flags override it)");
  app.add_flag("--dump-config", dump, "print the effective configuration as JSON and exit");
  visit_fields(c, [&](const char* name, auto& field, const char* help) {
    using F = std::decay_t<decltype(field)>;
    if constexpr (std::is_same_v<F, bool>) {
      app.add_option("--" + std::string(name), field, help)->default_val(field ? "true" : "false");
    } else {
      app.add_option("--" + std::string(name), field, help)->capture_default_str();
    }
  });
}

void apply_json(TrainConfig& c, const nlohmann::json& j, const std::string& source) {
  apply_json_fields(c, j, source);
}

void load_config_file(TrainConfig& c, const std::string& path) {
  apply_json(c, read_config_json(path), path);
}

nlohmann::json to_json(const TrainConfig& c) { return fields_to_json(c); }

bool is_seq2seq_task(const std::string& task) { return task == "g2p" || task == "translate"; }

TrainConfig with_task_defaults(TrainConfig c) {
  const bool s2s = is_seq2seq_task(c.task);
  if (c.model.empty())
    c.model = s2s ? "transformer"
              : c.task == "text" || c.task == "mlm" ? "text-transformer"
              : c.task == "recsys" ? "sasrec"
                                   : "vit";
  if (c.task == "recsys" && c.max_len == TrainConfig{}.max_len) c.max_len = 50;
  if (c.task == "text" && c.src_tokenizer.empty()) c.src_tokenizer = "word";
  if (c.task == "mlm" && c.src_tokenizer.empty()) c.src_tokenizer = "bpe";
  // Text: the image default (5,000 held-out images) would swallow a few thousand sentences.
  if (c.task == "text" && c.val_size == TrainConfig{}.val_size) c.val_size = 300;
  if (c.task == "mlm" && c.val_size == TrainConfig{}.val_size) c.val_size = 2000;
  if (s2s && c.src_tokenizer.empty()) c.src_tokenizer = c.task == "g2p" ? "char" : "bpe";
  if (s2s && c.tgt_tokenizer.empty()) c.tgt_tokenizer = c.task == "g2p" ? "word" : "bpe";
  return c;
}

void validate(const TrainConfig& c) {
  auto choice = [](const char* name, const std::string& v, std::initializer_list<const char*> ok) {
    for (const char* o : ok)
      if (v == o) return;
    std::string list;
    for (const char* o : ok) list += std::string(list.empty() ? "" : ", ") + o;
    throw ValueError(fmt::format("--{} '{}' is not one of: {}", name, v, list));
  };
  choice("task", c.task, {"fashion-mnist", "text", "mlm", "g2p", "translate", "recsys"});
  if (is_seq2seq_task(c.task)) {
    choice("model", c.model, {"transformer"});
    choice("src-tokenizer", c.src_tokenizer, {"char", "word", "bpe"});
    choice("tgt-tokenizer", c.tgt_tokenizer, {"char", "word", "bpe"});
    FOCUS_CHECK(c.max_tokens >= 16, ValueError, "--max-tokens must be >= 16, got {}", c.max_tokens);
    FOCUS_CHECK(c.bpe_merges >= 0, ValueError, "--bpe-merges must be >= 0, got {}", c.bpe_merges);
    FOCUS_CHECK(c.ema >= 0 && c.ema < 1, ValueError, "--ema must be in [0, 1), got {}", c.ema);
    FOCUS_CHECK(c.beam >= 1, ValueError, "--beam must be >= 1, got {}", c.beam);
    FOCUS_CHECK(c.length_penalty >= 0, ValueError, "--length-penalty must be >= 0, got {}",
                c.length_penalty);
    FOCUS_CHECK(c.eval_limit >= 0, ValueError, "--eval-limit must be >= 0, got {}", c.eval_limit);
    FOCUS_CHECK(c.keep_epochs >= 0, ValueError, "--keep-epochs must be >= 0, got {}",
                c.keep_epochs);
    FOCUS_CHECK(c.average_last == 0 || (c.average_last >= 2 && c.average_last <= c.keep_epochs),
                ValueError,
                "--average-last {} needs 2 <= N <= --keep-epochs ({}): the epochs' model files "
                "are what it averages",
                c.average_last, c.keep_epochs);
    FOCUS_CHECK(c.task != "translate" || (!c.train_file.empty() && !c.valid_file.empty()),
                ValueError, "--task translate needs --train FILE and --valid FILE (TSV: "
                "source<TAB>target per line)");
  } else if (c.task == "mlm") {
    choice("model", c.model, {"text-transformer"});
    choice("src-tokenizer", c.src_tokenizer, {"char", "word", "bpe"});
    FOCUS_CHECK(c.bpe_merges >= 0, ValueError, "--bpe-merges must be >= 0, got {}", c.bpe_merges);
    FOCUS_CHECK(c.min_count >= 1, ValueError, "--min-count must be >= 1, got {}", c.min_count);
    FOCUS_CHECK(c.max_len >= 4, ValueError, "--max-len must be >= 4, got {}", c.max_len);
    FOCUS_CHECK(c.mask_prob > 0 && c.mask_prob <= 1, ValueError,
                "--mask-prob must be in (0, 1], got {}", c.mask_prob);
    FOCUS_CHECK(!c.corpus.empty(), ValueError, "--corpus is empty (moby-dick, sotu, ham, sentiment)");
  } else if (c.task == "text") {
    choice("model", c.model, {"text-transformer"});
    choice("src-tokenizer", c.src_tokenizer, {"char", "word", "bpe"});
    FOCUS_CHECK(c.bpe_merges >= 0, ValueError, "--bpe-merges must be >= 0, got {}", c.bpe_merges);
    FOCUS_CHECK(c.min_count >= 1, ValueError, "--min-count must be >= 1, got {}", c.min_count);
    FOCUS_CHECK(c.max_len >= 1, ValueError, "--max-len must be >= 1, got {}", c.max_len);
    FOCUS_CHECK(c.token_dropout >= 0 && c.token_dropout < 1, ValueError,
                "--token-dropout must be in [0, 1), got {}", c.token_dropout);
    FOCUS_CHECK(c.data.empty() != c.train_file.empty(), ValueError,
                "--task text needs either --data sentiment[:<site>,...] or --train FILE (with "
                "--valid FILE), not both");
    FOCUS_CHECK(c.train_file.empty() || !c.valid_file.empty(), ValueError,
                "--task text --train FILE needs --valid FILE");
  } else if (c.task == "recsys") {
    choice("model", c.model, {"sasrec"});
    FOCUS_CHECK(!c.interactions.empty(), ValueError,
                "--task recsys needs --interactions FILE (ratings.dat or user,item,timestamp CSV) "
                "or --interactions synthetic");
    FOCUS_CHECK(c.max_len >= 1, ValueError, "--max-len must be >= 1, got {}", c.max_len);
    FOCUS_CHECK(c.eval_negatives >= 1, ValueError, "--eval-negatives must be >= 1, got {}", c.eval_negatives);
  } else {
    choice("model", c.model, {"cnn-se", "vit"});
  }
  choice("optimizer", c.optimizer, {"sgd", "adam", "adamw", "rmsprop"});
  choice("precision", c.precision, {"f32", "bf16"});
  choice("schedule", c.schedule, {"cosine", "step", "constant", "inverse-sqrt"});
  FOCUS_CHECK(c.epochs >= 1 || (c.task == "text" && c.epochs == 0), ValueError,
              "--epochs must be >= 1 (0 only for --task text: a convexly fitted n-gram branch "
              "alone), got {}", c.epochs);
  FOCUS_CHECK(c.batch >= 1, ValueError, "--batch must be >= 1, got {}", c.batch);
  FOCUS_CHECK(c.accum >= 1 && (is_seq2seq_task(c.task) || c.batch % c.accum == 0), ValueError,
              "--accum {} must be >= 1 and divide --batch {}", c.accum, c.batch);
  FOCUS_CHECK(c.dist_bucket_mb > 0, ValueError, "--dist-bucket-mb must be > 0, got {}",
              c.dist_bucket_mb);
  FOCUS_CHECK(c.dist_check_every >= 0, ValueError, "--dist-check-every must be >= 0, got {}",
              c.dist_check_every);
  FOCUS_CHECK(c.time_clock == "wall" || c.time_clock == "unstolen", ValueError,
              "--time-clock '{}' (use wall or unstolen)", c.time_clock);
  FOCUS_CHECK(c.lr > 0, ValueError, "--lr must be > 0, got {}", c.lr);
  FOCUS_CHECK(c.weight_decay >= 0, ValueError, "--weight-decay must be >= 0, got {}", c.weight_decay);
  FOCUS_CHECK(c.replay_share >= 0 && c.replay_share < 1, ValueError,
              "--replay-share must be in [0, 1), got {}", c.replay_share);
  FOCUS_CHECK(c.reviewed.empty() || c.extra_labels.empty(), ValueError,
              "--reviewed (fine-tuning) and --extra-labels (training a run) cannot be combined");
  FOCUS_CHECK(c.label_smoothing >= 0 && c.label_smoothing < 1, ValueError,
              "--label-smoothing must be in [0, 1), got {}", c.label_smoothing);
  FOCUS_CHECK(c.erase_p >= 0 && c.erase_p <= 1, ValueError, "--erase-p must be in [0, 1], got {}",
              c.erase_p);
  FOCUS_CHECK(c.threads >= 0, ValueError, "--threads must be >= 0, got {}", c.threads);
  FOCUS_CHECK(c.val_size >= 0, ValueError, "--val-size must be >= 0, got {}", c.val_size);
  FOCUS_CHECK(c.clip >= 0, ValueError, "--clip must be >= 0, got {}", c.clip);
  nlohmann::json mc;
  try {
    mc = nlohmann::json::parse(c.model_config);
  } catch (const nlohmann::json::exception&) {
    throw ValueError(fmt::format("--model-config is not valid JSON: {}", c.model_config));
  }
  FOCUS_CHECK(mc.is_object(), ValueError, "--model-config must be a JSON object, got {}",
              c.model_config);
}

}  // namespace focus
