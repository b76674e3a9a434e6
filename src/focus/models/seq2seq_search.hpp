// Decoding a Seq2Seq: greedy and beam search over the decoder's KV caches (self-attention K/V
// appended per step, encoder K/V projected once), batched over sentences; finished sentences
// leave the batch (the caches are reordered / compacted). Inference only: the model must be in
// eval mode (StateError otherwise).
// Scores: log_prob = sum of log p(token) over the output tokens and </s>; score = log_prob /
// len^length_penalty with len = tokens + 1 (</s>), the length normalisation of Wu et al. 2016 in
// its simplest form (0 = raw log-probability). Beam search keeps `beam` live hypotheses per
// sentence, a hypothesis ends when </s> is among its sentence's best 2*beam candidates, and a
// sentence ends when it has `beam` finished hypotheses or reaches max_len; n-best lists are sorted
// by score. With beam 1 it picks what greedy picks.
// Letters: B sentences, S source length, K beam, N = rows (sentences x beams), V target vocab.
#pragma once
#include <cstdint>
#include <vector>

#include "focus/tensor/tensor.hpp"

namespace focus {

class Seq2Seq;

struct SearchOptions {
  int64_t beam = 1;             // >= 1
  int64_t nbest = 1;            // hypotheses returned per sentence, 1..beam
  double length_penalty = 1.0;  // alpha >= 0 in score = log_prob / len^alpha
  int64_t max_len = 0;          // output tokens incl. </s>; 0 = model max_len; <= model max_len
};

struct Hypothesis {
  std::vector<int64_t> tokens;  // without <s> and </s>
  double log_prob = 0;          // of tokens and </s> (of tokens alone when !finished)
  double score = 0;
  bool finished = true;  // false: cut at max_len without </s>
};

// src (B, S) I64, src_len I64 (B) -> per sentence, hypotheses sorted by score (best first).
std::vector<std::vector<Hypothesis>> greedy_search(Seq2Seq& model, const Tensor& src,
                                                   const Tensor& src_len,
                                                   const SearchOptions& opt = {});
std::vector<std::vector<Hypothesis>> beam_search(Seq2Seq& model, const Tensor& src,
                                                 const Tensor& src_len, const SearchOptions& opt);

// Teacher-forced log p(targets[b] </s> | src[b]) per sentence (the scores search reports).
std::vector<double> sequence_log_prob(Seq2Seq& model, const Tensor& src, const Tensor& src_len,
                                      const std::vector<std::vector<int64_t>>& targets);

}  // namespace focus
