// Host block cache: size classes, reuse, the limit and the footprint bound (LRU eviction), stats,
// the off switch, threads.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "focus/tensor/allocator.hpp"
#include "focus/tensor/tensor.hpp"

using namespace focus;

namespace {

// The footprint bound for a high-water mark (allocator.hpp: 1.25x).
size_t bound_of(size_t peak) { return peak + peak / 100 * 25; }

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

TEST(HostAlloc, LimitEvictsTheLeastRecentlyCachedBlocks) {
  CacheLimitGuard guard;
  const size_t block = size_t(1) << 20;
  set_host_cache_limit(3 * block);
  empty_host_cache();
  std::vector<void*> blocks;
  for (int i = 0; i < 5; ++i) blocks.push_back(host_alloc(block));
  const uint64_t evictions = host_alloc_stats().evictions;
  for (void* p : blocks) {
    host_free(p, block);
    EXPECT_LE(host_alloc_stats().cached_bytes, 3 * block);
  }
  // The 4th and 5th frees passed the limit: each returned the oldest cached block (the 1st, the
  // 2nd); the 3rd, 4th and 5th stay, and come back newest first.
  EXPECT_EQ(host_alloc_stats().evictions, evictions + 2);
  EXPECT_EQ(host_alloc_stats().cached_bytes, 3 * block);
  const uint64_t hits = host_alloc_stats().hits;
  void* a = host_alloc(block);
  void* b = host_alloc(block);
  EXPECT_EQ(a, blocks[4]);
  EXPECT_EQ(b, blocks[3]);
  EXPECT_EQ(host_alloc_stats().hits, hits + 2);
  host_free(b, block);
  host_free(a, block);  // now a is the newest
  void* big = host_alloc(4 * block);  // larger than the limit: never cached
  host_free(big, 4 * block);
  EXPECT_EQ(host_alloc_stats().cached_bytes, 3 * block);
  set_host_cache_limit(block);  // lowering the limit below the contents evicts the oldest
  EXPECT_EQ(host_alloc_stats().cached_bytes, block);
  void* c = host_alloc(block);
  EXPECT_EQ(c, a);
  host_free(c, block);
}

TEST(HostAlloc, StatsCountBlocksInUseAndTheirPeak) {
  CacheLimitGuard guard;
  set_host_cache_limit(size_t(64) << 20);
  empty_host_cache();
  const HostAllocStats s0 = host_alloc_stats();
  void* a = host_alloc(100000);
  void* b = host_alloc(300000);
  const HostAllocStats s1 = host_alloc_stats();
  EXPECT_EQ(s1.in_use_bytes, s0.in_use_bytes + host_block_size(100000) + host_block_size(300000));
  EXPECT_GE(s1.peak_in_use_bytes, s1.in_use_bytes);
  EXPECT_EQ(s1.allocs, s0.allocs + 2);
  host_free(a, 100000);
  const HostAllocStats s2 = host_alloc_stats();
  EXPECT_EQ(s2.in_use_bytes, s0.in_use_bytes + host_block_size(300000));
  EXPECT_EQ(s2.cached_bytes, host_block_size(100000));
  EXPECT_EQ(s2.peak_in_use_bytes, s1.peak_in_use_bytes);  // a free never lowers the peak
  host_free(b, 300000);
  EXPECT_EQ(host_alloc_stats().in_use_bytes, s0.in_use_bytes);
}

// The footprint bound: blocks in use plus cached blocks never pass 1.25x the high-water mark of
// blocks in use (or 64 MiB). Batches whose shapes change (as g2p's length buckets do) push the previous
// shapes' blocks out instead of piling up, however high the limit.
TEST(HostAlloc, FootprintStaysUnderThePeakAsShapesChange) {
  CacheLimitGuard guard;
  set_host_cache_limit(size_t(4) << 30);
  empty_host_cache();
  const size_t floor = size_t(64) << 20;
  auto footprint_ok = [&] {
    const HostAllocStats s = host_alloc_stats();
    return s.in_use_bytes + s.cached_bytes <= std::max(bound_of(s.peak_in_use_bytes), floor);
  };
  // A "step": 40 blocks whose sizes depend on the batch's shape, all freed at the end (no page is
  // touched: the bound is on what the cache holds, not on what the kernel maps).
  const size_t peak_before = std::max(bound_of(host_alloc_stats().peak_in_use_bytes), floor);
  size_t max_step = 0;
  for (int step = 0; step < 60; ++step) {
    const size_t unit = (size_t(1) << 20) + size_t(step % 7) * (size_t(3) << 17);
    std::vector<std::pair<void*, size_t>> held;
    size_t step_bytes = 0;
    for (int i = 0; i < 40; ++i) {
      const size_t n = unit * size_t(1 + i % 4);
      held.emplace_back(host_alloc(n), n);
      step_bytes += host_block_size(n);
      ASSERT_TRUE(footprint_ok()) << "step " << step << " block " << i;
    }
    max_step = std::max(max_step, step_bytes);
    for (auto it = held.rbegin(); it != held.rend(); ++it) {
      host_free(it->first, it->second);
      ASSERT_TRUE(footprint_ok()) << "step " << step;
    }
  }
  const HostAllocStats s = host_alloc_stats();
  // What stays cached is at most 1.25 steps' worth (or the earlier bound), not 7 shapes' worth.
  EXPECT_LE(s.cached_bytes, std::max({bound_of(max_step), peak_before}));
  EXPECT_GT(s.evictions, 0u);
  EXPECT_GT(s.hits, 0u);
}

// At the footprint bound, a request of a class the cache lacks evicts the oldest cached blocks
// first; below it nothing is evicted; a request of a cached class never evicts.
TEST(HostAlloc, MissAtTheBoundEvictsTheOldestBlocks) {
  CacheLimitGuard guard;
  set_host_cache_limit(size_t(4) << 30);
  empty_host_cache();
  const size_t block = size_t(1) << 20;
  const size_t other = host_block_size(block + block / 2);  // 1.5 MiB: a 1 MiB block cannot serve it
  const HostAllocStats s0 = host_alloc_stats();
  // Reach a new peak of blocks in use (above the 64 MiB floor), then cache all of them.
  std::vector<void*> blocks;
  while (host_alloc_stats().in_use_bytes < std::max(s0.peak_in_use_bytes, size_t(64) << 20) + 8 * block)
    blocks.push_back(host_alloc(block));
  const size_t peak = host_alloc_stats().peak_in_use_bytes;
  for (void* p : blocks) host_free(p, block);
  const HostAllocStats s1 = host_alloc_stats();
  EXPECT_EQ(s1.in_use_bytes + s1.cached_bytes, peak);
  // Same class: a hit, nothing evicted.
  void* same = host_alloc(block);
  EXPECT_EQ(same, blocks.back());
  EXPECT_EQ(host_alloc_stats().evictions, s1.evictions);
  // Another class: misses; each evicts exactly when the footprint would pass 1.25x the peak.
  std::vector<void*> others;
  int evicting = 0;
  while (evicting < 3) {
    const HostAllocStats before = host_alloc_stats();
    const bool over = before.in_use_bytes + before.cached_bytes + other > bound_of(peak);
    others.push_back(host_alloc(other));
    const HostAllocStats after = host_alloc_stats();
    ASSERT_EQ(after.hits, before.hits);
    if (over) {
      ++evicting;
      EXPECT_GT(after.evictions, before.evictions);
    } else {
      EXPECT_EQ(after.evictions, before.evictions);
    }
    EXPECT_LE(after.in_use_bytes + after.cached_bytes, bound_of(after.peak_in_use_bytes));
    ASSERT_LT(others.size(), 1000u);
  }
  // The oldest 1 MiB blocks went first: the most recently cached one is still there.
  void* again = host_alloc(block);
  EXPECT_EQ(again, blocks[blocks.size() - 2]);
  host_free(again, block);
  for (void* p : others) host_free(p, other);
  host_free(same, block);
}

// A request whose class has no cached block takes the nearest cached class up to kCacheReach above
// it, when the caller can free by block size (Storage does); the block goes back to its own class.
TEST(HostAlloc, LargerCachedClassServesARequestThatReportsTheBlockSize) {
  CacheLimitGuard guard;
  set_host_cache_limit(size_t(64) << 20);
  empty_host_cache();
  const size_t request = 1000000;
  const size_t larger = host_block_size(request) * 3 / 2;  // a few classes up, under 2x
  ASSERT_GT(host_block_size(larger), host_block_size(request));
  void* big = host_alloc(larger);
  host_free(big, larger);
  // Without block_bytes the caller frees by the request: only its own class may serve it.
  void* own = host_alloc(request);
  EXPECT_NE(own, big);
  host_free(own, request);
  empty_host_cache();
  big = host_alloc(larger);
  host_free(big, larger);
  size_t got = 0;
  void* p = host_alloc(request, &got);
  EXPECT_EQ(p, big);
  EXPECT_EQ(got, host_block_size(larger));
  host_free(p, got);  // back to the larger class: the next request of that class gets it
  void* q = host_alloc(larger);
  EXPECT_EQ(q, big);
  host_free(q, larger);
  // Beyond the reach (2x and more): a fresh block.
  empty_host_cache();
  void* huge = host_alloc(4 * request);
  host_free(huge, 4 * request);
  size_t got2 = 0;
  void* r = host_alloc(request, &got2);
  EXPECT_EQ(got2, host_block_size(request));
  host_free(r, got2);
  EXPECT_EQ(host_alloc_stats().cached_bytes, host_block_size(4 * request) + host_block_size(request));
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
  set_host_cache_limit(size_t(1) << 20);  // small: the eviction path runs under contention too
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
