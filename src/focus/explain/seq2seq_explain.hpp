// Explaining a translation: the source-to-target cross-attention alignment per decoder layer and
// head, and the encoder and decoder self-attention maps, for the hypothesis the model produces.
// The hypothesis comes from greedy or beam search; the maps from one teacher-forced pass over it
// (exact probabilities, from the fused kernel's log-sum-exp).
// Letters: H heads, S source tokens, T target tokens (the hypothesis and </s>).
// Limits: one sentence per call; the source is checked and normalised by the Translator
// (infer/translator.hpp), whose model runs with its prepared weights.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "focus/explain/image_explain.hpp"
#include "focus/models/seq2seq_search.hpp"
#include "focus/tensor/tensor.hpp"

namespace focus {

class Rng;
class Seq2Seq;
class Translator;

struct AlignmentExplanation {
  std::vector<std::string> source_tokens;  // S
  std::vector<std::string> target_tokens;  // T: the hypothesis' tokens, then "</s>"
  std::vector<int64_t> source_ids, output_ids;  // output_ids without <s> / </s>
  std::string output;                      // the hypothesis, decoded
  double log_prob = 0, score = 0;
  std::vector<Tensor> cross;         // per decoder layer (H, T, S)
  std::vector<Tensor> decoder_self;  // per decoder layer (H, T, T), causal
  std::vector<Tensor> encoder_self;  // per encoder layer (H, S, S)
};

// `source` as given (the translator normalises it). InputError (a ValueError) for an empty
// source, unknown symbols (named) or one over the model's max length (Translator::encode).
AlignmentExplanation explain_translation(const Translator& tr, const std::string& source,
                                         const SearchOptions& search = {});

// Token faithfulness: source tokens replaced by <unk> (deletion) or revealed from all-<unk>
// (insertion) in order of the cross-attention they receive (last decoder layer, head mean, summed
// over the target rows) vs random order, tracking the hypothesis' per-token probability
// exp(log p(hypothesis </s> | source) / T).
using TokenFaithfulness = Faithfulness;
TokenFaithfulness alignment_faithfulness(Seq2Seq& model, const AlignmentExplanation& e, Rng& rng,
                                         int64_t repeats = 3);

// One map of a per-layer list (H, Lq, Lk): layer (-1 = last) and head (-1 = mean) -> (Lq, Lk).
// ValueError when the layer or head is out of range.
Tensor pick_map(const std::vector<Tensor>& maps, int64_t layer, int64_t head);

// Tokens, output, scores and every map as nested arrays [layer][head][query][key].
nlohmann::json alignment_to_json(const AlignmentExplanation& e);

}  // namespace focus
