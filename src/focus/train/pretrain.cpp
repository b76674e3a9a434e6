// Masked-token pretraining and the fine-tuning start (see pretrain.hpp).
#include "focus/train/pretrain.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "focus/data/augment.hpp"
#include "focus/infer/model_file.hpp"
#include "focus/models/text_mlm.hpp"
#include "focus/models/text_transformer.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/text/cmudict.hpp"
#include "focus/text/labelled.hpp"
#include "focus/text/spam_corpus.hpp"
#include "focus/train/trainer.hpp"

namespace focus {

// ---- masking -------------------------------------------------------------------------------------

MaskedRow mask_tokens(const std::vector<int64_t>& row, const MaskingOptions& o, Rng& rng) {
  FOCUS_CHECK(!row.empty(), ValueError, "mask_tokens: empty row");
  FOCUS_CHECK(o.mask_prob > 0 && o.mask_prob <= 1, ValueError,
              "mask_tokens: mask_prob {} not in (0, 1]", o.mask_prob);
  FOCUS_CHECK(o.mask_share >= 0 && o.random_share >= 0 && o.mask_share + o.random_share <= 1,
              ValueError, "mask_tokens: mask share {} and random share {} must be >= 0 and sum to <= 1",
              o.mask_share, o.random_share);
  FOCUS_CHECK(o.vocab_size > Vocab::kNumSpecial, ValueError,
              "mask_tokens: vocabulary of {} has no regular token", o.vocab_size);
  const int64_t n = int64_t(row.size());
  const int64_t k = std::clamp<int64_t>(std::llround(o.mask_prob * double(n)), 1, n);
  std::vector<int64_t> pos(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) pos[size_t(i)] = i;
  for (int64_t i = 0; i < k; ++i) std::swap(pos[size_t(i)], pos[size_t(i + rng.randint(n - i))]);
  MaskedRow m{row, std::vector<int64_t>(size_t(n), kIgnoreTarget)};
  for (int64_t i = 0; i < k; ++i) {
    const size_t p = size_t(pos[size_t(i)]);
    m.target[p] = row[p];
    const double u = rng.uniform();
    if (u < o.mask_share)
      m.input[p] = kMaskTokenId;
    else if (u < o.mask_share + o.random_share)
      m.input[p] = Vocab::kNumSpecial + rng.randint(o.vocab_size - Vocab::kNumSpecial);
  }
  return m;
}

MaskedTokenData::MaskedTokenData(std::vector<std::vector<int64_t>> rows, const Vocab& vocab,
                                 MaskingOptions opt)
    : rows_(std::move(rows)), labels_(rows_.size(), 0), class_names_(vocab.tokens()), opt_(opt) {
  opt_.vocab_size = vocab.size();
  for (size_t i = 0; i < rows_.size(); ++i) {
    FOCUS_CHECK(!rows_[i].empty(), ValueError, "MaskedTokenData: row {} has no token", i);
    for (int64_t t : rows_[i])
      FOCUS_CHECK(t >= 0 && t < vocab.size(), ValueError,
                  "MaskedTokenData: row {} holds id {} outside the vocabulary of {}", i, t,
                  vocab.size());
  }
}

namespace {
constexpr uint32_t kMaskTag = 0x3A5Cu;
}  // namespace

Batch MaskedTokenData::batch(std::span<const int64_t> indices, const BatchDraw& draw) const {
  size_t L = 1;
  for (int64_t i : indices) {
    FOCUS_CHECK(i >= 0 && i < size(), ValueError, "MaskedTokenData: index {} not in [0, {})", i,
                size());
    L = std::max(L, rows_[size_t(i)].size());
  }
  const int64_t B = int64_t(indices.size());
  Batch b;
  b.x = Tensor::zeros({B, int64_t(L)}, DType::I64);                          // (B, L)
  b.y = Tensor::full({B, int64_t(L)}, double(kIgnoreTarget), DType::I64);    // (B, L)
  int64_t* x = b.x.data<int64_t>();
  int64_t* y = b.y.data<int64_t>();
  for (int64_t r = 0; r < B; ++r) {
    const int64_t i = indices[size_t(r)];
    Rng rng(derive_seed(draw.train ? draw.seed : 0, kMaskTag, draw.train ? draw.epoch : 0,
                        uint64_t(i)));
    const MaskedRow m = mask_tokens(rows_[size_t(i)], opt_, rng);
    std::copy(m.input.begin(), m.input.end(), x + r * int64_t(L));
    std::copy(m.target.begin(), m.target.end(), y + r * int64_t(L));
  }
  b.indices.assign(indices.begin(), indices.end());
  return b;
}

// ---- unlabelled text -----------------------------------------------------------------------------

std::vector<std::string> split_sentences(std::string_view text, int min_words) {
  std::vector<std::string> out;
  std::string cur;
  int words = 0;
  bool in_word = false;
  auto flush = [&] {
    while (!cur.empty() && cur.back() == ' ') cur.pop_back();
    if (words >= min_words) out.push_back(cur);
    cur.clear();
    words = 0;
    in_word = false;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool space = c == ' ' || c == '\n' || c == '\r' || c == '\t';
    if (space) {
      if (!cur.empty() && cur.back() != ' ') cur.push_back(' ');
      in_word = false;
      continue;
    }
    if (!in_word) ++words;
    in_word = true;
    cur.push_back(c);
    if ((c == '.' || c == '!' || c == '?') &&
        (i + 1 == text.size() || text[i + 1] == ' ' || text[i + 1] == '\n' || text[i + 1] == '\r'))
      flush();
  }
  flush();
  return out;
}

namespace {

std::string read_text_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  FOCUS_CHECK(f.good(), IOError, "cannot read '{}' (run tools/fetch-data.sh to fetch the unlabelled text)",
              path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string cache_path(const std::string& cache_dir, const std::string& rel) {
  return cache_dir.empty() ? data_cache_file(rel) : (std::filesystem::path(cache_dir) / rel).string();
}

}  // namespace

std::vector<std::string> unlabelled_sentences(const std::string& corpora, const std::string& cache_dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  auto add = [&](const std::string& text) {
    auto s = split_sentences(text);
    out.insert(out.end(), std::make_move_iterator(s.begin()), std::make_move_iterator(s.end()));
  };
  for (size_t pos = 0; pos <= corpora.size();) {
    size_t end = corpora.find(',', pos);
    if (end == std::string::npos) end = corpora.size();
    const std::string name = corpora.substr(pos, end - pos);
    pos = end + 1;
    if (name == "moby-dick") {
      add(read_text_file(cache_path(cache_dir, "unlabelled/moby-dick.txt")));
    } else if (name == "sotu") {
      const std::string dir = cache_path(cache_dir, "unlabelled/sotu");
      std::error_code ec;
      FOCUS_CHECK(fs::is_directory(dir, ec), IOError,
                  "'{}' is missing (run tools/fetch-data.sh to fetch the unlabelled text)", dir);
      std::vector<std::string> files;
      for (const auto& e : fs::directory_iterator(dir))
        if (e.path().extension() == ".txt") files.push_back(e.path().string());
      std::sort(files.begin(), files.end());
      for (const auto& f : files) add(read_text_file(f));
    } else if (name == "ham") {
      const SpamCorpus c = read_spam_corpus(
          cache_dir.empty() ? spam_dir() : (fs::path(cache_dir) / "spam").string(), 20000);
      for (const auto& m : c.messages)
        if (!m.spam) add(m.text);
    } else if (name == "sentiment") {
      for (const auto& site : sentiment_sites())
        for (const auto& r : read_sentiment_file(cache_dir.empty() ? sentiment_path(site)
                                                                    : sentiment_path(site, cache_dir))
                                 .rows)
          out.push_back(r.text);
    } else {
      throw ValueError(fmt::format(
          "--corpus '{}': unknown corpus '{}' (known: moby-dick, sotu, ham, sentiment)", corpora, name));
    }
  }
  return out;
}

// ---- pretraining ---------------------------------------------------------------------------------

PretrainResult run_pretraining(const TrainConfig& cfg, const std::vector<std::string>& texts) {
  FOCUS_CHECK(!texts.empty(), ValueError, "pretraining: no unlabelled text");
  // The tokenizer: a seeded sample of at most 100,000 texts.
  std::vector<int64_t> order(texts.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = int64_t(i);
  shuffle_indices(order, cfg.seed);
  std::vector<std::string> sample;
  for (size_t i = 0; i < std::min<size_t>(order.size(), 100000); ++i)
    sample.push_back(normalize_for_classification(texts[size_t(order[i])]));
  TokenizerOptions topt;
  topt.bpe_merges = cfg.bpe_merges;
  topt.min_count = cfg.min_count;
  const auto tok = train_tokenizer(cfg.src_tokenizer.empty() ? "bpe" : cfg.src_tokenizer, sample, topt);
  std::vector<std::vector<int64_t>> rows;
  for (int64_t i : order) {  // shuffled: the held-out rows are a random sample
    auto ids = encode_for_classification(*tok, texts[size_t(i)], cfg.max_len);
    if (ids.size() >= 4) rows.push_back(std::move(ids));
  }
  const int64_t n = int64_t(rows.size());
  FOCUS_CHECK(cfg.val_size >= 1 && cfg.val_size < n, ValueError,
              "pretraining: --val-size {} must be in [1, {}) (the sequences of 4+ tokens)",
              cfg.val_size, n);
  TrainValSplit split;
  for (int64_t i = 0; i < n; ++i) (i < cfg.val_size ? split.val : split.train).push_back(i);
  if (cfg.limit_train > 0 && int64_t(split.train.size()) > cfg.limit_train)
    split.train.resize(size_t(cfg.limit_train));
  MaskingOptions mo;
  mo.mask_prob = cfg.mask_prob;
  const MaskedTokenData data(std::move(rows), tok->vocab(), mo);
  nlohmann::json mc = nlohmann::json::parse(cfg.model_config);
  mc["vocab_size"] = tok->vocab().size();
  mc["num_classes"] = 2;  // unused by text_mlm
  if (!mc.contains("max_len")) mc["max_len"] = cfg.max_len;
  Rng rng(cfg.seed);
  TextMlm model(TextTransformerConfig::from_json(mc), rng);
  ModelInfo info;
  info.tokenizer = tok->to_json().dump();
  std::fprintf(stderr, "focus: masked-token pretraining on %zu sequences (%zu held out), vocabulary %lld, %lld parameters\n",
               split.train.size(), split.val.size(), (long long)tok->vocab().size(),
               (long long)model.num_parameters());
  Trainer trainer(cfg, model, data, nullptr, split, info);
  const auto history = trainer.fit();
  PretrainResult r;
  r.model_path = cfg.out + "/model_best.safetensors";
  r.train_rows = int64_t(split.train.size());
  r.val_rows = int64_t(split.val.size());
  r.vocab_size = tok->vocab().size();
  r.epochs = int(history.size());
  for (const auto& h : history) {
    r.train_seconds = h.value("train_seconds_total", 0.0);
    if (h.value("val_acc", 0.0) >= r.val_acc) {
      r.val_acc = h.value("val_acc", 0.0);
      r.val_loss = h.value("val_loss", 0.0);
    }
  }
  return r;
}

std::unique_ptr<TextTransformer> text_classifier_from_pretrained(
    const std::string& path, int64_t num_classes, const nlohmann::json& overrides, uint64_t seed,
    std::unique_ptr<Tokenizer>& tokenizer) {
  LoadedClassifier lc = load_classifier(path);
  auto* enc = dynamic_cast<TextEncoderModel*>(lc.model.get());
  FOCUS_CHECK(enc != nullptr, FormatError, "--init '{}' holds a {} model, not a text encoder (text_mlm or text_transformer)",
              path, lc.model->name());
  FOCUS_CHECK(!lc.info.tokenizer.empty(), FormatError, "--init '{}' has no tokenizer", path);
  tokenizer = tokenizer_from_json(nlohmann::json::parse(lc.info.tokenizer));
  nlohmann::json mc = enc->cfg().to_json();
  FOCUS_CHECK(overrides.is_object(), ValueError, "--model-config must be a JSON object");
  for (const auto& [key, value] : overrides.items()) {
    if (key == "dropout" || key == "attn_dropout" || key == "num_classes") {
      mc[key] = value;
      continue;
    }
    FOCUS_CHECK(mc.contains(key) && mc[key] == value, ValueError,
                "--model-config {} = {} differs from the pretrained encoder's {} ('{}'); with --init "
                "only dropout and attn_dropout may change",
                key, value.dump(), mc.contains(key) ? mc[key].dump() : "(none)", path);
  }
  mc["num_classes"] = num_classes;
  Rng rng(seed);
  auto model = std::make_unique<TextTransformer>(TextTransformerConfig::from_json(mc), rng);
  StateDict sd;
  for (const auto& [name, t] : lc.model->state_dict())
    if (TextEncoderModel::is_encoder_parameter(name)) sd[name] = t;
  model->load_state_dict(sd, false);
  model->train();
  return model;
}

}  // namespace focus
