// The unary ops' forward and backward loops and the math-kernel switch (see unary.hpp).
// Contiguous arrays only; large arrays run in parallel. GELU's tanh form is computed through
// 1 + tanh(u) = 2 sigmoid(2u), which needs only exp and stays accurate in both tails.
#include "focus/kernels/unary.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>

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
      return map1(y, x, n, [](T v) { return v < T(0) ? T(0) : v; });
    case UnaryOp::Gelu:
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
      return map2(dx, dy, xy, n, [](T g, T y) { return y > T(0) ? g : T(0); });
    case UnaryOp::Gelu:
      return map2(dx, dy, xy, n, [inv_sqrt_2pi](T g, T x) {  // Phi(x) + x phi(x)
        return g * (M::cdf(x) + x * inv_sqrt_2pi * M::exp(T(-0.5) * x * x));
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

template void unary_forward<float>(UnaryOp, float*, const float*, int64_t, double);
template void unary_forward<double>(UnaryOp, double*, const double*, int64_t, double);
template void unary_backward<float>(UnaryOp, float*, const float*, const float*, int64_t, double);
template void unary_backward<double>(UnaryOp, double*, const double*, const double*, int64_t,
                                     double);

}  // namespace focus
