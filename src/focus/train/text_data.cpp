// Text classification data and runs (see text_data.hpp).
#include "focus/train/text_data.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "focus/data/augment.hpp"
#include "focus/dist/communicator.hpp"
#include "focus/infer/calibration.hpp"
#include "focus/infer/model_file.hpp"
#include "focus/io/atomic_file.hpp"
#include "focus/models/classifier.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/text/vocab.hpp"
#include "focus/models/text_transformer.hpp"
#include "focus/train/pretrain.hpp"
#include "focus/train/trainer.hpp"

namespace focus {

// ---- TextClassificationData ----------------------------------------------------------------------

TextClassificationData::TextClassificationData(std::vector<std::vector<int64_t>> ids,
                                               std::vector<int64_t> labels,
                                               std::vector<std::string> class_names,
                                               double token_dropout)
    : ids_(std::move(ids)), labels_(std::move(labels)), class_names_(std::move(class_names)),
      token_dropout_(token_dropout) {
  FOCUS_CHECK(token_dropout_ >= 0 && token_dropout_ < 1, ValueError,
              "TextClassificationData: token_dropout {} not in [0, 1)", token_dropout_);
  FOCUS_CHECK(ids_.size() == labels_.size(), ShapeError,
              "TextClassificationData: {} id rows for {} labels", ids_.size(), labels_.size());
  FOCUS_CHECK(!class_names_.empty(), ValueError, "TextClassificationData: no class names");
  class_counts(labels_, num_classes());  // validates the labels
  for (size_t i = 0; i < ids_.size(); ++i)
    FOCUS_CHECK(!ids_[i].empty(), ValueError, "TextClassificationData: row {} has no token", i);
}

namespace {
constexpr uint32_t kTokenDropTag = 0x70D0u;
}  // namespace

Batch TextClassificationData::batch(std::span<const int64_t> indices, const BatchDraw& draw) const {
  const bool drop = draw.train && token_dropout_ > 0;
  std::vector<std::vector<int64_t>> dropped(drop ? indices.size() : 0);
  std::vector<const std::vector<int64_t>*> rows;
  Batch b;
  b.y = Tensor::empty({int64_t(indices.size())}, DType::I64);  // (B)
  int64_t* y = b.y.data<int64_t>();
  for (size_t r = 0; r < indices.size(); ++r) {
    const int64_t i = indices[r];
    FOCUS_CHECK(i >= 0 && i < size(), ValueError, "TextClassificationData: index {} not in [0, {})",
                i, size());
    if (drop) {  // word dropout: the draws of (seed, epoch, index) only
      dropped[r] = ids_[size_t(i)];
      Rng rng(derive_seed(draw.seed, kTokenDropTag, draw.epoch, uint64_t(i)));
      for (int64_t& t : dropped[r])
        if (rng.uniform() < token_dropout_) t = Vocab::kUnk;
      rows.push_back(&dropped[r]);
    } else {
      rows.push_back(&ids_[size_t(i)]);
    }
    y[r] = labels_[size_t(i)];
  }
  b.x = pad_token_rows(rows);  // (B, L)
  b.indices.assign(indices.begin(), indices.end());
  return b;
}

// ---- corpus --------------------------------------------------------------------------------------

namespace {
bool is_integer(const std::string& s) {
  if (s.empty() || s.size() > 18) return false;
  size_t i = s[0] == '-' ? 1 : 0;
  if (i == s.size()) return false;
  for (; i < s.size(); ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

void append(TextCorpus& c, const LabelledFile& f, const std::string& source,
            std::vector<int64_t>& part) {
  for (const LabelledText& r : f.rows) {
    part.push_back(int64_t(c.rows.size()));
    c.rows.push_back(r);
    c.source.push_back(source);
  }
}

// Labels to class ids; FormatError naming the file and line of a label the classes lack.
void assign_labels(TextCorpus& c) {
  std::map<std::string, int64_t> id;
  for (size_t k = 0; k < c.class_names.size(); ++k) id[c.class_names[k]] = int64_t(k);
  c.labels.clear();
  for (size_t i = 0; i < c.rows.size(); ++i) {
    auto it = id.find(c.rows[i].label);
    FOCUS_CHECK(it != id.end(), FormatError,
                "{}:{}: label '{}' does not occur in the training data (classes: {})", c.source[i],
                c.rows[i].line, c.rows[i].label, fmt::join(c.class_names, ", "));
    c.labels.push_back(it->second);
  }
}
}  // namespace

std::vector<std::string> sorted_class_names(const std::vector<LabelledText>& rows) {
  std::set<std::string> set;
  for (const auto& r : rows) set.insert(r.label);
  std::vector<std::string> names(set.begin(), set.end());
  if (std::all_of(names.begin(), names.end(), is_integer))
    std::sort(names.begin(), names.end(),
              [](const std::string& a, const std::string& b) { return std::stoll(a) < std::stoll(b); });
  return names;
}

TextCorpus load_text_corpus(const TrainConfig& cfg) {
  TextCorpus c;
  if (!cfg.data.empty()) {
    std::vector<std::string> sites;
    const std::string& d = cfg.data;
    if (d == "sentiment") {
      sites = sentiment_sites();
    } else {
      FOCUS_CHECK(d.rfind("sentiment:", 0) == 0, ValueError,
                  "--data '{}': known built-in data: sentiment, sentiment:<site>[,<site>] (amazon, "
                  "imdb, yelp)", d);
      std::string rest = d.substr(10);
      for (size_t pos = 0; pos <= rest.size();) {
        size_t end = rest.find(',', pos);
        if (end == std::string::npos) end = rest.size();
        const std::string site = rest.substr(pos, end - pos);
        const auto& known = sentiment_sites();
        FOCUS_CHECK(std::find(known.begin(), known.end(), site) != known.end(), ValueError,
                    "--data '{}': unknown sentiment site '{}' (amazon, imdb, yelp)", d, site);
        sites.push_back(site);
        pos = end + 1;
      }
    }
    for (const auto& site : sites) append(c, read_sentiment_file(sentiment_path(site)), site, c.train);
    c.class_names = {"negative", "positive"};
  } else {
    append(c, read_labelled_file(cfg.train_file), cfg.train_file, c.train);
    FOCUS_CHECK(!c.rows.empty(), FormatError, "{}: no labelled text", cfg.train_file);
    c.class_names = sorted_class_names(c.rows);
    append(c, read_labelled_file(cfg.valid_file), cfg.valid_file, c.valid);
    FOCUS_CHECK(!c.valid.empty(), FormatError, "{}: no labelled text", cfg.valid_file);
    if (!cfg.test_file.empty()) append(c, read_labelled_file(cfg.test_file), cfg.test_file, c.test);
  }
  FOCUS_CHECK(c.class_names.size() >= 2, FormatError, "{}: a single class ('{}'); classification needs two or more",
              cfg.train_file, c.class_names.front());
  assign_labels(c);
  return c;
}

std::unique_ptr<Tokenizer> learn_text_tokenizer(const TextCorpus& corpus,
                                                const std::vector<int64_t>& train,
                                                const TrainConfig& cfg) {
  std::vector<std::string> texts;
  texts.reserve(train.size());
  for (int64_t i : train) texts.push_back(normalize_for_classification(corpus.rows.at(size_t(i)).text));
  TokenizerOptions opt;
  opt.bpe_merges = cfg.bpe_merges;
  opt.min_count = cfg.min_count;
  return train_tokenizer(cfg.src_tokenizer.empty() ? "word" : cfg.src_tokenizer, texts, opt);
}

TextClassificationData encode_corpus(const TextCorpus& corpus, const Tokenizer& tok,
                                     int64_t len, double token_dropout) {
  std::vector<std::vector<int64_t>> ids;
  ids.reserve(corpus.rows.size());
  for (const auto& r : corpus.rows) ids.push_back(encode_for_classification(tok, r.text, len));
  return TextClassificationData(std::move(ids), corpus.labels, corpus.class_names, token_dropout);
}

namespace {
// What the n-gram branch learns from the training rows before training, in order: the NB ratios,
// the IDF, the convex fit of the table (which uses both). Never from valid/test rows.
void fit_ngram_branch(TextTransformer& tt, const TextClassificationData& data,
                      const std::vector<int64_t>& train, const std::vector<int64_t>& labels,
                      const std::vector<double>& class_weights, bool root) {
  const TextTransformerConfig& c = tt.cfg();
  if (c.ngram_nb <= 0 && !c.ngram_idf && c.ngram_fit <= 0) return;
  std::vector<std::vector<int64_t>> rows;
  std::vector<int64_t> y;
  for (int64_t i : train) rows.push_back(data.ids(i)), y.push_back(labels[size_t(i)]);
  if (c.ngram_nb > 0) tt.fit_ngram_nb(rows, y);
  if (c.ngram_idf) tt.fit_ngram_idf(rows);
  if (c.ngram_fit > 0) {
    const NgramFit f = tt.fit_ngram_table(rows, y, class_weights);
    if (root)
      std::fprintf(stderr, "n-gram branch fitted (C %g): %s after %lld iterations, |g|inf %.2e, "
                   "training accuracy %.2f%%\n", c.ngram_fit, f.solver.stop.c_str(),
                   static_cast<long long>(f.solver.iterations), f.solver.grad_inf,
                   100 * f.train_accuracy);
  }
}
}  // namespace

// ---- one run -------------------------------------------------------------------------------------

TextRunResult run_text_classification(const TrainConfig& cfg, const TextCorpus& corpus,
                                      const std::vector<int64_t>& train,
                                      const std::vector<int64_t>& valid,
                                      const std::vector<int64_t>& test, Communicator* comm,
                                      bool last_epoch, double temperature) {
  const int64_t K = int64_t(corpus.class_names.size());
  std::unique_ptr<Tokenizer> tok;
  std::unique_ptr<Classifier> model;
  if (!cfg.init.empty()) {  // the pretrained encoder and its tokenizer, a fresh pooling and head
    auto tt = text_classifier_from_pretrained(cfg.init, K, nlohmann::json::parse(cfg.model_config),
                                              cfg.seed, tok);
    FOCUS_CHECK(cfg.max_len <= tt->cfg().max_len, ValueError,
                "--max-len {} exceeds the pretrained encoder's max_len {} ('{}')", cfg.max_len,
                tt->cfg().max_len, cfg.init);
    model = std::move(tt);
  } else {
    tok = learn_text_tokenizer(corpus, train, cfg);
    nlohmann::json mc = nlohmann::json::parse(cfg.model_config);
    mc["vocab_size"] = tok->vocab().size();
    mc["num_classes"] = K;
    if (!mc.contains("max_len")) mc["max_len"] = cfg.max_len;
    if (mc.contains("ngram_boundary") && mc["ngram_boundary"].is_string()) {  // a symbol: its id
      const std::string sym = mc["ngram_boundary"].get<std::string>();
      FOCUS_CHECK(tok->vocab().contains(sym), ValueError,
                  "--model-config: ngram_boundary '{}' is not a symbol of the {} tokenizer (the char "
                  "tokenizer's \" \" ends words)", sym, tok->kind());
      mc["ngram_boundary"] = tok->vocab().id(sym);
    }
    Rng rng(cfg.seed);
    model = make_classifier("text_transformer", mc, rng);
  }
  auto* tt = dynamic_cast<TextTransformer*>(model.get());
  // Rows are cut to --max-len (at most the encoder's max_len), or to ngram_len for the branch.
  int64_t len = cfg.max_len;
  if (tt) len = std::max(std::min<int64_t>(cfg.max_len, tt->cfg().max_len), tt->cfg().ngram_len);
  const TextClassificationData data = encode_corpus(corpus, *tok, len, cfg.token_dropout);
  FOCUS_CHECK(cfg.epochs > 0 || (tt && tt->cfg().ngram_fit > 0), ValueError,
              "--epochs 0 trains nothing; it scores a model whose n-gram branch is fitted "
              "convexly before training (\"ngram_fit\" in --model-config)");
  FOCUS_CHECK(!valid.empty(), ValueError, "the validation split is empty");
  ModelInfo info;
  info.tokenizer = tok->to_json().dump();
  std::vector<double> weights;
  if (cfg.class_weights) {
    std::vector<int64_t> y;
    for (int64_t i : train) y.push_back(corpus.labels[size_t(i)]);
    weights = balanced_class_weights(y, K);
  }
  TextRunResult res;
  res.model_path = cfg.out + (last_epoch ? "/model_last.safetensors" : "/model_best.safetensors");
  const bool root = !comm || comm->rank() == 0;
  if (cfg.epochs == 0 && !root) return res;  // the fit alone: rank 0's work
  if (tt) fit_ngram_branch(*tt, data, train, corpus.labels, weights, root);
  if (cfg.epochs == 0) {  // the convexly fitted n-gram branch alone: nothing to train
    info.class_names = corpus.class_names;
    info.task = cfg.task;
    std::filesystem::create_directories(cfg.out);
    write_file_atomic(cfg.out + "/config.json", to_json(cfg).dump(2) + "\n");
    for (const char* f : {"/model_best.safetensors", "/model_last.safetensors"})
      save_model(cfg.out + f, *model, info);
    model->eval();
    const EvalResult v = evaluate(*model, data, valid);
    res.best_val_accuracy = v.accuracy();
    write_file_atomic(cfg.out + "/metrics.jsonl",
                      nlohmann::json{{"epoch", 0}, {"val_loss", v.loss}, {"val_acc", v.accuracy()},
                                     {"note", "the fitted n-gram branch alone (--epochs 0)"}}
                              .dump() + "\n");
    std::fprintf(stderr, "--epochs 0: the fitted n-gram branch alone; validation accuracy %.2f%%\n",
                 100 * res.best_val_accuracy);
  } else {
    Trainer trainer(cfg, *model, data, comm, TrainValSplit{train, valid}, info, weights);
    const auto history = trainer.fit();
    res.epochs = int(history.size());
    double best = -1;
    for (size_t e = 0; e < history.size(); ++e) {
      const double acc = history[e].value("val_acc", 0.0);
      if (acc > best) best = acc, res.best_epoch = int(e) + 1;
    }
    res.best_val_accuracy = std::max(best, 0.0);
    res.train_seconds = history.empty() ? 0 : history.back().value("train_seconds_total", 0.0);
    if (comm && comm->rank() != 0) return res;
  }
  // Temperature on the validation rows (or the one given), written into the scored model file.
  LoadedClassifier lc = load_classifier(res.model_path);
  if (temperature > 0) {
    lc.info.temperature = temperature;
  } else {
    std::vector<double> z;
    evaluate(*lc.model, data, valid, 256, &z);
    std::vector<int64_t> yv;
    for (int64_t i : valid) yv.push_back(corpus.labels[size_t(i)]);
    lc.info.temperature = fit_temperature(z, yv, K);
  }
  save_model(res.model_path, *lc.model, lc.info);
  res.temperature = lc.info.temperature;
  // Test rows (or the validation rows when there are none).
  const std::vector<int64_t>& scored = test.empty() ? valid : test;
  std::vector<double> zt;
  const EvalResult r = evaluate(*lc.model, data, scored, 256, &zt);
  std::vector<int64_t> yt;
  for (int64_t i : scored) yt.push_back(corpus.labels[size_t(i)]);
  const CalibrationReport cal = calibration_report(zt, yt, K, res.temperature);
  res.cm = r.cm;
  const ClassificationReport rep = classification_report(r.cm);
  res.accuracy = rep.accuracy;
  res.macro_f1 = rep.macro_f1;
  res.test_nll = cal.nll;
  res.metrics = metrics_to_json(r.cm, corpus.class_names);
  if (K == 2) {
    std::vector<double> score;  // logit margin: monotone in p(class 1)
    for (size_t i = 0; i < yt.size(); ++i) score.push_back(zt[2 * i + 1] - zt[2 * i]);
    const bool both = std::count(yt.begin(), yt.end(), 1) > 0 && std::count(yt.begin(), yt.end(), 0) > 0;
    if (both) res.roc_auc = roc_auc(score, yt);
    res.metrics["roc_auc"] = both ? nlohmann::json(res.roc_auc) : nlohmann::json();
  }
  res.metrics["temperature"] = res.temperature;
  res.metrics["ece"] = cal.ece;
  res.metrics["nll"] = cal.nll;
  res.metrics["scored"] = test.empty() ? "valid" : "test";
  res.test_logits = std::move(zt);
  res.test_labels = std::move(yt);
  return res;
}

}  // namespace focus
