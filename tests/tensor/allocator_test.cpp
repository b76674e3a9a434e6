// Host block cache: size classes, reuse, the limit and its flush, the off switch, threads.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "focus/tensor/allocator.hpp"
#include "focus/tensor/tensor.hpp"

using namespace focus;

namespace {

// Restores the process's limit (and an empty cache) after each test.
struct CacheLimitGuard {
  size_t saved = host_cache_limit();
  ~CacheLimitGuard() {
    empty_host_cache();
    set_host_cache_limit(saved);
  }
};

}  // namespace

TEST(HostAlloc, ClassesCoverTheRequestWithin12Percent) {
  size_t prev = 0;
  for (size_t b = kCacheMinBytes; b < (size_t(1) << 26); b += b / 7 + 13) {
    const size_t s = host_block_size(b);
    EXPECT_GE(s, b);
    EXPECT_LE(s, b + b / 8) << b;
    EXPECT_EQ(s % 64, 0u) << b;
    EXPECT_GE(s, prev);
    prev = s;
  }
  EXPECT_EQ(host_block_size(size_t(1) << 20), size_t(1) << 20);  // powers of two are exact
  EXPECT_EQ(host_block_size((size_t(1) << 20) + 1), (size_t(1) << 20) + (size_t(1) << 17));
  EXPECT_EQ(host_block_size(0), 64u);
  EXPECT_EQ(host_block_size(65), 128u);
}

TEST(HostAlloc, FreedBlockIsReusedForTheSameClass) {
  CacheLimitGuard guard;
  set_host_cache_limit(size_t(64) << 20);
  empty_host_cache();
  void* a = host_alloc(300000);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 64, 0u);
  std::memset(a, 1, 300000);
  host_free(a, 300000);
  const HostAllocStats before = host_alloc_stats();
  EXPECT_EQ(before.cached_bytes, host_block_size(300000));
  void* b = host_alloc(host_block_size(300000) - 5);  // another request of the same class
  const HostAllocStats after = host_alloc_stats();
  EXPECT_EQ(b, a);
  EXPECT_EQ(after.hits, before.hits + 1);
  EXPECT_EQ(after.cached_bytes, 0u);
  void* c = host_alloc(2 * 300000);  // a different class: a fresh block
  EXPECT_NE(c, a);
  host_free(b, host_block_size(300000) - 5);
  host_free(c, 2 * 300000);
}

TEST(HostAlloc, LimitBoundsTheCacheAndFlushes) {
  CacheLimitGuard guard;
  const size_t block = size_t(1) << 20;
  set_host_cache_limit(3 * block);
  empty_host_cache();
  std::vector<void*> blocks;
  for (int i = 0; i < 5; ++i) blocks.push_back(host_alloc(block));
  const uint64_t flushes = host_alloc_stats().flushes;
  for (void* p : blocks) {
    host_free(p, block);
    EXPECT_LE(host_alloc_stats().cached_bytes, 3 * block);
  }
  // The 4th free passed the limit: the cache emptied itself once and kept the 4th and 5th.
  EXPECT_EQ(host_alloc_stats().flushes, flushes + 1);
  EXPECT_EQ(host_alloc_stats().cached_bytes, 2 * block);
  void* big = host_alloc(4 * block);  // larger than the limit: never cached
  host_free(big, 4 * block);
  EXPECT_EQ(host_alloc_stats().cached_bytes, 2 * block);
  set_host_cache_limit(block);  // lowering the limit below the contents empties the cache
  EXPECT_EQ(host_alloc_stats().cached_bytes, 0u);
}

TEST(HostAlloc, ZeroLimitTurnsTheCacheOff) {
  CacheLimitGuard guard;
  set_host_cache_limit(0);
  const HostAllocStats before = host_alloc_stats();
  for (int i = 0; i < 3; ++i) host_free(host_alloc(100000), 100000);
  const HostAllocStats after = host_alloc_stats();
  EXPECT_EQ(after.cached_bytes, 0u);
  EXPECT_EQ(after.hits, before.hits);
  EXPECT_EQ(after.allocs, before.allocs + 3);
}

TEST(HostAlloc, SmallBlocksBypassTheCache) {
  CacheLimitGuard guard;
  set_host_cache_limit(size_t(64) << 20);
  const HostAllocStats before = host_alloc_stats();
  void* p = host_alloc(kCacheMinBytes - 1);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
  host_free(p, kCacheMinBytes - 1);
  host_free(nullptr, 123);
  EXPECT_EQ(host_alloc_stats().allocs, before.allocs);
  EXPECT_EQ(host_alloc_stats().cached_bytes, before.cached_bytes);
}

TEST(HostAlloc, TensorsReuseCachedStorageAndKeepTheirValues) {
  CacheLimitGuard guard;
  set_host_cache_limit(size_t(64) << 20);
  empty_host_cache();
  const void* first = nullptr;
  {
    Tensor t = Tensor::full({256, 256}, 3.0);
    first = t.raw_data();
  }
  Tensor u = Tensor::zeros({256, 256});  // same class: the same block, zeroed by the factory
  EXPECT_EQ(u.raw_data(), first);
  for (float v : u.to_vector<float>()) ASSERT_EQ(v, 0.f);
}

TEST(HostAlloc, ThreadsNeverShareABlock) {
  CacheLimitGuard guard;
  set_host_cache_limit(size_t(1) << 20);  // small: the flush path runs under contention too
  int bad = 0;
#pragma omp parallel num_threads(2) reduction(+ : bad)
  {
    const int t = omp_get_thread_num();
    for (int i = 0; i < 500; ++i) {
      unsigned char* held[4];
      size_t sizes[4];
      for (int j = 0; j < 4; ++j) {
        sizes[j] = 4096 + static_cast<size_t>((i * 7919 + j * 104729 + t * 15485863) % 60000);
        held[j] = static_cast<unsigned char*>(host_alloc(sizes[j]));
        std::memset(held[j], 16 * t + j, sizes[j]);
      }
      for (int j = 0; j < 4; ++j) {
        for (size_t e = 0; e < sizes[j]; e += 61)
          if (held[j][e] != 16 * t + j) ++bad;
        host_free(held[j], sizes[j]);
      }
    }
  }
  EXPECT_EQ(bad, 0);
  EXPECT_LE(host_alloc_stats().cached_bytes, size_t(1) << 20);
}
