// Host memory for tensor storage: 64-byte aligned blocks, with a cache of freed blocks.
//
// Why: a training step makes and frees the same few hundred temporaries every step. glibc serves
// blocks of 128 KiB and more with fresh mmap()s (or trims them off its heap when freed), so each
// step would pay a page fault and a page zeroing per 4 KiB of activations (8% of a g2p training
// step on this CPU, 15% of a data-parallel rank's, and the two threads of a data-parallel step
// serialise on the page-table lock). Freed blocks of >= kCacheMinBytes are kept here, by size
// class, and handed back to the next request of the same class.
//
// Size classes: a request is rounded up to m * 2^k with 8 <= m < 16 (at most 12.5% more memory).
// Bounds, both always kept:
//  - the limit: the cache holds at most host_cache_limit() bytes (default 1 GiB;
//    FOCUS_HOST_CACHE_MB=<n> sets it at start-up, 0 turns the cache off, so every block goes
//    straight to aligned_alloc/free; sanitizer builds default to 0 so that AddressSanitizer still
//    sees every use after free);
//  - the footprint: blocks in use plus cached blocks never pass 1.25x the process's own
//    high-water mark of blocks in use (or 64 MiB, whichever is larger): the cache never makes the
//    process hold much more than it once needed at one time. A request the cache cannot serve
//    first returns cached blocks until the new block fits under that mark (so a new batch shape
//    pushes out the old shapes' blocks instead of adding to them). The 25% lets batches whose
//    shapes vary (g2p's length buckets) keep the blocks of a few shapes: on 3 epochs of g2p training
//    (1 thread) misses fell from 19% of requests (no slack, reach 4 classes) to 4% (25%, reach 8).
// When either bound needs room, the least recently cached blocks go back to the system first (a
// step frees its activations in about the reverse order it made them, so the blocks kept are the
// ones the next forward asks for first). Thread-safe (one mutex; calls are coarse).
#pragma once
#include <cstddef>
#include <cstdint>

namespace focus {

inline constexpr size_t kCacheMinBytes = size_t(4) << 10;  // smaller blocks: glibc's own bins
inline constexpr int kCacheReach = 8;  // classes above a request's that may serve it (see host_alloc)

// A block of at least `bytes` (0 allowed), 64-byte aligned, uninitialised. Throws Error when out
// of memory (after returning the cache to the system and retrying once). With `block_bytes`, the
// block's real size is stored there: a cached block of a class up to kCacheReach classes above the
// request's (under 2x: one power of two) serves the request when its own class has none, so
// batches whose shapes vary still reuse memory instead of faulting in fresh pages.
void* host_alloc(size_t bytes, size_t* block_bytes);
// Without `block_bytes`: only blocks of the request's own class (host_block_size(bytes)).
inline void* host_alloc(size_t bytes) { return host_alloc(bytes, nullptr); }
// Gives back a block from host_alloc; `bytes` must be the size it was asked for, or the block size
// host_alloc stored in `block_bytes` (which it must be when that block came from a larger class).
// Null is a no-op.
void host_free(void* ptr, size_t bytes);

// The size host_alloc really reserves for a request (its class; 64-byte multiple).
size_t host_block_size(size_t bytes);

void set_host_cache_limit(size_t bytes);  // 0 disables the cache (and empties it)
size_t host_cache_limit();
void empty_host_cache();  // returns every cached block to the system

// Counters since start-up (bytes are class sizes, as host_block_size gives them).
struct HostAllocStats {
  uint64_t allocs = 0;        // host_alloc calls of >= kCacheMinBytes
  uint64_t hits = 0;          // ... served from the cache
  uint64_t evictions = 0;     // cached blocks returned to the system to honour a bound
  size_t cached_bytes = 0;    // now held in the cache
  size_t in_use_bytes = 0;    // blocks of >= kCacheMinBytes handed out and not yet freed
  size_t peak_in_use_bytes = 0;  // the high-water mark of in_use_bytes
};
HostAllocStats host_alloc_stats();

}  // namespace focus
