// Driver of the fused attention kernels (see attention.hpp): picks the ISA path, owns the OpenMP
// loop over tasks (attention_tasks.hpp) with one workspace per thread, computes the backward's
// row terms delta = rowsum(dout * o) and adds the tasks' dQ partials into dq.
#include "focus/kernels/attention.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#include "focus/kernels/attention_tasks.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/tensor/error.hpp"

namespace focus {

namespace {

AttentionIsa isa_from_env() {
  const char* e = std::getenv("FOCUS_ATTENTION_ISA");
  if (!e) return AttentionIsa::Auto;
  if (std::strcmp(e, "scalar") == 0) return AttentionIsa::Scalar;
  if (std::strcmp(e, "avx2") == 0) return AttentionIsa::Avx2;
  if (std::strcmp(e, "avx512") == 0) return AttentionIsa::Avx512;
  return AttentionIsa::Auto;
}

std::atomic<AttentionIsa> g_isa{isa_from_env()};
std::atomic<bool> g_short{!(std::getenv("FOCUS_ATTENTION_SHORT") &&
                            std::strcmp(std::getenv("FOCUS_ATTENTION_SHORT"), "0") == 0)};


template <class T>
attn::TaskSet<T> task_set() {
  if constexpr (std::is_same_v<T, double>) {
    return attn::tasks_scalar<double>();
  } else {
    switch (attention_isa()) {
      case AttentionIsa::Avx512: return attn::tasks_avx512();
      case AttentionIsa::Avx2: return attn::tasks_avx2();
      default: return attn::tasks_scalar<float>();
    }
  }
}

// Runs fn(t, workspace) for t < n: on one thread when the work is small (decoding steps), else
// on the thread policy with dynamic scheduling (causal blocks differ in cost).
template <class T, class Fn>
void run_tasks(int64_t n, int64_t ws_elems, double flops, Fn&& fn) {
  const int threads = flops < 4e5 ? 1 : static_cast<int>(std::min<int64_t>(num_threads(), n));
  if (threads <= 1) {
    std::vector<T> ws(static_cast<size_t>(ws_elems));
    for (int64_t t = 0; t < n; ++t) fn(t, ws.data());
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    std::vector<T> ws(static_cast<size_t>(ws_elems));
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < n; ++t) fn(t, ws.data());
  }
}

template <class T>
void check_problem(const AttnProblem<T>& p) {
  FOCUS_CHECK(p.B >= 0 && p.H > 0 && p.Hkv > 0 && p.H % p.Hkv == 0 && p.Lq >= 0 && p.Lk > 0 &&
                  p.D > 0 && p.Dv > 0,
              ShapeError, "attention kernel: bad sizes B {} H {} Hkv {} Lq {} Lk {} D {} Dv {}",
              p.B, p.H, p.Hkv, p.Lq, p.Lk, p.D, p.Dv);
}

}  // namespace

void set_attention_isa(AttentionIsa isa) { g_isa = isa; }

// A problem without bias, window or dropout whose keys fit the short forward's workspace, with
// more query rows than the decoding path's few (kernels/attention_impl.hpp).
template <class T>
bool attention_runs_short(const AttnProblem<T>& p) {
  return g_short.load() && !p.bias && p.dropout_p == 0 && p.window_left < 0 &&
         p.window_right < 0 && p.Lk <= attn::kShortKeys && p.Lq > 4;
}
void set_attention_short_path(bool on) { g_short = on; }
bool attention_short_path() { return g_short.load(); }

AttentionIsa attention_isa() {
  const Isa cpu = active_isa();
  const AttentionIsa best = cpu == Isa::Avx512 ? AttentionIsa::Avx512
                            : cpu == Isa::Avx2 ? AttentionIsa::Avx2
                                               : AttentionIsa::Scalar;
  const AttentionIsa want = g_isa.load();
  if (want == AttentionIsa::Auto) return best;
  // A forced path the CPU lacks is lowered to the best it has.
  return static_cast<int>(want) <= static_cast<int>(best) ? want : best;
}

std::string attention_isa_name(AttentionIsa isa) {
  switch (isa) {
    case AttentionIsa::Avx512: return "avx512";
    case AttentionIsa::Avx2: return "avx2";
    case AttentionIsa::Scalar: return "scalar";
    default: return "auto";
  }
}

template <class T>
void attention_forward(const AttnProblem<T>& p, T* o, AttnLayout os, T* lse) {
  check_problem(p);
  const attn::TaskSet<T> ts = task_set<T>();
  const double flops = 2.0 * p.B * p.H * p.Lq * p.Lk * (p.D + p.Dv);
  if (attention_runs_short(p)) {
    run_tasks<T>(p.B * p.H, attn::short_workspace(p.D, p.Dv, p.Lk), flops,
                 [&](int64_t t, T* ws) { ts.forward_short(p, o, os, lse, t, ws); });
    return;
  }
  // Runs of query blocks per task: long runs amortise packing each key block, but keep at least
  // 4 tasks per thread (causal rows differ in cost) and at most 1024 rows.
  const int64_t nqb = (p.Lq + attn::kBQ - 1) / attn::kBQ;
  const int64_t nblk = std::clamp<int64_t>(p.B * p.H * nqb / (4 * num_threads()), 1,
                                           std::min<int64_t>(nqb, 1024 / attn::kBQ));
  const int64_t tasks = p.B * p.H * ((nqb + nblk - 1) / nblk);
  run_tasks<T>(tasks, attn::forward_workspace(p.D, p.Dv, nblk), flops,
               [&](int64_t t, T* ws) { ts.forward(p, o, os, lse, t, nblk, ws); });
}

template <class T>
void attention_backward(const AttnProblem<T>& p, const T* o, AttnLayout os, const T* dout,
                        AttnLayout dos, const T* lse, T* dq, AttnLayout dqs, T* dk,
                        AttnLayout dks, T* dv, AttnLayout dvs, T* dbias) {
  check_problem(p);
  const int64_t B = p.B, H = p.H, Lq = p.Lq, G = p.H / p.Hkv, Dp = attn::padded(p.D);
  std::vector<T> delta(static_cast<size_t>(B * H * Lq));  // (B, H, Lq)
#pragma omp parallel for collapse(2) if (B * H * Lq * p.Dv > (1 << 16))
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < Lq; ++i) {
        const T* orow = o + b * os.b + h * os.h + i * os.l;
        const T* drow = dout + b * dos.b + h * dos.h + i * dos.l;
        T s = 0;
        for (int64_t d = 0; d < p.Dv; ++d) s += orow[d] * drow[d];
        delta[(b * H + h) * Lq + i] = s;
      }
  if (dbias) std::fill(dbias, dbias + B * H * Lq * p.Lk, T(0));

  // One task per (b, hkv) and chunk of key blocks; chunks only when (b, hkv) pairs are too few
  // to keep the threads busy (each chunk then carries its own dQ partial).
  const int64_t pairs = B * p.Hkv, threads = num_threads();
  const int64_t nkb = (p.Lk + attn::kBK - 1) / attn::kBK;
  const int64_t chunks =
      pairs >= 2 * threads ? 1 : std::clamp<int64_t>((2 * threads + pairs - 1) / pairs, 1, nkb);
  const attn::BackwardIO<T> io{dout, dos, lse, delta.data(), dk, dks, dv, dvs, dbias};
  const attn::TaskSet<T> ts = task_set<T>();
  const T scale = static_cast<T>(p.scale);
  const double flops = 4.0 * B * H * Lq * p.Lk * (p.D + p.Dv);
  run_tasks<T>(pairs * chunks, attn::backward_workspace(p.D, p.Dv, G, Lq), flops,
               [&](int64_t t, T* ws) {
                 const T* dqa = ts.backward(p, io, t, chunks, ws);  // (G, Lq, Dp)
                 const int64_t b = t / (p.Hkv * chunks), hk = (t / chunks) % p.Hkv;
                 auto add = [&] {
                   for (int64_t g = 0; g < G; ++g) {
                     T* dqh = dq + b * dqs.b + (hk * G + g) * dqs.h;
                     for (int64_t i = 0; i < Lq; ++i) {
                       const T* src = dqa + (g * Lq + i) * Dp;
                       T* dst = dqh + i * dqs.l;
                       for (int64_t d = 0; d < p.D; ++d) dst[d] += scale * src[d];
                     }
                   }
                 };
                 if (chunks == 1) {
                   add();
                 } else {
#pragma omp critical(focus_attention_dq)
                   add();
                 }
               });
}

template <class T>
void attention_probs(const AttnProblem<T>& p, const T* lse, int64_t b, int64_t h, int64_t i0,
                     int64_t rows, T* out, int64_t ldo) {
  check_problem(p);
  FOCUS_CHECK(b >= 0 && b < p.B && h >= 0 && h < p.H && i0 >= 0 && rows >= 0 &&
                  i0 + rows <= p.Lq && ldo >= p.Lk,
              ValueError,
              "attention_probs: batch {} head {} rows [{}, {}) ld {} outside B {} H {} Lq {} Lk {}",
              b, h, i0, i0 + rows, ldo, p.B, p.H, p.Lq, p.Lk);
  const attn::TaskSet<T> ts = task_set<T>();
  const int64_t blocks = (rows + attn::kBQ - 1) / attn::kBQ;
  run_tasks<T>(blocks, attn::forward_workspace(p.D, p.Dv, 1), 2.0 * rows * p.Lk * p.D,
               [&](int64_t t, T* ws) {
                 const int64_t r0 = t * attn::kBQ, m = std::min(attn::kBQ, rows - r0);
                 ts.probs(p, lse, b, h, i0 + r0, m, out + r0 * ldo, ldo, ws);
               });
}

#define FOCUS_ATTENTION_INSTANTIATE(T)                                                         \
  template void attention_forward<T>(const AttnProblem<T>&, T*, AttnLayout, T*);               \
  template bool attention_runs_short<T>(const AttnProblem<T>&);                                 \
  template void attention_backward<T>(const AttnProblem<T>&, const T*, AttnLayout, const T*,   \
                                      AttnLayout, const T*, T*, AttnLayout, T*, AttnLayout, T*, \
                                      AttnLayout, T*);                                          \
  template void attention_probs<T>(const AttnProblem<T>&, const T*, int64_t, int64_t, int64_t, \
                                   int64_t, T*, int64_t);
FOCUS_ATTENTION_INSTANTIATE(float)
FOCUS_ATTENTION_INSTANTIATE(double)
#undef FOCUS_ATTENTION_INSTANTIATE

}  // namespace focus
