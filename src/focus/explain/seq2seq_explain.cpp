// Translation alignments (see seq2seq_explain.hpp).
#include "focus/explain/seq2seq_explain.hpp"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "focus/autograd/node.hpp"
#include "focus/infer/translator.hpp"
#include "focus/models/seq2seq.hpp"
#include "focus/ops/reduce.hpp"
#include "focus/ops/view.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/text/tokenizer.hpp"

namespace focus {

namespace {

std::vector<Tensor> first_sample(const std::vector<Tensor>& maps) {  // (1, H, a, b) -> (H, a, b)
  std::vector<Tensor> out;
  for (const Tensor& m : maps) out.push_back(select(m.detach(), 0, 0).contiguous());
  return out;
}

}  // namespace

AlignmentExplanation explain_translation(const Translator& tr, const std::string& source,
                                         const SearchOptions& search) {
  const std::vector<int64_t> ids = tr.encode(source);
  const int64_t S = static_cast<int64_t>(ids.size());
  Seq2Seq& model = tr.model();
  const Tokenizer& src_tok = tr.source_tokenizer();
  const Tokenizer& tgt_tok = tr.target_tokenizer();
  NoGradGuard no_grad;
  const Tensor src = Tensor::from_vector(ids, {1, S});  // (1, S)
  const Tensor src_len = Tensor::from_vector(std::vector<int64_t>{S}, {1});
  const Hypothesis hyp = search.beam > 1 ? beam_search(model, src, src_len, search)[0][0]
                                         : greedy_search(model, src, src_len, search)[0][0];
  AlignmentExplanation e;
  e.source_ids = ids;
  e.output_ids = hyp.tokens;
  e.log_prob = hyp.log_prob;
  e.score = hyp.score;
  e.output = tgt_tok.decode(hyp.tokens);
  for (int64_t id : ids) e.source_tokens.push_back(src_tok.vocab().token(id));
  std::vector<int64_t> tgt_in{Seq2Seq::kBos};  // <s> y1 .. yn -> predicts y1 .. yn </s>
  for (int64_t id : hyp.tokens) {
    e.target_tokens.push_back(tgt_tok.vocab().token(id));
    tgt_in.push_back(id);
  }
  e.target_tokens.push_back(hyp.finished ? "</s>" : "...");
  if (!hyp.finished) tgt_in.pop_back();  // cut at max_len: no </s> row
  const int64_t T = static_cast<int64_t>(tgt_in.size());
  std::vector<Tensor> enc_self, cross, dec_self;
  const Tensor memory = model.encode(src, src_len, &enc_self);
  model.decode(Tensor::from_vector(tgt_in, {1, T}), memory, src_len, &cross, &dec_self);
  e.encoder_self = first_sample(enc_self);
  e.cross = first_sample(cross);
  e.decoder_self = first_sample(dec_self);
  if (!hyp.finished) e.target_tokens.resize(T);
  return e;
}

namespace {

// Per-token probability of e's hypothesis for each masked source (1 = keep, 0 = <unk>).
std::vector<double> hypothesis_probs(Seq2Seq& model, const AlignmentExplanation& e,
                                     const std::vector<std::vector<uint8_t>>& keep) {
  const int64_t S = static_cast<int64_t>(e.source_ids.size()), K = static_cast<int64_t>(keep.size());
  std::vector<int64_t> src(K * S);  // (K, S)
  for (int64_t k = 0; k < K; ++k)
    for (int64_t j = 0; j < S; ++j) src[k * S + j] = keep[k][j] ? e.source_ids[j] : Vocab::kUnk;
  std::vector<int64_t> y = e.output_ids;  // a hypothesis cut at max_len: scored up to room for </s>
  if (static_cast<int64_t>(y.size()) >= model.config().max_len) y.resize(model.config().max_len - 1);
  const std::vector<double> lp = sequence_log_prob(
      model, Tensor::from_vector(src, {K, S}), Tensor::full({K}, double(S), DType::I64),
      std::vector<std::vector<int64_t>>(K, y));
  std::vector<double> p;
  const double T = static_cast<double>(y.size() + 1);
  for (double v : lp) p.push_back(std::exp(v / T));
  return p;
}

}  // namespace

TokenFaithfulness alignment_faithfulness(Seq2Seq& model, const AlignmentExplanation& e, Rng& rng,
                                         int64_t repeats) {
  FOCUS_CHECK(!e.cross.empty() && !e.source_ids.empty(), ValueError,
              "alignment_faithfulness: the explanation has no alignment");
  FOCUS_CHECK(repeats >= 1, ValueError, "alignment_faithfulness: repeats {} must be >= 1", repeats);
  NoGradGuard no_grad;
  const int64_t S = static_cast<int64_t>(e.source_ids.size());
  const std::vector<float> m = pick_map(e.cross, -1, -1).to_vector<float>();  // (T, S)
  std::vector<double> received(S, 0.0);
  for (size_t i = 0; i < m.size(); ++i) received[i % S] += m[i];
  return faithfulness_by_scores(
      received,
      [&](const std::vector<std::vector<uint8_t>>& keep) { return hypothesis_probs(model, e, keep); },
      rng, repeats);
}

Tensor pick_map(const std::vector<Tensor>& maps, int64_t layer, int64_t head) {
  const int64_t L = static_cast<int64_t>(maps.size());
  FOCUS_CHECK(L > 0, ValueError, "explain: no attention maps");
  const int64_t l = layer < 0 ? L - 1 : layer;
  FOCUS_CHECK(l < L, ValueError, "explain: layer {} is outside [0, {})", layer, L);
  const Tensor& m = maps[l];  // (H, Lq, Lk)
  FOCUS_CHECK(head < m.size(0), ValueError, "explain: head {} is outside [0, {})", head,
              m.size(0));
  return head < 0 ? mean(m, {0}) : select(m, 0, head).contiguous();
}

nlohmann::json alignment_to_json(const AlignmentExplanation& e) {
  return {{"source_tokens", e.source_tokens}, {"target_tokens", e.target_tokens},
          {"output", e.output},               {"log_prob", e.log_prob},
          {"score", e.score},                 {"cross_attention", attention_maps_json(e.cross)},
          {"decoder_self_attention", attention_maps_json(e.decoder_self)},
          {"encoder_self_attention", attention_maps_json(e.encoder_self)}};
}

}  // namespace focus
