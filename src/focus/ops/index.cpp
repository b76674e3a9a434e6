// Indexing and joining ops (see index.hpp): embedding, concat, split, index_select, gather, each
// with its backward. Index tensors are read once into validated int64 vectors.
// Letters: for a tensor viewed around `dim`, OUTER = product of the dims before it, S its size,
// J the number of picked slices, INNER = product of the dims after it. V, D: embedding table.
#include "focus/ops/index.hpp"

#include <omp.h>

#include <cstring>

#include "focus/autograd/node.hpp"
#include "focus/ops/view.hpp"
#include "focus/tensor/strided.hpp"

namespace focus {

namespace {

constexpr int64_t kParallel = 1 << 16;  // elements above which loops go parallel

// The indices as int64 in row-major order; each must lie in [0, size).
std::vector<int64_t> read_indices(const Tensor& index, int64_t size, const char* op) {
  FOCUS_CHECK(index.defined(), ValueError, "{}: undefined index tensor", op);
  FOCUS_CHECK(index.dtype() == DType::I64 || index.dtype() == DType::I32, DTypeError,
              "{}: indices must be I64 or I32, got {}", op, dtype_name(index.dtype()));
  const std::vector<int64_t> v = index.to_vector<int64_t>();
  for (const int64_t i : v)
    FOCUS_CHECK(i >= 0 && i < size, ValueError, "{}: index {} out of range for size {}", op, i, size);
  return v;
}

int64_t prod(const Shape& s, int64_t begin, int64_t end) {
  int64_t p = 1;
  for (int64_t d = begin; d < end; ++d) p *= s[d];
  return p;
}

// dst (OUTER, J, INNER)[o, j, :] = src (OUTER, S, INNER)[o, idx[j], :].
template <class T>
void gather_rows(T* dst, const T* src, const std::vector<int64_t>& idx, int64_t outer, int64_t S,
                 int64_t inner) {
  const int64_t J = static_cast<int64_t>(idx.size());
#pragma omp parallel for collapse(2) if (outer * J * inner > kParallel)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < J; ++j) {
      const T* s = src + (o * S + idx[j]) * inner;
      T* d = dst + (o * J + j) * inner;
#pragma omp simd
      for (int64_t i = 0; i < inner; ++i) d[i] = s[i];
    }
}

// dst (OUTER, S, INNER)[o, idx[j], :] += src (OUTER, J, INNER)[o, j, :]. Repeated indices collide
// only within one o, so threads take whole o's when there are enough, else column ranges.
template <class T>
void scatter_add_rows(T* dst, const T* src, const std::vector<int64_t>& idx, int64_t outer,
                      int64_t S, int64_t inner) {
  const int64_t J = static_cast<int64_t>(idx.size());
  auto add = [&](int64_t o, int64_t c0, int64_t c1) {
    for (int64_t j = 0; j < J; ++j) {
      T* d = dst + (o * S + idx[j]) * inner;
      const T* s = src + (o * J + j) * inner;
#pragma omp simd
      for (int64_t i = c0; i < c1; ++i) d[i] += s[i];
    }
  };
#pragma omp parallel if (outer * J * inner > kParallel)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    if (outer >= nt) {
#pragma omp for
      for (int64_t o = 0; o < outer; ++o) add(o, 0, inner);
    } else {
      for (int64_t o = 0; o < outer; ++o) add(o, inner * t / nt, inner * (t + 1) / nt);
    }
  }
}

// ---- embedding / index_select ---------------------------------------------------------------

// Gradient of gather_rows: zeros of the source shape with dout scattered back.
struct IndexRowsNode : Node {
  const char* op = "";
  std::vector<int64_t> idx;
  Shape src_shape;
  int64_t outer = 1, S = 1, inner = 1;
  const char* name() const override { return op; }
  std::vector<Tensor> backward(const Tensor& dout) override {
    const Tensor dy = dout.contiguous();
    Tensor g = Tensor::zeros(src_shape, dout.dtype());
    dispatch_float(dout.dtype(), op, [&]<class T>() {
      scatter_add_rows<T>(g.data<T>(), dy.data<T>(), idx, outer, S, inner);
    });
    return {g};
  }
  void release() override { idx = {}; }
};

// out (OUTER, J, INNER) picked from a (OUTER, S, INNER) along the middle dim.
Tensor index_rows(const Tensor& a, std::vector<int64_t> idx, const Shape& out_shape, int64_t outer,
                  int64_t S, int64_t inner, const char* op, const char* node_name) {
  const Tensor ac = a.contiguous();
  Tensor out = Tensor::empty(out_shape, a.dtype());
  dispatch_float(a.dtype(), op, [&]<class T>() {
    gather_rows<T>(out.data<T>(), ac.data<T>(), idx, outer, S, inner);
  });
  if (needs_graph({&a})) {
    auto n = std::make_shared<IndexRowsNode>();
    n->op = node_name;
    n->idx = std::move(idx);
    n->src_shape = a.shape();
    n->outer = outer;
    n->S = S;
    n->inner = inner;
    attach(out, n, {&a});
  }
  return out;
}

// ---- concat -----------------------------------------------------------------------------------

struct ConcatNode : Node {
  int64_t dim = 0;
  std::vector<int64_t> sizes;  // each part's extent along dim
  const char* name() const override { return "ConcatBackward"; }
  std::vector<Tensor> backward(const Tensor& dout) override {
    std::vector<Tensor> grads(sizes.size());
    int64_t off = 0;
    for (size_t k = 0; k < sizes.size(); ++k) {
      if (needs_grad(k)) grads[k] = dout.slice(dim, off, off + sizes[k]);
      off += sizes[k];
    }
    return grads;
  }
};

// ---- gather -----------------------------------------------------------------------------------

// Walks every element of index (shape I): calls f(out_offset, a_offset_without_dim, idx_value)
// with out packed like I and a's offset over all dims but `dim`. Parallel over I's first dim
// when `parallel` (callers allow it only where writes cannot collide).
template <class F>
void for_each_gather(const Shape& I, const Shape& a_strides, int64_t dim,
                     const std::vector<int64_t>& idx, bool parallel, F&& f) {
  Shape as = a_strides;
  as[dim] = 0;
  const Shape os = contiguous_strides(I);
  const Shape inner(I.begin() + 1, I.end()), ois(os.begin() + 1, os.end()), ais(as.begin() + 1, as.end());
#pragma omp parallel for if (parallel && numel(I) > kParallel)
  for (int64_t i0 = 0; i0 < I[0]; ++i0) {
    const int64_t ob = i0 * os[0], ab = i0 * as[0];
    for_each_strided<2>(inner, {&ois, &ais}, [&](int64_t oo, int64_t oa) {
      f(ob + oo, ab + oa, idx[ob + oo]);
    });
  }
}

struct GatherNode : Node {
  int64_t dim = 0;
  std::vector<int64_t> idx;
  Shape a_shape, index_shape;
  const char* name() const override { return "GatherBackward"; }
  std::vector<Tensor> backward(const Tensor& dout) override {
    const Tensor dy = dout.contiguous();  // index_shape
    Tensor da = Tensor::zeros(a_shape, dout.dtype());
    dispatch_float(dout.dtype(), "gather backward", [&]<class T>() {
      T* pa = da.data<T>();
      const T* pd = dy.data<T>();
      const int64_t sd = da.strides()[dim];
      for_each_gather(index_shape, da.strides(), dim, idx, dim != 0,
                      [&](int64_t oo, int64_t oa, int64_t k) { pa[oa + k * sd] += pd[oo]; });
    });
    return {da};
  }
  void release() override { idx = {}; }
};

}  // namespace

Tensor embedding(const Tensor& weight, const Tensor& indices) {
  FOCUS_CHECK(weight.defined() && weight.dim() == 2, ShapeError,
              "embedding: weight must be (V, D), got {}",
              weight.defined() ? to_string(weight.shape()) : "undefined");
  const int64_t V = weight.shape()[0], D = weight.shape()[1];
  std::vector<int64_t> idx = read_indices(indices, V, "embedding");
  Shape out_shape = indices.shape();  // (..., D)
  out_shape.push_back(D);
  return index_rows(weight, std::move(idx), out_shape, 1, V, D, "embedding", "EmbeddingBackward");
}

Tensor index_select(const Tensor& a, int64_t dim, const Tensor& index) {
  FOCUS_CHECK(a.defined() && a.dim() >= 1, ShapeError, "index_select: need a tensor of rank >= 1");
  dim = wrap_dim(dim, a.dim(), "index_select");
  FOCUS_CHECK(index.defined() && index.dim() == 1, ShapeError,
              "index_select: index must be 1-D, got {}",
              index.defined() ? to_string(index.shape()) : "undefined");
  std::vector<int64_t> idx = read_indices(index, a.shape()[dim], "index_select");
  Shape out_shape = a.shape();
  out_shape[dim] = static_cast<int64_t>(idx.size());
  return index_rows(a, std::move(idx), out_shape, prod(a.shape(), 0, dim), a.shape()[dim],
                    prod(a.shape(), dim + 1, a.dim()), "index_select", "IndexSelectBackward");
}

Tensor concat(const std::vector<Tensor>& parts, int64_t dim) {
  FOCUS_CHECK(!parts.empty(), ValueError, "concat: no tensors given");
  const Tensor& first = parts[0];
  FOCUS_CHECK(first.defined() && first.dim() >= 1, ShapeError,
              "concat: part 0 must be defined with rank >= 1");
  dim = wrap_dim(dim, first.dim(), "concat");
  Shape out_shape = first.shape();
  out_shape[dim] = 0;
  std::vector<int64_t> sizes;
  for (size_t k = 0; k < parts.size(); ++k) {
    const Tensor& p = parts[k];
    FOCUS_CHECK(p.defined(), ValueError, "concat: part {} is undefined", k);
    FOCUS_CHECK(p.dtype() == first.dtype(), DTypeError, "concat: part {} is {} but part 0 is {}",
                k, dtype_name(p.dtype()), dtype_name(first.dtype()));
    bool same = p.dim() == first.dim();
    for (int64_t d = 0; same && d < p.dim(); ++d) same = d == dim || p.shape()[d] == first.shape()[d];
    FOCUS_CHECK(same, ShapeError, "concat: part {} has shape {} but part 0 has {} (dim {})", k,
                to_string(p.shape()), to_string(first.shape()), dim);
    sizes.push_back(p.shape()[dim]);
    out_shape[dim] += p.shape()[dim];
  }
  Tensor out = Tensor::empty(out_shape, first.dtype());
  // Bytes: out row o is (total * INNER) elements, made of each part's row o in turn.
  const int64_t outer = prod(out_shape, 0, dim);
  const size_t esz = dtype_size(first.dtype());
  const size_t inner_bytes = static_cast<size_t>(prod(out_shape, dim + 1, out.dim())) * esz;
  std::vector<Tensor> packed;
  for (const Tensor& p : parts) packed.push_back(p.contiguous());
  char* po = static_cast<char*>(out.raw_data());
  const size_t out_row = static_cast<size_t>(out_shape[dim]) * inner_bytes;
#pragma omp parallel for if (out.nbytes() > (size_t(1) << 20))
  for (int64_t o = 0; o < outer; ++o) {
    char* dst = po + o * out_row;
    for (size_t k = 0; k < packed.size(); ++k) {
      const size_t row = static_cast<size_t>(sizes[k]) * inner_bytes;
      std::memcpy(dst, static_cast<const char*>(packed[k].raw_data()) + o * row, row);
      dst += row;
    }
  }
  if (needs_graph(parts)) {
    auto n = std::make_shared<ConcatNode>();
    n->dim = dim;
    n->sizes = std::move(sizes);
    attach(out, n, parts);
  }
  return out;
}

std::vector<Tensor> split(const Tensor& a, const std::vector<int64_t>& sizes, int64_t dim) {
  FOCUS_CHECK(a.defined() && a.dim() >= 1, ShapeError, "split: need a tensor of rank >= 1");
  dim = wrap_dim(dim, a.dim(), "split");
  int64_t total = 0;
  for (const int64_t s : sizes) {
    FOCUS_CHECK(s >= 0, ValueError, "split: negative size {}", s);
    total += s;
  }
  FOCUS_CHECK(total == a.shape()[dim], ShapeError,
              "split: sizes sum to {} but dim {} of {} has {}", total, dim, to_string(a.shape()),
              a.shape()[dim]);
  std::vector<Tensor> out;
  int64_t off = 0;
  for (const int64_t s : sizes) {
    out.push_back(slice(a, dim, off, off + s));
    off += s;
  }
  return out;
}

Tensor gather(const Tensor& a, int64_t dim, const Tensor& index) {
  FOCUS_CHECK(a.defined() && a.dim() >= 1, ShapeError, "gather: need a tensor of rank >= 1");
  dim = wrap_dim(dim, a.dim(), "gather");
  FOCUS_CHECK(index.defined() && index.dim() == a.dim(), ShapeError,
              "gather: index {} must have the rank of the input {}",
              index.defined() ? to_string(index.shape()) : "undefined", to_string(a.shape()));
  for (int64_t d = 0; d < a.dim(); ++d)
    FOCUS_CHECK(d == dim || index.shape()[d] <= a.shape()[d], ShapeError,
                "gather: index {} larger than input {} at dim {}", to_string(index.shape()),
                to_string(a.shape()), d);
  std::vector<int64_t> idx = read_indices(index, a.shape()[dim], "gather");
  const Tensor ac = a.contiguous();
  Tensor out = Tensor::empty(index.shape(), a.dtype());  // index's shape
  dispatch_float(a.dtype(), "gather", [&]<class T>() {
    const T* pa = ac.data<T>();
    T* po = out.data<T>();
    const int64_t sd = ac.strides()[dim];
    for_each_gather(index.shape(), ac.strides(), dim, idx, true,
                    [&](int64_t oo, int64_t oa, int64_t k) { po[oo] = pa[oa + k * sd]; });
  });
  if (needs_graph({&a})) {
    auto n = std::make_shared<GatherNode>();
    n->dim = dim;
    n->idx = std::move(idx);
    n->a_shape = a.shape();
    n->index_shape = index.shape();
    attach(out, n, {&a});
  }
  return out;
}

}  // namespace focus
