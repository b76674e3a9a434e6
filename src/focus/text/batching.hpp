// Token-budget batching with length bucketing for sequence-to-sequence training.
// make_token_batches: the indices are shuffled with (seed, epoch), cut into chunks of about 100
// batches' worth of tokens, each chunk sorted by (source, target) length, then cut greedily into
// batches whose padded size n * max(max source length, max target length) stays <= max_tokens
// (an example longer than that alone forms its own batch), and the batch order is shuffled.
// Every index appears exactly once; the result depends only on (lengths, options, epoch).
// shuffle = false: one chunk, no shuffling: the batches in fully length-sorted order (evaluation).
#pragma once
#include <cstdint>
#include <vector>

namespace focus {

struct TokenBatchOptions {
  int64_t max_tokens = 4096;   // padded tokens per batch: n * max(len) over source and target
  int64_t max_sentences = 0;   // 0 = no limit
  bool shuffle = true;
  uint64_t seed = 1;
};

// ValueError when the length vectors differ in size, hold a negative length, or an option is out
// of range.
std::vector<std::vector<int64_t>> make_token_batches(const std::vector<int64_t>& src_len,
                                                     const std::vector<int64_t>& tgt_len,
                                                     const TokenBatchOptions& opt, uint64_t epoch);

// Share of padding in the padded source and target tensors of `batches`:
// 1 - sum(src + tgt) / sum(n * (max src + max tgt)); 0 for no tokens.
double padding_fraction(const std::vector<std::vector<int64_t>>& batches,
                        const std::vector<int64_t>& src_len, const std::vector<int64_t>& tgt_len);

}  // namespace focus
