// What focus's own oneDNN kernels share (kernels/conv_onednn.cpp, kernels/gemm_bf16.cpp): the
// process's CPU engine, the user-scratchpad attribute and per-thread scratch buffers kept from
// call to call. Only files that call oneDNN's C++ API include it (kernels/onednn.hpp holds the
// settings everyone else needs).
#pragma once
#include <oneapi/dnnl/dnnl.hpp>

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>

namespace focus {

// The CPU engine, made after onednn_init() (the ISA cap) on first use; never destroyed (it must
// outlive every static primitive cache).
dnnl::engine& onednn_engine();

// An attribute with scratchpad_mode::user: the primitive takes its scratch memory from the
// caller. oneDNN's own (library) scratchpad is thread-local and set up by the thread that made
// the primitive, and a primitive made in one thread and run in another crashed in its kernel
// (Winograd, measured).
dnnl::primitive_attr user_scratchpad();

// `Slots` 64-byte aligned buffers grown on demand and kept (a fresh 13 MB buffer per call would
// page-fault its way in every time); one instance per thread (thread_local at the user).
template <int Slots>
class ScratchSlots {
 public:
  void* get(int slot, size_t bytes) {
    if (bytes > cap_[slot]) {
      const size_t rounded = (bytes + 63) / 64 * 64;
      buf_[slot].reset(std::aligned_alloc(64, rounded));
      if (!buf_[slot]) throw std::bad_alloc();
      cap_[slot] = rounded;
    }
    return buf_[slot].get();
  }

 private:
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  std::unique_ptr<void, Free> buf_[Slots];
  size_t cap_[Slots] = {};
};

}  // namespace focus
