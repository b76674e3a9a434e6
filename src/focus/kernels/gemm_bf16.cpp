// F32 GEMM at bf16 precision on oneDNN's matmul primitive (kernels/gemm.hpp gemm_bf16_onednn;
// kernels/precision.hpp): op(A) and op(B) are converted to bfloat16 (rounded to nearest even, in
// their own layout: a transposed operand becomes a column-major matrix for the primitive, not a
// copy transposed by hand), the primitive multiplies them with F32 accumulation into C, alpha as
// its output scale and beta as a sum post-op. Primitives are made once per shape, layout, alpha,
// beta and thread count and cached (the products of a training run are a few dozen shapes).
#include <oneapi/dnnl/dnnl.hpp>
#include <omp.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_map>

#include "focus/kernels/cpu.hpp"
#include "focus/kernels/gemm.hpp"
#include "focus/kernels/onednn.hpp"
#include "focus/kernels/onednn_common.hpp"
#include "focus/kernels/precision.hpp"

namespace focus {

namespace {

using dnnl::memory;
using dt = memory::data_type;

dnnl::engine& engine() { return onednn_engine(); }

// One cached product: the primitive, or null where oneDNN has only its reference loop.
struct Prim {
  dnnl::matmul::primitive_desc pd;
  dnnl::matmul prim;
};

// (M, N, K, ta, tb, ldc, alpha bits, beta bits, threads)
using Key = std::tuple<int64_t, int64_t, int64_t, bool, bool, int64_t, uint32_t, uint32_t, int>;

uint32_t bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

std::shared_ptr<const Prim> make(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                                 float beta, int64_t ldc) {
  // Row-major op(A) (M, K): stored (M, K) with strides (K, 1), or (K, M) read as (M, K) with
  // strides (1, M); the same for op(B) (K, N).
  const memory::desc a({M, K}, dt::bf16, ta ? memory::dims{1, M} : memory::dims{K, 1});
  const memory::desc b({K, N}, dt::bf16, tb ? memory::dims{1, K} : memory::dims{N, 1});
  const memory::desc c({M, N}, dt::f32, memory::dims{ldc, 1});
  dnnl::primitive_attr attr = user_scratchpad();
  if (alpha != 1.f) attr.set_output_scales(0, {alpha});
  if (beta != 0.f) {
    dnnl::post_ops po;
    po.append_sum(beta);
    attr.set_post_ops(po);
  }
  auto p = std::make_shared<Prim>();
  p->pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(a, b, c), attr, engine());
  if (std::string(p->pd.impl_info_str()).rfind("ref", 0) == 0) return nullptr;
  p->prim = dnnl::matmul(p->pd);
  return p;
}

std::shared_ptr<const Prim> prim(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                                 float beta, int64_t ldc) {
  static std::mutex mu;
  static std::map<Key, std::shared_ptr<const Prim>> cache;  // null: oneDNN cannot
  const Key key{M, N, K, ta, tb, ldc, bits(alpha), bits(beta), omp_get_max_threads()};
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  // Shapes that vary from call to call (the last batch of an epoch, sequence lengths) would grow
  // the cache without bound: start over past a few hundred entries.
  if (cache.size() >= 512) cache.clear();
  std::shared_ptr<const Prim> p;
  try {
    p = make(ta, tb, M, N, K, alpha, beta, ldc);
  } catch (const dnnl::error&) {
    p = nullptr;
  }
  cache.emplace(key, p);
  return p;
}

// Per-thread buffers kept between calls: 0 op(A) in bf16, 1 op(B), 2 the primitive's scratchpad.
thread_local ScratchSlots<3> t_scratch;

// rows x cols of src (leading dim ld) into dst, compact, as bf16 bits.
void convert(uint16_t* dst, const float* src, int64_t rows, int64_t cols, int64_t ld) {
  for (int64_t r = 0; r < rows; ++r) to_bf16_bits(dst + r * cols, src + r * ld, cols);
}

}  // namespace

bool gemm_bf16_onednn(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                      const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                      float* C, int64_t ldc) {
  if (!onednn_enabled() || M == 0 || N == 0 || K == 0) return false;
  const auto p = prim(ta, tb, M, N, K, alpha, beta, ldc);
  if (!p) return false;
  // Stored shapes: A (M, K) or (K, M); B (K, N) or (N, K).
  const int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
  auto* a = static_cast<uint16_t*>(t_scratch.get(0, size_t(ar * ac) * 2));
  auto* b = static_cast<uint16_t*>(t_scratch.get(1, size_t(br * bc) * 2));
  convert(a, A, ar, ac, lda);
  convert(b, B, br, bc, ldb);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory(p->pd.src_desc(), engine(), a)},
                                       {DNNL_ARG_WEIGHTS, memory(p->pd.weights_desc(), engine(), b)},
                                       {DNNL_ARG_DST, memory(p->pd.dst_desc(), engine(), C)}};
  const memory::desc pad = p->pd.scratchpad_desc();
  if (pad.get_size() > 0)
    args.emplace(DNNL_ARG_SCRATCHPAD, memory(pad, engine(), t_scratch.get(2, pad.get_size())));
  thread_local dnnl::stream s(engine());
  p->prim.execute(s, args);
  s.wait();
  return true;
}

}  // namespace focus
