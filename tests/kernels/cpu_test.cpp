// The thread policy's scoped override (kernels/cpu.hpp ScopedThreads): it changes num_threads()
// and OpenMP's count on its own thread only, nests, restores both at exit, and refuses n < 1.
#include <gtest/gtest.h>
#include <omp.h>

#include <thread>

#include "focus/kernels/cpu.hpp"
#include "focus/tensor/error.hpp"

namespace focus {
namespace {

TEST(ScopedThreads, OverridesThisThreadOnlyAndRestores) {
  const int saved = num_threads();
  set_num_threads(2);
  {
    ScopedThreads one(1);
    EXPECT_EQ(num_threads(), 1);
    EXPECT_EQ(omp_get_max_threads(), 1);
    int regions = 0;
#pragma omp parallel num_threads(num_threads())
    {
#pragma omp atomic
      ++regions;
    }
    EXPECT_EQ(regions, 1);
    {
      ScopedThreads three(3);
      EXPECT_EQ(num_threads(), 3);
    }
    EXPECT_EQ(num_threads(), 1);
    int other = 0;
    std::thread t([&] { other = num_threads(); });  // another thread keeps the policy
    t.join();
    EXPECT_EQ(other, 2);
  }
  EXPECT_EQ(num_threads(), 2);
  EXPECT_EQ(omp_get_max_threads(), 2);
  EXPECT_THROW(ScopedThreads(0), ValueError);
  set_num_threads(saved);
}

}  // namespace
}  // namespace focus
