// Host block cache (see allocator.hpp): per-class free lists in one LRU order, under one mutex.
#include "focus/tensor/allocator.hpp"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <list>
#include <mutex>

#include "focus/tensor/error.hpp"

namespace focus {

namespace {

constexpr int kSub = 8;                    // classes per power of two
constexpr int kClasses = 64 * kSub;        // covers every size_t
constexpr size_t kAlign = 64;
constexpr int kReach = kCacheReach;

// GCC defines __SANITIZE_ADDRESS__ under -fsanitize=address; clang (the fuzz build) only answers
// __has_feature(address_sanitizer).
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FOCUS_ADDRESS_SANITIZER 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(FOCUS_ADDRESS_SANITIZER)
constexpr size_t kDefaultLimit = 0;
#else
constexpr size_t kDefaultLimit = size_t(1) << 30;
#endif

size_t limit_from_env() {
  const char* e = std::getenv("FOCUS_HOST_CACHE_MB");
  if (!e || !*e) return kDefaultLimit;
  char* end = nullptr;
  const unsigned long long mb = std::strtoull(e, &end, 10);
  if (end == e || *end != '\0') return kDefaultLimit;  // not a number: keep the default
  return static_cast<size_t>(mb) << 20;
}

// Class of a request of b >= kCacheMinBytes: size = m << k, 8 <= m < 16 (a multiple of 64).
struct Class {
  int index;
  size_t size;
};
Class class_of(size_t b) {
  const int bits = std::bit_width(b - 1);  // 2^(bits-1) < b <= 2^bits
  int k = bits - 4;                        // so that 8 < b / 2^k <= 16
  size_t m = (b + (size_t(1) << k) - 1) >> k;
  if (m == 16) m = 8, ++k;
  return {k * kSub + static_cast<int>(m - 8), m << k};
}

constexpr size_t kFootprintFloor = size_t(64) << 20;
constexpr size_t kFootprintSlackPercent = 25;

void* system_alloc(size_t size) { return std::aligned_alloc(kAlign, size); }

struct Cache {
  // A cached block; `lru` holds them oldest first, and each class's deque holds iterators to its
  // own blocks in the same order (so a class's oldest block is the front of both).
  struct Node {
    void* ptr;
    int cls;
  };
  std::mutex mu;
  std::list<Node> lru;
  std::deque<std::list<Node>::iterator> lists[kClasses];
  size_t cached = 0;
  size_t limit = limit_from_env();
  HostAllocStats stats;

  static size_t class_size(int cls) { return size_t(8 + cls % kSub) << (cls / kSub); }

  // Caller holds mu. Returns the least recently cached block to the system.
  void pop_oldest_locked() {
    const Node n = lru.front();
    lists[n.cls].pop_front();
    lru.pop_front();
    cached -= class_size(n.cls);
    std::free(n.ptr);
  }
  void evict_oldest_locked() {
    pop_oldest_locked();
    ++stats.evictions;
  }
  void flush_locked() {
    while (!lru.empty()) pop_oldest_locked();
  }
  // Evicts until `incoming` more bytes in use fit under the footprint bound (see the header).
  void make_room_for_locked(size_t incoming) {
    const size_t in_use = stats.in_use_bytes + incoming;
    const size_t peak = stats.peak_in_use_bytes;
    const size_t bound =
        std::max({peak + peak / 100 * kFootprintSlackPercent, in_use, kFootprintFloor});
    while (!lru.empty() && in_use + cached > bound) evict_oldest_locked();
  }
  void note_in_use_locked(size_t size) {
    stats.in_use_bytes += size;
    stats.peak_in_use_bytes = std::max(stats.peak_in_use_bytes, stats.in_use_bytes);
  }
};

// Never destroyed: tensors in static storage may be freed after main returns.
Cache& cache() {
  static Cache* c = new Cache;
  return *c;
}

}  // namespace

size_t host_block_size(size_t bytes) {
  if (bytes < kCacheMinBytes) return (bytes == 0 ? kAlign : (bytes + kAlign - 1) / kAlign * kAlign);
  return class_of(bytes).size;
}

void* host_alloc(size_t bytes, size_t* block_bytes) {
  if (bytes < kCacheMinBytes) {
    void* p = system_alloc(host_block_size(bytes));
    if (!p) throw Error(fmt::format("out of memory allocating {} bytes", bytes));
    if (block_bytes) *block_bytes = bytes;
    return p;
  }
  const Class c = class_of(bytes);
  Cache& ca = cache();
  {
    std::lock_guard<std::mutex> lock(ca.mu);
    ++ca.stats.allocs;
    // The nearest class with a cached block, from the request's own up to kReach above it (only
    // its own when the caller cannot free by the block's size); of that class the most recently
    // cached block (the likeliest still in the CPU's caches).
    const int last = block_bytes ? std::min(c.index + kReach, kClasses - 1) : c.index;
    for (int j = c.index; j <= last; ++j) {
      auto& l = ca.lists[j];
      if (l.empty()) continue;
      const auto it = l.back();
      void* p = it->ptr;
      l.pop_back();
      ca.lru.erase(it);
      const size_t size = Cache::class_size(j);
      ca.cached -= size;
      ca.note_in_use_locked(size);
      ++ca.stats.hits;
      if (block_bytes) *block_bytes = size;
      return p;
    }
    ca.make_room_for_locked(c.size);
  }
  void* p = system_alloc(c.size);
  if (!p) {
    empty_host_cache();
    p = system_alloc(c.size);
  }
  if (!p) throw Error(fmt::format("out of memory allocating {} bytes", bytes));
  std::lock_guard<std::mutex> lock(ca.mu);
  ca.note_in_use_locked(c.size);
  if (block_bytes) *block_bytes = c.size;
  return p;
}

void host_free(void* ptr, size_t bytes) {
  if (!ptr) return;
  if (bytes < kCacheMinBytes) return std::free(ptr);
  const Class c = class_of(bytes);
  Cache& ca = cache();
  std::lock_guard<std::mutex> lock(ca.mu);
  ca.stats.in_use_bytes -= c.size;
  if (c.size > ca.limit) return std::free(ptr);
  while (ca.cached + c.size > ca.limit) ca.evict_oldest_locked();
  ca.lists[c.index].push_back(ca.lru.insert(ca.lru.end(), Cache::Node{ptr, c.index}));
  ca.cached += c.size;
}

void set_host_cache_limit(size_t bytes) {
  Cache& ca = cache();
  std::lock_guard<std::mutex> lock(ca.mu);
  ca.limit = bytes;
  while (ca.cached > bytes) ca.evict_oldest_locked();
}

size_t host_cache_limit() {
  Cache& ca = cache();
  std::lock_guard<std::mutex> lock(ca.mu);
  return ca.limit;
}

void empty_host_cache() {
  Cache& ca = cache();
  std::lock_guard<std::mutex> lock(ca.mu);
  ca.flush_locked();
}

HostAllocStats host_alloc_stats() {
  Cache& ca = cache();
  std::lock_guard<std::mutex> lock(ca.mu);
  HostAllocStats s = ca.stats;
  s.cached_bytes = ca.cached;
  return s;
}

}  // namespace focus
