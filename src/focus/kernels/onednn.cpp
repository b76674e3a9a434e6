// oneDNN's process-wide settings (see onednn.hpp) and the engine of onednn_common.hpp.
#include "focus/kernels/onednn.hpp"

#include <oneapi/dnnl/dnnl.hpp>

#include "focus/kernels/cpu.hpp"
#include "focus/kernels/onednn_common.hpp"

namespace focus {

void onednn_init() {
  static const bool applied = [] {
    if (active_isa() == Isa::Avx2) dnnl::set_max_cpu_isa(dnnl::cpu_isa::avx2);
    return true;
  }();
  (void)applied;
}

bool onednn_enabled() { return active_isa() != Isa::Scalar; }

dnnl::engine& onednn_engine() {
  static dnnl::engine* e = [] {
    onednn_init();  // the ISA cap before the first primitive
    return new dnnl::engine(dnnl::engine::kind::cpu, 0);
  }();
  return *e;
}

dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

}  // namespace focus
