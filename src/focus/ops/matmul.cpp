// matmul / linear: checked entry points and backward nodes over kernels/gemm (see matmul.hpp).
// Letters: M, N, K the product dims; R the rows of a folded (..., IN) input; IN/OUT features.
#include "focus/ops/matmul.hpp"

#include <algorithm>

#include "focus/autograd/node.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/kernels/gemm.hpp"
#include "focus/kernels/panel_gemm.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/ops/view.hpp"

namespace focus {

namespace {

// How a (rows, cols) matrix view is handed to the GEMM: transposed or not, and its leading dim.
struct MatLayout {
  bool trans = false;
  int64_t ld = 0;
};

bool layout_of(const Tensor& t, MatLayout& l) {
  const int64_t nd = t.dim();
  const int64_t rows = t.shape()[nd - 2], cols = t.shape()[nd - 1];
  const int64_t rs = t.strides()[nd - 2], cs = t.strides()[nd - 1];
  if ((cs == 1 || cols == 1) && rs >= std::max<int64_t>(cols, 1)) { l = {false, rs}; return true; }
  if ((rs == 1 || rows == 1) && cs >= std::max<int64_t>(rows, 1)) { l = {true, cs}; return true; }
  return false;
}

// C (batch..., M, N) = A (batch..., M, K) @ B (batch..., K, N); A and B already expanded to the
// batch shape (stride 0 where broadcast).
template <class T>
void batched_gemm(const Tensor& A, const Tensor& B, Tensor& C) {
  const int64_t nd = C.dim();
  const int64_t M = C.shape()[nd - 2], N = C.shape()[nd - 1], K = A.shape()[nd - 1];
  Tensor a = A, b = B;
  MatLayout la, lb;
  if (!layout_of(a, la)) { a = a.contiguous(); layout_of(a, la); }
  if (!layout_of(b, lb)) { b = b.contiguous(); layout_of(b, lb); }
  const Shape batch(C.shape().begin(), C.shape().end() - 2);
  const int64_t nb = numel(batch);
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* pc = C.data<T>();
  auto offsets = [&](int64_t i, int64_t& oa, int64_t& ob) {
    oa = ob = 0;
    for (int64_t d = static_cast<int64_t>(batch.size()) - 1; d >= 0; --d) {
      const int64_t idx = i % batch[d];
      i /= batch[d];
      oa += idx * a.strides()[d];
      ob += idx * b.strides()[d];
    }
  };
  const bool parallel_batches = nb > 1 && M * N * K <= (int64_t(1) << 21) && num_threads() > 1;
#pragma omp parallel for schedule(dynamic) if (parallel_batches)
  for (int64_t i = 0; i < nb; ++i) {
    int64_t oa, ob;
    offsets(i, oa, ob);
    gemm(la.trans, lb.trans, M, N, K, T(1), pa + oa, la.ld, pb + ob, lb.ld, T(0), pc + i * M * N, N);
  }
}

Tensor matmul_forward(const Tensor& a, const Tensor& b) {
  const int64_t na = a.dim(), nb = b.dim();
  FOCUS_CHECK(a.shape()[na - 1] == b.shape()[nb - 2], ShapeError,
              "matmul: inner dims differ: {} @ {}", to_string(a.shape()), to_string(b.shape()));
  const Shape ba(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(ba, bb, "matmul (batch dims)");
  const int64_t M = a.shape()[na - 2], K = a.shape()[na - 1], N = b.shape()[nb - 1];
  Shape out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor out = Tensor::empty(out_shape, a.dtype());
  dispatch_float(a.dtype(), "matmul", [&]<class T>() {
    // Fold a's batch into M when b is shared and a's rows are packed: one big GEMM.
    if (nb == 2 && na > 2 && a.is_contiguous()) {
      const Tensor a2 = a.view({-1, K});
      Tensor c2 = out.view({-1, N});
      batched_gemm<T>(a2, b, c2);
      return;
    }
    Shape sa = batch, sb = batch;
    sa.insert(sa.end(), {M, K});
    sb.insert(sb.end(), {K, N});
    batched_gemm<T>(a.expand(sa), b.expand(sb), out);
  });
  return out;
}

struct MatmulNode : Node {
  Tensor a, b;
  const char* name() const override { return "MatmulBackward"; }
  std::vector<Tensor> backward(const Tensor& dout) override {
    Tensor da, db;
    if (needs_grad(0)) da = sum_to(matmul_forward(dout, b.transpose(-1, -2)), a.shape());
    if (needs_grad(1)) db = sum_to(matmul_forward(a.transpose(-1, -2), dout), b.shape());
    return {da, db};
  }
  void release() override { a = b = Tensor(); }
};

Tensor matmul_nd(const Tensor& a, const Tensor& b) {
  FOCUS_CHECK(a.dtype() == b.dtype(), DTypeError, "matmul: dtypes differ ({} vs {})",
              dtype_name(a.dtype()), dtype_name(b.dtype()));
  Tensor out = matmul_forward(a, b);
  if (needs_graph({&a, &b})) {
    auto n = std::make_shared<MatmulNode>();
    n->a = a.detach();
    n->b = b.detach();
    attach(out, n, {&a, &b});
  }
  return out;
}

// y (R, OUT) = bias in every row (the GEMM then adds onto it); returns the GEMM's beta.
template <class T>
T fill_bias_rows(const Tensor& bias, Tensor& y) {
  if (!bias.defined()) return T(0);
  const int64_t R = y.shape()[0], OUT = y.shape()[1];
  const Tensor bc = bias.contiguous();
  const T* pb = bc.data<T>();
  T* py = y.data<T>();
#pragma omp parallel for if (R * OUT > 65536)
  for (int64_t r = 0; r < R; ++r)
    for (int64_t o = 0; o < OUT; ++o) py[r * OUT + o] = pb[o];
  return T(1);
}

// Linear: y (R, OUT) = x (R, IN) @ w (OUT, IN)^T + bias.
template <class T>
void linear_kernel(const Tensor& x2, const Tensor& w, const Tensor& bias, Tensor& y) {
  const int64_t R = x2.shape()[0], IN = x2.shape()[1], OUT = w.shape()[0];
  const T beta = fill_bias_rows<T>(bias, y);
  gemm(false, true, R, OUT, IN, T(1), x2.data<T>(), IN, w.data<T>(), IN, beta, y.data<T>(), OUT);
}

// y (R, OUT) = x2 (R, IN) @ w^T + bias over packed panels; x2 and bias F32.
void linear_packed_kernel(const Tensor& x2, const PackedWeight& w, const Tensor& bias, Tensor& y) {
  const int64_t R = x2.shape()[0];
  const float beta = fill_bias_rows<float>(bias, y);
  if (w.panels.dtype() == DType::BF16)
    gemm_panels<BFloat16>(R, w.out, w.in, 1.0f, x2.data<float>(), w.in, w.panels.data<BFloat16>(),
                          beta, y.data<float>(), w.out);
  else
    gemm_panels<float>(R, w.out, w.in, 1.0f, x2.data<float>(), w.in, w.panels.data<float>(), beta,
                       y.data<float>(), w.out);
}

struct LinearNode : Node {
  Tensor x2, w;  // (R, IN), (OUT, IN), contiguous
  Shape x_shape;
  bool has_bias = false;
  const char* name() const override { return "LinearBackward"; }
  std::vector<Tensor> backward(const Tensor& dout) override {
    const int64_t R = x2.shape()[0], IN = x2.shape()[1], OUT = w.shape()[0];
    const Tensor dy = dout.contiguous().view({R, OUT});  // (R, OUT)
    Tensor dx, dw, db;
    // Where input i's gradient goes: the engine's buffer for it when there is one (add into it),
    // else a fresh tensor `fresh`, returned (overwrite it).
    struct Dest {
      void* p;
      bool add;
    };
    const auto dest = [&](size_t i, const Shape& shape, Tensor& fresh) -> Dest {
      if (Tensor* t = grad_target(i, w.dtype()); t && t->shape() == shape)
        return {t->raw_data(), true};
      fresh = Tensor::empty(shape, w.dtype());
      return {fresh.raw_data(), false};
    };
    dispatch_float(w.dtype(), "linear backward", [&]<class T>() {
      if (needs_grad(0)) {  // (R, IN) (+)= dy @ w
        const Dest d = dest(0, x_shape, dx);
        gemm(false, false, R, IN, OUT, T(1), dy.data<T>(), OUT, w.data<T>(), IN,
             d.add ? T(1) : T(0), static_cast<T*>(d.p), IN);
      }
      if (needs_grad(1)) {  // (OUT, IN) (+)= dy^T @ x
        const Dest d = dest(1, {OUT, IN}, dw);
        gemm(true, false, OUT, IN, R, T(1), dy.data<T>(), OUT, x2.data<T>(), IN,
             d.add ? T(1) : T(0), static_cast<T*>(d.p), IN);
      }
      if (has_bias && needs_grad(2)) {  // (OUT) (+)= sum over rows of dy
        const Dest d = dest(2, {OUT}, db);
        T* pdb = static_cast<T*>(d.p);
        if (!d.add) std::fill(pdb, pdb + OUT, T(0));
        const T* pdy = dy.data<T>();
        for (int64_t r = 0; r < R; ++r)
#pragma omp simd
          for (int64_t o = 0; o < OUT; ++o) pdb[o] += pdy[r * OUT + o];
      }
    });
    return {dx, dw, db};
  }
  void release() override { x2 = w = Tensor(); }
};

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  FOCUS_CHECK(a.defined() && b.defined(), ValueError, "matmul: undefined operand");
  FOCUS_CHECK(a.dim() >= 1 && b.dim() >= 1, ShapeError, "matmul: scalars given: {} @ {}",
              to_string(a.shape()), to_string(b.shape()));
  if (a.dim() == 1) return squeeze(matmul(unsqueeze(a, 0), b), -2);
  if (b.dim() == 1) return squeeze(matmul(a, unsqueeze(b, 1)), -1);
  return matmul_nd(a, b);
}

namespace {

// The inference-only checks of a BF16 or packed weight: F32 input and bias, no graph.
void check_inference_weight(const Tensor& x, const Tensor& bias, const Shape& w_shape,
                            const char* kind) {
  FOCUS_CHECK(x.dtype() == DType::F32 && (!bias.defined() || bias.dtype() == DType::F32),
              DTypeError, "linear: a {} weight {} takes an F32 input and bias, not {} and {}", kind,
              to_string(w_shape), dtype_name(x.dtype()),
              bias.defined() ? dtype_name(bias.dtype()) : "none");
  FOCUS_CHECK(!needs_graph({&x, &bias}), DTypeError,
              "linear: a {} weight {} is for inference only: its input {} or bias needs a "
              "gradient (run under NoGradGuard, or keep the F32 weight)",
              kind, to_string(w_shape), to_string(x.shape()));
}

void check_linear_shapes(const Tensor& x, const Tensor& bias, int64_t out, int64_t in) {
  FOCUS_CHECK(x.dim() >= 1 && x.shape().back() == in, ShapeError,
              "linear: input {} does not match weight ({}, {}) (OUT, IN)", to_string(x.shape()),
              out, in);
  FOCUS_CHECK(!bias.defined() || (bias.dim() == 1 && bias.shape()[0] == out), ShapeError,
              "linear: bias {} does not match weight ({}, {})", to_string(bias.shape()), out, in);
}

}  // namespace

PackedWeight pack_weight(const Tensor& w, DType dtype) {
  FOCUS_CHECK(w.defined() && w.dim() == 2, ShapeError, "pack_weight: weight {} is not (OUT, IN)",
              w.defined() ? to_string(w.shape()) : "undefined");
  FOCUS_CHECK(w.dtype() == DType::F32, DTypeError, "pack_weight: weight dtype {} (F32 expected)",
              dtype_name(w.dtype()));
  FOCUS_CHECK(dtype == DType::F32 || dtype == DType::BF16, DTypeError,
              "pack_weight: panels in {} (F32 or BF16)", dtype_name(dtype));
  const Tensor wc = w.contiguous();
  PackedWeight p;
  p.out = w.shape()[0];
  p.in = w.shape()[1];
  p.panels = Tensor::empty({panel_count(p.out), p.in, kPanelRows}, dtype);  // (P, IN, 16)
  if (dtype == DType::BF16)
    pack_panels<BFloat16>(p.out, p.in, wc.data<float>(), p.in, p.panels.data<BFloat16>());
  else
    pack_panels<float>(p.out, p.in, wc.data<float>(), p.in, p.panels.data<float>());
  return p;
}

Tensor linear(const Tensor& x, const PackedWeight& w, const Tensor& bias) {
  FOCUS_CHECK(x.defined() && w.defined(), ValueError, "linear: undefined input or packed weight");
  check_linear_shapes(x, bias, w.out, w.in);
  check_inference_weight(x, bias, {w.out, w.in}, "packed");
  const Tensor x2 = x.contiguous().view({-1, w.in});  // (R, IN)
  Tensor y = Tensor::empty({x2.shape()[0], w.out}, DType::F32);  // (R, OUT)
  linear_packed_kernel(x2, w, bias, y);
  Shape ys = x.shape();
  ys.back() = w.out;
  return y.view(ys);
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  FOCUS_CHECK(x.defined() && w.defined(), ValueError, "linear: undefined input or weight");
  FOCUS_CHECK(w.dim() == 2, ShapeError, "linear: weight {} is not (OUT, IN)", to_string(w.shape()));
  const int64_t IN = w.shape()[1], OUT = w.shape()[0];
  check_linear_shapes(x, bias, OUT, IN);
  if (w.dtype() == DType::BF16) {
    check_inference_weight(x, bias, w.shape(), "BF16");
    FOCUS_CHECK(!needs_graph({&w}), DTypeError, "linear: a BF16 weight {} cannot take a gradient",
                to_string(w.shape()));
    const Tensor wf = w.to(DType::F32);  // exact: bf16 values widen losslessly
    const int64_t rows = x.numel() / std::max<int64_t>(IN, 1);
    if (rows <= kPackedRows) return linear(x, pack_weight(wf, DType::BF16), bias);
    return linear(x, wf, bias);
  }
  FOCUS_CHECK(x.dtype() == w.dtype() && (!bias.defined() || bias.dtype() == w.dtype()),
              DTypeError, "linear: dtypes differ (input {}, weight {})", dtype_name(x.dtype()),
              dtype_name(w.dtype()));
  const Tensor x2 = x.contiguous().view({-1, IN});  // (R, IN)
  const Tensor wc = w.contiguous();
  Tensor y = Tensor::empty({x2.shape()[0], OUT}, x.dtype());  // (R, OUT)
  dispatch_float(w.dtype(), "linear", [&]<class T>() { linear_kernel<T>(x2, wc, bias, y); });
  Shape ys = x.shape();
  ys.back() = OUT;
  y = y.view(ys);
  if (needs_graph({&x, &w, &bias})) {
    auto n = std::make_shared<LinearNode>();
    n->x2 = x2.detach();
    n->w = wc.detach();
    n->x_shape = x.shape();
    n->has_bias = bias.defined();
    attach(y, n, {&x, &w, &bias});
  }
  return y;
}

}  // namespace focus
