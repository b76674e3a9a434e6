// Attention straight from its definition, one (b, h, i) row at a time in double precision: the
// independent reference for scaled_dot_product_attention and the attention layers' tests.
//   Letters: B batch, H query heads, Hkv K/V heads (head h reads h / (H / Hkv)), Lq, Lk, D, Dv.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "focus/ops/attention.hpp"

namespace focus::testing {

struct Naive {
  std::vector<double> out;      // (B, H, Lq, Dv)
  std::vector<double> weights;  // (B, H, Lq, Lk)
};

// Attention one (b, h, i) row at a time, straight from the definition.
inline Naive naive_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                             const AttentionOptions& o) {
  const int64_t B = q.size(0), H = q.size(1), Lq = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), Lk = k.size(2), Dv = v.size(3), G = H / Hkv;
  const auto pq = q.to_vector<double>(), pk = k.to_vector<double>(), pv = v.to_vector<double>();
  std::vector<double> bias;
  if (o.bias.defined()) bias = o.bias.expand({B, H, Lq, Lk}).contiguous().to_vector<double>();
  std::vector<int64_t> len;
  if (o.key_lengths.defined()) len = o.key_lengths.to_vector<int64_t>();
  std::vector<double> pad;
  if (o.key_padding_mask.defined()) pad = o.key_padding_mask.to_vector<double>();
  const double scale = o.scale.value_or(1.0 / std::sqrt(double(D)));
  Naive r{std::vector<double>(B * H * Lq * Dv, 0.0), std::vector<double>(B * H * Lq * Lk, 0.0)};
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < Lq; ++i) {
        const int64_t hk = h / G;
        std::vector<double> s(Lk);
        std::vector<bool> visible(Lk);
        double mx = -INFINITY;
        for (int64_t j = 0; j < Lk; ++j) {
          visible[j] = !(o.causal && j > i + Lk - Lq) && !(!len.empty() && j >= len[b]) &&
                       !(!pad.empty() && pad[b * Lk + j] != 0);
          double dot = 0;
          for (int64_t d = 0; d < D; ++d)
            dot += pq[((b * H + h) * Lq + i) * D + d] * pk[((b * Hkv + hk) * Lk + j) * D + d];
          s[j] = dot * scale + (bias.empty() ? 0.0 : bias[((b * H + h) * Lq + i) * Lk + j]);
          if (visible[j]) mx = std::max(mx, s[j]);
        }
        double z = 0;
        for (int64_t j = 0; j < Lk; ++j) z += visible[j] ? std::exp(s[j] - mx) : 0.0;
        for (int64_t j = 0; j < Lk; ++j) {
          const double p = visible[j] ? std::exp(s[j] - mx) / z : 0.0;
          r.weights[((b * H + h) * Lq + i) * Lk + j] = p;
          for (int64_t d = 0; d < Dv; ++d)
            r.out[((b * H + h) * Lq + i) * Dv + d] += p * pv[((b * Hkv + hk) * Lk + j) * Dv + d];
        }
      }
  return r;
}

inline double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

}  // namespace focus::testing
