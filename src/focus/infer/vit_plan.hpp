// The vit (models/vit.hpp) compiled for inference: an ImagePlan (infer/image_plan.hpp) that runs
// the eval-mode forward straight on the kernels over a workspace kept between calls, in F32 or in
// int8, with no autograd bookkeeping and no tensor per layer:
//   stem: each conv + batch norm + ReLU as one convolution (batch norm folded into the weights in
//     F32, into the int8 convolution's per-channel output scale and bias in int8); the patch
//     embedding; the tokens written once with the class token and the positions.
//   blocks (pre-norm): LayerNorm -> one QKV product (weights stacked once) -> fused attention
//     (kernels/attention.hpp) reading Q/K/V in place -> out_proj added into the residual stream ->
//     LayerNorm -> linear1 + GELU -> linear2 added into the residual stream.
//   The last block needs only the class token's row after its attention (the head reads nothing
//     else), so its attention runs one query per image and its out_proj and MLP run N rows, not
//     N * T. Then the final LayerNorm and the head on those rows.
// int8 (every Conv2d and Linear above in the int8 layer list): the weights s8 per output channel,
// activations quantised per row on each call (kernels/qgemm.hpp), and each transformer Linear runs
// as a fused row pipeline (kernels/qfused.hpp): LayerNorm + quantisation in the product's
// prologue, dequantisation + bias (+ GELU) + the residual add in its epilogue, the MLP's hidden
// layer never leaving cache. Attention, the softmax and the LayerNorm statistics stay F32.
// The logits equal Vit::forward's in eval mode (same weights, same int8 layers) up to float
// rounding (tests/infer/vit_plan_test.cpp). Models it runs: a vit with pool "cls" (pruned heads
// and grouped K/V heads included), no early exit (exit_threshold > 1: a plan compiled before a
// later set_exit_policy keeps the plain forward), F32 weights; anything else gives null (the
// model's own forward runs). int8 needs every Conv2d and Linear the plan uses in
// int8_layers (a `focus quantize` file that keeps some in F32 runs the layers); else null.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "focus/infer/image_plan.hpp"

namespace focus {

// precision F32 or I8; null when the plan does not run this model (see above).
std::unique_ptr<ImagePlan> compile_vit_plan(const ImageClassifier& model, DType precision,
                                            const std::vector<std::string>& int8_layers = {});

}  // namespace focus
