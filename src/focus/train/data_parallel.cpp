// Micro-batches run at once, one per thread (see data_parallel.hpp).
#include "focus/train/data_parallel.hpp"

#include <omp.h>

#include <exception>

#include "focus/autograd/grad_sink.hpp"
#include "focus/tensor/error.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {

std::vector<double> run_micro_batches(int64_t n, int workers, uint64_t salt,
                                      const std::function<double(int64_t)>& fn, int64_t first) {
  FOCUS_CHECK(n >= 0 && workers >= 1, ValueError,
              "run_micro_batches: n = {} and workers = {} (need n >= 0, workers >= 1)", n, workers);
  std::vector<double> losses(static_cast<size_t>(n), 0.0);
  std::vector<LeafGradSink> sinks(static_cast<size_t>(n));
  std::vector<std::exception_ptr> errors(static_cast<size_t>(n));
  auto run_one = [&](int64_t i) {
    try {
      LeafGradSinkScope sink(sinks[size_t(i)]);
      CounterStreamScope stream(salt * 0x9E3779B97F4A7C15ull + uint64_t(first + i) + 1);
      losses[size_t(i)] = fn(i);
    } catch (...) {
      errors[size_t(i)] = std::current_exception();
    }
  };
  const int w = int(std::min<int64_t>(workers, std::max<int64_t>(n, 1)));
  if (w <= 1 || omp_in_parallel()) {
    for (int64_t i = 0; i < n; ++i) run_one(i);
  } else {
    // One level of parallelism: the ops inside each worker must run single-threaded.
    if (omp_get_max_active_levels() > 1) omp_set_max_active_levels(1);
#pragma omp parallel num_threads(w)
    {
      const int t = omp_get_thread_num(), team = omp_get_num_threads();
      for (int64_t i = t; i < n; i += team) run_one(i);
    }
  }
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  for (auto& s : sinks) s.flush();
  return losses;
}

}  // namespace focus
