// Reductions: checked entry points and backward nodes over kernels/reduce (see reduce.hpp).
// Every reduction runs on a contiguous (O, R, I) layout. When the reduced dims form one block
// (size-1 kept dims inside it do not count) that is the input itself, packed if strided; else the
// input is permuted to (kept..., reduced...) and packed, and the backward permutes back.
#include "focus/ops/reduce.hpp"

#include <algorithm>

#include "focus/autograd/node.hpp"
#include "focus/kernels/reduce.hpp"

namespace focus {

namespace {

struct ReducePlan {
  Shape in_shape, out_shape;
  std::vector<int64_t> perm;  // empty: the reduced dims form one block, no permute
  int64_t O = 1, R = 1, I = 1;

  // The input in (O, R, I) layout, contiguous.
  Tensor pack(const Tensor& x) const {
    return perm.empty() ? x.contiguous() : x.permute(perm).contiguous();
  }
  // A gradient computed in (O, R, I) layout, back in the input's layout.
  Tensor unpack(const Tensor& dx) const {
    if (perm.empty()) return dx.view(in_shape);
    Shape ps(perm.size());
    std::vector<int64_t> inv(perm.size());
    for (size_t k = 0; k < perm.size(); ++k) {
      ps[k] = in_shape[perm[k]];
      inv[perm[k]] = static_cast<int64_t>(k);
    }
    return dx.view(ps).permute(inv).contiguous();
  }
};

ReducePlan make_plan(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim,
                     const char* op) {
  const Shape& s = x.shape();
  const int64_t nd = x.dim();
  ReducePlan p;
  p.in_shape = s;
  std::vector<bool> red(nd, dims.empty());
  for (int64_t d : dims) {
    FOCUS_CHECK(d >= -std::max<int64_t>(nd, 1) && d < std::max<int64_t>(nd, 1), ShapeError,
                "{}: dim {} out of range for shape {}", op, d, to_string(s));
    if (nd == 0) continue;  // a 0-d tensor reduces to itself
    const int64_t w = d < 0 ? d + nd : d;
    FOCUS_CHECK(!red[w], ShapeError, "{}: dim {} repeated for shape {}", op, d, to_string(s));
    red[w] = true;
  }
  int64_t first = nd, last = -1;
  for (int64_t d = 0; d < nd; ++d) {
    if (red[d]) {
      first = std::min(first, d);
      last = d;
      p.R *= s[d];
    }
    if (!red[d] || keepdim) p.out_shape.push_back(red[d] ? 1 : s[d]);
  }
  bool block = true;
  for (int64_t d = first; d <= last; ++d) block = block && (red[d] || s[d] == 1);
  if (block) {
    for (int64_t d = 0; d < first && d < nd; ++d) p.O *= s[d];
    for (int64_t d = last + 1; d < nd; ++d) p.I *= s[d];
  } else {
    for (int64_t d = 0; d < nd; ++d)
      if (!red[d]) {
        p.perm.push_back(d);
        p.O *= s[d];
      }
    for (int64_t d = 0; d < nd; ++d)
      if (red[d]) p.perm.push_back(d);
  }
  return p;
}

// ---- sum / mean -------------------------------------------------------------------------------
struct SumNode : Node {
  ReducePlan plan;
  double scale = 1;
  DType dtype;
  const char* name() const override { return scale == 1 ? "SumBackward" : "MeanBackward"; }
  std::vector<Tensor> backward(const Tensor& dout) override {
    const Tensor g = dout.contiguous();
    Tensor dx = Tensor::empty({plan.O * plan.R * plan.I}, dtype);
    dispatch_float(dtype, name(), [&]<class T>() {
      sum_backward<T>(dx.data<T>(), g.data<T>(), plan.O, plan.R, plan.I, scale);
    });
    return {plan.unpack(dx)};
  }
};

Tensor sum_impl(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim, bool mean,
                const char* op) {
  FOCUS_CHECK(a.defined(), ValueError, "{}: undefined input", op);
  ReducePlan plan = make_plan(a, dims, keepdim, op);
  const double scale = mean ? 1.0 / double(plan.R) : 1.0;
  const Tensor x = plan.pack(a);
  Tensor y = Tensor::empty(plan.out_shape, a.dtype());
  dispatch_float(a.dtype(), op, [&]<class T>() {
    sum_forward<T>(y.data<T>(), x.data<T>(), plan.O, plan.R, plan.I, scale);
  });
  if (needs_graph({&a})) {
    auto node = std::make_shared<SumNode>();
    node->plan = std::move(plan);
    node->scale = scale;
    node->dtype = a.dtype();
    attach(y, node, {&a});
  }
  return y;
}

// ---- var ------------------------------------------------------------------------------------
struct VarNode : Node {
  ReducePlan plan;
  int64_t ddof = 0;
  Tensor x;  // the input in (O, R, I) layout
  const char* name() const override { return "VarBackward"; }
  std::vector<Tensor> backward(const Tensor& dout) override {
    const Tensor g = dout.contiguous();
    Tensor dx = Tensor::empty({plan.O * plan.R * plan.I}, x.dtype());
    dispatch_float(x.dtype(), name(), [&]<class T>() {
      var_backward<T>(dx.data<T>(), g.data<T>(), x.data<T>(), plan.O, plan.R, plan.I, ddof);
    });
    return {plan.unpack(dx)};
  }
  void release() override { x = Tensor(); }
};

// ---- max / argmax ---------------------------------------------------------------------------
struct MaxNode : Node {
  ReducePlan plan;
  Tensor idx;  // I64 (O, I)
  DType dtype;
  const char* name() const override { return "MaxBackward"; }
  std::vector<Tensor> backward(const Tensor& dout) override {
    const Tensor g = dout.contiguous();
    Tensor dx = Tensor::empty({plan.O * plan.R * plan.I}, dtype);
    dispatch_float(dtype, name(), [&]<class T>() {
      max_backward<T>(dx.data<T>(), g.data<T>(), idx.data<int64_t>(), plan.O, plan.R, plan.I);
    });
    return {plan.unpack(dx)};
  }
  void release() override { idx = Tensor(); }
};

// Values and indices of the max along `dim`; records the graph if `grad`.
std::pair<Tensor, Tensor> max_impl(const Tensor& a, int64_t dim, bool keepdim, bool grad,
                                   const char* op) {
  FOCUS_CHECK(a.defined(), ValueError, "{}: undefined input", op);
  ReducePlan plan = make_plan(a, {dim}, keepdim, op);
  FOCUS_CHECK(plan.R > 0, ValueError, "{}: dim {} of shape {} is empty", op, dim,
              to_string(a.shape()));
  const Tensor x = plan.pack(a);
  Tensor y = Tensor::empty(plan.out_shape, a.dtype());
  Tensor idx = Tensor::empty(plan.out_shape, DType::I64);
  dispatch_float(a.dtype(), op, [&]<class T>() {
    max_forward<T>(y.data<T>(), idx.data<int64_t>(), x.data<T>(), plan.O, plan.R, plan.I);
  });
  if (grad && needs_graph({&a})) {
    auto node = std::make_shared<MaxNode>();
    node->plan = std::move(plan);
    node->idx = idx;
    node->dtype = a.dtype();
    attach(y, node, {&a});
  }
  return {y, idx};
}

}  // namespace

Tensor sum(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_impl(a, dims, keepdim, false, "sum");
}

Tensor mean(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_impl(a, dims, keepdim, true, "mean");
}

Tensor var(const Tensor& a, const std::vector<int64_t>& dims, bool unbiased, bool keepdim) {
  FOCUS_CHECK(a.defined(), ValueError, "var: undefined input");
  ReducePlan plan = make_plan(a, dims, keepdim, "var");
  const int64_t ddof = unbiased ? 1 : 0;
  const Tensor x = plan.pack(a);
  Tensor y = Tensor::empty(plan.out_shape, a.dtype());
  dispatch_float(a.dtype(), "var", [&]<class T>() {
    var_forward<T>(y.data<T>(), x.data<T>(), plan.O, plan.R, plan.I, ddof);
  });
  if (needs_graph({&a})) {
    auto node = std::make_shared<VarNode>();
    node->plan = std::move(plan);
    node->ddof = ddof;
    node->x = x.detach();
    attach(y, node, {&a});
  }
  return y;
}

Tensor max(const Tensor& a, int64_t dim, bool keepdim) {
  return max_impl(a, dim, keepdim, true, "max").first;
}

Tensor argmax(const Tensor& a, int64_t dim, bool keepdim) {
  return max_impl(a, dim, keepdim, false, "argmax").second;
}

}  // namespace focus
