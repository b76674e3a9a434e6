// Batched decoding of a corpus of token-id sources and its scoring (g2p: WER / PER against all
// references; translate: BLEU / chrF), and the source normalisation of each task. Below the
// predictors (infer/translator.hpp, which checks raw text before it gets here) and used by the
// seq2seq trainer on the model it trains.
// Batches: src (B, S) right-padded with 0 (Seq2Seq::kPad) and src_len (B). Sources are sorted by
// length and cut into batches of about max_tokens source tokens (beam rows count beam times), so
// padding stays small; results come back in input order.
// Limits: sources must be non-empty and at most the model's max_len tokens (decode_corpus does
// not check; score_corpus truncates longer ones and scores them as they are).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "focus/models/seq2seq_search.hpp"
#include "focus/tensor/tensor.hpp"
#include "focus/text/parallel.hpp"
#include "focus/text/tokenizer.hpp"

namespace focus {

class Seq2Seq;

// The source side as the model sees it: g2p spellings are lower-cased.
std::string normalize_source(const std::string& task, const std::string& text);

// Sources only: src (B, S) and src_len (B).
void make_source_batch(const std::vector<std::vector<int64_t>>& src,
                       const std::vector<int64_t>& index, Tensor& src_out, Tensor& len_out);

// Decodes every source (sorted by length into batches of about max_tokens, results in input
// order) with greedy search (beam 1) or beam search.
std::vector<std::vector<Hypothesis>> decode_corpus(Seq2Seq& model,
                                                   const std::vector<std::vector<int64_t>>& src,
                                                   const SearchOptions& opt,
                                                   int64_t max_tokens = 4096);

struct CorpusScore {
  // g2p: wer, per (%) and counts; translate: bleu, chrf. primary = the one to select models on
  // (lower is better: WER for g2p, 100 - BLEU for translate).
  double wer = 0, per = 0, bleu = 0, chrf = 0, primary = 0;
  int64_t sentences = 0, errors = 0;
  double seconds = 0;  // decoding time
  std::vector<std::string> hyps;  // top hypothesis per group, decoded text
};
struct HypothesisError {
  int64_t edits = 0;  // whitespace-token edits to the closest reference
  size_t index = 0;   // into the hypotheses / groups
};
// The at most `n` hypotheses farthest from their closest reference (edits > 0), most edits first
// (ties in input order). hyps[i] answers groups[i].
std::vector<HypothesisError> worst_errors(const std::vector<std::string>& hyps,
                                          const std::vector<RefGroup>& groups, size_t n);

// Decodes the groups' sources and scores them; limit > 0 takes the first `limit` groups.
CorpusScore score_corpus(Seq2Seq& model, const std::string& task, const Tokenizer& src_tok,
                         const Tokenizer& tgt_tok, const std::vector<RefGroup>& groups,
                         const SearchOptions& opt, int64_t limit = 0);

}  // namespace focus
