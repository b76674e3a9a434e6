// Sequential recommendation data and runs (see recsys_data.hpp).
#include "focus/train/recsys_data.hpp"

#include <algorithm>
#include <cstdio>

#include "focus/autograd/node.hpp"
#include "focus/data/synthetic_interactions.hpp"
#include "focus/infer/model_file.hpp"
#include "focus/io/atomic_file.hpp"
#include "focus/models/sasrec.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/train/trainer.hpp"

namespace focus {

SequenceData::SequenceData(const Interactions& d, int64_t max_len) : d_(d), max_len_(max_len) {
  FOCUS_CHECK(max_len >= 1, ValueError, "SequenceData: max_len {} must be >= 1", max_len);
  for (const auto& seq : d.sequences) labels_.push_back(leave_one_out_target(seq, Fold::Valid));
}

std::vector<int64_t> SequenceData::trainable_users() const {
  std::vector<int64_t> out;
  for (size_t u = 0; u < d_.sequences.size(); ++u)
    if (d_.sequences[u].size() >= 4) out.push_back(int64_t(u));
  return out;
}

Tensor history_batch(const std::vector<std::span<const int64_t>>& histories, int64_t max_len) {
  const int64_t B = int64_t(histories.size());
  int64_t L = 1;
  for (const auto& h : histories) {
    FOCUS_CHECK(!h.empty(), ValueError, "history_batch: an empty history");
    L = std::max<int64_t>(L, std::min<int64_t>(int64_t(h.size()), max_len));
  }
  Tensor x = Tensor::zeros({B, L}, DType::I64);  // (B, L)
  int64_t* p = x.data<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    const auto& h = histories[size_t(b)];
    const int64_t n = std::min<int64_t>(int64_t(h.size()), max_len);
    std::copy(h.end() - n, h.end(), p + b * L);
  }
  return x;
}

Batch SequenceData::batch(std::span<const int64_t> indices, const BatchDraw& draw) const {
  Batch b;
  b.indices.assign(indices.begin(), indices.end());
  const int64_t B = int64_t(indices.size());
  std::vector<std::span<const int64_t>> hist;
  for (int64_t u : indices) {
    FOCUS_CHECK(u >= 0 && u < size(), ValueError, "SequenceData: user {} not in [0, {})", u, size());
    hist.push_back(leave_one_out_history(d_.sequences[size_t(u)], Fold::Valid));
  }
  if (!draw.train) {
    b.x = history_batch(hist, max_len_);
    b.y = Tensor::empty({B}, DType::I64);  // (B)
    for (int64_t i = 0; i < B; ++i) b.y.data<int64_t>()[i] = labels_[size_t(indices[size_t(i)])];
    return b;
  }
  // Training: inputs are all but the last of the training fold's last max_len + 1 items.
  std::vector<std::span<const int64_t>> inputs;
  for (auto& h : hist) {
    const auto w = h.last(std::min<size_t>(h.size(), size_t(max_len_) + 1));
    inputs.push_back(w.size() > 1 ? w.first(w.size() - 1) : w);
  }
  b.x = history_batch(inputs, max_len_);  // (B, L)
  const int64_t L = b.x.size(1);
  b.y = Tensor::full({B, L}, -100, DType::I64);  // (B, L)
  int64_t* y = b.y.data<int64_t>();
  for (int64_t i = 0; i < B; ++i) {
    const auto w = hist[size_t(i)].last(std::min<size_t>(hist[size_t(i)].size(), size_t(max_len_) + 1));
    for (size_t t = 1; t < w.size(); ++t) y[i * L + int64_t(t) - 1] = w[t];
  }
  return b;
}

BatchScorer model_scorer(Classifier& model, int64_t max_len) {
  return [&model, max_len](std::span<const int64_t>, const std::vector<std::span<const int64_t>>& hist,
                           std::span<float> scores) {
    NoGradGuard no_grad;
    const bool was_training = model.is_training();
    model.eval();
    const Tensor s = model.forward(history_batch(hist, max_len)).to(DType::F32).contiguous();  // (B, V)
    model.train(was_training);
    FOCUS_CHECK(size_t(s.numel()) == scores.size(), ShapeError,
                "model_scorer: {} scores for a buffer of {}", s.numel(), scores.size());
    std::copy(s.data<float>(), s.data<float>() + s.numel(), scores.begin());
  };
}

namespace {

nlohmann::json to_json(const RankingReport& r) {
  return {{"hr", r.full.hr}, {"ndcg", r.full.ndcg}, {"sampled_hr", r.sampled.hr},
          {"sampled_ndcg", r.sampled.ndcg}, {"users", r.full.users}};
}

}  // namespace

nlohmann::json run_recsys(const TrainConfig& cfg, Communicator* comm) {
  const bool synthetic = cfg.interactions == "synthetic";
  std::unique_ptr<SyntheticInteractions> gen;
  Interactions loaded;
  if (synthetic)
    gen = std::make_unique<SyntheticInteractions>(SyntheticConfig::from_json(nlohmann::json::parse(cfg.synthetic)));
  else
    loaded = read_interactions(cfg.interactions);
  const Interactions& d = gen ? gen->data() : loaded;
  FOCUS_CHECK(d.num_users() >= 2, ValueError, "'{}': {} users with 3 or more interactions; need 2 or more",
              cfg.interactions, d.num_users());
  const SequenceData data(d, cfg.max_len);
  const bool root = !comm || comm->rank() == 0;  // rank 0 alone reports and writes
  TrainValSplit split;
  split.train = data.trainable_users();
  for (int64_t u = 0; u < d.num_users(); ++u) split.val.push_back(u);
  if (root)
    std::fprintf(stderr, "focus: recsys: %lld users, %lld items, %lld interactions (%lld users under 3 skipped); "
               "%zu training users\n", (long long)d.num_users(), (long long)d.num_items() - 1,
               (long long)d.num_interactions(), (long long)d.skipped_users, split.train.size());
  nlohmann::json mc = nlohmann::json::parse(cfg.model_config);
  FOCUS_CHECK(mc.is_object(), ValueError, "--model-config must be a JSON object");
  mc["num_items"] = d.num_items();
  mc["max_len"] = cfg.max_len;
  Rng rng(cfg.seed);
  SasRec model(SasRecConfig::from_json(mc), rng);
  if (root) {
    std::filesystem::create_directories(cfg.out);
    if (synthetic) write_interactions_csv(cfg.out + "/interactions.csv", d);
  }
  ModelInfo info;
  info.task = "recsys";
  Trainer trainer(cfg, model, data, comm, split, info);
  const auto history = trainer.fit();
  if (!root) return {};  // the ranks hold the same model; rank 0 evaluates it
  // The best model (validation HR@1) ranks the test items.
  const LoadedClassifier best = load_classifier(cfg.out + "/model_best.safetensors");
  nlohmann::json out;
  out["model"] = to_json(evaluate_ranking(d, Fold::Test, model_scorer(*best.model, cfg.max_len), 10,
                                          cfg.eval_negatives, cfg.seed));
  out["popularity"] = to_json(evaluate_ranking(d, Fold::Test, popularity_scorer(d), 10, cfg.eval_negatives, cfg.seed));
  out["markov"] = to_json(evaluate_ranking(d, Fold::Test, markov_scorer(d), 10, cfg.eval_negatives, cfg.seed));
  if (gen) {
    const RankingMetrics o = gen->oracle_expected(Fold::Test);
    out["oracle"] = {{"hr", o.hr}, {"ndcg", o.ndcg}, {"users", o.users}, {"expected", true}};
  }
  double targets = 0, seconds = 0;
  for (const auto& h : history) {
    targets += h.value("train_targets", 0.0);
    seconds += h.value("epoch_seconds", 0.0);
  }
  out["train"] = {{"epochs", history.size()}, {"seconds", seconds},
                  {"targets_per_s", seconds > 0 ? targets / seconds : 0.0},
                  {"parameters", model.num_parameters()}};
  out["data"] = {{"users", d.num_users()}, {"items", d.num_items() - 1},
                 {"interactions", d.num_interactions()}, {"source", cfg.interactions}};
  out["k"] = 10;
  out["negatives"] = cfg.eval_negatives;
  write_file_atomic(cfg.out + "/test_metrics.json", out.dump(2) + "\n");
  return out;
}

}  // namespace focus
