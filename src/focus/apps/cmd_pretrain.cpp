// `focus pretrain`: masked-token pretraining of the text-transformer encoder on unlabelled text
// (train/pretrain.hpp), the start `focus cv --init` / `focus train --task text --init` fine-tune.
//   focus pretrain --corpus moby-dick,sotu,ham --time-limit-min 25 --out runs/mlm
#include <CLI/CLI.hpp>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "focus/apps/commands.hpp"
#include "focus/io/atomic_file.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/kernels/precision.hpp"
#include "focus/train/config.hpp"
#include "focus/train/pretrain.hpp"

namespace focus {

Command add_pretrain_command(CLI::App& app) {
  CLI::App* sub = app.add_subcommand(
      "pretrain", "masked-token pretraining of the text-transformer encoder on unlabelled text "
                  "(15% of tokens: 80% <mask>, 10% random, 10% kept; head tied to the embedding)");
  struct State {
    TrainConfig cfg;
    std::string config_file;
    bool dump = false;
  };
  auto st = std::make_shared<State>();
  st->cfg.task = "mlm";
  st->cfg.epochs = 2;
  st->cfg.batch = 64;
  st->cfg.lr = 1e-3;
  st->cfg.weight_decay = 0.01;
  st->cfg.bpe_merges = 1500;
  st->cfg.warmup_epochs = 0.1;
  st->cfg.out = "runs/pretrain";
  bind_cli(*sub, st->cfg, st->config_file, st->dump);
  return [st] {
    TrainConfig cfg = st->cfg;
    if (!st->config_file.empty()) load_config_file(cfg, st->config_file);
    cfg = with_task_defaults(cfg);
    FOCUS_CHECK(cfg.task == "mlm", ValueError, "focus pretrain: --task {} (only mlm)", cfg.task);
    validate(cfg);
    if (st->dump) {
      std::printf("%s\n", to_json(cfg).dump(2).c_str());
      return 0;
    }
    const ScopedPrecision precision(supported_precision(cfg.precision));
    if (cfg.threads > 0) set_num_threads(cfg.threads);
    const auto texts = unlabelled_sentences(cfg.corpus);
    std::fprintf(stderr, "focus: %zu sentences of unlabelled text (%s); %d threads\n", texts.size(),
                 cfg.corpus.c_str(), num_threads());
    const PretrainResult r = run_pretraining(cfg, texts);
    std::printf("pretrained: %lld training / %lld held-out sequences, vocabulary %lld, %d epochs, %.0f s\n"
                "held-out masked-token accuracy %.2f%%, loss %.4f\nmodel: %s\n",
                (long long)r.train_rows, (long long)r.val_rows, (long long)r.vocab_size, r.epochs,
                r.train_seconds, 100 * r.val_acc, r.val_loss, r.model_path.c_str());
    write_file_atomic(cfg.out + "/pretrain.json",
                      nlohmann::json{{"train_rows", r.train_rows}, {"val_rows", r.val_rows},
                                     {"vocab_size", r.vocab_size}, {"epochs", r.epochs},
                                     {"train_seconds", r.train_seconds}, {"val_masked_acc", r.val_acc},
                                     {"val_loss", r.val_loss}, {"config", to_json(cfg)}}
                              .dump(2) + "\n");
    return 0;
  };
}

}  // namespace focus
