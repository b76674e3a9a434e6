// Dropout kernels: the vectorised kernels (avx512 / avx2 where the CPU has them, lanes everywhere) against
// the scalar reference, bit for bit, for F32 and F64, odd lengths (the longest one threaded),
// counters that cross 2^32, and p on the 2^-16 grid where the integer threshold must match the
// float comparison exactly. The recorded mask bits equal the reference's, and applying them
// (AVX2 and the plain loop) gives the kernel's output bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
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
  for (const int64_t n : {1, 3, 7, 8, 9, 63, 64, 65, 127, 128, 129, 1000, 70001})
    for (const uint64_t offset : {uint64_t(0), uint64_t(5), uint64_t(0xFFFFFFF7u), uint64_t(1) << 40})
      for (const double p : {0.1, 0.5, 0.25 + 1.0 / 65536.0, 3.0 / 65536.0, 0.25 + 0.5 / 65536.0, 0.999}) {
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

TEST(DropoutKernel, MaskIsTheDocumentedHalfWords) {
  // Element i is kept iff half i % 2 of word (i / 2) % 4 of philox4x32(seed, 0, offset + i / 8),
  // over 2^16, is >= p; a call reserves ceil(n / 8) counters.
  const int64_t n = 1001;
  const double p = 0.4;
  Rng rng(77);
  rng.advance(13);
  std::vector<float> ones(n, 1.f), y(n);
  dropout_apply(y.data(), ones.data(), n, rng.seed(), rng.offset(), p);
  EXPECT_EQ(dropout_counters(n), 126u);
  for (int64_t i = 0; i < n; ++i) {
    const auto r = philox4x32(rng.seed(), 0, rng.offset() + static_cast<uint64_t>(i / 8));
    const uint32_t half = i % 2 ? r[(i / 2) % 4] >> 16 : r[(i / 2) % 4] & 0xFFFFu;
    ASSERT_EQ(y[i] != 0.f, half >= 26215u) << i;  // ceil(0.4 * 65536) = 26215
  }
}

TEST(DropoutKernel, KeepRateAndIndependentHalves) {
  // Over 2^20 elements the kept fraction is 1 - p within 5 standard deviations, and the two
  // halves of a word are not correlated (the fraction of pairs both kept is (1 - p)^2).
  const int64_t n = int64_t(1) << 20;
  for (const double p : {0.1, 0.5}) {
    std::vector<float> ones(n, 1.f), y(n);
    dropout_apply(y.data(), ones.data(), n, 0xC0FFEEull, 12345, p);
    int64_t kept = 0, both = 0;
    for (int64_t i = 0; i < n; ++i) kept += y[i] != 0.f;
    for (int64_t i = 0; i < n; i += 2) both += y[i] != 0.f && y[i + 1] != 0.f;
    const double q = 1.0 - p, sd = std::sqrt(p * q / n);
    EXPECT_NEAR(double(kept) / n, q, 5 * sd) << p;
    const double sd2 = std::sqrt(q * q * (1 - q * q) / (n / 2));
    EXPECT_NEAR(double(both) / (n / 2), q * q, 5 * sd2) << p;
  }
}
