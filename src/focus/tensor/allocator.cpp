// Host block cache (see allocator.hpp): per-class free lists under one mutex.
#include "focus/tensor/allocator.hpp"

#include <bit>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "focus/tensor/error.hpp"

namespace focus {

namespace {

constexpr int kSub = 8;                    // classes per power of two
constexpr int kClasses = 64 * kSub;        // covers every size_t
constexpr size_t kAlign = 64;

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
constexpr size_t kDefaultLimit = size_t(64) << 20;
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

void* system_alloc(size_t size) { return std::aligned_alloc(kAlign, size); }

struct Cache {
  std::mutex mu;
  std::vector<void*> lists[kClasses];
  size_t cached = 0;
  size_t limit = limit_from_env();
  HostAllocStats stats;

  // Caller holds mu.
  void flush_locked() {
    for (auto& l : lists) {
      for (void* p : l) std::free(p);
      l.clear();
    }
    cached = 0;
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

void* host_alloc(size_t bytes) {
  if (bytes < kCacheMinBytes) {
    void* p = system_alloc(host_block_size(bytes));
    if (!p) throw Error(fmt::format("out of memory allocating {} bytes", bytes));
    return p;
  }
  const Class c = class_of(bytes);
  Cache& ca = cache();
  {
    std::lock_guard<std::mutex> lock(ca.mu);
    ++ca.stats.allocs;
    auto& l = ca.lists[c.index];
    if (!l.empty()) {
      void* p = l.back();
      l.pop_back();
      ca.cached -= c.size;
      ++ca.stats.hits;
      return p;
    }
  }
  void* p = system_alloc(c.size);
  if (!p) {
    empty_host_cache();
    p = system_alloc(c.size);
  }
  if (!p) throw Error(fmt::format("out of memory allocating {} bytes", bytes));
  return p;
}

void host_free(void* ptr, size_t bytes) {
  if (!ptr) return;
  if (bytes < kCacheMinBytes) return std::free(ptr);
  const Class c = class_of(bytes);
  Cache& ca = cache();
  std::lock_guard<std::mutex> lock(ca.mu);
  if (c.size > ca.limit) return std::free(ptr);
  if (ca.cached + c.size > ca.limit) {
    ca.flush_locked();
    ++ca.stats.flushes;
  }
  ca.lists[c.index].push_back(ptr);
  ca.cached += c.size;
}

void set_host_cache_limit(size_t bytes) {
  Cache& ca = cache();
  std::lock_guard<std::mutex> lock(ca.mu);
  ca.limit = bytes;
  if (ca.cached > bytes) ca.flush_locked();
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
