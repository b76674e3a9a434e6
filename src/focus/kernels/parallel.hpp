// Static splitting of a range over the thread policy's threads (kernels/cpu.hpp), for kernels
// whose work divides into contiguous runs of whole units (rows of B, weight panels).
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "focus/kernels/cpu.hpp"

namespace focus {

// Runs f(lo, hi) over [0, n) cut into at most num_threads() contiguous ranges whose lengths are
// multiples of `grain` (the last one may be shorter), one per thread; on the caller alone when
// !parallel, inside a parallel region, or when one thread is all there is.
template <class F>
void split_over_threads(int64_t n, int64_t grain, bool parallel, F f) {
  const int64_t units = (n + grain - 1) / grain;
  const int64_t threads = parallel && !omp_in_parallel() ? std::min<int64_t>(num_threads(), units) : 1;
  if (threads <= 1) return f(int64_t(0), n);
  const int64_t per = (units + threads - 1) / threads * grain;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t t = 0; t < threads; ++t) {
    const int64_t lo = std::min(n, t * per), hi = std::min(n, lo + per);
    if (lo < hi) f(lo, hi);
  }
}

}  // namespace focus
