// Tensor: a reference-counted handle on a strided view of 64-byte aligned storage, plus the
// autograd metadata (requires_grad, grad, grad_fn). Copying a Tensor shares storage (like
// torch.Tensor); clone() copies. Views made here (reshape/permute/...) are raw, gradient-free
// views; the differentiable versions live in ops/view.hpp.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <vector>

#include "focus/tensor/dtype.hpp"
#include "focus/tensor/error.hpp"
#include "focus/tensor/shape.hpp"

namespace focus {

class Tensor;
class Rng;
struct Node;

struct Storage {
  explicit Storage(size_t nbytes);  // 64-byte aligned, uninitialised
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* ptr = nullptr;
  size_t nbytes = 0;
  size_t block_bytes = 0;  // what host_alloc really gave (>= nbytes; see tensor/allocator.hpp)
};

struct AutogradMeta;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;  // in elements
  int64_t offset = 0;  // in elements
  DType dtype = DType::F32;
  std::shared_ptr<AutogradMeta> autograd;  // null until requires_grad or grad_fn is set
};

class Tensor {
 public:
  Tensor() = default;  // undefined tensor
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories -------------------------------------------------------------------------
  static Tensor empty(const Shape& shape, DType dtype = DType::F32);
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32);
  static Tensor ones(const Shape& shape, DType dtype = DType::F32);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::F32);
  static Tensor from_vector(const std::vector<float>& v, const Shape& shape);
  static Tensor from_vector(const std::vector<double>& v, const Shape& shape);
  static Tensor from_vector(const std::vector<int32_t>& v, const Shape& shape);
  static Tensor from_vector(const std::vector<int64_t>& v, const Shape& shape);
  static Tensor scalar(double value, DType dtype = DType::F32);  // shape ()
  static Tensor arange(int64_t n, DType dtype = DType::F32);
  static Tensor randn(const Shape& shape, Rng& rng, DType dtype = DType::F32, double std = 1.0);
  static Tensor rand(const Shape& shape, Rng& rng, DType dtype = DType::F32, double lo = 0.0,
                     double hi = 1.0);

  // ---- inspection ------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  const Shape& strides() const;
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const;
  int64_t offset() const;
  DType dtype() const;
  bool is_contiguous() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }
  TensorImpl* impl() const { return impl_.get(); }
  bool same_storage(const Tensor& o) const;
  // True when this handle is the only way to reach its data: no other Tensor shares its impl or
  // its storage (no views, no copies of the handle). The autograd engine adds into such buffers
  // in place instead of copying them first.
  bool is_sole_owner() const;

  // Typed pointer to element [0,...,0]; throws DTypeError if T does not match dtype().
  template <class T> T* data();
  template <class T> const T* data() const;
  void* raw_data() const;  // untyped pointer to element [0,...,0]
  double item() const;     // the value of a one-element tensor, as double
  template <class T> std::vector<T> to_vector() const;  // contiguous copy, converted to T

  // ---- copies and raw views (no autograd) -----------------------------------------------
  Tensor contiguous() const;  // this if already contiguous, else a packed copy
  Tensor clone() const;       // always a packed copy, detached
  Tensor to(DType dtype) const;
  Tensor view(const Shape& shape) const;  // requires contiguous; one dim may be -1
  Tensor reshape(const Shape& shape) const;  // view if possible, else copy
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;  // drops `dim`
  Tensor expand(const Shape& shape) const;          // broadcast view with stride 0
  void copy_(const Tensor& src);                    // elementwise copy with broadcasting of src
  void fill_(double value);
  void zero_() { fill_(0.0); }

  // ---- autograd ---------------------------------------------------------------------------
  bool requires_grad() const;
  Tensor& requires_grad_(bool on = true);  // only on leaves
  Tensor grad() const;                     // undefined until a backward reaches this leaf
  void set_grad(const Tensor& g);
  void zero_grad();                        // drops the gradient (next backward writes fresh)
  const std::shared_ptr<Node>& grad_fn() const;
  void set_grad_fn(std::shared_ptr<Node> fn);
  bool is_leaf() const { return grad_fn() == nullptr; }
  Tensor detach() const;  // shares storage, no autograd history
  // Reverse-mode: accumulates d(this)/d(leaf) * grad into every leaf's grad(). `grad` defaults
  // to ones for a one-element tensor. Frees the graph afterwards.
  void backward(const Tensor& grad = Tensor()) const;

 private:
  std::shared_ptr<TensorImpl> impl_;
  void require_defined(const char* what) const;
};

// Pretty-print for debugging and error messages: "Tensor(F32, (2, 3))".
std::string describe(const Tensor& t);

}  // namespace focus
