// The fused attention's short-sequence forward (queries in the vector lanes,
// kernels/attention_impl.hpp forward_short) against attention computed in double by hand and
// against the blocked forward it replaces, on every ISA path the CPU has: query counts across the
// lane widths (5 .. 70; tails of 1 .. 4 rows, which take the few-rows path), key counts 1 .. 256, head dims off the register chunks (D 7, 16, 24;
// Dv 5, 16, 20, 36), GQA, key lengths (0 included), key padding (a batch row fully padded
// included), strided operands; the LSE, and no LSE (null). Problems with a bias, a window or
// dropout, or more keys than it takes, do not take it.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "focus/kernels/attention.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/tensor/rng.hpp"
#include "support/attention_isas.hpp"

using namespace focus;

namespace {

struct Case {
  int64_t B, H, Hkv, Lq, Lk, D, Dv;
  bool lengths = false, padding = false;
};

// One problem's operands, the K/V rows strided inside wider rows (as a stacked QKV product
// leaves them).
struct Problem {
  Case c;
  std::vector<float> q, k, v;
  std::vector<int64_t> len;
  std::vector<uint8_t> pad;
  int64_t kv_row = 0;  // K and V row length (> D, Dv)

  AttnProblem<float> make() const {
    AttnProblem<float> p;
    p.B = c.B, p.H = c.H, p.Hkv = c.Hkv, p.Lq = c.Lq, p.Lk = c.Lk, p.D = c.D, p.Dv = c.Dv;
    p.q = q.data(), p.k = k.data(), p.v = v.data();
    p.q_stride = AttnLayout{c.H * c.Lq * c.D, c.Lq * c.D, c.D};
    p.k_stride = AttnLayout{c.Hkv * c.Lk * kv_row, c.Lk * kv_row, kv_row};
    p.v_stride = p.k_stride;
    p.scale = 1.0 / std::sqrt(double(c.D));
    if (c.lengths) p.key_lengths = len.data();
    if (c.padding) p.key_padding = pad.data();
    return p;
  }
};

Problem make_problem(const Case& c, Rng& rng) {
  Problem pr;
  pr.c = c;
  pr.kv_row = std::max(c.D, c.Dv) + 3;
  pr.q.resize(size_t(c.B * c.H * c.Lq * c.D));
  pr.k.resize(size_t(c.B * c.Hkv * c.Lk * pr.kv_row));
  pr.v.resize(pr.k.size());
  for (auto* v : {&pr.q, &pr.k, &pr.v})
    for (float& x : *v) x = float(rng.normal());
  for (int64_t b = 0; b < c.B; ++b) pr.len.push_back(b == 0 ? 0 : 1 + rng.randint(c.Lk));
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t j = 0; j < c.Lk; ++j) pr.pad.push_back(b == c.B - 1 ? 1 : rng.uniform() < 0.3);
  return pr;
}

// o (B, H, Lq, Dv) and lse (B, H, Lq) in double, by the definition.
void by_hand(const Problem& pr, std::vector<double>& o, std::vector<double>& lse) {
  const Case& c = pr.c;
  const AttnProblem<float> p = pr.make();
  o.assign(size_t(c.B * c.H * c.Lq * c.Dv), 0.0);
  lse.assign(size_t(c.B * c.H * c.Lq), -std::numeric_limits<double>::infinity());
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.H; ++h) {
      const int64_t hk = h / (c.H / c.Hkv);
      for (int64_t i = 0; i < c.Lq; ++i) {
        std::vector<double> s(size_t(c.Lk), -std::numeric_limits<double>::infinity());
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < c.Lk; ++j) {
          if (p.key_lengths && j >= p.key_lengths[b]) continue;
          if (p.key_padding && p.key_padding[b * c.Lk + j]) continue;
          double dot = 0;
          for (int64_t d = 0; d < c.D; ++d)
            dot += double(p.q[b * p.q_stride.b + h * p.q_stride.h + i * p.q_stride.l + d]) *
                   p.k[b * p.k_stride.b + hk * p.k_stride.h + j * p.k_stride.l + d];
          s[size_t(j)] = dot * p.scale;
          mx = std::max(mx, s[size_t(j)]);
        }
        if (mx == -std::numeric_limits<double>::infinity()) continue;  // nothing visible
        double sum = 0;
        for (double& x : s) sum += (x = std::exp(x - mx));
        const size_t row = size_t((b * c.H + h) * c.Lq + i);
        lse[row] = mx + std::log(sum);
        for (int64_t j = 0; j < c.Lk; ++j)
          for (int64_t d = 0; d < c.Dv; ++d)
            o[row * size_t(c.Dv) + size_t(d)] +=
                s[size_t(j)] / sum * p.v[b * p.v_stride.b + hk * p.v_stride.h + j * p.v_stride.l + d];
      }
    }
}

struct Restore {
  ~Restore() {
    set_attention_isa(AttentionIsa::Auto);
    set_attention_short_path(true);
  }
};

}  // namespace

TEST(ShortAttention, MatchesByHandAndBlockedForward) {
  const Case cases[] = {
      {2, 4, 4, 50, 50, 16, 16},                  // the vit's blocks
      {3, 4, 2, 17, 33, 24, 20, true, false},     // GQA, lengths (batch 0: none), Dv 16 + 4
      {2, 2, 1, 70, 256, 7, 5, false, true},      // most keys, odd dims, padding (last row all)
      {2, 8, 2, 5, 1, 16, 36, true, true},        // one key, Dv 2 x 16 + 4
      {1, 2, 2, 64, 129, 32, 16},                 // whole lane groups
      {3, 2, 2, 36, 40, 16, 16, true, true},      // a tail of 4 rows (few-rows path), masks
  };
  Rng rng(31);
  Restore restore;
  for (const Case& c : cases) {
    const Problem pr = make_problem(c, rng);
    const AttnProblem<float> p = pr.make();
    std::vector<double> want_o, want_lse;
    by_hand(pr, want_o, want_lse);
    const size_t no = size_t(c.B * c.H * c.Lq * c.Dv), nl = size_t(c.B * c.H * c.Lq);
    const AttnLayout os{c.H * c.Lq * c.Dv, c.Lq * c.Dv, c.Dv};
    for (AttentionIsa isa : focus::testing::attention_isas()) {
      set_attention_isa(isa);
      for (bool short_path : {true, false}) {
        set_attention_short_path(short_path);
        const std::string what = attention_isa_name(isa) + (short_path ? " short" : " blocked") +
                                 " B" + std::to_string(c.B) + " Lq" + std::to_string(c.Lq) +
                                 " Lk" + std::to_string(c.Lk) + " D" + std::to_string(c.D) +
                                 "/" + std::to_string(c.Dv);
        ASSERT_EQ(attention_runs_short(p), short_path) << what;
        std::vector<float> o(no, 7.0f), lse(nl, 7.0f);
        attention_forward<float>(p, o.data(), os, lse.data());
        for (size_t i = 0; i < no; ++i) ASSERT_NEAR(o[i], want_o[i], 2e-5) << what << " o[" << i << "]";
        for (size_t i = 0; i < nl; ++i) {
          if (std::isinf(want_lse[i])) {
            ASSERT_TRUE(std::isinf(lse[i]) && lse[i] < 0) << what << " lse[" << i << "]";
          } else {
            ASSERT_NEAR(lse[i], want_lse[i], 2e-5 * (1 + std::fabs(want_lse[i]))) << what << " lse[" << i << "]";
          }
        }
        std::vector<float> o2(no, -3.0f);  // no LSE: the same output
        attention_forward<float>(p, o2.data(), os, nullptr);
        ASSERT_EQ(o2, o) << what << " without LSE";
      }
    }
  }
}

// What does not take it: a bias, a window, dropout, more keys than it holds, few query rows.
TEST(ShortAttention, TakesOnlyWhatItCan) {
  Rng rng(33);
  const Problem pr = make_problem({1, 2, 2, 20, 30, 16, 16}, rng);
  AttnProblem<float> p = pr.make();
  ASSERT_TRUE(attention_runs_short(p));
  std::vector<float> bias(20 * 30);
  AttnProblem<float> x = p;
  x.bias = bias.data();
  EXPECT_FALSE(attention_runs_short(x));
  x = p, x.window_right = 0;
  EXPECT_FALSE(attention_runs_short(x));
  x = p, x.window_left = 3;
  EXPECT_FALSE(attention_runs_short(x));
  x = p, x.dropout_p = 0.1;
  EXPECT_FALSE(attention_runs_short(x));
  x = p, x.Lk = 257;
  EXPECT_FALSE(attention_runs_short(x));
  x = p, x.Lq = 4;
  EXPECT_FALSE(attention_runs_short(x));
}

// The double instance (the scalar lanes) within double rounding of the definition.
TEST(ShortAttention, DoublePrecision) {
  Rng rng(32);
  const Case c{2, 4, 2, 9, 40, 12, 6, true, true};
  const Problem pr = make_problem(c, rng);
  std::vector<double> want_o, want_lse;
  by_hand(pr, want_o, want_lse);
  const AttnProblem<float> pf = pr.make();
  std::vector<double> q(pr.q.begin(), pr.q.end()), k(pr.k.begin(), pr.k.end()),
      v(pr.v.begin(), pr.v.end());
  AttnProblem<double> p;
  p.B = pf.B, p.H = pf.H, p.Hkv = pf.Hkv, p.Lq = pf.Lq, p.Lk = pf.Lk, p.D = pf.D, p.Dv = pf.Dv;
  p.q = q.data(), p.k = k.data(), p.v = v.data();
  p.q_stride = pf.q_stride, p.k_stride = pf.k_stride, p.v_stride = pf.v_stride;
  p.scale = pf.scale, p.key_lengths = pf.key_lengths, p.key_padding = pf.key_padding;
  ASSERT_TRUE(attention_short_path());
  std::vector<double> o(want_o.size()), lse(want_lse.size());
  attention_forward<double>(p, o.data(), AttnLayout{c.H * c.Lq * c.Dv, c.Lq * c.Dv, c.Dv}, lse.data());
  for (size_t i = 0; i < o.size(); ++i) ASSERT_NEAR(o[i], want_o[i], 1e-12) << i;
  for (size_t i = 0; i < lse.size(); ++i) {
    if (std::isinf(want_lse[i])) {
      ASSERT_TRUE(std::isinf(lse[i]) && lse[i] < 0) << i;
    } else {
      ASSERT_NEAR(lse[i], want_lse[i], 1e-12) << i;
    }
  }
}
