// Dropout kernels: the vectorised kernels (avx512 / avx2 where the CPU has them, lanes everywhere) against
// the scalar reference, bit for bit, for F32 and F64, odd lengths (the longest one threaded),
// counters that cross 2^32, and p on the 2^-24 grid where the integer threshold must match the
// float comparison exactly. The recorded mask bits equal the reference's, and applying them
// (AVX2 and the plain loop) gives the kernel's output bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "focus/kernels/cpu.hpp"
#include "focus/kernels/dropout.hpp"
#include "focus/tensor/rng.hpp"

using namespace focus;

namespace {

template <class T>
void check_kernel(const char* name,
                  void (*kernel)(T*, const T*, int64_t, uint64_t, uint64_t, double, uint8_t*)) {
  Rng rng(21);
  const bool avx2 = static_cast<int>(detect_isa()) >= static_cast<int>(Isa::Avx2);
  for (const int64_t n : {1, 3, 7, 8, 9, 63, 64, 65, 1000, 70001})
    for (const uint64_t offset : {uint64_t(0), uint64_t(5), uint64_t(0xFFFFFFF7u), uint64_t(1) << 40})
      for (const double p : {0.1, 0.5, 0.25 + 1.0 / 16777216.0, 3.0 / 16777216.0, 0.999}) {
        std::vector<T> x(static_cast<size_t>(n)), y(x.size()), r(x.size()), yb(x.size());
        for (auto& v : x) v = static_cast<T>(rng.normal());
        const uint64_t seed = 0x1234567890ABCDEFull + static_cast<uint64_t>(n);
        const size_t nb = static_cast<size_t>(dropout_bit_bytes(n));
        // One guard byte past the end: no kernel may write there.
        std::vector<uint8_t> bits(nb + 1, 0xA5), rbits(nb + 1, 0xA5);
        kernel(y.data(), x.data(), n, seed, offset, p, nullptr);
        dropout_apply_reference(r.data(), x.data(), n, seed, offset, p, rbits.data());
        ASSERT_EQ(y, r) << name << " n=" << n << " offset=" << offset << " p=" << p;
        kernel(yb.data(), x.data(), n, seed, offset, p, bits.data());
        ASSERT_EQ(yb, r) << name << " (recording bits) n=" << n << " p=" << p;
        ASSERT_EQ(bits, rbits) << name << " bits n=" << n << " offset=" << offset << " p=" << p;
        ASSERT_EQ(rbits[nb], 0xA5);
        for (int64_t i = 0; i < n; ++i) {
          if (x[i] != T(0)) {
            ASSERT_EQ(((rbits[i / 8] >> (i % 8)) & 1) != 0, r[i] != T(0)) << i;
          }
        }
        if (n % 8) {
          ASSERT_EQ(rbits[nb - 1] >> (n % 8), 0) << n;  // no bits past n
        }
        std::fill(yb.begin(), yb.end(), T(7));
        dropout_apply_bits_reference(yb.data(), x.data(), n, rbits.data(), p);
        ASSERT_EQ(yb, r) << "bits reference n=" << n << " p=" << p;
        if (avx2) {
          std::fill(yb.begin(), yb.end(), T(7));
          dropout_apply_bits_avx2(yb.data(), x.data(), n, rbits.data(), p);
          ASSERT_EQ(yb, r) << "bits avx2 n=" << n << " p=" << p;
        }
      }
}

}  // namespace

TEST(DropoutKernel, LanesMatchReference) {
  check_kernel<float>("lanes", &dropout_apply_lanes<float>);
  check_kernel<double>("lanes", &dropout_apply_lanes<double>);
}

TEST(DropoutKernel, Avx512MatchesReference) {
  if (detect_isa() != Isa::Avx512) GTEST_SKIP() << "no AVX-512 on this CPU";
  check_kernel<float>("avx512", &dropout_apply_avx512<float>);
  check_kernel<double>("avx512", &dropout_apply_avx512<double>);
}

TEST(DropoutKernel, Avx2MatchesReference) {
  if (static_cast<int>(detect_isa()) < static_cast<int>(Isa::Avx2)) GTEST_SKIP() << "no AVX2 on this CPU";
  check_kernel<float>("avx2", &dropout_apply_avx2<float>);
  check_kernel<double>("avx2", &dropout_apply_avx2<double>);
}

TEST(DropoutKernel, MaskIsRngFillUniform) {
  // Element i is kept iff the i-th value of Rng::fill_uniform from (seed, offset) is >= p.
  const int64_t n = 1001;
  Rng rng(77);
  rng.advance(13);
  std::vector<float> u(n), ones(n, 1.f), y(n);
  Rng copy = rng;
  copy.fill_uniform(u.data(), n, 0.f, 1.f);
  dropout_apply(y.data(), ones.data(), n, rng.seed(), rng.offset(), 0.4);
  EXPECT_EQ(copy.offset(), rng.offset() + dropout_counters(n));
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(y[i] != 0.f, static_cast<double>(u[i]) >= 0.4) << i;
}
