// Sequence-to-sequence data and training batches (see seq2seq_data.hpp).
#include "focus/train/seq2seq_data.hpp"

#include <algorithm>

#include "focus/models/seq2seq.hpp"
#include "focus/text/cmudict.hpp"
#include "focus/text/vocab.hpp"
#include "focus/train/config.hpp"

namespace focus {

Seq2SeqTaskData load_seq2seq_data(const TrainConfig& cfg) {
  Seq2SeqTaskData d;
  if (cfg.task == "g2p") {
    const std::string path = cfg.cmudict.empty() ? default_cmudict_path() : cfg.cmudict;
    for (const DictEntry& e : load_cmudict(path, cfg.keep_stress)) {
      const std::string word = normalize_source("g2p", e.word);
      const SplitPart part = split_of(e.word);
      Seq2SeqSplit& s = part == SplitPart::Train ? d.train : part == SplitPart::Dev ? d.dev : d.test;
      for (const std::string& p : e.prons) s.pairs.push_back({word, p});
      s.groups.push_back({word, e.prons});
    }
  } else {
    d.train.pairs = load_tsv(cfg.train_file);
    d.dev.pairs = load_tsv(cfg.valid_file);
    if (!cfg.test_file.empty()) d.test.pairs = load_tsv(cfg.test_file);
    for (Seq2SeqSplit* s : {&d.train, &d.dev, &d.test}) s->groups = group_references(s->pairs);
  }
  if (cfg.limit_train > 0 && int64_t(d.train.pairs.size()) > cfg.limit_train)
    d.train.pairs.resize(size_t(cfg.limit_train));
  FOCUS_CHECK(!d.train.pairs.empty() && !d.dev.groups.empty(), ValueError,
              "task {}: no training or validation data ({} and {} pairs)", cfg.task,
              d.train.pairs.size(), d.dev.pairs.size());
  return d;
}

EncodedPairs encode_pairs(const std::vector<TextPair>& pairs, const Tokenizer& src,
                          const Tokenizer& tgt, int64_t max_len) {
  EncodedPairs out;
  for (const TextPair& p : pairs) {
    std::vector<int64_t> s = src.encode(p.source), t = tgt.encode(p.target);
    if (s.empty() || t.empty() || int64_t(s.size()) > max_len || int64_t(t.size()) + 1 > max_len) {
      ++out.skipped;
      continue;
    }
    out.src.push_back(std::move(s));
    out.tgt.push_back(std::move(t));
  }
  return out;
}

Seq2SeqBatch make_batch(const EncodedPairs& data, const std::vector<int64_t>& index) {
  Seq2SeqBatch b;
  make_source_batch(data.src, index, b.src, b.src_len);
  const int64_t B = int64_t(index.size());
  int64_t T = 1;
  for (int64_t i : index) T = std::max<int64_t>(T, int64_t(data.tgt[size_t(i)].size()) + 1);
  std::vector<int64_t> in(size_t(B * T), Seq2Seq::kPad), out(size_t(B * T), Seq2Seq::kPad);
  for (int64_t r = 0; r < B; ++r) {
    const auto& y = data.tgt[size_t(index[size_t(r)])];
    in[size_t(r * T)] = Seq2Seq::kBos;
    std::copy(y.begin(), y.end(), in.begin() + r * T + 1);
    std::copy(y.begin(), y.end(), out.begin() + r * T);
    out[size_t(r * T) + y.size()] = Seq2Seq::kEos;
    b.tgt_tokens += int64_t(y.size()) + 1;
    b.src_tokens += int64_t(data.src[size_t(index[size_t(r)])].size());
  }
  b.tgt_in = Tensor::from_vector(in, {B, T});    // (B, T)
  b.tgt_out = Tensor::from_vector(out, {B, T});  // (B, T)
  return b;
}


}  // namespace focus
