// Fine-tuning outside the validation split and interleaved timing for the compression commands
// (fine_tune_cli.hpp).
#include "focus/apps/fine_tune_cli.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "focus/train/config.hpp"
#include "focus/train/fine_tune.hpp"

namespace focus {

void fine_tune_outside_val(ImageClassifier& model, const ModelInfo& info, const ImageDataset& train,
                           const std::vector<int64_t>& val, const SplitFineTune& ft) {
  if (ft.epochs <= 0) return;
  const std::set<int64_t> in_val(val.begin(), val.end());
  std::vector<uint8_t> px;
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < train.size() && int64_t(labels.size()) < ft.images; ++i) {
    if (in_val.count(i)) continue;
    px.insert(px.end(), train.image(i), train.image(i) + train.image_numel());
    labels.push_back(train.label(i));
  }
  TrainConfig cfg;
  cfg.model = model.name();
  cfg.model_config = model.config().dump();
  cfg.epochs = ft.epochs;
  cfg.batch = int(std::min<size_t>(size_t(cfg.batch), labels.size()));  // a small --finetune-images
  cfg.lr = ft.lr;
  cfg.min_lr = ft.lr / 100;
  cfg.warmup_epochs = 0;
  cfg.augment = false;
  cfg.data_dir = ft.data_dir;
  cfg.seed = ft.seed;
  cfg.val_size = int(val.size());
  cfg.out = ft.run_dir;
  std::filesystem::create_directories(cfg.out);
  FineTuneSpec spec;
  spec.replay_share = 0;
  spec.val = val;
  std::fprintf(stderr, "fine-tuning %d epochs on %zu training images (run files in %s)\n", ft.epochs,
               labels.size(), cfg.out.c_str());
  fine_tune(cfg, model, info, train, px, labels, spec);
  model.eval();
}

namespace {
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
}  // namespace

std::pair<double, double> interleaved_median_ms(const std::function<double()>& a,
                                                const std::function<double()>& b, int reps) {
  a();
  b();
  std::vector<double> ta, tb;
  for (int r = 0; r < reps; ++r) {
    if (r % 2 == 0) {
      ta.push_back(a());
      tb.push_back(b());
    } else {
      tb.push_back(b());
      ta.push_back(a());
    }
  }
  return {median(ta), median(tb)};
}

}  // namespace focus
