// Token batching invariants: every index once, the padded-size bound, over-long examples alone,
// max_sentences, determinism per (seed, epoch), sorted order without shuffling, low padding on
// CMUdict-like lengths, and argument errors.
#include "focus/text/batching.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include "data/temp_dir.hpp"
#include "focus/tensor/error.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {
namespace {

using testing::throws_with;

// CMUdict-like lengths: spellings 2..16 characters, pronunciations within 2 of that (+2 for
// <s>/</s> on the target side).
void cmudict_like(int64_t n, std::vector<int64_t>& src, std::vector<int64_t>& tgt) {
  Rng rng(7);
  src.resize(n);
  tgt.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    src[i] = 2 + rng.randint(15);
    tgt[i] = std::max<int64_t>(1, src[i] - 2 + rng.randint(5)) + 2;
  }
}

void expect_invariants(const std::vector<std::vector<int64_t>>& batches,
                       const std::vector<int64_t>& src, const std::vector<int64_t>& tgt,
                       const TokenBatchOptions& opt) {
  std::vector<int> seen(src.size(), 0);
  for (const auto& b : batches) {
    ASSERT_FALSE(b.empty());
    int64_t widest = 0;
    for (const int64_t i : b) {
      ASSERT_GE(i, 0);
      ASSERT_LT(i, static_cast<int64_t>(src.size()));
      ++seen[i];
      widest = std::max({widest, src[i], tgt[i]});
    }
    if (b.size() > 1) {
      EXPECT_LE(static_cast<int64_t>(b.size()) * widest, opt.max_tokens);
    }
    if (opt.max_sentences > 0) {
      EXPECT_LE(static_cast<int64_t>(b.size()), opt.max_sentences);
    }
  }
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], 1) << "index " << i;
}

TEST(TokenBatches, Invariants) {
  std::vector<int64_t> src, tgt;
  cmudict_like(20000, src, tgt);
  TokenBatchOptions opt;
  opt.max_tokens = 1000;
  const auto b = make_token_batches(src, tgt, opt, 0);
  expect_invariants(b, src, tgt, opt);
  const double pad = padding_fraction(b, src, tgt);
  std::printf("[ info ] %zu batches, padding %.2f%%\n", b.size(), 100 * pad);
  EXPECT_LT(pad, 0.10);
  opt.max_sentences = 16;
  expect_invariants(make_token_batches(src, tgt, opt, 0), src, tgt, opt);
}

TEST(TokenBatches, DeterministicPerEpoch) {
  std::vector<int64_t> src, tgt;
  cmudict_like(5000, src, tgt);
  TokenBatchOptions opt;
  opt.max_tokens = 500;
  const auto e1 = make_token_batches(src, tgt, opt, 1);
  EXPECT_EQ(make_token_batches(src, tgt, opt, 1), e1);
  EXPECT_NE(make_token_batches(src, tgt, opt, 2), e1);
  opt.seed = 2;
  EXPECT_NE(make_token_batches(src, tgt, opt, 1), e1);
}

TEST(TokenBatches, UnshuffledIsLengthSorted) {
  std::vector<int64_t> src, tgt;
  cmudict_like(3000, src, tgt);
  TokenBatchOptions opt;
  opt.max_tokens = 300;
  opt.shuffle = false;
  const auto b = make_token_batches(src, tgt, opt, 5);
  expect_invariants(b, src, tgt, opt);
  EXPECT_EQ(make_token_batches(src, tgt, opt, 6), b);  // epoch is irrelevant without shuffling
  std::vector<int64_t> flat;
  for (const auto& x : b) flat.insert(flat.end(), x.begin(), x.end());
  EXPECT_TRUE(std::is_sorted(flat.begin(), flat.end(), [&](int64_t x, int64_t y) {
    return std::tie(src[x], tgt[x], x) < std::tie(src[y], tgt[y], y);
  }));
}

TEST(TokenBatches, OverLongExampleAlone) {
  // widths 3, 50, 3, 3 with max_tokens 10: the 50 forms its own batch, the 3s pack by 3
  const std::vector<int64_t> src = {3, 50, 2, 3}, tgt = {1, 4, 3, 3};
  TokenBatchOptions opt;
  opt.max_tokens = 10;
  opt.shuffle = false;
  const auto b = make_token_batches(src, tgt, opt, 0);
  EXPECT_EQ(b, (std::vector<std::vector<int64_t>>{{2, 0, 3}, {1}}));
  // padding: batch 1 has src (2,3,3), tgt (3,1,3) padded to 3x3 + 3x3 = 18 for 15 tokens;
  // batch 2 none: 1 - (15 + 54) / (18 + 54)
  EXPECT_NEAR(padding_fraction(b, src, tgt), 1.0 - 69.0 / 72.0, 1e-12);
  EXPECT_TRUE(make_token_batches({}, {}, opt, 0).empty());
}

TEST(TokenBatches, Errors) {
  TokenBatchOptions opt;
  EXPECT_TRUE(throws_with<ValueError>([&] { make_token_batches({1, 2}, {1}, opt, 0); },
                                      "2 source lengths vs 1 target lengths"));
  EXPECT_TRUE(throws_with<ValueError>([&] { make_token_batches({1, -2}, {1, 1}, opt, 0); },
                                      "example 1 has lengths (-2, 1)"));
  opt.max_tokens = 0;
  EXPECT_TRUE(throws_with<ValueError>([&] { make_token_batches({1}, {1}, opt, 0); }, "max_tokens 0"));
}

}  // namespace
}  // namespace focus
