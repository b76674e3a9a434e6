// The unary ops' forward and backward loops and the math-kernel switch (see unary.hpp).
// Contiguous arrays only; large arrays run in parallel. GELU's tanh form is computed through
// 1 + tanh(u) = 2 sigmoid(2u), which needs only exp and stays accurate in both tails.
#include "focus/kernels/unary.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "focus/kernels/cpu.hpp"
#include "focus/kernels/unary_loops.hpp"

namespace focus {

namespace {

std::atomic<MathKernel> g_math{[] {
  const char* e = std::getenv("FOCUS_MATH");
  return e && std::strcmp(e, "libm") == 0 ? MathKernel::Libm : MathKernel::Fast;
}()};

constexpr int64_t kParallel = 1 << 15;  // elements; below this the loop runs on one thread
constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kInvSqrt2Pi = 0.3989422804014327;
constexpr double kGeluCubic = 0.044715;

// y[i] = f(x[i]) and dx[i] = g(dy[i], xy[i]); f and g capture constants by value so the loops
// see only the arrays and vectorise.
template <class T, class F>
inline void map1(T* __restrict y, const T* __restrict x, int64_t n, F f) {
#pragma omp parallel for simd if (parallel : n > kParallel)
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}
template <class T, class G>
inline void map2(T* __restrict dx, const T* __restrict dy, const T* __restrict xy, int64_t n, G g) {
#pragma omp parallel for simd if (parallel : n > kParallel)
  for (int64_t i = 0; i < n; ++i) dx[i] = g(dy[i], xy[i]);
}

// The per-ISA F32 loops (unary_loops.hpp) apply to F32 on an AVX2 or AVX-512 CPU; for GELU only
// with the fast math (MathKernel::Libm keeps the erfc reference). Large arrays are split over the
// threads in whole vectors.
template <class M>
const simd::UnaryLoops* fast_loops(bool needs_fast_math) {
  if (needs_fast_math && !std::is_same_v<M, FastMath>) return nullptr;
  return simd::unary_loops(active_isa());
}
template <class F>
void split(int64_t n, F fn) {
  constexpr int64_t kChunk = 1 << 12;  // elements, a multiple of every vector width
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n > kParallel)
  for (int64_t c = 0; c < chunks; ++c) fn(c * kChunk, std::min(kChunk, n - c * kChunk));
}

template <class T, class M>
void forward_impl(UnaryOp op, T* y, const T* x, int64_t n, T p) {
  const T k = T(kSqrt2OverPi), c = T(kGeluCubic);
  switch (op) {
    case UnaryOp::Exp:
      return map1(y, x, n, [](T v) { return M::exp(v); });
    case UnaryOp::Log:
      return map1(y, x, n, [](T v) { return std::log(v); });
    case UnaryOp::Sqrt:
      return map1(y, x, n, [](T v) { return std::sqrt(v); });
    case UnaryOp::Tanh:
      return map1(y, x, n, [](T v) { return std::tanh(v); });
    case UnaryOp::Sigmoid:
      return map1(y, x, n, [](T v) { return T(1) / (T(1) + M::exp(-v)); });
    case UnaryOp::Relu:
      if constexpr (std::is_same_v<T, float>)
        if (const auto* f = fast_loops<M>(false))
          return split(n, [&](int64_t i, int64_t m) { f->relu_forward(y + i, x + i, m); });
      return map1(y, x, n, [](T v) { return v < T(0) ? T(0) : v; });
    case UnaryOp::Gelu:
      if constexpr (std::is_same_v<T, float>)
        if (const auto* f = fast_loops<M>(true))
          return split(n, [&](int64_t i, int64_t m) { f->gelu_forward(y + i, x + i, m); });
      return map1(y, x, n, [](T v) { return v * M::cdf(v); });
    case UnaryOp::GeluTanh:
      return map1(y, x, n, [k, c](T v) {  // x (1 + tanh u) / 2 = x sigmoid(2u)
        const T u = k * (v + c * v * v * v);
        return v / (T(1) + M::exp(T(-2) * u));
      });
    case UnaryOp::Square:
      return map1(y, x, n, [](T v) { return v * v; });
    case UnaryOp::Pow:
      return map1(y, x, n, [p](T v) { return std::pow(v, p); });
    case UnaryOp::Abs:
      return map1(y, x, n, [](T v) { return std::abs(v); });
  }
}

template <class T, class M>
void backward_impl(UnaryOp op, T* dx, const T* dy, const T* xy, int64_t n, T p) {
  const T k = T(kSqrt2OverPi), c = T(kGeluCubic), inv_sqrt_2pi = T(kInvSqrt2Pi);
  switch (op) {
    case UnaryOp::Exp:
      return map2(dx, dy, xy, n, [](T g, T y) { return g * y; });
    case UnaryOp::Log:
      return map2(dx, dy, xy, n, [](T g, T x) { return g / x; });
    case UnaryOp::Sqrt:
      return map2(dx, dy, xy, n, [](T g, T y) { return g / (T(2) * y); });
    case UnaryOp::Tanh:
      return map2(dx, dy, xy, n, [](T g, T y) { return g * (T(1) - y * y); });
    case UnaryOp::Sigmoid:
      return map2(dx, dy, xy, n, [](T g, T y) { return g * y * (T(1) - y); });
    case UnaryOp::Relu:
      if constexpr (std::is_same_v<T, float>)
        if (const auto* f = fast_loops<M>(false))
          return split(n, [&](int64_t i, int64_t m) {
            f->relu_backward(dx + i, dy + i, xy + i, m);
          });
      return map2(dx, dy, xy, n, [](T g, T y) { return y > T(0) ? g : T(0); });
    case UnaryOp::Gelu:
      if constexpr (std::is_same_v<T, float>)
        if (const auto* f = fast_loops<M>(true))
          return split(n, [&](int64_t i, int64_t m) {
            f->gelu_backward(dx + i, dy + i, xy + i, m);
          });
      return map2(dx, dy, xy, n, [inv_sqrt_2pi](T g, T x) {  // Phi(x) + x phi(x)
        T gauss;
        const T cdf = M::cdf(x, gauss);
        return g * (cdf + x * inv_sqrt_2pi * gauss);
      });
    case UnaryOp::GeluTanh:
      return map2(dx, dy, xy, n, [k, c](T g, T x) {  // d/dx x s(2u) = s + x s (1 - s) 2 u'
        const T u = k * (x + c * x * x * x);
        const T s = T(1) / (T(1) + M::exp(T(-2) * u));
        return g * (s + x * s * (T(1) - s) * T(2) * k * (T(1) + T(3) * c * x * x));
      });
    case UnaryOp::Square:
      return map2(dx, dy, xy, n, [](T g, T x) { return T(2) * x * g; });
    case UnaryOp::Pow:
      if (p == T(0)) return map2(dx, dy, xy, n, [](T, T) { return T(0); });
      return map2(dx, dy, xy, n, [p](T g, T x) { return g * p * std::pow(x, p - T(1)); });
    case UnaryOp::Abs:
      return map2(dx, dy, xy, n, [](T g, T x) { return x > T(0) ? g : x < T(0) ? -g : T(0); });
  }
}

}  // namespace

void set_math_kernel(MathKernel k) { g_math.store(k); }
MathKernel math_kernel() { return g_math.load(); }

template <class T>
void unary_forward(UnaryOp op, T* y, const T* x, int64_t n, double p) {
  dispatch_math([&]<class M>() { forward_impl<T, M>(op, y, x, n, static_cast<T>(p)); });
}

template <class T>
void unary_backward(UnaryOp op, T* dx, const T* dy, const T* xy, int64_t n, double p) {
  dispatch_math([&]<class M>() { backward_impl<T, M>(op, dx, dy, xy, n, static_cast<T>(p)); });
}

template <class T>
void gelu_forward_derivative(T* y, T* d, const T* x, int64_t n) {
  dispatch_math([&]<class M>() {
    if constexpr (std::is_same_v<T, float>)
      if (const auto* f = fast_loops<M>(true))
        return split(n, [&](int64_t i, int64_t m) { f->gelu_forward_derivative(y + i, d + i, x + i, m); });
    const T inv_sqrt_2pi = T(kInvSqrt2Pi);
#pragma omp parallel for simd if (parallel : n > kParallel)
    for (int64_t i = 0; i < n; ++i) {  // as forward_impl and backward_impl's Gelu cases
      T gauss;
      const T cdf = M::cdf(x[i], gauss);
      y[i] = x[i] * cdf;
      d[i] = cdf + x[i] * inv_sqrt_2pi * gauss;
    }
  });
}

template void gelu_forward_derivative<float>(float*, float*, const float*, int64_t);
template void gelu_forward_derivative<double>(double*, double*, const double*, int64_t);
template void unary_forward<float>(UnaryOp, float*, const float*, int64_t, double);
template void unary_forward<double>(UnaryOp, double*, const double*, int64_t, double);
template void unary_backward<float>(UnaryOp, float*, const float*, const float*, int64_t, double);
template void unary_backward<double>(UnaryOp, double*, const double*, const double*, int64_t,
                                     double);

}  // namespace focus
