// Differentiable shape ops over Tensor's raw views (see view.hpp).
#include "focus/ops/view.hpp"

#include <numeric>

#include "focus/autograd/node.hpp"
#include "focus/ops/elementwise.hpp"

namespace focus {

namespace {

struct ReshapeNode : Node {
  Shape in_shape;
  const char* name() const override { return "ReshapeBackward"; }
  std::vector<Tensor> backward(const Tensor& dout) override { return {dout.reshape(in_shape)}; }
};

struct PermuteNode : Node {
  std::vector<int64_t> inverse;
  const char* name() const override { return "PermuteBackward"; }
  std::vector<Tensor> backward(const Tensor& dout) override { return {dout.permute(inverse)}; }
};

// Gradient of a strided sub-view (slice/select): zeros of the input's shape with dout written
// through the same view.
struct SubviewNode : Node {
  Shape in_shape;
  int64_t dim = 0, start = 0, end = 0, step = 1, index = -1;  // index >= 0: select
  const char* name() const override { return index >= 0 ? "SelectBackward" : "SliceBackward"; }
  std::vector<Tensor> backward(const Tensor& dout) override {
    Tensor g = Tensor::zeros(in_shape, dout.dtype());
    Tensor v = index >= 0 ? g.select(dim, index) : g.slice(dim, start, end, step);
    v.copy_(dout);
    return {g};
  }
};

struct ExpandNode : Node {
  Shape in_shape;
  const char* name() const override { return "ExpandBackward"; }
  std::vector<Tensor> backward(const Tensor& dout) override { return {sum_to(dout, in_shape)}; }
};

struct IdentityNode : Node {
  const char* name() const override { return "ContiguousBackward"; }
  std::vector<Tensor> backward(const Tensor& dout) override { return {dout}; }
};

}  // namespace

Tensor reshape(const Tensor& a, const Shape& shape) {
  Tensor out = a.reshape(shape);
  if (out.impl() == a.impl()) out = a.detach();
  if (needs_graph({&a})) {
    auto n = std::make_shared<ReshapeNode>();
    n->in_shape = a.shape();
    attach(out, n, {&a});
  }
  return out;
}

Tensor flatten(const Tensor& a, int64_t start_dim, int64_t end_dim) {
  const int64_t nd = a.dim();
  if (nd == 0) return reshape(a, {1});
  start_dim = wrap_dim(start_dim, nd, "flatten");
  end_dim = wrap_dim(end_dim, nd, "flatten");
  FOCUS_CHECK(start_dim <= end_dim, ShapeError, "flatten: start_dim {} > end_dim {}", start_dim,
              end_dim);
  Shape s(a.shape().begin(), a.shape().begin() + start_dim);
  int64_t m = 1;
  for (int64_t d = start_dim; d <= end_dim; ++d) m *= a.shape()[d];
  s.push_back(m);
  s.insert(s.end(), a.shape().begin() + end_dim + 1, a.shape().end());
  return reshape(a, s);
}

Tensor permute(const Tensor& a, const std::vector<int64_t>& dims) {
  Tensor out = a.permute(dims);
  if (needs_graph({&a})) {
    auto n = std::make_shared<PermuteNode>();
    n->inverse.resize(dims.size());
    for (size_t i = 0; i < dims.size(); ++i) n->inverse[wrap_dim(dims[i], a.dim())] = int64_t(i);
    attach(out, n, {&a});
  }
  return out;
}

Tensor transpose(const Tensor& a, int64_t d0, int64_t d1) {
  std::vector<int64_t> p(a.dim());
  std::iota(p.begin(), p.end(), 0);
  std::swap(p[wrap_dim(d0, a.dim(), "transpose")], p[wrap_dim(d1, a.dim(), "transpose")]);
  return permute(a, p);
}

Tensor slice(const Tensor& a, int64_t dim, int64_t start, int64_t end, int64_t step) {
  Tensor out = a.slice(dim, start, end, step);
  if (needs_graph({&a})) {
    auto n = std::make_shared<SubviewNode>();
    n->in_shape = a.shape();
    n->dim = wrap_dim(dim, a.dim());
    n->start = start;
    n->end = end;
    n->step = step;
    attach(out, n, {&a});
  }
  return out;
}

Tensor select(const Tensor& a, int64_t dim, int64_t index) {
  Tensor out = a.select(dim, index);
  if (needs_graph({&a})) {
    auto n = std::make_shared<SubviewNode>();
    n->in_shape = a.shape();
    n->dim = wrap_dim(dim, a.dim());
    n->index = index < 0 ? index + a.shape()[n->dim] : index;
    attach(out, n, {&a});
  }
  return out;
}

Tensor expand(const Tensor& a, const Shape& shape) {
  Tensor out = a.expand(shape);
  if (out.impl() == a.impl()) out = a.detach();
  if (needs_graph({&a})) {
    auto n = std::make_shared<ExpandNode>();
    n->in_shape = a.shape();
    attach(out, n, {&a});
  }
  return out;
}

Tensor unsqueeze(const Tensor& a, int64_t dim) {
  dim = wrap_dim(dim, a.dim() + 1, "unsqueeze");
  Shape s = a.shape();
  s.insert(s.begin() + dim, 1);
  return reshape(a, s);
}

Tensor squeeze(const Tensor& a, int64_t dim) {
  dim = wrap_dim(dim, a.dim(), "squeeze");
  FOCUS_CHECK(a.shape()[dim] == 1, ShapeError, "squeeze: dim {} of {} is not 1", dim,
              to_string(a.shape()));
  Shape s = a.shape();
  s.erase(s.begin() + dim);
  return reshape(a, s);
}

Tensor contiguous(const Tensor& a) {
  if (a.is_contiguous()) return a;
  Tensor out = a.clone();
  if (needs_graph({&a})) attach(out, std::make_shared<IdentityNode>(), {&a});
  return out;
}

}  // namespace focus
