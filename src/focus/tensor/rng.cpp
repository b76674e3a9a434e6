// Philox-4x32-10 (Salmon et al., SC'11) and the Rng built on it.
#include "focus/tensor/rng.hpp"

#include <cmath>

namespace focus {

std::array<uint32_t, 4> philox4x32(uint64_t key, uint64_t counter_hi, uint64_t counter_lo) {
  uint32_t c0 = static_cast<uint32_t>(counter_lo), c1 = static_cast<uint32_t>(counter_lo >> 32);
  uint32_t c2 = static_cast<uint32_t>(counter_hi), c3 = static_cast<uint32_t>(counter_hi >> 32);
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int r = 0; r < 10; ++r) {
    const uint64_t p0 = static_cast<uint64_t>(M0) * c0;
    const uint64_t p1 = static_cast<uint64_t>(M1) * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    c1 = static_cast<uint32_t>(p1);
    c3 = static_cast<uint32_t>(p0);
    c0 = n0;
    c2 = n2;
    k0 += W0;
    k1 += W1;
  }
  return {c0, c1, c2, c3};
}

uint64_t Rng::next_u64() {
  auto r = philox4x32(seed_, 0xF0C5, advance(1));
  return (static_cast<uint64_t>(r[0]) << 32) | r[1];
}

double Rng::uniform() { return static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0); }

double Rng::normal() {
  const double u1 = 1.0 - uniform(), u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

int64_t Rng::randint(int64_t n) { return static_cast<int64_t>(next_u64() % static_cast<uint64_t>(n)); }

template <class T>
static void fill_uniform_impl(uint64_t seed, uint64_t base, T* out, int64_t n, T lo, T hi) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t b = 0; b < (n + 3) / 4; ++b) {
    auto r = philox4x32(seed, 0, base + static_cast<uint64_t>(b));
    for (int j = 0; j < 4 && 4 * b + j < n; ++j)
      out[4 * b + j] = lo + (hi - lo) * static_cast<T>(uint_to_unit_float(r[j]));
  }
}

template <class T>
static void fill_normal_impl(uint64_t seed, uint64_t base, T* out, int64_t n, T mean, T std) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t b = 0; b < (n + 1) / 2; ++b) {
    auto r = philox4x32(seed, 1, base + static_cast<uint64_t>(b));
    const double u1 = 1.0 - ((static_cast<uint64_t>(r[0]) << 21 ^ r[1])) * (1.0 / 9007199254740992.0);
    const double u2 = ((static_cast<uint64_t>(r[2]) << 21) ^ r[3]) * (1.0 / 9007199254740992.0);
    const double rad = std::sqrt(-2.0 * std::log(u1 > 0 ? u1 : 1e-300));
    out[2 * b] = mean + std * static_cast<T>(rad * std::cos(2.0 * M_PI * u2));
    if (2 * b + 1 < n) out[2 * b + 1] = mean + std * static_cast<T>(rad * std::sin(2.0 * M_PI * u2));
  }
}

void Rng::fill_uniform(float* o, int64_t n, float lo, float hi) {
  fill_uniform_impl(seed_, advance((n + 3) / 4), o, n, lo, hi);
}
void Rng::fill_uniform(double* o, int64_t n, double lo, double hi) {
  fill_uniform_impl(seed_, advance((n + 3) / 4), o, n, lo, hi);
}
void Rng::fill_normal(float* o, int64_t n, float mean, float std) {
  fill_normal_impl(seed_, advance((n + 1) / 2), o, n, mean, std);
}
void Rng::fill_normal(double* o, int64_t n, double mean, double std) {
  fill_normal_impl(seed_, advance((n + 1) / 2), o, n, mean, std);
}

namespace {
struct CounterStream {
  bool active = false;
  uint64_t salt = 0, offset = 0;
};
thread_local CounterStream t_stream;

uint64_t mix64(uint64_t x) {  // splitmix64's finaliser
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
}  // namespace

CounterDraw reserve_counters(Rng& rng, uint64_t n) {
  if (!t_stream.active) return {rng.seed(), rng.advance(n)};
  const uint64_t offset = t_stream.offset;
  t_stream.offset += n;
  return {mix64(rng.seed() ^ mix64(t_stream.salt)), offset};
}

CounterStreamScope::CounterStreamScope(uint64_t salt)
    : prev_active_(t_stream.active), prev_salt_(t_stream.salt), prev_offset_(t_stream.offset) {
  t_stream = {true, salt, 0};
}

CounterStreamScope::~CounterStreamScope() { t_stream = {prev_active_, prev_salt_, prev_offset_}; }

}  // namespace focus
