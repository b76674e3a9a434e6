// Counter-based random numbers (Philox-4x32-10). A stream is (seed, offset): element i of a fill
// depends only on (seed, offset + i), so results do not depend on the thread count, and dropout
// can regenerate its mask in the backward instead of storing it.
#pragma once
#include <array>
#include <cstdint>

namespace focus {

// One Philox-4x32-10 block: four 32-bit random words for a (key, counter) pair.
std::array<uint32_t, 4> philox4x32(uint64_t key, uint64_t counter_hi, uint64_t counter_lo);

inline float uint_to_unit_float(uint32_t x) {  // [0, 1) with 24 random bits
  return static_cast<float>(x >> 8) * (1.0f / 16777216.0f);
}

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) { seed_ = seed; offset_ = offset; }
  // Reserves n counters and returns the first: callers fill with (seed(), returned + i).
  uint64_t advance(uint64_t n) { uint64_t o = offset_; offset_ += n; return o; }

  double uniform();             // [0, 1)
  double normal();              // N(0, 1)
  uint64_t next_u64();
  int64_t randint(int64_t n);   // [0, n)
  void fill_uniform(float* out, int64_t n, float lo, float hi);
  void fill_uniform(double* out, int64_t n, double lo, double hi);
  void fill_normal(float* out, int64_t n, float mean, float std);
  void fill_normal(double* out, int64_t n, double mean, double std);

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

// Counters for random masks drawn during a forward (dropout). Normally reserve_counters() is
// {rng.seed(), rng.advance(n)}. While a CounterStreamScope is alive on this thread it draws from
// the scope instead: the seed is mixed from rng.seed() and the scope's salt, the offset comes from
// the scope's own counter, and the shared Rng is left untouched. Threads that run forwards of
// the same modules at once (data-parallel micro-batches) then never race on a module's Rng, and
// each thread's masks depend only on its salt, not on timing.
struct CounterDraw {
  uint64_t seed, offset;
};
CounterDraw reserve_counters(Rng& rng, uint64_t n);

class CounterStreamScope {
 public:
  explicit CounterStreamScope(uint64_t salt);
  ~CounterStreamScope();
  CounterStreamScope(const CounterStreamScope&) = delete;
  CounterStreamScope& operator=(const CounterStreamScope&) = delete;

 private:
  bool prev_active_;
  uint64_t prev_salt_, prev_offset_;
};

}  // namespace focus
