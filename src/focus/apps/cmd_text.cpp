// Text classification commands: the text half of `focus train` (--task text) and `focus cv`,
// stratified seeded k-fold cross-validation (and --cross-site: train on every site but one, test
// on that one), printing each fold's and the mean accuracy. The folds can be written to a TSV
// (--folds-out) that bench/text_baselines.py reads, so the baselines score the same folds.
// --refit: each fold's run (early stopping on its held-out rows) is followed by a second run on
// all of the fold's training rows (the held-out ones included, as the baselines train) for the
// epochs the first found best, whose last epoch is scored. --seeds K: K models per fold (seeds
// seed + 1000 j; the same held-out rows), scored by their mean softmax probability.
#include <CLI/CLI.hpp>
#include <cmath>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "focus/apps/commands.hpp"
#include "focus/dist/communicator.hpp"
#include "focus/infer/calibration.hpp"
#include "focus/infer/file_metadata.hpp"
#include "focus/infer/text_predictor.hpp"
#include "focus/io/atomic_file.hpp"
#include "focus/io/safetensors.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/kernels/precision.hpp"
#include "focus/train/text_data.hpp"

namespace focus {

namespace {

// Rows `rows` split into training and validation rows: val_size of them held out, stratified.
TrainValSplit hold_out(const TextCorpus& c, const std::vector<int64_t>& rows, int64_t val_size,
                       uint64_t seed) {
  std::vector<int64_t> labels;
  for (int64_t i : rows) labels.push_back(c.labels[size_t(i)]);
  FOCUS_CHECK(val_size >= 1 && val_size < int64_t(rows.size()), ValueError,
              "--val-size {} must be in [1, {}) (the training texts)", val_size, rows.size());
  const TrainValSplit s = split_train_val(labels, int64_t(c.class_names.size()), val_size, seed);
  TrainValSplit out;
  for (int64_t i : s.train) out.train.push_back(rows[size_t(i)]);
  for (int64_t i : s.val) out.val.push_back(rows[size_t(i)]);
  return out;
}

void print_result(const char* what, const TextRunResult& r, const std::vector<std::string>& names) {
  std::printf("%s accuracy %.2f%%  macro-F1 %.4f", what, 100 * r.accuracy, r.macro_f1);
  if (r.roc_auc >= 0) std::printf("  ROC-AUC %.4f", r.roc_auc);
  std::printf("  (T %.3f, %d epochs, %.1f s)\n", r.temperature, r.epochs, r.train_seconds);
  std::printf("%s", format_report(classification_report(r.cm), names).c_str());
}

std::string tsv_field(std::string s) {
  for (char& ch : s)
    if (ch == '\t' || ch == '\n' || ch == '\r') ch = ' ';
  return s;
}

}  // namespace

int train_text_and_report(const TrainConfig& cfg) {
  if (cfg.threads > 0) set_num_threads(cfg.threads);
  const TextCorpus corpus = load_text_corpus(cfg);
  std::vector<int64_t> train = corpus.train, valid = corpus.valid, test = corpus.test;
  if (!cfg.data.empty()) {
    // Built-in data: fold 0 of the stratified 10 folds (seeded) is the test split (as `focus cv`
    // scores it), and val_size of the rest validates.
    const auto fold = stratified_folds(corpus.labels, int64_t(corpus.class_names.size()), 10, cfg.seed);
    std::vector<int64_t> rest;
    test.clear();
    for (int64_t i : corpus.train) (fold[size_t(i)] == 0 ? test : rest).push_back(i);
    const TrainValSplit s = hold_out(corpus, rest, cfg.val_size, cfg.seed);
    train = s.train;
    valid = s.val;
  }
  Communicator& comm = world();  // mpirun: MPI's ranks; else this process alone
  const bool root = comm.rank() == 0;
  report_ranks(comm);
  if (root)
    std::fprintf(stderr, "focus: text classification, %zu classes; %zu training, %zu validation, %zu test texts; %d threads\n",
                 corpus.class_names.size(), train.size(), valid.size(), test.size(), num_threads());
  const TextRunResult r = run_text_classification(cfg, corpus, train, valid, test, &comm);
  if (!root) return 0;  // rank 0 calibrates, scores and reports
  print_result(test.empty() ? "valid" : "test", r, corpus.class_names);
  write_file_atomic(cfg.out + "/test_metrics.json", r.metrics.dump(2) + "\n");
  std::printf("model:   %s\nmetrics: %s/metrics.jsonl, %s/test_metrics.json\n", r.model_path.c_str(),
              cfg.out.c_str(), cfg.out.c_str());
  return 0;
}

bool is_text_model_file(const std::string& path) {
  if (model_file_format(path) != "focus-image-classifier/1") return false;
  const SafetensorsFile f = load_safetensors(path);
  return f.metadata.count("tokenizer") != 0;
}

int eval_text(const std::string& model, const std::string& input, bool json) {
  FOCUS_CHECK(!input.empty(), ValueError,
              "focus eval: a text model is evaluated on --input FILE (label<TAB>text TSV or JSON lines)");
  const TextPredictor p = TextPredictor::load(model, false);
  const LabelledFile f = read_labelled_file(input);
  FOCUS_CHECK(!f.rows.empty(), FormatError, "{}: no labelled text", input);
  const auto& names = p.info().class_names;
  const int64_t K = p.num_classes();
  std::vector<int64_t> y;
  for (const auto& r : f.rows) {
    auto it = std::find(names.begin(), names.end(), r.label);
    FOCUS_CHECK(it != names.end(), FormatError, "{}:{}: label '{}' is not a class of the model ({})",
                input, r.line, r.label, fmt::join(names, ", "));
    y.push_back(it - names.begin());
  }
  std::vector<double> z;
  for (size_t lo = 0; lo < f.rows.size(); lo += 256) {
    std::vector<std::string> texts;
    for (size_t i = lo; i < std::min(f.rows.size(), lo + 256); ++i) texts.push_back(f.rows[i].text);
    const auto v = p.logits(texts).to_vector<float>();
    z.insert(z.end(), v.begin(), v.end());
  }
  ConfusionMatrix cm(K);
  for (size_t i = 0; i < y.size(); ++i)
    cm.add(y[i], int64_t(std::max_element(z.begin() + int64_t(i) * K, z.begin() + int64_t(i + 1) * K) -
                         (z.begin() + int64_t(i) * K)));
  const CalibrationReport before = calibration_report(z, y, K, 1.0);
  const CalibrationReport after = calibration_report(z, y, K, p.info().temperature);
  nlohmann::json j = metrics_to_json(cm, names);
  double auc = -1;
  if (K == 2 && std::count(y.begin(), y.end(), 1) > 0 && std::count(y.begin(), y.end(), 0) > 0) {
    std::vector<double> score;
    for (size_t i = 0; i < y.size(); ++i) score.push_back(z[2 * i + 1] - z[2 * i]);
    auc = roc_auc(score, y);
    j["roc_auc"] = auc;
  }
  j["calibration"] = {{"bins", 15}, {"before", to_json(before)}, {"after", to_json(after)}};
  if (json) {
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  const ClassificationReport rep = classification_report(cm);
  std::printf("%s: %s, %zu texts\naccuracy %.2f%%  macro-F1 %.4f", model.c_str(), input.c_str(),
              y.size(), 100 * rep.accuracy, rep.macro_f1);
  if (auc >= 0) std::printf("  ROC-AUC %.4f", auc);
  std::printf("\ncalibration (15 bins): T = 1: ECE %.2f%% NLL %.4f; T = %.4f: ECE %.2f%% NLL %.4f\n\n%s\n%s",
              100 * before.ece, before.nll, p.info().temperature, 100 * after.ece, after.nll,
              format_report(rep, names).c_str(), format_confusion(cm, names).c_str());
  return 0;
}

int predict_text(const std::string& model, const std::vector<std::string>& texts_in,
                 const std::string& input, int top, bool uncalibrated) {
  std::vector<std::string> texts = texts_in;
  if (!input.empty()) {
    std::ifstream f(input, std::ios::binary);
    FOCUS_CHECK(f.good(), IOError, "cannot open '{}'", input);
    for (std::string line; std::getline(f, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) texts.push_back(line);
    }
  }
  FOCUS_CHECK(!texts.empty(), ValueError, "focus predict: give --text TEXT or --input FILE for a text model");
  const TextPredictor p = TextPredictor::load(model, !uncalibrated);
  const auto& names = p.info().class_names;
  const auto preds = p.predict(texts);
  for (size_t i = 0; i < preds.size(); ++i) {
    const TextPrediction& r = preds[i];
    std::printf("%s\t%.2f%%\t%s\n", names[size_t(r.label)].c_str(), 100 * r.probs[size_t(r.label)],
                texts[i].c_str());
    // The tokens the attention pooling weighs most (the first explanation).
    std::vector<size_t> order(r.tokens.size());
    for (size_t t = 0; t < order.size(); ++t) order[t] = t;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return r.pooling[a] > r.pooling[b]; });
    std::printf("  pooling:");
    for (size_t t = 0; t < std::min<size_t>(order.size(), size_t(std::max(top, 1)) + 2); ++t)
      std::printf(" %s %.2f", r.tokens[order[t]].c_str(), r.pooling[order[t]]);
    std::printf("\n");
  }
  return 0;
}

Command add_cv_command(CLI::App& app) {
  CLI::App* sub = app.add_subcommand(
      "cv", "cross-validate text classification: stratified seeded k folds (or --cross-site), "
            "each fold's and the mean accuracy");
  struct State {
    TrainConfig cfg;
    std::string config_file;
    bool dump = false;
    int folds = 10;
    bool cross_site = false;
    std::string folds_out;
    int only_fold = -1;
    bool refit = false;
    int seeds = 1;
  };
  auto st = std::make_shared<State>();
  st->cfg.task = "text";
  st->cfg.val_size = 300;
  bind_cli(*sub, st->cfg, st->config_file, st->dump);
  sub->add_option("--folds", st->folds, "number of stratified folds")->capture_default_str();
  sub->add_flag("--cross-site", st->cross_site,
                "built-in sentiment: train on every site but one, test on that one");
  sub->add_option("--folds-out", st->folds_out,
                  "write fold<TAB>site<TAB>label<TAB>text per text (for bench/text_baselines.py)");
  sub->add_option("--only-fold", st->only_fold, "run this fold only (0-based; -1 = all)");
  sub->add_flag("--refit", st->refit,
                "after early stopping, retrain on all of the fold's training rows (held-out ones "
                "included) for the best epoch count and score that model; its temperature is "
                "fitted on rows it trained on");
  sub->add_option("--seeds", st->seeds,
                  "models per fold (seeds seed + 1000 j), scored by their mean softmax probability")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  return [st] {
    TrainConfig cfg = st->cfg;
    if (!st->config_file.empty()) load_config_file(cfg, st->config_file);
    cfg = with_task_defaults(cfg);
    FOCUS_CHECK(cfg.task == "text", ValueError, "focus cv: --task {} (only text)", cfg.task);
    validate(cfg);
    const ScopedPrecision precision(supported_precision(cfg.precision));
    if (cfg.threads > 0) set_num_threads(cfg.threads);
    const TextCorpus corpus = load_text_corpus(cfg);
    std::vector<int64_t> rows = corpus.train;
    rows.insert(rows.end(), corpus.valid.begin(), corpus.valid.end());
    rows.insert(rows.end(), corpus.test.begin(), corpus.test.end());
    // fold[i]: the fold that tests row i.
    std::vector<int64_t> fold(corpus.rows.size(), 0);
    std::vector<std::string> fold_names;
    if (st->cross_site) {
      std::vector<std::string> sites;
      for (const auto& s : corpus.source)
        if (std::find(sites.begin(), sites.end(), s) == sites.end()) sites.push_back(s);
      FOCUS_CHECK(sites.size() >= 2, ValueError, "--cross-site needs two or more sites (--data sentiment)");
      for (size_t i = 0; i < corpus.rows.size(); ++i)
        fold[i] = std::find(sites.begin(), sites.end(), corpus.source[i]) - sites.begin();
      fold_names = sites;
    } else {
      std::vector<int64_t> labels;
      for (int64_t i : rows) labels.push_back(corpus.labels[size_t(i)]);
      const auto f = stratified_folds(labels, int64_t(corpus.class_names.size()), st->folds, cfg.seed);
      for (size_t k = 0; k < rows.size(); ++k) fold[size_t(rows[k])] = f[k];
      for (int k = 0; k < st->folds; ++k) fold_names.push_back("fold " + std::to_string(k));
    }
    if (!st->folds_out.empty()) {
      std::string tsv;
      for (int64_t i : rows)
        tsv += fmt::format("{}\t{}\t{}\t{}\n", fold[size_t(i)], corpus.source[size_t(i)],
                           corpus.labels[size_t(i)], tsv_field(corpus.rows[size_t(i)].text));
      const auto parent = std::filesystem::path(st->folds_out).parent_path();
      if (!parent.empty()) std::filesystem::create_directories(parent);
      write_file_atomic(st->folds_out, tsv);
    }
    FOCUS_CHECK(cfg.epochs > 0 || st->seeds == 1, ValueError,
                "--seeds {} with --epochs 0: the convex fit does not depend on the seed (every "
                "member would be the same model)", st->seeds);
    const std::string base = cfg.out;
    std::vector<double> accs;
    double val_sum = 0;  // the members' best held-out accuracies (inner validation: choose on this)
    int64_t val_n = 0;
    nlohmann::json folds_json = nlohmann::json::array();
    for (size_t k = 0; k < fold_names.size(); ++k) {
      if (st->only_fold >= 0 && int64_t(k) != st->only_fold) continue;
      std::vector<int64_t> rest, test;
      for (int64_t i : rows) (fold[size_t(i)] == int64_t(k) ? test : rest).push_back(i);
      const TrainValSplit s = hold_out(corpus, rest, cfg.val_size, cfg.seed + k);
      TrainConfig fc = cfg;
      fc.out = base + "/" + (st->cross_site ? fold_names[k] : "fold_" + std::to_string(k));
      nlohmann::json entry = {{"fold", fold_names[k]}, {"test", test.size()}};
      nlohmann::json members = nlohmann::json::array();
      size_t trained = s.train.size();
      // One model: early stopping on the held-out rows, then (--refit) all the training rows.
      auto member = [&](int j) {
        TrainConfig mc = fc;
        mc.seed = cfg.seed + 1000 * uint64_t(j);
        if (j > 0) mc.out = fc.out + "/seed_" + std::to_string(j);
        TextRunResult r = run_text_classification(mc, corpus, s.train, s.val, test);
        nlohmann::json m = {{"seed", mc.seed}, {"accuracy", r.accuracy}, {"epochs", r.epochs},
                            {"best_epoch", r.best_epoch}, {"val_accuracy", r.best_val_accuracy}};
        val_sum += r.best_val_accuracy, ++val_n;
        if (st->refit) {
          std::printf("%-10s held-out run: accuracy %.2f%%, best epoch %d of %d\n",
                      fold_names[k].c_str(), 100 * r.accuracy, r.best_epoch, r.epochs);
          TrainConfig rc = mc;
          rc.epochs = mc.epochs == 0 ? 0 : std::max(1, r.best_epoch);  // 0: the fit alone
          rc.patience = 0;
          rc.out = mc.out + "/refit";
          std::vector<int64_t> all = s.train;
          all.insert(all.end(), s.val.begin(), s.val.end());
          trained = all.size();
          const double first_seconds = r.train_seconds;
          // The held-out run's temperature: the refit trains on s.val, which would flatter it.
          r = run_text_classification(rc, corpus, all, s.val, test, nullptr, true, r.temperature);
          r.train_seconds += first_seconds;
          m["refit_accuracy"] = r.accuracy;
        }
        members.push_back(m);
        return r;
      };
      TextRunResult r = member(0);
      if (st->seeds > 1) {  // mean softmax probability of the members
        const int64_t K = int64_t(corpus.class_names.size()), T = int64_t(r.test_labels.size());
        std::vector<double> prob(size_t(T * K), 0.0);
        auto add_probs = [&](const std::vector<double>& z) {
          for (int64_t i = 0; i < T; ++i) {
            const double* zi = z.data() + i * K;
            const double mx = *std::max_element(zi, zi + K);
            double sum = 0;
            for (int64_t c = 0; c < K; ++c) sum += std::exp(zi[c] - mx);
            for (int64_t c = 0; c < K; ++c) prob[size_t(i * K + c)] += std::exp(zi[c] - mx) / sum / st->seeds;
          }
        };
        add_probs(r.test_logits);
        for (int j = 1; j < st->seeds; ++j) {
          const TextRunResult rj = member(j);
          add_probs(rj.test_logits);
          r.train_seconds += rj.train_seconds;
          r.epochs += rj.epochs;
        }
        ConfusionMatrix cm(K);
        for (int64_t i = 0; i < T; ++i)
          cm.add(r.test_labels[size_t(i)],
                 int64_t(std::max_element(prob.begin() + i * K, prob.begin() + (i + 1) * K) -
                         (prob.begin() + i * K)));
        const ClassificationReport rep = classification_report(cm);
        r.accuracy = rep.accuracy;
        r.macro_f1 = rep.macro_f1;
        if (K == 2) {
          std::vector<double> score;
          for (int64_t i = 0; i < T; ++i) score.push_back(prob[size_t(2 * i + 1)]);
          r.roc_auc = roc_auc(score, r.test_labels);
        }
      }
      entry["members"] = members;
      accs.push_back(r.accuracy);
      std::printf("%-10s accuracy %.2f%%  macro-F1 %.4f  ROC-AUC %.4f  (%zu train, %zu valid, %zu test; %d epochs, %.0f s)\n",
                  fold_names[k].c_str(), 100 * r.accuracy, r.macro_f1, r.roc_auc, trained,
                  s.val.size(), test.size(), r.epochs, r.train_seconds);
      std::fflush(stdout);
      entry.update({{"accuracy", r.accuracy}, {"macro_f1", r.macro_f1}, {"roc_auc", r.roc_auc},
                    {"epochs", r.epochs}, {"train_seconds", r.train_seconds}, {"refit", st->refit},
                    {"seeds", st->seeds}});
      folds_json.push_back(entry);
    }
    double mean = 0, sd = 0;
    for (double a : accs) mean += a / double(accs.size());
    for (double a : accs) sd += (a - mean) * (a - mean) / double(std::max<size_t>(1, accs.size() - 1));
    std::printf("mean       accuracy %.2f%% (sd %.2f over %zu %s)\n", 100 * mean, 100 * std::sqrt(sd),
                accs.size(), st->cross_site ? "sites" : "folds");
    const double val_mean = val_n > 0 ? val_sum / double(val_n) : 0.0;
    std::printf("mean       held-out validation accuracy %.2f%% (best epoch; the inner score to choose "
                "configurations on)\n", 100 * val_mean);
    std::filesystem::create_directories(base);
    write_file_atomic(base + "/cv.json", nlohmann::json{{"folds", folds_json}, {"mean_accuracy", mean},
                                                          {"sd", std::sqrt(sd)}, {"mean_val_accuracy", val_mean},
                                                          {"config", to_json(cfg)}}
                                             .dump(2) + "\n");
    return 0;
  };
}

}  // namespace focus
