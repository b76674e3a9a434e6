// Element types. Kernels exist for F32 (training and inference) and F64 (gradient checks);
// I32/I64 hold indices and labels; BF16 (tensor/bf16.hpp) converts to and from the others and
// stores inference weights (linear() reads it, ops/matmul.hpp); I8 is admitted for storage.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>

#include "focus/tensor/bf16.hpp"
#include "focus/tensor/error.hpp"

namespace focus {

enum class DType : uint8_t { F32, F64, I32, I64, BF16, I8 };

size_t dtype_size(DType t);
std::string_view dtype_name(DType t);          // "F32", "F64", ... (safetensors spelling)
DType dtype_from_name(std::string_view name);  // throws FormatError on an unknown name

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<double>() { return DType::F64; }
template <> constexpr DType dtype_of<int32_t>() { return DType::I32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::I64; }
template <> constexpr DType dtype_of<int8_t>() { return DType::I8; }
template <> constexpr DType dtype_of<BFloat16>() { return DType::BF16; }

// dispatch_float(dtype, "opname", [&]<class T>() { ... }) runs the lambda with T = float or
// double; any other dtype throws DTypeError naming the op.
template <class F>
decltype(auto) dispatch_float(DType dt, const char* opname, F&& fn) {
  if (dt == DType::F32) return fn.template operator()<float>();
  if (dt == DType::F64) return fn.template operator()<double>();
  throw DTypeError(fmt::format("{}: dtype {} not supported (F32, F64)", opname, dtype_name(dt)));
}

}  // namespace focus

