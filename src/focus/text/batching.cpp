// Token batching (see batching.hpp). Randomness: focus's Philox Rng with seed opt.seed, starting
// at counter epoch * 2^40, so epochs draw disjoint streams.
#include "focus/text/batching.hpp"

#include <algorithm>
#include <limits>
#include <numeric>

#include "focus/tensor/error.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {
namespace {

constexpr int64_t kBatchesPerChunk = 100;

template <class T>
void shuffle(std::vector<T>& v, Rng& rng) {  // Fisher-Yates
  for (int64_t i = static_cast<int64_t>(v.size()) - 1; i > 0; --i)
    std::swap(v[i], v[rng.randint(i + 1)]);
}

}  // namespace

std::vector<std::vector<int64_t>> make_token_batches(const std::vector<int64_t>& src_len,
                                                     const std::vector<int64_t>& tgt_len,
                                                     const TokenBatchOptions& opt, uint64_t epoch) {
  FOCUS_CHECK(src_len.size() == tgt_len.size(), ValueError,
              "make_token_batches: {} source lengths vs {} target lengths", src_len.size(),
              tgt_len.size());
  FOCUS_CHECK(opt.max_tokens >= 1, ValueError, "make_token_batches: max_tokens {} < 1",
              opt.max_tokens);
  FOCUS_CHECK(opt.max_sentences >= 0, ValueError, "make_token_batches: max_sentences {} < 0",
              opt.max_sentences);
  const int64_t n = static_cast<int64_t>(src_len.size());
  for (int64_t i = 0; i < n; ++i)
    FOCUS_CHECK(src_len[i] >= 0 && tgt_len[i] >= 0, ValueError,
                "make_token_batches: example {} has lengths ({}, {})", i, src_len[i], tgt_len[i]);
  const auto width = [&](int64_t i) { return std::max(src_len[i], tgt_len[i]); };

  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  Rng rng(opt.seed);
  rng.set_state(opt.seed, epoch << 40);
  if (opt.shuffle) shuffle(order, rng);

  std::vector<std::vector<int64_t>> batches;
  const int64_t chunk_tokens = opt.shuffle ? kBatchesPerChunk * opt.max_tokens : std::numeric_limits<int64_t>::max();
  for (int64_t begin = 0; begin < n;) {
    int64_t end = begin, tokens = 0;
    while (end < n && tokens < chunk_tokens) tokens += std::max<int64_t>(1, width(order[end++]));
    std::sort(order.begin() + begin, order.begin() + end, [&](int64_t a, int64_t b) {
      if (src_len[a] != src_len[b]) return src_len[a] < src_len[b];
      if (tgt_len[a] != tgt_len[b]) return tgt_len[a] < tgt_len[b];
      return a < b;
    });
    std::vector<int64_t> batch;
    int64_t widest = 0;
    for (int64_t k = begin; k < end; ++k) {
      const int64_t i = order[k];
      const int64_t w = std::max(widest, width(i));
      const int64_t size = static_cast<int64_t>(batch.size()) + 1;
      const bool fits = size * w <= opt.max_tokens &&
                        (opt.max_sentences == 0 || size <= opt.max_sentences);
      if (!batch.empty() && !fits) {
        batches.push_back(std::move(batch));
        batch.clear();
        widest = 0;
      }
      batch.push_back(i);
      widest = std::max(widest, width(i));
    }
    if (!batch.empty()) batches.push_back(std::move(batch));
    begin = end;
  }
  if (opt.shuffle) shuffle(batches, rng);
  return batches;
}

double padding_fraction(const std::vector<std::vector<int64_t>>& batches,
                        const std::vector<int64_t>& src_len, const std::vector<int64_t>& tgt_len) {
  FOCUS_CHECK(src_len.size() == tgt_len.size(), ValueError,
              "padding_fraction: {} source lengths vs {} target lengths", src_len.size(),
              tgt_len.size());
  double real = 0, padded = 0;
  for (const auto& b : batches) {
    int64_t ms = 0, mt = 0;
    for (const int64_t i : b) {
      FOCUS_CHECK(i >= 0 && i < static_cast<int64_t>(src_len.size()), ValueError,
                  "padding_fraction: index {} outside [0, {})", i, src_len.size());
      ms = std::max(ms, src_len[i]);
      mt = std::max(mt, tgt_len[i]);
      real += static_cast<double>(src_len[i] + tgt_len[i]);
    }
    padded += static_cast<double>(b.size()) * static_cast<double>(ms + mt);
  }
  return padded > 0 ? 1.0 - real / padded : 0.0;
}

}  // namespace focus
