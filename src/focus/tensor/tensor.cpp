// Tensor storage, factories, raw views and copies (see tensor.hpp).
#include "focus/tensor/tensor.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "focus/autograd/node.hpp"
#include "focus/tensor/allocator.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/tensor/strided.hpp"

namespace focus {

// block_bytes is set in the body: its default member initialiser would overwrite a value stored
// through a pointer during ptr's initialisation.
Storage::Storage(size_t n) : nbytes(n) { ptr = host_alloc(n, &block_bytes); }
Storage::~Storage() { host_free(ptr, block_bytes); }

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: case DType::I32: return 4;
    case DType::F64: case DType::I64: return 8;
    case DType::BF16: return 2;
    case DType::I8: return 1;
  }
  return 0;
}

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::BF16: return "BF16";
    case DType::I8: return "I8";
  }
  return "?";
}

DType dtype_from_name(std::string_view n) {
  for (DType t : {DType::F32, DType::F64, DType::I32, DType::I64, DType::BF16, DType::I8})
    if (dtype_name(t) == n) return t;
  throw FormatError(fmt::format("unknown dtype '{}'", n));
}

static std::shared_ptr<TensorImpl> make_impl(const Shape& shape, DType dtype) {
  for (int64_t d : shape)
    FOCUS_CHECK(d >= 0, ValueError, "negative size in shape {}", to_string(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(numel(shape)) * dtype_size(dtype));
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return impl;
}

// Calls f.operator()<T>() for the C++ type of any dtype with a native type.
template <class F>
static auto dispatch_all(DType dt, const char* what, F&& f) {
  switch (dt) {
    case DType::F32: return f.template operator()<float>();
    case DType::F64: return f.template operator()<double>();
    case DType::I32: return f.template operator()<int32_t>();
    case DType::I64: return f.template operator()<int64_t>();
    case DType::I8: return f.template operator()<int8_t>();
    case DType::BF16: return f.template operator()<BFloat16>();
    default: throw DTypeError(fmt::format("{}: dtype {} has no kernels yet", what, dtype_name(dt)));
  }
}

Tensor Tensor::empty(const Shape& shape, DType dtype) { return Tensor(make_impl(shape, dtype)); }
Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::memset(t.raw_data(), 0, t.nbytes());
  return t;
}
Tensor Tensor::ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }
Tensor Tensor::full(const Shape& shape, double v, DType dtype) {
  Tensor t = empty(shape, dtype);
  t.fill_(v);
  return t;
}
Tensor Tensor::scalar(double v, DType dtype) { return full({}, v, dtype); }

template <class T>
static Tensor from_vec(const std::vector<T>& v, const Shape& shape) {
  FOCUS_CHECK(static_cast<int64_t>(v.size()) == numel(shape), ShapeError,
              "from_vector: {} values do not fill shape {}", v.size(), to_string(shape));
  Tensor t = Tensor::empty(shape, dtype_of<T>());
  if (!v.empty()) std::memcpy(t.raw_data(), v.data(), v.size() * sizeof(T));
  return t;
}
Tensor Tensor::from_vector(const std::vector<float>& v, const Shape& s) { return from_vec(v, s); }
Tensor Tensor::from_vector(const std::vector<double>& v, const Shape& s) { return from_vec(v, s); }
Tensor Tensor::from_vector(const std::vector<int32_t>& v, const Shape& s) { return from_vec(v, s); }
Tensor Tensor::from_vector(const std::vector<int64_t>& v, const Shape& s) { return from_vec(v, s); }

Tensor Tensor::arange(int64_t n, DType dtype) {
  Tensor t = empty({n}, dtype);
  dispatch_all(dtype, "arange", [&]<class T>() {
    T* p = t.data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(i);
  });
  return t;
}

Tensor Tensor::randn(const Shape& shape, Rng& rng, DType dtype, double std) {
  Tensor t = empty(shape, dtype);
  if (dtype == DType::F32) rng.fill_normal(t.data<float>(), t.numel(), 0.f, static_cast<float>(std));
  else if (dtype == DType::F64) rng.fill_normal(t.data<double>(), t.numel(), 0.0, std);
  else throw DTypeError(fmt::format("randn: dtype {} not supported", dtype_name(dtype)));
  return t;
}

Tensor Tensor::rand(const Shape& shape, Rng& rng, DType dtype, double lo, double hi) {
  Tensor t = empty(shape, dtype);
  if (dtype == DType::F32)
    rng.fill_uniform(t.data<float>(), t.numel(), static_cast<float>(lo), static_cast<float>(hi));
  else if (dtype == DType::F64) rng.fill_uniform(t.data<double>(), t.numel(), lo, hi);
  else throw DTypeError(fmt::format("rand: dtype {} not supported", dtype_name(dtype)));
  return t;
}

void Tensor::require_defined(const char* what) const {
  if (!impl_) throw StateError(fmt::format("{}: tensor is undefined", what));
}

const Shape& Tensor::shape() const { require_defined("shape"); return impl_->shape; }
const Shape& Tensor::strides() const { require_defined("strides"); return impl_->strides; }
int64_t Tensor::size(int64_t d) const { return shape()[wrap_dim(d, dim(), "size")]; }
int64_t Tensor::numel() const { return focus::numel(shape()); }
int64_t Tensor::offset() const { require_defined("offset"); return impl_->offset; }
DType Tensor::dtype() const { require_defined("dtype"); return impl_->dtype; }
bool Tensor::same_storage(const Tensor& o) const {
  return impl_ && o.impl_ && impl_->storage == o.impl_->storage;
}

bool Tensor::is_sole_owner() const {
  return impl_ && impl_.use_count() == 1 && impl_->storage && impl_->storage.use_count() == 1;
}

bool Tensor::is_contiguous() const {
  const Shape& s = shape();
  int64_t expected = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (s[i] != 1 && impl_->strides[i] != expected) return false;
    expected *= s[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  require_defined("data");
  return static_cast<char*>(impl_->storage->ptr) + impl_->offset * dtype_size(impl_->dtype);
}

template <class T> T* Tensor::data() {
  FOCUS_CHECK(dtype() == dtype_of<T>(), DTypeError, "data<{}>() on a {} tensor",
              dtype_name(dtype_of<T>()), dtype_name(dtype()));
  return static_cast<T*>(raw_data());
}
template <class T> const T* Tensor::data() const { return const_cast<Tensor*>(this)->data<T>(); }
template float* Tensor::data<float>();
template double* Tensor::data<double>();
template int32_t* Tensor::data<int32_t>();
template int64_t* Tensor::data<int64_t>();
template int8_t* Tensor::data<int8_t>();
template BFloat16* Tensor::data<BFloat16>();
template const float* Tensor::data<float>() const;
template const double* Tensor::data<double>() const;
template const int32_t* Tensor::data<int32_t>() const;
template const int64_t* Tensor::data<int64_t>() const;
template const int8_t* Tensor::data<int8_t>() const;
template const BFloat16* Tensor::data<BFloat16>() const;

double Tensor::item() const {
  FOCUS_CHECK(numel() == 1, ShapeError, "item(): tensor of shape {} has {} elements, not 1",
              to_string(shape()), numel());
  return dispatch_all(dtype(), "item", [&]<class T>() {
    return static_cast<double>(*static_cast<const T*>(raw_data()));
  });
}

template <class U> std::vector<U> Tensor::to_vector() const {
  Tensor c = contiguous();
  std::vector<U> out(static_cast<size_t>(numel()));
  dispatch_all(dtype(), "to_vector", [&]<class T>() {
    const T* p = static_cast<const T*>(c.raw_data());
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<U>(p[i]);
  });
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

// ---- copies ----------------------------------------------------------------------------------

void Tensor::copy_(const Tensor& src) {
  const Shape bs = broadcast_shapes(src.shape(), shape(), "copy_");
  FOCUS_CHECK(bs == shape(), ShapeError, "copy_: source {} does not broadcast to {}",
              to_string(src.shape()), to_string(shape()));
  Tensor s = src.expand(shape());
  if (dtype() == src.dtype() && is_contiguous() && s.is_contiguous()) {
    std::memmove(raw_data(), s.raw_data(), nbytes());
    return;
  }
  dispatch_all(dtype(), "copy_", [&]<class D>() {
    dispatch_all(src.dtype(), "copy_", [&]<class S>() {
      D* d = static_cast<D*>(raw_data());
      const S* p = static_cast<const S*>(s.raw_data());
      if (is_contiguous() && s.is_contiguous()) {  // a dtype conversion: one flat loop
        const int64_t n = numel();
        for (int64_t i = 0; i < n; ++i) d[i] = static_cast<D>(p[i]);
        return;
      }
      for_each_strided<2>(shape(), {&impl_->strides, &s.strides()},
                          [&](int64_t od, int64_t os) { d[od] = static_cast<D>(p[os]); });
    });
  });
}

void Tensor::fill_(double v) {
  dispatch_all(dtype(), "fill_", [&]<class T>() {
    T* d = static_cast<T*>(raw_data());
    const T tv = static_cast<T>(v);
    if (is_contiguous()) {
      const int64_t n = numel();
      for (int64_t i = 0; i < n; ++i) d[i] = tv;
    } else {
      for_each_strided<1>(shape(), {&impl_->strides}, [&](int64_t o) { d[o] = tv; });
    }
  });
}

Tensor Tensor::contiguous() const {
  require_defined("contiguous");
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype());
  out.copy_(*this);
  return out;
}

Tensor Tensor::to(DType dt) const {
  if (dt == dtype()) return *this;
  Tensor out = empty(shape(), dt);
  out.copy_(*this);
  return out;
}

// ---- raw views -------------------------------------------------------------------------------

static Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl()->storage;
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(impl);
}

static Shape infer_shape(const Shape& req, int64_t n, const Shape& from) {
  Shape s = req;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      FOCUS_CHECK(infer < 0, ShapeError, "reshape {} -> {}: more than one -1", to_string(from),
                  to_string(req));
      infer = static_cast<int64_t>(i);
    } else {
      FOCUS_CHECK(s[i] >= 0, ShapeError, "reshape {} -> {}: negative size", to_string(from),
                  to_string(req));
      known *= s[i];
    }
  }
  if (infer >= 0) {
    FOCUS_CHECK(known > 0 && n % known == 0, ShapeError, "reshape {} -> {}: cannot infer -1",
                to_string(from), to_string(req));
    s[infer] = n / known;
  }
  FOCUS_CHECK(numel(s) == n, ShapeError, "reshape {} -> {}: {} elements vs {}", to_string(from),
              to_string(req), n, numel(s));
  return s;
}

Tensor Tensor::view(const Shape& req) const {
  FOCUS_CHECK(is_contiguous(), ShapeError, "view {} -> {}: tensor is not contiguous",
              to_string(shape()), to_string(req));
  Shape s = infer_shape(req, numel(), shape());
  return make_view(*this, s, contiguous_strides(s), offset());
}

Tensor Tensor::reshape(const Shape& req) const {
  if (is_contiguous()) return view(req);
  return clone().view(req);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  FOCUS_CHECK(static_cast<int64_t>(dims.size()) == dim(), ShapeError,
              "permute: {} dims given for a tensor of shape {}", dims.size(), to_string(shape()));
  Shape s(dims.size()), st(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = wrap_dim(dims[i], dim(), "permute");
    FOCUS_CHECK(!seen[d], ShapeError, "permute: dim {} repeated", d);
    seen[d] = true;
    s[i] = shape()[d];
    st[i] = strides()[d];
  }
  return make_view(*this, s, st, offset());
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  std::vector<int64_t> p(dim());
  for (int64_t i = 0; i < dim(); ++i) p[i] = i;
  std::swap(p[wrap_dim(d0, dim(), "transpose")], p[wrap_dim(d1, dim(), "transpose")]);
  return permute(p);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  d = wrap_dim(d, dim(), "slice");
  const int64_t n = shape()[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  FOCUS_CHECK(step >= 1, ValueError, "slice: step must be >= 1, got {}", step);
  Shape s = shape(), st = strides();
  s[d] = (end - start + step - 1) / step;
  st[d] *= step;
  return make_view(*this, s, st, offset() + start * strides()[d]);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = wrap_dim(d, dim(), "select");
  const int64_t n = shape()[d];
  FOCUS_CHECK(index >= -n && index < n, ShapeError, "select: index {} out of range for dim {} of {}",
              index, d, to_string(shape()));
  if (index < 0) index += n;
  Shape s = shape(), st = strides();
  s.erase(s.begin() + d);
  st.erase(st.begin() + d);
  return make_view(*this, s, st, offset() + index * strides()[d]);
}

Tensor Tensor::expand(const Shape& target) const {
  const int64_t nd = static_cast<int64_t>(target.size());
  FOCUS_CHECK(nd >= dim(), ShapeError, "expand: {} to fewer dims {}", to_string(shape()),
              to_string(target));
  Shape st(nd, 0);
  for (int64_t i = 0; i < nd; ++i) {
    const int64_t j = i - (nd - dim());
    if (j < 0) continue;
    const int64_t have = shape()[j];
    FOCUS_CHECK(have == target[i] || have == 1, ShapeError, "expand: {} cannot expand to {}",
                to_string(shape()), to_string(target));
    st[i] = have == target[i] ? strides()[j] : 0;
  }
  if (target == shape()) return *this;
  return make_view(*this, target, st, offset());
}

// ---- autograd accessors ------------------------------------------------------------------------

bool Tensor::requires_grad() const {
  return impl_ && impl_->autograd && impl_->autograd->requires_grad;
}

Tensor& Tensor::requires_grad_(bool on) {
  require_defined("requires_grad_");
  FOCUS_CHECK(is_leaf(), StateError, "requires_grad_: only leaf tensors can change requires_grad");
  FOCUS_CHECK(!on || dtype() == DType::F32 || dtype() == DType::F64, DTypeError,
              "requires_grad_: only floating tensors can require grad, not {}", dtype_name(dtype()));
  if (!impl_->autograd) impl_->autograd = std::make_shared<AutogradMeta>();
  impl_->autograd->requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const {
  return impl_ && impl_->autograd ? impl_->autograd->grad : Tensor();
}
void Tensor::set_grad(const Tensor& g) {
  require_defined("set_grad");
  if (!impl_->autograd) impl_->autograd = std::make_shared<AutogradMeta>();
  impl_->autograd->grad = g;
}
void Tensor::zero_grad() {
  if (impl_ && impl_->autograd) impl_->autograd->grad = Tensor();
}

const std::shared_ptr<Node>& Tensor::grad_fn() const {
  static const std::shared_ptr<Node> none;
  return impl_ && impl_->autograd ? impl_->autograd->grad_fn : none;
}
void Tensor::set_grad_fn(std::shared_ptr<Node> fn) {
  require_defined("set_grad_fn");
  if (!impl_->autograd) impl_->autograd = std::make_shared<AutogradMeta>();
  impl_->autograd->grad_fn = std::move(fn);
  impl_->autograd->requires_grad = true;
}

Tensor Tensor::detach() const {
  require_defined("detach");
  return make_view(*this, shape(), strides(), offset());
}

void Tensor::backward(const Tensor& grad) const {
  require_defined("backward");
  FOCUS_CHECK(requires_grad(), StateError,
              "backward: tensor of shape {} does not require grad (no graph recorded)",
              to_string(shape()));
  Tensor g = grad;
  if (!g.defined()) {
    FOCUS_CHECK(numel() == 1, ShapeError,
                "backward: implicit gradient only for one-element outputs, got shape {}",
                to_string(shape()));
    g = Tensor::ones(shape(), dtype());
  }
  FOCUS_CHECK(g.shape() == shape(), ShapeError, "backward: gradient shape {} != output shape {}",
              to_string(g.shape()), to_string(shape()));
  run_backward(*this, g);
}

std::string describe(const Tensor& t) {
  if (!t.defined()) return "Tensor(undefined)";
  return fmt::format("Tensor({}, {})", dtype_name(t.dtype()), to_string(t.shape()));
}

}  // namespace focus
