// oneDNN's process-wide settings, in one place below every user of the library (the GEMM
// dispatch's dnnl_sgemm, kernels/gemm.cpp; the compiled image plans, infer/image_plan.cpp):
// oneDNN reads its ISA cap once, before its first JIT kernel, so whoever calls oneDNN first
// calls onednn_init() first.
#pragma once

namespace focus {

// Applies the cap FOCUS_FORCE_ISA asks for (avx2: oneDNN's AVX2 kernels, no AVX-512 or VNNI) the
// first time it is called; later calls do nothing. Thread-safe.
void onednn_init();

// True where oneDNN runs focus's work: every ISA but the forced scalar one (whose runs keep to
// the reference and portable paths).
bool onednn_enabled();

}  // namespace focus
