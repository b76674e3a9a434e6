// Broadcasting binary arithmetic: checked entry points, the strided kernel, and the backward
// nodes (see elementwise.hpp).
#include "focus/ops/elementwise.hpp"

#include "focus/autograd/node.hpp"
#include "focus/tensor/strided.hpp"

namespace focus {

namespace {

enum class Bin { Add, Sub, Mul, Div };

template <class T>
inline T apply(Bin op, T x, T y) {
  switch (op) {
    case Bin::Add: return x + y;
    case Bin::Sub: return x - y;
    case Bin::Mul: return x * y;
    default: return x / y;
  }
}

template <class T, Bin OP>
void binary_kernel(const Tensor& a, const Tensor& b, Tensor& out) {
  T* o = out.data<T>();
  const int64_t n = out.numel();
  if (a.shape() == b.shape() && a.is_contiguous() && b.is_contiguous()) {
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
#pragma omp parallel for simd if (parallel : n > 32768)
    for (int64_t i = 0; i < n; ++i) o[i] = apply(OP, pa[i], pb[i]);
    return;
  }
  if (b.numel() == 1 && a.is_contiguous() && a.shape() == out.shape()) {
    const T* pa = a.data<T>();
    const T y = *b.data<T>();
#pragma omp parallel for simd if (parallel : n > 32768)
    for (int64_t i = 0; i < n; ++i) o[i] = apply(OP, pa[i], y);
    return;
  }
  // Generic: expanded views, parallel over the outermost dim.
  const Tensor ea = a.expand(out.shape()), eb = b.expand(out.shape());
  const T* pa = ea.data<T>();
  const T* pb = eb.data<T>();
  const Shape& s = out.shape();
  if (s.empty()) {
    o[0] = apply(OP, pa[0], pb[0]);
    return;
  }
  const Shape inner(s.begin() + 1, s.end());
  const Shape sa(ea.strides().begin() + 1, ea.strides().end());
  const Shape sb(eb.strides().begin() + 1, eb.strides().end());
  const Shape so = contiguous_strides(inner);
  const int64_t block = numel(inner);
#pragma omp parallel for if (n > 32768)
  for (int64_t i = 0; i < s[0]; ++i) {
    T* oi = o + i * block;
    const T* ai = pa + i * ea.strides()[0];
    const T* bi = pb + i * eb.strides()[0];
    for_each_strided<3>(inner, {&so, &sa, &sb}, [&](int64_t oo, int64_t oa, int64_t ob) {
      oi[oo] = apply(OP, ai[oa], bi[ob]);
    });
  }
}

Tensor binary_forward(Bin op, const Tensor& a, const Tensor& b, const char* name) {
  FOCUS_CHECK(a.defined() && b.defined(), ValueError, "{}: undefined operand", name);
  FOCUS_CHECK(a.dtype() == b.dtype(), DTypeError, "{}: dtypes differ ({} vs {})", name,
              dtype_name(a.dtype()), dtype_name(b.dtype()));
  Tensor out = Tensor::empty(broadcast_shapes(a.shape(), b.shape(), name), a.dtype());
  dispatch_float(a.dtype(), name, [&]<class T>() {
    switch (op) {
      case Bin::Add: return binary_kernel<T, Bin::Add>(a, b, out);
      case Bin::Sub: return binary_kernel<T, Bin::Sub>(a, b, out);
      case Bin::Mul: return binary_kernel<T, Bin::Mul>(a, b, out);
      case Bin::Div: return binary_kernel<T, Bin::Div>(a, b, out);
    }
  });
  return out;
}

struct BinaryNode : Node {
  Bin op;
  Tensor a, b;  // saved for Mul/Div only
  Shape sa, sb;
  const char* name() const override {
    switch (op) {
      case Bin::Add: return "AddBackward";
      case Bin::Sub: return "SubBackward";
      case Bin::Mul: return "MulBackward";
      default: return "DivBackward";
    }
  }
  std::vector<Tensor> backward(const Tensor& dout) override {
    Tensor da, db;
    switch (op) {
      case Bin::Add:
        if (needs_grad(0)) da = sum_to(dout, sa);
        if (needs_grad(1)) db = sum_to(dout, sb);
        break;
      case Bin::Sub:
        if (needs_grad(0)) da = sum_to(dout, sa);
        if (needs_grad(1)) db = neg(sum_to(dout, sb));
        break;
      case Bin::Mul:
        if (needs_grad(0)) da = sum_to(mul(dout, b), sa);
        if (needs_grad(1)) db = sum_to(mul(dout, a), sb);
        break;
      case Bin::Div:
        if (needs_grad(0)) da = sum_to(div(dout, b), sa);
        if (needs_grad(1)) db = neg(sum_to(div(mul(dout, a), mul(b, b)), sb));
        break;
    }
    return {da, db};
  }
  void release() override { a = b = Tensor(); }
};

Tensor binary(Bin op, const Tensor& a, const Tensor& b, const char* name) {
  Tensor out = binary_forward(op, a, b, name);
  if (needs_graph({&a, &b})) {
    auto node = std::make_shared<BinaryNode>();
    node->op = op;
    node->sa = a.shape();
    node->sb = b.shape();
    if (op == Bin::Mul || op == Bin::Div) {
      node->a = a.detach();
      node->b = b.detach();
    }
    attach(out, node, {&a, &b});
  }
  return out;
}

// y = alpha * x + beta, pointwise.
struct AffineNode : Node {
  double alpha;
  const char* name() const override { return "AffineBackward"; }
  std::vector<Tensor> backward(const Tensor& dout) override {
    return {alpha == 1.0 ? dout : mul(dout, alpha)};
  }
};

Tensor affine(const Tensor& a, double alpha, double beta, const char* name) {
  FOCUS_CHECK(a.defined(), ValueError, "{}: undefined operand", name);
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  dispatch_float(a.dtype(), name, [&]<class T>() {
    const Tensor c = a.contiguous();
    const T* p = c.data<T>();
    T* o = out.data<T>();
    const T al = static_cast<T>(alpha), be = static_cast<T>(beta);
    const int64_t n = out.numel();
#pragma omp parallel for simd if (parallel : n > 32768)
    for (int64_t i = 0; i < n; ++i) o[i] = al * p[i] + be;
  });
  if (needs_graph({&a})) {
    auto node = std::make_shared<AffineNode>();
    node->alpha = alpha;
    attach(out, node, {&a});
  }
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary(Bin::Add, a, b, "add"); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(Bin::Sub, a, b, "sub"); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(Bin::Mul, a, b, "mul"); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(Bin::Div, a, b, "div"); }
Tensor add(const Tensor& a, double s) { return affine(a, 1.0, s, "add"); }
Tensor mul(const Tensor& a, double s) { return affine(a, s, 0.0, "mul"); }
Tensor neg(const Tensor& a) { return affine(a, -1.0, 0.0, "neg"); }

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const Shape bs = broadcast_shapes(shape, g.shape(), "sum_to");
  FOCUS_CHECK(bs == g.shape(), ShapeError, "sum_to: {} does not broadcast to {}", to_string(shape),
              to_string(g.shape()));
  Tensor out = Tensor::zeros(shape, g.dtype());
  // Target shape left-padded to g's rank; k splits g into kept dims and summed dims when the
  // summed dims are all trailing (bias of NCHW: (N, C, 1, 1)) or all leading (bias of (R, C)).
  const int64_t nd = g.dim();
  Shape tp(size_t(nd - int64_t(shape.size())), 1);
  tp.insert(tp.end(), shape.begin(), shape.end());
  auto split_at = [&](bool summed_trailing) -> int64_t {
    int64_t k = 0;
    while (k < nd && (summed_trailing ? tp[k] == g.shape()[k] : tp[k] == 1)) ++k;
    for (int64_t i = k; i < nd; ++i)
      if (summed_trailing ? tp[i] != 1 : tp[i] != g.shape()[i]) return -1;
    return k;
  };
  dispatch_float(g.dtype(), "sum_to", [&]<class T>() {
    T* po = out.data<T>();
    const int64_t kt = g.is_contiguous() ? split_at(true) : -1;
    const int64_t kl = g.is_contiguous() && kt < 0 ? split_at(false) : -1;
    if (kt >= 0 || kl >= 0) {
      const Tensor gc = g.contiguous();
      const T* pg = gc.data<T>();
      const int64_t k = kt >= 0 ? kt : kl;
      const int64_t outer = numel(Shape(g.shape().begin(), g.shape().begin() + k));
      const int64_t inner = numel(Shape(g.shape().begin() + k, g.shape().end()));
      if (kt >= 0) {  // out (outer) = row sums of g (outer, inner)
#pragma omp parallel for if (outer * inner > 65536)
        for (int64_t o = 0; o < outer; ++o) {
          T acc = 0;
#pragma omp simd reduction(+ : acc)
          for (int64_t i = 0; i < inner; ++i) acc += pg[o * inner + i];
          po[o] = acc;
        }
      } else {  // out (inner) = column sums of g (outer, inner)
        for (int64_t o = 0; o < outer; ++o)
#pragma omp simd
          for (int64_t i = 0; i < inner; ++i) po[i] += pg[o * inner + i];
      }
      return;
    }
    const Tensor eo = out.expand(g.shape());  // stride 0 on the summed dims
    const T* pg = g.data<T>();
    for_each_strided<2>(g.shape(), {&g.strides(), &eo.strides()},
                        [&](int64_t og, int64_t oo) { po[oo] += pg[og]; });
  });
  return out;
}

void add_inplace(Tensor& dst, const Tensor& src, double alpha) {
  FOCUS_CHECK(dst.shape() == src.shape(), ShapeError, "add_inplace: {} vs {}",
              to_string(dst.shape()), to_string(src.shape()));
  FOCUS_CHECK(dst.is_contiguous(), ValueError, "add_inplace: destination must be contiguous");
  dispatch_float(dst.dtype(), "add_inplace", [&]<class T>() {
    const Tensor s = src.dtype() == dst.dtype() ? src.contiguous() : src.to(dst.dtype());
    T* d = dst.data<T>();
    const T* p = s.data<T>();
    const T al = static_cast<T>(alpha);
    const int64_t n = dst.numel();
#pragma omp parallel for simd if (parallel : n > 65536)
    for (int64_t i = 0; i < n; ++i) d[i] += al * p[i];
  });
}

void scale_inplace(Tensor& dst, double alpha) {
  FOCUS_CHECK(dst.is_contiguous(), ValueError, "scale_inplace: destination must be contiguous");
  dispatch_float(dst.dtype(), "scale_inplace", [&]<class T>() {
    T* d = dst.data<T>();
    const T al = static_cast<T>(alpha);
    const int64_t n = dst.numel();
#pragma omp parallel for simd if (parallel : n > 65536)
    for (int64_t i = 0; i < n; ++i) d[i] *= al;
  });
}

}  // namespace focus
