// conv2d on oneDNN's convolution primitives, for training: forward_training, backward_data and
// backward_weights (+ bias), F32, on the same NCHW pointers and ConvGeom as kernels/conv.hpp.
//   Activations and weights stay in focus's plain layouts (NCHW, OIHW); each call reorders them
//   into the blocked layouts the primitive picked (nChw16c on AVX-512, nChw8c on AVX2) and the
//   results back. Primitives and reorders are made once per geometry and cached (process-wide,
//   thread-safe); the blocked copies live in per-thread buffers reused from call to call.
//   oneDNN runs on the thread policy's count (kernels/cpu.hpp) from any calling thread, capped
//   by FOCUS_FORCE_ISA through kernels/onednn.hpp; under the forced scalar ISA it does not run.
// Algorithm: direct, or Winograd F(4x4, 3x3) for each pass where asked for and oneDNN has it
// (3x3, stride 1, AVX-512: `jit_wino_4x3`; elsewhere the pass quietly stays direct). Winograd does
// about half the multiply-adds of the direct convolution; its transforms cost some precision
// (relative errors near 1e-5 instead of 1e-6 in F32, tests/kernels/conv_test.cpp).
// bf16 (kernels/precision.hpp): the reorders into the primitives' layouts round x, w and dy to
// bf16; y, dx, dw and db come out F32. oneDNN has no bf16 Winograd: those passes run direct.
// Each function returns false, having written nothing, where oneDNN cannot take the geometry
// (no oneDNN on this ISA, no primitive, or only oneDNN's reference loop when `allow_reference`
// is false); the dispatcher (kernels/conv.cpp) then runs the im2col kernel.
// Like the other conv kernels: backward writes (not accumulates), any of dx/dw/db may be null.
#pragma once
#include "focus/kernels/conv.hpp"

namespace focus {

struct OneDnnConvOptions {
  bool winograd = false;
  bool allow_reference = true;
  bool bf16 = false;  // bf16 inputs (x, w, dy), F32 outputs and accumulation; direct only
};

bool conv2d_forward_onednn(float* y, const float* x, const float* w, const float* b,
                           const ConvGeom& g, const OneDnnConvOptions& opt = {});
bool conv2d_backward_onednn(float* dx, float* dw, float* db, const float* dy, const float* x,
                            const float* w, const ConvGeom& g, const OneDnnConvOptions& opt = {});

}  // namespace focus
