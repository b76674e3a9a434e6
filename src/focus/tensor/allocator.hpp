// Host memory for tensor storage: 64-byte aligned blocks, with a cache of freed blocks.
//
// Why: a training step makes and frees the same few hundred temporaries every step. glibc serves
// blocks of 128 KiB and more with fresh mmap()s, so each step pays a page fault and a page
// zeroing per 4 KiB of activations (8% of a g2p training step on this CPU, and the two threads
// of a data-parallel step serialise on the page-table lock). Freed blocks of >= kCacheMinBytes
// are kept here, by size class, and handed back to the next request of the same class.
//
// Size classes: a request is rounded up to m * 2^k with 8 <= m < 16 (at most 12.5% more memory).
// The cache holds at most host_cache_limit() bytes; a free that would pass it first returns every
// cached block to the system (the working set changed, e.g. a new batch shape), then caches.
// Default limit 64 MiB; FOCUS_HOST_CACHE_MB=<n> sets it at start-up, 0 turns the cache off (so
// every block goes straight to aligned_alloc/free); sanitizer builds default to 0 so that
// AddressSanitizer still sees every use after free. Thread-safe (one mutex; calls are coarse).
#pragma once
#include <cstddef>
#include <cstdint>

namespace focus {

inline constexpr size_t kCacheMinBytes = size_t(4) << 10;  // smaller blocks: glibc's own bins

// A block of at least `bytes` (0 allowed), 64-byte aligned, uninitialised. Throws Error when out
// of memory (after returning the cache to the system and retrying once).
void* host_alloc(size_t bytes);
// Gives back a block from host_alloc; `bytes` must be the size it was asked for. Null is a no-op.
void host_free(void* ptr, size_t bytes);

// The size host_alloc really reserves for a request (its class; 64-byte multiple).
size_t host_block_size(size_t bytes);

void set_host_cache_limit(size_t bytes);  // 0 disables the cache (and empties it)
size_t host_cache_limit();
void empty_host_cache();  // returns every cached block to the system

struct HostAllocStats {
  uint64_t allocs = 0;      // host_alloc calls of >= kCacheMinBytes
  uint64_t hits = 0;        // ... served from the cache
  uint64_t flushes = 0;     // times the limit made the cache empty itself
  size_t cached_bytes = 0;  // now held in the cache
};
HostAllocStats host_alloc_stats();

}  // namespace focus
