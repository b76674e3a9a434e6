// KvCache and CrossKvCache (see kv_cache.hpp). Buffers are zero-filled when allocated: a step's
// view covers positions that some sequences never wrote (their keys are masked), and masked
// keys must still be finite (0 * NaN would leak through the probabilities).
#include "focus/nn/kv_cache.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "focus/autograd/node.hpp"

namespace focus {

namespace {

// An index / count tensor read as int64: I64 or I32 (n), each in [lo, hi].
std::vector<int64_t> read_ints(const Tensor& t, int64_t n, int64_t lo, int64_t hi,
                               const char* what) {
  FOCUS_CHECK(t.dtype() == DType::I64 || t.dtype() == DType::I32, DTypeError,
              "{} must be I64 or I32, got {}", what, dtype_name(t.dtype()));
  FOCUS_CHECK(t.dim() == 1 && (n < 0 || t.size(0) == n), ShapeError, "{} {} must be ({})", what,
              to_string(t.shape()), n < 0 ? std::string("B'") : std::to_string(n));
  std::vector<int64_t> v = t.to_vector<int64_t>();
  for (size_t i = 0; i < v.size(); ++i)
    FOCUS_CHECK(v[i] >= lo && v[i] <= hi, ValueError, "{}[{}] = {} is outside [{}, {}]", what, i,
                v[i], lo, hi);
  return v;
}

// out[i] = t[index[i]] along dim 0, any dtype and strides; out packed.
Tensor take_rows(const Tensor& t, const std::vector<int64_t>& index) {
  Shape s = t.shape();
  s[0] = static_cast<int64_t>(index.size());
  Tensor out = Tensor::empty(s, t.dtype());
  for (size_t i = 0; i < index.size(); ++i) out.select(0, i).copy_(t.select(0, index[i]));
  return out;
}

}  // namespace

// ---- KvCache --------------------------------------------------------------------------------

KvCache::KvCache(int64_t batch, int64_t kv_heads, int64_t head_dim, int64_t capacity, DType dtype)
    : len_(static_cast<size_t>(std::max<int64_t>(batch, 0)), 0) {
  FOCUS_CHECK(batch > 0 && kv_heads > 0 && head_dim > 0 && capacity > 0, ValueError,
              "KvCache: batch {}, kv_heads {}, head_dim {}, capacity {} must be positive", batch,
              kv_heads, head_dim, capacity);
  FOCUS_CHECK(dtype == DType::F32 || dtype == DType::F64, DTypeError,
              "KvCache: dtype must be F32 or F64, got {}", dtype_name(dtype));
  k_ = Tensor::zeros({batch, kv_heads, capacity, head_dim}, dtype);  // (B, Hkv, capacity, Dh)
  v_ = Tensor::zeros({batch, kv_heads, capacity, head_dim}, dtype);  // (B, Hkv, capacity, Dh)
}

int64_t KvCache::max_length() const { return *std::max_element(len_.begin(), len_.end()); }

Tensor KvCache::keys() const { return k_.slice(2, 0, max_length()); }
Tensor KvCache::values() const { return v_.slice(2, 0, max_length()); }
Tensor KvCache::lengths() const { return Tensor::from_vector(len_, {batch()}); }

void KvCache::reset() { std::fill(len_.begin(), len_.end(), 0); }

void KvCache::reserve(int64_t tokens) {
  const int64_t cap = capacity();
  if (tokens <= cap) return;
  int64_t grown = cap;
  while (grown < tokens) grown *= 2;
  for (Tensor* buf : {&k_, &v_}) {
    Tensor bigger = Tensor::zeros({batch(), kv_heads(), grown, head_dim()}, dtype());
    bigger.slice(2, 0, cap).copy_(*buf);
    *buf = bigger;
  }
  spare_k_ = spare_v_ = Tensor();
}

KvStep KvCache::append(const Tensor& k, const Tensor& v, const Tensor& counts) {
  FOCUS_CHECK(k.defined() && v.defined(), ValueError, "KvCache::append: undefined k or v");
  const int64_t B = batch(), Hkv = kv_heads(), Dh = head_dim();
  FOCUS_CHECK(k.dim() == 4 && k.shape() == v.shape() && k.size(0) == B && k.size(1) == Hkv &&
                  k.size(2) >= 1 && k.size(3) == Dh,
              ShapeError,
              "KvCache::append: k {} and v {} must be (B, Hkv, T >= 1, Dh) = ({}, {}, T, {})",
              to_string(k.shape()), to_string(v.shape()), B, Hkv, Dh);
  FOCUS_CHECK(k.dtype() == dtype() && v.dtype() == dtype(), DTypeError,
              "KvCache::append: k {} / v {} vs cache {}", dtype_name(k.dtype()),
              dtype_name(v.dtype()), dtype_name(dtype()));
  FOCUS_CHECK(!k.requires_grad() && !v.requires_grad(), StateError,
              "KvCache::append: k/v carry an autograd graph; the cache is inference-only (run "
              "under NoGradGuard)");
  const int64_t T = k.size(2);
  const std::vector<int64_t> add =
      counts.defined() ? read_ints(counts, B, 0, T, "KvCache::append: counts")
                       : std::vector<int64_t>(B, T);
  const std::vector<int64_t> old = len_;
  const int64_t Lk = max_length() + T;
  reserve(Lk);

  // dst[b, h, old[b] + t, :] = src[b, h, t, :], rows of Dh packed elements.
  const int64_t cap = capacity();
  const size_t esize = dtype_size(dtype()), row_bytes = static_cast<size_t>(Dh) * esize;
  for (const auto& [src_in, dst] : {std::pair{&k, &k_}, std::pair{&v, &v_}}) {
    const Tensor src = src_in->strides()[3] == 1 ? *src_in : src_in->contiguous();
    const Shape& st = src.strides();
    const char* ps = static_cast<const char*>(src.raw_data());
    char* pd = static_cast<char*>(dst->raw_data());
#pragma omp parallel for collapse(2) if (B * Hkv * T * Dh > (1 << 16))
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < Hkv; ++h)
        for (int64_t t = 0; t < T; ++t)
          std::memcpy(pd + (((b * Hkv + h) * cap + old[b] + t) * Dh) * esize,
                      ps + (b * st[0] + h * st[1] + t * st[2]) * esize, row_bytes);
  }
  for (int64_t b = 0; b < B; ++b) len_[b] += add[b];

  KvStep step{k_.slice(2, 0, Lk), v_.slice(2, 0, Lk), {}};
  const bool uniform = std::all_of(old.begin(), old.end(), [&](int64_t l) { return l == old[0]; });
  if (uniform) {
    step.mask.causal = T > 1;  // Lk = old + T: the convention j <= i + (Lk - T) is exact
  } else if (T == 1) {
    std::vector<int64_t> kl(old);
    for (int64_t& l : kl) l += 1;
    step.mask.key_lengths = Tensor::from_vector(kl, {B});  // I64 (B)
  } else {  // ragged lengths and several new tokens: an explicit 0 / -inf bias
    step.mask.bias = Tensor::zeros({B, 1, T, Lk}, dtype());  // (B, 1, T, Lk)
    Tensor& bias = step.mask.bias;
    dispatch_float(dtype(), "KvCache mask", [&]<class X>() {
      X* p = bias.data<X>();
      for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < T; ++i)
          for (int64_t j = old[b] + i + 1; j < Lk; ++j)
            p[(b * T + i) * Lk + j] = -std::numeric_limits<X>::infinity();
    });
  }
  return step;
}

void KvCache::reorder(const Tensor& index) {
  FOCUS_CHECK(index.defined(), ValueError, "KvCache::reorder: undefined index");
  const std::vector<int64_t> idx = read_ints(index, -1, 0, batch() - 1, "KvCache::reorder: index");
  const int64_t Bn = static_cast<int64_t>(idx.size());
  FOCUS_CHECK(Bn > 0, ShapeError, "KvCache::reorder: empty index {}", to_string(index.shape()));
  const int64_t Hkv = kv_heads(), cap = capacity(), Dh = head_dim(), L = max_length();
  const Shape shape{Bn, Hkv, cap, Dh};
  if (!spare_k_.defined() || spare_k_.shape() != shape) {
    spare_k_ = Tensor::zeros(shape, dtype());  // (B', Hkv, capacity, Dh)
    spare_v_ = Tensor::zeros(shape, dtype());
  }
  // Only the first L positions of each (sequence, head) hold anything of use.
  const size_t esize = dtype_size(dtype()), bytes = static_cast<size_t>(L * Dh) * esize;
  for (const auto& [src, dst] : {std::pair{&k_, &spare_k_}, std::pair{&v_, &spare_v_}}) {
    const char* ps = static_cast<const char*>(src->raw_data());
    char* pd = static_cast<char*>(dst->raw_data());
#pragma omp parallel for collapse(2) if (Bn * Hkv * L * Dh > (1 << 16))
    for (int64_t i = 0; i < Bn; ++i)
      for (int64_t h = 0; h < Hkv; ++h)
        std::memcpy(pd + ((i * Hkv + h) * cap * Dh) * esize,
                    ps + ((idx[i] * Hkv + h) * cap * Dh) * esize, bytes);
  }
  std::swap(k_, spare_k_);
  std::swap(v_, spare_v_);
  if (spare_k_.shape() != shape) spare_k_ = spare_v_ = Tensor();  // batch changed: not reusable
  std::vector<int64_t> len(Bn);
  for (int64_t i = 0; i < Bn; ++i) len[i] = len_[idx[i]];
  len_ = std::move(len);
}

// ---- CrossKvCache ---------------------------------------------------------------------------

void CrossKvCache::set(const Tensor& k, const Tensor& v, const AttentionMask& m) {
  FOCUS_CHECK(k.defined() && v.defined(), ValueError, "CrossKvCache::set: undefined k or v");
  FOCUS_CHECK(k.dim() == 4 && v.dim() == 4 && k.size(0) == v.size(0) && k.size(1) == v.size(1) &&
                  k.size(2) == v.size(2) && k.size(2) >= 1,
              ShapeError, "CrossKvCache::set: k {} (B, Hkv, S, Dh) and v {} (B, Hkv, S, Dv) differ",
              to_string(k.shape()), to_string(v.shape()));
  FOCUS_CHECK(k.dtype() == v.dtype() && (k.dtype() == DType::F32 || k.dtype() == DType::F64),
              DTypeError, "CrossKvCache::set: k {} / v {} must be both F32 or both F64",
              dtype_name(k.dtype()), dtype_name(v.dtype()));
  FOCUS_CHECK(!k.requires_grad() && !v.requires_grad(), StateError,
              "CrossKvCache::set: k/v carry an autograd graph; the cache is inference-only (run "
              "under NoGradGuard)");
  FOCUS_CHECK(!m.causal && !m.bias.defined(), ValueError,
              "CrossKvCache::set: only key_lengths / key_padding_mask describe a source");
  const int64_t B = k.size(0), S = k.size(2);
  if (m.key_lengths.defined()) read_ints(m.key_lengths, B, 0, S, "CrossKvCache::set: key_lengths");
  if (m.key_padding_mask.defined())
    FOCUS_CHECK(m.key_padding_mask.shape() == Shape({B, S}), ShapeError,
                "CrossKvCache::set: key_padding_mask {} must be (B, S) = ({}, {})",
                to_string(m.key_padding_mask.shape()), B, S);
  k_ = k;
  v_ = v;
  mask_ = m;
}

const Tensor& CrossKvCache::keys() const {
  FOCUS_CHECK(filled(), StateError, "CrossKvCache: empty (set() it from the encoder output)");
  return k_;
}

const Tensor& CrossKvCache::values() const {
  FOCUS_CHECK(filled(), StateError, "CrossKvCache: empty (set() it from the encoder output)");
  return v_;
}

void CrossKvCache::reset() {
  k_ = v_ = Tensor();
  mask_ = {};
}

void CrossKvCache::reorder(const Tensor& index) {
  FOCUS_CHECK(filled(), StateError, "CrossKvCache::reorder: empty cache");
  FOCUS_CHECK(index.defined(), ValueError, "CrossKvCache::reorder: undefined index");
  const std::vector<int64_t> idx =
      read_ints(index, -1, 0, batch() - 1, "CrossKvCache::reorder: index");
  FOCUS_CHECK(!idx.empty(), ShapeError, "CrossKvCache::reorder: empty index");
  k_ = take_rows(k_, idx);
  v_ = take_rows(v_, idx);
  if (mask_.key_lengths.defined()) mask_.key_lengths = take_rows(mask_.key_lengths, idx);
  if (mask_.key_padding_mask.defined())
    mask_.key_padding_mask = take_rows(mask_.key_padding_mask, idx);
}

}  // namespace focus
