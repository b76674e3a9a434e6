// The int8 error probe (see quant_probe.hpp).
#include "focus/nn/quant_probe.hpp"

namespace focus {

namespace {
thread_local QuantProbe* g_probe = nullptr;
}

void QuantProbe::add(const Module* m, const Tensor& got, const Tensor& ref) {
  const Tensor a = got.contiguous(), b = ref.contiguous();
  FOCUS_CHECK(a.shape() == b.shape() && a.dtype() == DType::F32 && b.dtype() == DType::F32,
              ShapeError, "QuantProbe: outputs {} and {} differ", to_string(a.shape()),
              to_string(b.shape()));
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  double e = 0, r = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double d = double(pa[i]) - pb[i];
    e += d * d;
    r += double(pb[i]) * pb[i];
  }
  Sums& s = sums[m];
  s.err2 += e;
  s.ref2 += r;
  ++s.calls;
}

QuantProbe* quant_probe() { return g_probe; }

QuantProbeScope::QuantProbeScope(QuantProbe& p) : prev_(g_probe) { g_probe = &p; }
QuantProbeScope::~QuantProbeScope() { g_probe = prev_; }

}  // namespace focus
