// What the scheduler tests share: random 28x28 images, an image job for a served model, and a
// bounded wait for a job's answer.
#pragma once
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <vector>

#include "focus/serve/scheduler.hpp"
#include "focus/tensor/rng.hpp"

namespace focus::testing {

inline Tensor random_pixels(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(size_t(n * 784));
  for (float& x : v) x = float(rng.uniform());
  return Tensor::from_vector(v, {n, 1, 28, 28});  // (n, C, S, S)
}

inline std::shared_ptr<Job> image_job(const std::shared_ptr<const ServedModel>& m, int64_t n, uint64_t seed,
                                      std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  auto j = std::make_shared<Job>();
  j->model = m;
  j->batch_key = "image";
  j->items = n;
  j->pixels = random_pixels(n, seed);
  j->admitted = SteadyClock::now();
  j->deadline = j->admitted + timeout;
  return j;
}

inline void wait(Job& j) { ASSERT_TRUE(j.wait_until(SteadyClock::now() + std::chrono::seconds(60))); }

}  // namespace focus::testing
