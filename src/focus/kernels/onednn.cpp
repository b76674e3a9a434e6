// oneDNN's process-wide settings (see onednn.hpp).
#include "focus/kernels/onednn.hpp"

#include <oneapi/dnnl/dnnl.hpp>

#include "focus/kernels/cpu.hpp"

namespace focus {

void onednn_init() {
  static const bool applied = [] {
    if (active_isa() == Isa::Avx2) dnnl::set_max_cpu_isa(dnnl::cpu_isa::avx2);
    return true;
  }();
  (void)applied;
}

bool onednn_enabled() { return active_isa() != Isa::Scalar; }

}  // namespace focus
