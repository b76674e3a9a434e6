// Positional encodings added to a (B, L, D) sequence: learned (a trained (Lmax, D) table, named
// `weight`) and sinusoidal (fixed, "Attention Is All You Need": pe[p, 2i] = sin(p / 10000^(2i/D)),
// pe[p, 2i+1] = cos(same)). The sinusoidal table is not state (not in the state dict).
#pragma once
#include "focus/nn/module.hpp"

namespace focus {

class Rng;

class LearnedPositionalEncoding : public Module {
 public:
  // weight (Lmax, D) ~ N(0, 0.02^2).
  LearnedPositionalEncoding(int64_t max_len, int64_t dim, Rng& rng);
  Tensor forward(const Tensor& x) const;  // (B, L, D) -> x + weight[:L], L <= Lmax

  const Tensor weight;  // (Lmax, D)
};

class SinusoidalPositionalEncoding : public Module {
 public:
  SinusoidalPositionalEncoding(int64_t max_len, int64_t dim);
  Tensor forward(const Tensor& x) const;  // (B, L, D) -> x + pe[:L] (in x's dtype), L <= Lmax
  Tensor table(DType dtype = DType::F32) const;  // (Lmax, D)

 private:
  Tensor pe32_, pe64_;  // (Lmax, D) in F32 and F64
};

}  // namespace focus
