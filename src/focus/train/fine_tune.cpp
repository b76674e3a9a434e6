// Fine-tuning on reviewed labels with a replay of the training data (fine_tune.hpp).
#include "focus/train/fine_tune.hpp"

#include <algorithm>
#include <cmath>

#include "focus/infer/file_metadata.hpp"
#include "focus/io/safetensors.hpp"
#include "focus/models/image_classifier.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/train/checkpoint.hpp"
#include "focus/train/trainer.hpp"

namespace focus {

int64_t replay_count(int64_t reviewed, double share, int64_t pool) {
  FOCUS_CHECK(share >= 0 && share < 1, ValueError, "replay share {} is not in [0, 1)", share);
  const int64_t m = int64_t(std::llround(double(reviewed) * share / (1 - share)));
  return std::clamp<int64_t>(m, 0, pool);
}

FineTuneResult fine_tune(const TrainConfig& cfg_in, ImageClassifier& model, const ModelInfo& info,
                         const ImageDataset& base, std::span<const uint8_t> pixels,
                         std::span<const int64_t> labels, const FineTuneSpec& spec) {
  const int64_t n = int64_t(labels.size()), numel = base.image_numel();
  FOCUS_CHECK(n > 0, ValueError, "fine-tuning: no reviewed image to train on");
  FOCUS_CHECK(int64_t(pixels.size()) == n * numel, ShapeError,
              "fine-tuning: {} bytes of reviewed pixels for {} images of ({}, {}, {})", pixels.size(), n,
              base.channels(), base.height(), base.width());
  FOCUS_CHECK(!spec.val.empty(), ValueError, "fine-tuning: the validation split is empty");
  for (const auto* part : {&spec.val, &spec.replay_pool})
    for (int64_t i : *part)
      FOCUS_CHECK(i >= 0 && i < base.size(), ValueError, "fine-tuning: index {} not in [0, {})", i, base.size());
  // The base images, then the reviewed ones (indices base.size() + j).
  std::vector<uint8_t> all(base.pixels(), base.pixels() + base.size() * numel);
  all.insert(all.end(), pixels.begin(), pixels.end());
  std::vector<int64_t> all_labels = base.labels();
  all_labels.insert(all_labels.end(), labels.begin(), labels.end());
  const ImageDataset data(std::move(all), std::move(all_labels), base.channels(), base.height(), base.width(),
                          base.class_names());  // ValueError for a label outside the classes
  TrainValSplit split;
  split.val = spec.val;
  for (int64_t j = 0; j < n; ++j) split.train.push_back(base.size() + j);
  std::vector<int64_t> pool = spec.replay_pool;
  const int64_t m = replay_count(n, spec.replay_share, int64_t(pool.size()));
  shuffle_indices(pool, cfg_in.seed * 0x9E3779B97F4A7C15ull + uint64_t(n));  // a fresh draw per label count
  split.train.insert(split.train.end(), pool.begin(), pool.begin() + m);
  std::sort(split.train.begin(), split.train.end());
  TrainConfig cfg = cfg_in;
  cfg.resume.clear();  // the weights are the caller's; the trainer starts at epoch 0
  const auto train_data = image_training_data(data, cfg, info.norm);
  ModelInfo run_info = info;
  Trainer trainer(cfg, model, *train_data, nullptr, split, run_info);
  FineTuneResult r;
  r.reviewed = n;
  r.replay = m;
  r.history = trainer.fit();
  for (const auto& h : r.history) r.best_val_acc = std::max(r.best_val_acc, h.value("val_acc", 0.0));
  return r;
}

LoadedModel load_fine_tune_start(const std::string& path, const std::vector<std::string>& class_names) {
  const std::string format = model_file_format(path);
  if (format != "focus-checkpoint/1") return load_model(path);
  const SafetensorsFile f = load_safetensors(path);
  auto meta = [&](const char* k) -> const std::string& {
    return metadata_field(f.metadata, k, path, "focus checkpoint");
  };
  LoadedModel out;
  read_model_metadata(path, [&] {
    Rng rng(0);
    out.model = make_image_model(meta("model"), nlohmann::json::parse(meta("model_config")), rng);
  });
  StateDict msd, osd;
  split_checkpoint_tensors(f.tensors, msd, osd);
  load_state_checked(*out.model, msd, path);
  out.model->eval();
  out.info.class_names = class_names;
  out.info.task = "fashion-mnist";
  return out;
}

}  // namespace focus
