// `focus simulate-review --model M`: replays the Fashion-MNIST test set as a stream through the
// review routing of focus/review with simulated reviewers (right with probability p, drawn once
// per item so every policy meets the same reviewers) and reports, as text or JSON, and with --out
// as review.json + a self-contained review.html with SVG charts (review_page.cpp), each chart
// also as its own .svg file:
//   - calibration of the model on the stream (ECE / NLL at T = 1 and at the file's T);
//   - system accuracy against the review budget (0-50%) for the random, least-confidence, margin
//     and entropy policies (offline: the budget's share of highest scores deferred) and for the
//     online capacity controller (Poisson arrivals at --rate, capacity = budget x rate), with and
//     without audits;
//   - the risk-coverage curve and AURC of each score;
//   - the risk-target policy: thresholds set on the first --calib items of the stream for several
//     epsilons, applied to the rest; and the guarantee check over --risk-splits random half/half
//     calibration/test splits (the share of splits whose test error among accepted <= epsilon);
//   - the capacity controller when traffic doubles half-way (--rate, then 2 x --rate): inflow per
//     hour against capacity, queue length, overflow, audit estimate, nothing lost.
// --stream shifted replays the test images under a shift (--shift; review_feedback.hpp) instead;
// --feedback-every N adds the feedback run: labels fed back into the served model every N reviews
// (fine-tuning with replay, gated on a held-out slice), accuracy over time with and without it.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <map>
#include <numeric>
#include <optional>

#include "focus/apps/calibration_cli.hpp"
#include "focus/apps/commands.hpp"
#include "focus/apps/review_feedback.hpp"
#include "focus/apps/review_page.hpp"
#include "focus/infer/model_calibration.hpp"
#include "focus/io/atomic_file.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/review/capacity_sim.hpp"
#include "focus/review/risk_control.hpp"
#include "focus/review/scores.hpp"
#include "focus/review/selective.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {

namespace {

using json = nlohmann::json;
using namespace focus::review;

struct SimOpts {
  std::string model, data_dir = kFashionMnistDir, stream = "test", out, cost, score = "least-confidence",
      policy = "all", shift = "invert", work_dir;
  FeedbackOptions feedback;  // run when feedback.every > 0
  double budget = 0.1, capacity = 0, rate = 1000, reviewer_accuracy = 1.0, audit = 0.02;
  double epsilon = 0.02, delta = 0.1;
  int64_t queue = 50, calib = 2000, risk_splits = 100, limit = 0;
  uint64_t seed = 0;
  bool json = false;
  int threads = 0;
};

// The stream: the test set in a seeded order, with the calibrated model's view of each item.
struct Stream {
  int64_t n = 0, K = 0;
  std::vector<double> logits, probs;  // (n, K); probs at the file's temperature
  std::vector<int64_t> labels;
  std::vector<uint8_t> model_right, reviewer_right, wrong;
  std::vector<double> priority;  // expected cost of the model's answer
  std::map<std::string, std::vector<double>> scores;  // by score kind name
};

std::vector<int64_t> permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), int64_t(0));
  Rng rng(seed);
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[size_t(i)], p[size_t(rng.randint(i + 1))]);
  return p;
}

template <class T>
std::vector<T> pick(const std::vector<T>& v, std::span<const int64_t> idx) {
  std::vector<T> out;
  out.reserve(idx.size());
  for (int64_t i : idx) out.push_back(v[size_t(i)]);
  return out;
}

// Poisson arrival times: rate_of(i) items an hour for item i.
template <class F>
std::vector<double> arrivals(int64_t n, F rate_of, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> t(static_cast<size_t>(n));
  double now = 0;
  for (int64_t i = 0; i < n; ++i) {
    now += -std::log(1 - rng.uniform()) * 3600 / rate_of(i);
    t[size_t(i)] = now;
  }
  return t;
}

std::vector<StreamItem> stream_items(const Stream& s, const std::vector<double>& times,
                                     const std::vector<double>& score) {
  std::vector<StreamItem> items(size_t(s.n));
  for (int64_t i = 0; i < s.n; ++i)
    items[size_t(i)] = {times[size_t(i)], score[size_t(i)], s.priority[size_t(i)],
                        s.model_right[size_t(i)] != 0, s.reviewer_right[size_t(i)] != 0};
  return items;
}

CapacityOptions capacity_options(const SimOpts& o, double capacity, double audit) {
  CapacityOptions c;
  c.capacity_per_hour = capacity;
  c.queue_cap = o.queue;
  c.audit_share = audit;
  c.seed = o.seed + 17;
  return c;
}

json budget_curves(const SimOpts& o, const Stream& s, const std::vector<double>& route_score) {
  json budgets = json::array(), pol = json::object(), shares = json::object();
  const std::vector<double> times = arrivals(s.n, [&](int64_t) { return o.rate; }, o.seed + 3);
  const std::vector<StreamItem> items = stream_items(s, times, route_score);
  for (int b = 0; b <= 25; ++b) {
    const double budget = 0.02 * b;
    budgets.push_back(budget);
    pol["random"].push_back(system_accuracy(s.model_right, s.reviewer_right, defer_random(s.n, budget, o.seed + 5)));
    for (const auto& [name, sc] : s.scores)
      pol[name].push_back(system_accuracy(s.model_right, s.reviewer_right, defer_top(sc, budget)));
    for (const auto& [name, audit] : {std::pair{"capacity", 0.0}, std::pair{"capacity+audit", o.audit}}) {
      if (budget == 0) {
        pol[name].push_back(system_accuracy(s.model_right, s.reviewer_right, std::vector<uint8_t>(size_t(s.n), 0)));
        shares[name].push_back(0.0);
        continue;
      }
      const CapacitySimResult r = simulate_capacity(items, capacity_options(o, budget * o.rate, audit));
      pol[name].push_back(r.accuracy());
      shares[name].push_back(double(r.reviewed) / double(s.n));
    }
  }
  return {{"budgets", budgets}, {"accuracy", pol}, {"capacity_reviewed_share", shares},
          {"arrival_per_hour", o.rate}, {"queue_cap", o.queue}, {"audit_share", o.audit}};
}

json risk_coverage_curves(const Stream& s) {
  json out = json::object();
  for (const auto& [name, sc] : s.scores) {
    const RiskCoverage rc = risk_coverage(sc, s.wrong);
    json cov = json::array(), risk = json::array();
    const size_t step = std::max<size_t>(1, rc.coverage.size() / 200);  // ~200 points drawn
    for (size_t k = step - 1; k < rc.coverage.size(); k += step) {
      cov.push_back(rc.coverage[k]);
      risk.push_back(rc.risk[k]);
    }
    out[name] = {{"aurc", rc.aurc}, {"coverage", cov}, {"risk", risk}};
  }
  return out;
}

// Thresholds from the first `calib` items for several epsilons, applied to the rest.
json risk_policy(const SimOpts& o, const Stream& s, const std::vector<double>& score) {
  const int64_t c = std::clamp<int64_t>(o.calib, 1, s.n - 1);
  std::vector<int64_t> cal(static_cast<size_t>(c)), rest(static_cast<size_t>(s.n - c));
  std::iota(cal.begin(), cal.end(), int64_t(0));
  std::iota(rest.begin(), rest.end(), c);
  const std::vector<double> cs = pick(score, cal), ts = pick(score, rest);
  const std::vector<uint8_t> cw = pick(s.wrong, cal), tw = pick(s.wrong, rest);
  const std::vector<uint8_t> tm = pick(s.model_right, rest), tr = pick(s.reviewer_right, rest);
  json points = json::array();
  std::vector<double> eps_list = {0.005, 0.01, 0.02, 0.03, 0.05, 0.08};
  if (std::find(eps_list.begin(), eps_list.end(), o.epsilon) == eps_list.end()) {
    eps_list.push_back(o.epsilon);
    std::sort(eps_list.begin(), eps_list.end());
  }
  for (double eps : eps_list) {
    RiskTargetOptions ro;
    ro.epsilon = eps;
    ro.delta = o.delta;
    const RiskThreshold r = risk_target_threshold(cs, cw, ro);
    const std::vector<uint8_t> d = defer_above(ts, r.threshold);
    int64_t acc = 0, err = 0;
    for (size_t i = 0; i < d.size(); ++i)
      if (!d[i]) ++acc, err += tw[i];
    points.push_back({{"epsilon", eps}, {"threshold", r.threshold}, {"found", r.found},
                      {"calibration_coverage", r.coverage}, {"bound", r.risk_bound},
                      {"deferred_share", 1 - double(acc) / double(d.size())},
                      {"accepted_error", acc ? double(err) / double(acc) : 0.0},
                      {"system_accuracy", system_accuracy(tm, tr, d)}});
  }
  return {{"calibration_items", c}, {"evaluated_items", s.n - c}, {"delta", o.delta}, {"points", points}};
}

// The guarantee over random half/half calibration/test splits.
json risk_target_splits(const SimOpts& o, const Stream& s, const std::vector<double>& score) {
  RiskTargetOptions ro;
  ro.epsilon = o.epsilon;
  ro.delta = o.delta;
  int64_t within = 0, naive_within = 0;
  double cov = 0, err_sum = 0, err_max = 0, naive_cov = 0;
  const int64_t half = s.n / 2;
  for (int64_t k = 0; k < o.risk_splits; ++k) {
    const std::vector<int64_t> p = permutation(s.n, o.seed + 1000 + uint64_t(k));
    const std::span<const int64_t> cal(p.data(), size_t(half)), test(p.data() + half, size_t(s.n - half));
    const std::vector<double> cs = pick(score, cal), ts = pick(score, test);
    const std::vector<uint8_t> cw = pick(s.wrong, cal), tw = pick(s.wrong, test);
    auto test_error = [&](double threshold, double& coverage) {
      int64_t acc = 0, err = 0;
      for (size_t i = 0; i < ts.size(); ++i)
        if (ts[i] <= threshold) ++acc, err += tw[i];
      coverage = double(acc) / double(ts.size());
      return acc ? double(err) / double(acc) : 0.0;
    };
    double c = 0;
    const double e = test_error(risk_target_threshold(cs, cw, ro).threshold, c);
    within += e <= o.epsilon ? 1 : 0;
    cov += c;
    err_sum += e;
    err_max = std::max(err_max, e);
    double nc = 0;
    naive_within += test_error(naive_threshold(cs, cw, ro).threshold, nc) <= o.epsilon ? 1 : 0;
    naive_cov += nc;
  }
  const double n = double(std::max<int64_t>(1, o.risk_splits));
  return {{"method", "Bonferroni over a fixed geometric grid of 50 thresholds, one-sided Clopper-Pearson at delta/50 (Learn-then-Test)"},
          {"epsilon", o.epsilon}, {"delta", o.delta}, {"splits", o.risk_splits},
          {"calibration_items", half}, {"test_items", s.n - half},
          {"within_share", double(within) / n}, {"mean_coverage", cov / n},
          {"mean_test_error", err_sum / n}, {"max_test_error", err_max},
          {"naive_within_share", double(naive_within) / n}, {"naive_mean_coverage", naive_cov / n}};
}

// Traffic doubles half-way through the stream.
json capacity_run(const SimOpts& o, const Stream& s, const std::vector<double>& score) {
  const double capacity = o.capacity > 0 ? o.capacity : o.budget * o.rate;
  const int64_t half = s.n / 2;
  const std::vector<double> times = arrivals(s.n, [&](int64_t i) { return i < half ? o.rate : 2 * o.rate; }, o.seed + 9);
  const CapacitySimResult r = simulate_capacity(stream_items(s, times, score), capacity_options(o, capacity, o.audit), 1800);
  const double change = times[size_t(half)], settle = 3600;
  auto inflow = [&](double from, double to) {
    int64_t q = 0;
    double secs = 0;
    for (const SimWindow& w : r.windows)
      if (w.t0 >= from && w.t1 <= to) q += w.queued, secs += w.t1 - w.t0;
    return secs > 0 ? double(q) * 3600 / secs : 0.0;
  };
  const double in1 = inflow(settle, change), in2 = inflow(change + settle, times.back());
  json windows = json::array();
  for (const SimWindow& w : r.windows)
    windows.push_back({{"t0_h", w.t0 / 3600}, {"t1_h", w.t1 / 3600}, {"arrivals", w.arrivals},
                       {"queued", w.queued}, {"reviews", w.reviews}, {"overflow", w.overflow},
                       {"max_queue", w.max_queue}, {"threshold", w.threshold},
                       {"inflow_per_hour", w.per_hour(w.queued)}, {"arrival_estimate_per_hour", w.rate_estimate}});
  const auto [lo, hi] = r.audit.interval(0.05);
  const int64_t truth_n = r.accepted + r.audit.audited(), truth_err = r.auto_accepted_wrong + r.audit.errors();
  const bool lost_none = r.accepted + r.reviewed + r.overflow + r.pending == r.items &&
                         r.accepted + r.deferred + r.audited == r.items;
  return {{"capacity_per_hour", capacity}, {"queue_cap", o.queue}, {"audit_share", o.audit},
          {"arrival_per_hour", {o.rate, 2 * o.rate}}, {"change_h", change / 3600},
          {"settle_h", settle / 3600}, {"inflow_per_hour", {in1, in2}},
          {"within_10pct", std::abs(in1 / capacity - 1) <= 0.1 && std::abs(in2 / capacity - 1) <= 0.1},
          {"max_queue", r.max_queue}, {"items", r.items}, {"accepted", r.accepted},
          {"deferred", r.deferred}, {"audited", r.audited}, {"reviewed", r.reviewed},
          {"overflow_model_answered_flagged", r.overflow}, {"pending_at_end", r.pending},
          {"nothing_lost", lost_none}, {"system_accuracy", r.accuracy()},
          {"auto_accepted_error", r.auto_accepted_error()},
          {"audit", {{"audited", r.audit.audited()}, {"errors", r.audit.errors()},
                     {"estimate", r.audit.estimate()}, {"ci95", {lo, hi}},
                     {"true_would_be_accepted_error", truth_n ? double(truth_err) / double(truth_n) : 0.0}}},
          {"windows", windows}};
}

Stream load_stream(const SimOpts& o, CalibrationReport& before, CalibrationReport& after, double& temperature) {
  const ImagePredictor predictor(o.model);
  const ImageDataset clean = load_fashion_mnist(o.data_dir, Split::Test);
  const ImageDataset test = o.stream == "shifted" ? shift_images(clean, o.shift, o.seed) : clean;
  std::vector<int64_t> order = permutation(test.size(), o.seed);
  if (o.limit > 0 && o.limit < int64_t(order.size())) order.resize(size_t(o.limit));
  Stream s;
  s.n = int64_t(order.size());
  s.K = predictor.num_classes();
  FOCUS_CHECK(s.n >= 10, ValueError, "simulate-review: {} items (need at least 10)", s.n);
  temperature = predictor.temperature();
  s.logits = dataset_logits(predictor, test, order);
  s.labels = dataset_labels(test, order);
  before = calibration_report(s.logits, s.labels, s.K, 1.0);
  after = calibration_report(s.logits, s.labels, s.K, temperature);
  s.probs = softmax_rows(s.logits, s.K, temperature);
  std::optional<CostMatrix> cost;
  if (!o.cost.empty()) cost = CostMatrix::parse(o.cost, s.K);
  Rng rng(o.seed + 1);
  for (int64_t i = 0; i < s.n; ++i) {
    const std::span<const double> row(s.probs.data() + i * s.K, size_t(s.K));
    const bool right = predicted_class(row) == s.labels[size_t(i)];
    s.model_right.push_back(right);
    s.wrong.push_back(!right);
    s.reviewer_right.push_back(rng.uniform() < o.reviewer_accuracy);
    s.priority.push_back(expected_cost(row, cost ? &*cost : nullptr));
  }
  for (ScoreKind k : {ScoreKind::LeastConfidence, ScoreKind::Margin, ScoreKind::Entropy})
    s.scores[score_kind_name(k)] = error_scores(s.probs, s.K, k);
  return s;
}

// The --policy headline: that policy at --budget (risk: at --epsilon, with its own deferral share).
json headline(const SimOpts& o, const json& j) {
  if (o.policy == "risk") {
    for (const json& p : j["risk_policy"]["points"])
      if (p["epsilon"].get<double>() == o.epsilon)
        return {{"policy", "risk"}, {"epsilon", o.epsilon}, {"deferred_share", p["deferred_share"]},
                {"system_accuracy", p["system_accuracy"]}, {"accepted_error", p["accepted_error"]},
                {"evaluated_items", j["risk_policy"]["evaluated_items"]}};
    return nullptr;
  }
  const std::string key = o.policy == "capacity" && o.audit > 0 ? "capacity+audit" : o.policy;
  if (!j["at_budget"].contains(key)) return nullptr;
  return {{"policy", key}, {"budget", o.budget}, {"system_accuracy", j["at_budget"][key]}};
}

// The feedback run on the stream's images (the Fashion-MNIST test set, shifted or not).
json feedback_run(const SimOpts& o) {
  namespace fs = std::filesystem;
  FeedbackOptions f = o.feedback;
  f.model = o.model;
  f.data_dir = o.data_dir;
  f.shift = o.stream == "shifted" ? o.shift : "none";
  f.rate = o.rate;
  f.queue = o.queue;
  f.reviewer_accuracy = o.reviewer_accuracy;
  f.limit = o.limit;
  f.seed = o.seed;
  f.quiet = o.json;
  std::string temp;
  if (!o.work_dir.empty()) {
    f.work_dir = o.work_dir;
  } else if (!o.out.empty()) {
    f.work_dir = o.out + "/feedback";
  } else {
    std::string tmpl = (fs::temp_directory_path() / "focus-feedback-XXXXXX").string();
    FOCUS_CHECK(mkdtemp(tmpl.data()) != nullptr, IOError, "cannot create a temporary directory in {}",
                fs::temp_directory_path().string());
    f.work_dir = temp = tmpl;
  }
  json j;
  try {
    j = run_feedback(f);
  } catch (...) {
    if (!temp.empty()) fs::remove_all(temp);
    throw;
  }
  if (!temp.empty()) fs::remove_all(temp);
  return j;
}

void print_feedback(const json& f) {
  std::printf("\nfeedback run (%s shift; stream %lld items, gate %lld, evaluation %lld; budget %.0f%%, "
              "fine-tuning every %lld labels, replay share %.2f): starting model %.2f%% on the evaluation "
              "slice (%.2f%% before the shift)\n",
              f["shift"].get<std::string>().c_str(), (long long)f["stream_items"].get<int64_t>(),
              (long long)f["gate_items"].get<int64_t>(), (long long)f["eval_items"].get<int64_t>(),
              100 * f["budget"].get<double>(), (long long)f["feedback_every"].get<int64_t>(),
              f["replay_share"].get<double>(), 100 * f["base_eval_accuracy"].get<double>(),
              100 * f["clean_eval_accuracy"].get<double>());
  for (const json& r : f["with"]["rounds"])
    if (r.contains("candidate_gate_accuracy"))
      std::printf("  %5lld labels: gate served %.2f%%, candidate %.2f%% (%s); evaluation slice %.2f%%\n",
                  (long long)r["labels"].get<int64_t>(), 100 * r["served_gate_accuracy"].get<double>(),
                  100 * r["candidate_gate_accuracy"].get<double>(),
                  r["promoted"].get<bool>() ? "promoted" : "kept", 100 * r["eval_accuracy"].get<double>());
  std::printf("  final model: %.2f%% on the evaluation slice, %.2f%% on its images before the shift (starting model: "
              "%.2f%%)\n", 100 * f["with"]["rounds"].back()["eval_accuracy"].get<double>(),
              100 * f["with"]["final_clean_eval_accuracy"].get<double>(), 100 * f["clean_eval_accuracy"].get<double>());
  if (f["after_target"].is_null())
    std::printf("  fewer than %lld labels came back (with feedback %lld, without %lld)\n",
                (long long)f["target_labels"].get<int64_t>(), (long long)f["with"]["labels"].get<int64_t>(),
                (long long)f["without"]["labels"].get<int64_t>());
  else
    std::printf("  after %lld reviewed labels: %.2f%% with feedback, %.2f%% without (%+.2f points)\n",
                (long long)f["after_target"]["labels"].get<int64_t>(), 100 * f["after_target"]["with"].get<double>(),
                100 * f["after_target"]["without"].get<double>(), f["after_target"]["gain_points"].get<double>());
}

void print_text(const json& j) {
  if (j.contains("headline") && !j["headline"].is_null()) {
    const json& h = j["headline"];
    if (h["policy"] == "risk")
      std::printf("risk policy, epsilon %.3f: defers %.2f%%, system accuracy %.2f%%, error among accepted "
                  "%.2f%% (on the %lld items after the calibration part)\n\n",
                  h["epsilon"].get<double>(), 100 * h["deferred_share"].get<double>(),
                  100 * h["system_accuracy"].get<double>(), 100 * h["accepted_error"].get<double>(),
                  (long long)h["evaluated_items"].get<int64_t>());
    else
      std::printf("%s at a %.0f%% budget: system accuracy %.2f%%\n\n", h["policy"].get<std::string>().c_str(),
                  100 * h["budget"].get<double>(), 100 * h["system_accuracy"].get<double>());
  }
  const json& cal = j["calibration"];
  std::printf("%s: %lld test items, model accuracy %.2f%%, T = %.4f: ECE %.2f%% -> %.2f%%, NLL %.4f -> %.4f\n",
              j["model"].get<std::string>().c_str(), (long long)j["items"].get<int64_t>(),
              100 * j["model_accuracy"].get<double>(), j["temperature"].get<double>(),
              100 * cal["before"]["ece"].get<double>(), 100 * cal["after"]["ece"].get<double>(),
              cal["before"]["nll"].get<double>(), cal["after"]["nll"].get<double>());
  std::printf("\nsystem accuracy at a %.0f%% review budget (reviewer accuracy %.2f):\n",
              100 * j["budget"].get<double>(), j["reviewer_accuracy"].get<double>());
  for (const auto& [name, acc] : j["at_budget"].items())
    std::printf("  %-18s %.2f%%\n", name.c_str(), 100 * acc.get<double>());
  std::printf("\nAURC:");
  for (const auto& [name, rc] : j["risk_coverage"].items()) std::printf("  %s %.5f", name.c_str(), rc["aurc"].get<double>());
  const json& rt = j["risk_target"];
  std::printf("\n\nrisk target eps %.3f delta %.2f over %lld splits: within in %.1f%% of splits, "
              "mean coverage %.2f%%, mean test error %.3f%% (naive: within %.1f%%)\n",
              rt["epsilon"].get<double>(), rt["delta"].get<double>(), (long long)rt["splits"].get<int64_t>(),
              100 * rt["within_share"].get<double>(), 100 * rt["mean_coverage"].get<double>(),
              100 * rt["mean_test_error"].get<double>(), 100 * rt["naive_within_share"].get<double>());
  const json& c = j["capacity_run"];
  std::printf("\ncapacity %.0f/h, queue cap %lld, traffic %.0f/h then %.0f/h: inflow %.1f/h and %.1f/h "
              "(within 10%%: %s), max queue %lld, reviewed %lld, overflow (model, flagged) %lld, "
              "pending %lld, nothing lost: %s, audit estimate %.2f%% (true %.2f%%)\n",
              c["capacity_per_hour"].get<double>(), (long long)c["queue_cap"].get<int64_t>(),
              c["arrival_per_hour"][0].get<double>(), c["arrival_per_hour"][1].get<double>(),
              c["inflow_per_hour"][0].get<double>(), c["inflow_per_hour"][1].get<double>(),
              c["within_10pct"].get<bool>() ? "yes" : "no", (long long)c["max_queue"].get<int64_t>(),
              (long long)c["reviewed"].get<int64_t>(), (long long)c["overflow_model_answered_flagged"].get<int64_t>(),
              (long long)c["pending_at_end"].get<int64_t>(), c["nothing_lost"].get<bool>() ? "yes" : "no",
              100 * c["audit"]["estimate"].get<double>(), 100 * c["audit"]["true_would_be_accepted_error"].get<double>());
  if (j.contains("feedback")) print_feedback(j["feedback"]);
}

}  // namespace

Command add_simulate_review_command(CLI::App& app) {
  CLI::App* sub = app.add_subcommand(
      "simulate-review", "replay the test set through review routing with simulated reviewers: "
                         "accuracy against review budget per policy, risk-coverage and AURC, the "
                         "risk target's guarantee, the capacity controller under doubled traffic");
  auto o = std::make_shared<SimOpts>();
  sub->add_option("--model", o->model, "image model file (.safetensors)")->required();
  sub->add_option("--data-dir", o->data_dir, "Fashion-MNIST directory")->capture_default_str();
  sub->add_option("--stream", o->stream,
                  "the stream replayed (test: the Fashion-MNIST test set; shifted: its images under --shift)")
      ->check(CLI::IsMember({"test", "shifted"}))->capture_default_str();
  sub->add_option("--shift", o->shift, std::string("the shift of --stream shifted: ") + kShiftKinds)
      ->check(CLI::IsMember({"invert", "rotate90", "noise"}))->capture_default_str();
  o->feedback.every = 0;
  FeedbackOptions& fb = o->feedback;
  sub->add_option("--feedback-every", fb.every,
                  "feedback run: fine-tune the served model on the labels every N reviews (0 = no feedback run)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--feedback-budget", fb.budget, "feedback run: reviewed share of the stream")
      ->check(CLI::Range(0.001, 1.0))->capture_default_str();
  sub->add_option("--feedback-target", fb.target, "feedback run: the accuracies reported after this many labels")
      ->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--gate-items", fb.gate_items, "feedback run: held-out stream items the promotion gate scores on")
      ->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--eval-items", fb.eval_items, "feedback run: held-out stream items the accuracy is measured on")
      ->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--feedback-window", fb.window, "feedback run: stream items per reported window")
      ->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--replay-share", fb.replay_share, "feedback run: training-data share of each fine-tuning mix")
      ->check(CLI::Range(0.0, 0.95))->capture_default_str();
  sub->add_option("--ft-epochs", fb.epochs, "feedback run: epochs over the mix per round")
      ->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--ft-lr", fb.lr, "feedback run: fine-tuning learning rate")
      ->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--ft-batch", fb.batch, "feedback run: fine-tuning batch")
      ->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--work-dir", o->work_dir,
                  "feedback run: where each round's fine-tuning run is written (default: OUT/feedback, or a "
                  "temporary directory removed at the end)");
  sub->add_option("--budget", o->budget, "review budget (share of items) for the headline numbers")
      ->check(CLI::Range(0.0, 1.0))->capture_default_str();
  sub->add_option("--capacity", o->capacity, "reviews per hour of the capacity run (0 = budget x rate)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--rate", o->rate, "arrivals per hour (the capacity run doubles it half-way)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--queue", o->queue, "review queue cap")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--reviewer-accuracy", o->reviewer_accuracy, "probability a reviewer answers right")
      ->check(CLI::Range(0.0, 1.0))->capture_default_str();
  sub->add_option("--audit", o->audit, "share of confident predictions audited (capacity policy)")
      ->check(CLI::Range(0.0, 0.5))->capture_default_str();
  sub->add_option("--policy", o->policy, "the policy of the headline line (every policy is simulated)")
      ->check(CLI::IsMember({"all", "random", "least-confidence", "margin", "entropy", "risk", "capacity"}))
      ->capture_default_str();
  sub->add_option("--score", o->score, "routing score of the risk and capacity policies")
      ->check(CLI::IsMember({"least-confidence", "margin", "entropy"}))->capture_default_str();
  sub->add_option("--cost", o->cost, "per-class cost matrix for the queue priority: 'c00,c01,..;c10,..' (rows = model answer)");
  sub->add_option("--epsilon", o->epsilon, "risk target: error allowed among the auto-accepted")
      ->check(CLI::Range(1e-6, 0.999))->capture_default_str();
  sub->add_option("--delta", o->delta, "risk target: allowed failure probability")
      ->check(CLI::Range(1e-6, 0.999))->capture_default_str();
  sub->add_option("--calib", o->calib, "risk policy: stream items used to set its thresholds")
      ->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--risk-splits", o->risk_splits, "random calibration/test splits of the guarantee check")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--limit", o->limit, "use only N test items (0 = all)")->check(CLI::NonNegativeNumber);
  sub->add_option("--seed", o->seed, "seed of the stream order, arrivals, reviewers and audits")->capture_default_str();
  sub->add_flag("--json", o->json, "print the results as JSON");
  sub->add_option("--out", o->out, "write review.json and review.html into this directory");
  sub->add_option("--threads", o->threads, "threads (0 = all cores)");
  return [o] {
    if (o->threads > 0) set_num_threads(o->threads);
    CalibrationReport before, after;
    double temperature = 1;
    const Stream s = load_stream(*o, before, after, temperature);
    const std::vector<double>& route = s.scores.at(o->score);
    json j = {{"model", o->model}, {"stream", o->stream},
              {"shift", o->stream == "shifted" ? json(o->shift) : json(nullptr)}, {"items", s.n}, {"classes", s.K},
              {"temperature", temperature}, {"model_accuracy", after.accuracy},
              {"reviewer_accuracy", o->reviewer_accuracy}, {"budget", o->budget}, {"seed", o->seed},
              {"route_score", o->score}, {"cost_matrix", o->cost},
              {"calibration", {{"bins", 15}, {"before", to_json(before)}, {"after", to_json(after)}}}};
    j["budget_curve"] = budget_curves(*o, s, route);
    json at = json::object();
    at["random"] = system_accuracy(s.model_right, s.reviewer_right, defer_random(s.n, o->budget, o->seed + 5));
    for (const auto& [name, sc] : s.scores)
      at[name] = system_accuracy(s.model_right, s.reviewer_right, defer_top(sc, o->budget));
    if (o->budget > 0)
      for (const auto& [name, audit] : {std::pair{"capacity", 0.0}, std::pair{"capacity+audit", o->audit}}) {
        const std::vector<double> times = arrivals(s.n, [&](int64_t) { return o->rate; }, o->seed + 3);
        at[name] = simulate_capacity(stream_items(s, times, route),
                                     capacity_options(*o, o->budget * o->rate, audit)).accuracy();
      }
    j["at_budget"] = at;
    j["risk_coverage"] = risk_coverage_curves(s);
    j["risk_policy"] = risk_policy(*o, s, route);
    j["risk_target"] = risk_target_splits(*o, s, route);
    j["capacity_run"] = capacity_run(*o, s, route);
    j["headline"] = o->policy == "all" ? json(nullptr) : headline(*o, j);
    if (o->feedback.every > 0) j["feedback"] = feedback_run(*o);
    if (!o->out.empty()) {
      std::filesystem::create_directories(o->out);
      write_file_atomic(o->out + "/review.json", j.dump(2) + "\n");
      write_file_atomic(o->out + "/review.html", review_page_html(j, reliability_svg(before, after, "reliability on the stream (15 bins)")));
      write_file_atomic(o->out + "/reliability.svg",
                        standalone_svg(reliability_svg(before, after, "reliability on the stream (15 bins)")) + "\n");
      for (const auto& [name, svg] : review_charts(j))
        write_file_atomic(o->out + "/" + name + ".svg", standalone_svg(svg) + "\n");
    }
    if (o->json) {
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      print_text(j);
      if (!o->out.empty()) std::printf("\nwrote %s/review.json and %s/review.html\n", o->out.c_str(), o->out.c_str());
    }
    return 0;
  };
}

}  // namespace focus
