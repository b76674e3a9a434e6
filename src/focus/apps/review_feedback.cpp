// The shifted stream and the feedback run of `focus simulate-review` (review_feedback.hpp).
#include "focus/apps/review_feedback.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>

#include "focus/apps/calibration_cli.hpp"
#include "focus/infer/calibration.hpp"
#include "focus/infer/image_predictor.hpp"
#include "focus/infer/model_calibration.hpp"
#include "focus/review/capacity.hpp"
#include "focus/review/scores.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/train/fine_tune.hpp"
#include "focus/train/trainer.hpp"

namespace focus {

using json = nlohmann::json;
using namespace focus::review;

ImageDataset shift_images(const ImageDataset& ds, const std::string& kind, uint64_t seed) {
  FOCUS_CHECK(kind == "none" || kind == "invert" || kind == "rotate90" || kind == "noise", ValueError,
              "shift '{}' is not one of: none | {}", kind, kShiftKinds);
  if (kind == "none") return ds;
  const int64_t N = ds.size(), C = ds.channels(), H = ds.height(), W = ds.width(), D = ds.image_numel();
  FOCUS_CHECK(kind != "rotate90" || H == W, ShapeError, "rotate90 needs square images, not {}x{}", H, W);
  std::vector<uint8_t> px(ds.pixels(), ds.pixels() + N * D);  // (N, C, H, W)
  for (int64_t i = 0; i < N; ++i) {
    uint8_t* img = px.data() + i * D;
    const uint8_t* src = ds.pixels() + i * D;
    if (kind == "invert") {
      for (int64_t j = 0; j < D; ++j) img[j] = uint8_t(255 - src[j]);
    } else if (kind == "rotate90") {  // clockwise: out[r][c] = in[H - 1 - c][r]
      for (int64_t c = 0; c < C; ++c)
        for (int64_t r = 0; r < H; ++r)
          for (int64_t k = 0; k < W; ++k) img[(c * H + r) * W + k] = src[(c * H + (H - 1 - k)) * W + r];
    } else {
      Rng rng(seed * 0x100000001B3ull + uint64_t(i));
      for (int64_t j = 0; j < D; ++j) {
        // Box-Muller from two uniforms: one normal draw per pixel.
        const double u1 = 1 - rng.uniform(), u2 = rng.uniform();
        const double z = std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
        img[j] = uint8_t(std::lround(std::clamp(double(src[j]) + 0.35 * 255 * z, 0.0, 255.0)));
      }
    }
  }
  return ImageDataset(std::move(px), ds.labels(), C, H, W, ds.class_names());
}

namespace {

struct Slices {
  std::vector<int64_t> gate, eval, stream;  // indices into the shifted test set
};

double accuracy_of(const std::vector<double>& probs, const std::vector<int64_t>& labels, int64_t K) {
  int64_t right = 0;
  for (size_t i = 0; i < labels.size(); ++i)
    right += predicted_class({probs.data() + int64_t(i) * K, size_t(K)}) == labels[i];
  return labels.empty() ? 0 : double(right) / double(labels.size());
}

// The served model's calibrated probabilities (n, K) for samples `idx` of `ds`.
std::vector<double> probabilities(const std::string& model, const ImageDataset& ds, const std::vector<int64_t>& idx) {
  const ImagePredictor p(model);
  return softmax_rows(dataset_logits(p, ds, idx), p.num_classes(), p.temperature());
}

struct Run {
  json rounds = json::array(), windows = json::array();
  int64_t labels = 0;
  double eval_at_target = -1;  // eval-slice accuracy of the model served once `target` labels came
  std::string final_model;
};

class FeedbackSim {
 public:
  FeedbackSim(const FeedbackOptions& o) : o_(o) {
    namespace fs = std::filesystem;
    FOCUS_CHECK(o.budget > 0 && o.budget <= 1, ValueError, "feedback budget {} is not in (0, 1]", o.budget);
    FOCUS_CHECK(o.every >= 1 && o.target >= 1 && o.window >= 1 && o.epochs >= 1 && o.batch >= 1, ValueError,
                "feedback: --feedback-every, the target, the window, epochs and batch must be >= 1");
    clean_ = load_fashion_mnist(o.data_dir, Split::Test);
    shifted_ = shift_images(clean_, o.shift, o.seed);
    std::vector<int64_t> order(size_t(shifted_.size()));
    std::iota(order.begin(), order.end(), int64_t(0));
    shuffle_indices(order, o.seed + 101);
    if (o.limit > 0 && o.limit < int64_t(order.size())) order.resize(size_t(o.limit));
    const int64_t n = int64_t(order.size());
    FOCUS_CHECK(o.gate_items >= 1 && o.eval_items >= 1 && o.gate_items + o.eval_items + 10 <= n, ValueError,
                "feedback: {} gate + {} evaluation items leave fewer than 10 of the {} stream items",
                o.gate_items, o.eval_items, n);
    s_.gate.assign(order.begin(), order.begin() + o.gate_items);
    s_.eval.assign(order.begin() + o.gate_items, order.begin() + o.gate_items + o.eval_items);
    s_.stream.assign(order.begin() + o.gate_items + o.eval_items, order.end());
    K_ = shifted_.num_classes();
    gate_y_ = dataset_labels(shifted_, s_.gate);
    eval_y_ = dataset_labels(shifted_, s_.eval);
    stream_y_ = dataset_labels(shifted_, s_.stream);
    // Reviewers: right with probability p, drawn once per stream item; a wrong answer is another class.
    Rng rng(o.seed + 1);
    for (int64_t y : stream_y_) {
      const bool right = rng.uniform() < o.reviewer_accuracy;
      const int64_t other = (y + 1 + rng.randint(K_ - 1)) % K_;
      reviewer_label_.push_back(right ? y : other);
    }
    // Poisson arrivals at o.rate an hour.
    double now = 0;
    Rng arr(o.seed + 3);
    for (size_t i = 0; i < s_.stream.size(); ++i) {
      now += -std::log(1 - arr.uniform()) * 3600 / o.rate;
      times_.push_back(now);
    }
    // Fine-tuning data: Fashion-MNIST's training images (replay: the served model's run's training
    // split), then the gate slice (the trainer reports its accuracy on it each epoch).
    const ImageDataset train = load_fashion_mnist(o.data_dir, Split::Train);
    const SplitSpec ss = run_split_spec(o.model);
    TrainConfig sc;
    sc.val_size = int(ss.val_size);
    sc.seed = ss.seed;
    sc.limit_train = int(ss.limit_train);
    replay_pool_ = default_split(train.labels(), train.num_classes(), sc).train;
    std::vector<uint8_t> px(train.pixels(), train.pixels() + train.size() * train.image_numel());
    std::vector<int64_t> y = train.labels();
    for (int64_t g : s_.gate) {
      px.insert(px.end(), shifted_.image(g), shifted_.image(g) + shifted_.image_numel());
      y.push_back(shifted_.label(g));
    }
    for (size_t j = 0; j < s_.gate.size(); ++j) gate_in_base_.push_back(train.size() + int64_t(j));
    base_ = ImageDataset(std::move(px), std::move(y), train.channels(), train.height(), train.width(),
                         train.class_names());
    fs::create_directories(o.work_dir);
  }

  json summary() const {
    return {{"shift", o_.shift}, {"gate_items", s_.gate.size()}, {"eval_items", s_.eval.size()},
            {"stream_items", s_.stream.size()}, {"budget", o_.budget}, {"rate_per_hour", o_.rate},
            {"capacity_per_hour", o_.budget * o_.rate}, {"queue_cap", o_.queue},
            {"reviewer_accuracy", o_.reviewer_accuracy}, {"feedback_every", o_.every},
            {"target_labels", o_.target}, {"replay_share", o_.replay_share}, {"lr", o_.lr},
            {"epochs_per_round", o_.epochs}, {"batch", o_.batch}, {"window_items", o_.window},
            {"gate", "accuracy on the gate slice (shifted, labelled, never trained on): candidate >= served"}};
  }

  // The stream replayed; with feedback, fine-tuning rounds every o.every labels.
  Run run(bool feedback) {
    namespace fs = std::filesystem;
    Run r;
    std::string served = o_.model;
    const int64_t S = int64_t(s_.stream.size());
    std::vector<double> probs = probabilities(served, shifted_, s_.stream);  // (S, K)
    double eval_acc = accuracy_of(probabilities(served, shifted_, s_.eval), eval_y_, K_);
    r.rounds.push_back({{"labels", 0}, {"eval_accuracy", eval_acc}, {"promoted", true}});
    CapacityOptions co;
    co.capacity_per_hour = o_.budget * o_.rate;
    co.queue_cap = o_.queue;
    co.seed = o_.seed + 17;
    CapacityController ctl(co);
    ReviewQueue queue(o_.queue);
    const double service_s = 3600 / co.capacity_per_hour;
    double free_at = times_.empty() ? 0 : times_.front();
    std::vector<int64_t> answer(size_t(S), -1);      // the model's answer at arrival
    std::vector<int64_t> final_answer(size_t(S), -1);
    std::vector<uint8_t> labelled(size_t(S), 0);
    std::vector<uint8_t> px;                          // the reviewed images so far, (n, 1, 28, 28)
    std::vector<int64_t> labels, labelled_idx;      // the reviewers' labels, their items in shifted_
    int64_t next_i = 0;  // the first stream item not yet arrived (items from it on are rescored)
    auto fine_tune_round = [&] {
      const auto t0 = std::chrono::steady_clock::now();
      LoadedModel start = load_model(served);
      TrainConfig cfg;
      cfg.model = start.model->name();  // the registry's name ("cnn_se"), for the run's config.json
      std::replace(cfg.model.begin(), cfg.model.end(), '_', '-');
      cfg.epochs = o_.epochs;
      cfg.batch = o_.batch;
      cfg.lr = o_.lr;
      cfg.schedule = "constant";
      cfg.warmup_epochs = 0;
      cfg.augment = false;
      cfg.seed = o_.seed + uint64_t(labels.size());
      cfg.out = o_.work_dir + "/round_" + std::to_string(labels.size());
      FineTuneSpec spec{o_.replay_share, replay_pool_, gate_in_base_};
      const FineTuneResult ft = fine_tune(cfg, *start.model, start.info, base_, px, labels, spec);
      const std::string cand = cfg.out + "/model_last.safetensors";  // not picked on the gate slice
      // On the items it was just trained on (the reviewers' labels): how far the candidate moved.
      const double served_trained = accuracy_of(probabilities(served, shifted_, labelled_idx), labels, K_);
      const double cand_trained = accuracy_of(probabilities(cand, shifted_, labelled_idx), labels, K_);
      const double served_gate = accuracy_of(probabilities(served, shifted_, s_.gate), gate_y_, K_);
      const double cand_gate = accuracy_of(probabilities(cand, shifted_, s_.gate), gate_y_, K_);
      const bool promote = cand_gate >= served_gate;
      if (promote) {
        served = cand;
        // Items not yet arrived are answered and routed by the new model.
        const std::vector<int64_t> rest(s_.stream.begin() + next_i, s_.stream.end());
        const std::vector<double> p = probabilities(served, shifted_, rest);
        std::copy(p.begin(), p.end(), probs.begin() + next_i * K_);
        eval_acc = accuracy_of(probabilities(served, shifted_, s_.eval), eval_y_, K_);
      }
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      r.rounds.push_back({{"labels", labels.size()}, {"reviewed_images", ft.reviewed},
                          {"replay_images", ft.replay}, {"candidate_gate_accuracy", cand_gate},
                          {"served_gate_accuracy", served_gate}, {"promoted", promote},
                          {"served_on_trained_labels", served_trained}, {"candidate_on_trained_labels", cand_trained},
                          {"eval_accuracy", eval_acc}, {"seconds", secs}});
      if (!o_.quiet)
        std::fprintf(stderr, "feedback: %zu labels: gate %.2f%% -> candidate %.2f%% (%s), evaluation slice %.2f%% (%.0f s)\n",
                     labels.size(), 100 * served_gate, 100 * cand_gate, promote ? "promoted" : "kept", 100 * eval_acc, secs);
    };
    auto on_label = [&](int64_t i) {  // stream item i reviewed: its label comes back
      const int64_t lab = reviewer_label_[size_t(i)];
      final_answer[size_t(i)] = lab;
      labelled[size_t(i)] = 1;
      const uint8_t* img = shifted_.image(s_.stream[size_t(i)]);
      px.insert(px.end(), img, img + shifted_.image_numel());
      labels.push_back(lab);
      labelled_idx.push_back(s_.stream[size_t(i)]);
      if (feedback && int64_t(labels.size()) % o_.every == 0) fine_tune_round();
      if (int64_t(labels.size()) == o_.target) r.eval_at_target = eval_acc;
    };
    auto serve_until = [&](double t) {
      while (!queue.empty() && free_at <= t) {
        const QueuedItem q = *queue.pop();
        free_at = std::max(free_at, q.enqueued_s) + service_s;
        on_label(q.id);
      }
      if (queue.empty()) free_at = std::max(free_at, t);
    };
    std::vector<int64_t> window_ends;
    for (int64_t i = 0; i < S; ++i) {
      serve_until(times_[size_t(i)]);
      next_i = i + 1;
      const std::span<const double> row(probs.data() + i * K_, size_t(K_));
      answer[size_t(i)] = predicted_class(row);
      const double score = 1 - *std::max_element(row.begin(), row.end());
      const Route route = ctl.route(times_[size_t(i)], score, queue.size());
      if (route == Route::Accept) {
        final_answer[size_t(i)] = answer[size_t(i)];
      } else if (auto out = queue.push({i, score, times_[size_t(i)], false})) {
        final_answer[size_t(out->id)] = answer[size_t(out->id)];  // overflow: the model's, flagged
      }
      if ((i + 1) % o_.window == 0 || i + 1 == S) window_ends.push_back(i + 1);
    }
    while (auto q = queue.pop()) final_answer[size_t(q->id)] = answer[size_t(q->id)];  // pending at the end
    // Windows: the model's answer at arrival and the final answer (a label that came after the
    // window's end still counts for its item: the system's answer to it).
    int64_t from = 0;
    for (int64_t end : window_ends) {
      int64_t w_right = 0, w_sys = 0, w_n = 0, reviewed = 0;
      for (int64_t i = from; i < end; ++i) {
        ++w_n;
        w_right += answer[size_t(i)] == stream_y_[size_t(i)];
        w_sys += final_answer[size_t(i)] == stream_y_[size_t(i)];
        reviewed += labelled[size_t(i)];
      }
      r.windows.push_back({{"first_item", from}, {"end_item", end},
                           {"model_accuracy", double(w_right) / double(w_n)},
                           {"system_accuracy", double(w_sys) / double(w_n)}, {"reviewed", reviewed}});
      from = end;
    }
    r.labels = int64_t(labels.size());
    r.final_model = served;
    return r;
  }

  // A model on the evaluation slice's images before the shift (what replay is there to keep).
  double clean_eval_accuracy(const std::string& model) const {
    return accuracy_of(probabilities(model, clean_, s_.eval), eval_y_, K_);
  }

 private:
  FeedbackOptions o_;
  ImageDataset clean_, shifted_, base_;
  Slices s_;
  int64_t K_ = 0;
  std::vector<int64_t> gate_y_, eval_y_, stream_y_, reviewer_label_, replay_pool_, gate_in_base_;
  std::vector<double> times_;
};

json run_json(const Run& r, const FeedbackSim& sim) {
  return {{"labels", r.labels}, {"rounds", r.rounds}, {"windows", r.windows},
          {"eval_accuracy_at_target", r.eval_at_target < 0 ? json(nullptr) : json(r.eval_at_target)},
          {"final_model", r.final_model}, {"final_clean_eval_accuracy", sim.clean_eval_accuracy(r.final_model)}};
}

}  // namespace

json run_feedback(const FeedbackOptions& o) {
  FeedbackSim sim(o);
  json j = sim.summary();
  j["clean_eval_accuracy"] = sim.clean_eval_accuracy(o.model);
  const Run without = sim.run(false);
  const Run with = sim.run(true);
  j["without"] = run_json(without, sim);
  j["with"] = run_json(with, sim);
  j["base_eval_accuracy"] = without.rounds[0]["eval_accuracy"];
  if (with.eval_at_target >= 0 && without.eval_at_target >= 0)
    j["after_target"] = {{"labels", o.target}, {"with", with.eval_at_target}, {"without", without.eval_at_target},
                         {"gain_points", 100 * (with.eval_at_target - without.eval_at_target)}};
  else
    j["after_target"] = nullptr;  // fewer labels than the target came back
  return j;
}

}  // namespace focus
