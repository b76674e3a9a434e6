// The arithmetic precision of focus's F32 products, process-wide like the kernel switches
// (set_gemm_kernel, set_conv_kernel): every GEMM (kernels/gemm.hpp) and convolution
// (kernels/conv.hpp) on F32 data, in training and in inference.
//   f32   everything in F32 (the default).
//   bf16  mixed precision, as PyTorch's CPU autocast: each product's two inputs are rounded to
//         bfloat16 (nearest, ties to even; tensor/bf16.hpp), their products are exact in F32 and
//         the sums accumulate in F32; outputs, weights (the F32 master copy), gradients, optimizer
//         state and every other op (norms, softmax, losses, the fused attention kernel,
//         element-wise ops) stay F32. It runs on oneDNN's bf16 matmul and convolution primitives
//         (AVX512-BF16's vdpbf16ps; AMX tiles on Xeons that have them). Elsewhere -- tiny
//         products, calls inside a parallel region, a forced lower ISA, FOCUS_GEMM / FOCUS_CONV
//         other than auto or onednn -- it is emulated: the inputs are rounded, then the F32
//         kernels run, which gives the same numbers up to the order of the sums. The emulation is
//         the reference of the tests on every ISA; it is no faster than f32, hence
//         check_precision_supported() below for the command line.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace focus {

enum class Precision { F32, Bf16 };

Precision compute_precision();
void set_compute_precision(Precision p);
const char* precision_name(Precision p);          // "f32", "bf16"
Precision parse_precision(std::string_view name); // ValueError naming the value otherwise

// True where bf16 products run on bf16 hardware: the CPU has AVX512-BF16 or AMX-BF16 and the
// active ISA (FOCUS_FORCE_ISA) is AVX-512.
bool bf16_hardware();
// Throws ValueError, naming the CPU's lack, for bf16 without bf16_hardware().
void check_precision_supported(Precision p);
// parse_precision, then check_precision_supported: what a --precision flag takes.
Precision supported_precision(std::string_view name);

// dst[i] = src[i] rounded to the nearest bfloat16 (kept as a float); dst may equal src.
void round_to_bf16(float* dst, const float* src, int64_t n);
// The same into 16-bit storage (the bits of tensor/bf16.hpp's BFloat16).
void to_bf16_bits(uint16_t* dst, const float* src, int64_t n);

// For a scope: the process computes at `p`; the previous precision comes back at exit.
class ScopedPrecision {
 public:
  explicit ScopedPrecision(Precision p) : was_(compute_precision()) { set_compute_precision(p); }
  ~ScopedPrecision() { set_compute_precision(was_); }
  ScopedPrecision(const ScopedPrecision&) = delete;
  ScopedPrecision& operator=(const ScopedPrecision&) = delete;

 private:
  Precision was_;
};

}  // namespace focus
