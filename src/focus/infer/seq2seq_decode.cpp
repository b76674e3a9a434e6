// Batched decoding and scoring of a corpus (see seq2seq_decode.hpp).
#include "focus/infer/seq2seq_decode.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <numeric>

#include "focus/models/seq2seq.hpp"
#include "focus/text/metrics.hpp"
#include "focus/text/strings.hpp"

namespace focus {

std::string normalize_source(const std::string& task, const std::string& text) {
  if (task != "g2p") return text;
  std::string s = text;
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void make_source_batch(const std::vector<std::vector<int64_t>>& src,
                       const std::vector<int64_t>& index, Tensor& src_out, Tensor& len_out) {
  const int64_t B = int64_t(index.size());
  int64_t S = 1;
  for (int64_t i : index) S = std::max<int64_t>(S, int64_t(src[size_t(i)].size()));
  std::vector<int64_t> s(static_cast<size_t>(B * S), Seq2Seq::kPad), len(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const auto& x = src[size_t(index[size_t(b)])];
    std::copy(x.begin(), x.end(), s.begin() + b * S);
    len[size_t(b)] = std::max<int64_t>(1, int64_t(x.size()));
  }
  src_out = Tensor::from_vector(s, {B, S});  // (B, S)
  len_out = Tensor::from_vector(len, {B});   // (B)
}

std::vector<std::vector<Hypothesis>> decode_corpus(Seq2Seq& model,
                                                   const std::vector<std::vector<int64_t>>& src,
                                                   const SearchOptions& opt, int64_t max_tokens) {
  std::vector<int64_t> order(src.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return src[size_t(a)].size() < src[size_t(b)].size();
  });
  std::vector<std::vector<Hypothesis>> out(src.size());
  // Batches of about max_tokens source tokens (beam rows cost beam times as much).
  const int64_t budget = std::max<int64_t>(1, max_tokens / std::max<int64_t>(1, opt.beam));
  for (size_t lo = 0; lo < order.size();) {
    size_t hi = lo + 1;
    while (hi < order.size() &&
           int64_t(hi - lo + 1) * int64_t(std::max<size_t>(1, src[size_t(order[hi])].size())) <= budget)
      ++hi;
    const std::vector<int64_t> idx(order.begin() + lo, order.begin() + hi);
    Tensor s, len;
    make_source_batch(src, idx, s, len);
    auto hyps = opt.beam == 1 ? greedy_search(model, s, len, opt) : beam_search(model, s, len, opt);
    for (size_t i = 0; i < idx.size(); ++i) out[size_t(idx[i])] = std::move(hyps[i]);
    lo = hi;
  }
  return out;
}

CorpusScore score_corpus(Seq2Seq& model, const std::string& task, const Tokenizer& src_tok,
                         const Tokenizer& tgt_tok, const std::vector<RefGroup>& groups,
                         const SearchOptions& opt, int64_t limit) {
  const size_t n = limit > 0 ? std::min(groups.size(), size_t(limit)) : groups.size();
  std::vector<std::vector<int64_t>> src(n);
  std::vector<std::vector<std::string>> refs(n);
  const int64_t max_src = model.config().max_len;
  for (size_t i = 0; i < n; ++i) {
    src[i] = src_tok.encode(normalize_source(task, groups[i].source));
    if (int64_t(src[i].size()) > max_src) src[i].resize(size_t(max_src));  // scored as is
    refs[i] = groups[i].refs;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const auto hyps = decode_corpus(model, src, opt);
  CorpusScore r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.sentences = int64_t(n);
  for (const auto& h : hyps) r.hyps.push_back(h.empty() ? std::string() : tgt_tok.decode(h[0].tokens));
  if (task == "g2p") {
    const G2PScore s = score_g2p(r.hyps, refs);
    r.wer = 100 * s.wer();
    r.per = 100 * s.per();
    r.errors = s.word_errors;
    r.primary = r.wer;
  } else {
    r.bleu = corpus_bleu(r.hyps, refs);
    r.chrf = corpus_chrf(r.hyps, refs);
    r.primary = 100 - r.bleu;
  }
  return r;
}

std::vector<HypothesisError> worst_errors(const std::vector<std::string>& hyps,
                                          const std::vector<RefGroup>& groups, size_t n) {
  FOCUS_CHECK(hyps.size() <= groups.size(), ShapeError,
              "worst_errors: {} hypotheses for {} reference groups", hyps.size(), groups.size());
  std::vector<HypothesisError> errs;
  for (size_t i = 0; i < hyps.size(); ++i) {
    std::vector<std::vector<std::string>> refs;
    for (const auto& r : groups[i].refs) refs.push_back(split_whitespace(r));
    int64_t edits = 0;
    closest_reference(split_whitespace(hyps[i]), refs, &edits);
    if (edits > 0) errs.push_back({edits, i});
  }
  std::stable_sort(errs.begin(), errs.end(),
                   [](const HypothesisError& a, const HypothesisError& b) { return a.edits > b.edits; });
  if (errs.size() > n) errs.resize(n);
  return errs;
}

}  // namespace focus
