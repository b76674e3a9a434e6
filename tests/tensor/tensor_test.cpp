// Tensor views, copies and factories: strides, offsets, contiguity, broadcasting copies, errors.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>

#include "focus/tensor/rng.hpp"
#include "focus/tensor/tensor.hpp"

using namespace focus;

TEST(Tensor, ViewsShareStorageWithoutCopy) {
  Tensor a = Tensor::arange(24).view({2, 3, 4});
  Tensor t = a.transpose(0, 2);  // (4, 3, 2)
  EXPECT_TRUE(t.same_storage(a));
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(t.shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(t.select(0, 1).select(0, 2).to_vector<float>(), (std::vector<float>{9, 21}));
  Tensor s = a.slice(2, 1, 4, 2);  // (2, 3, 2): columns 1 and 3
  EXPECT_EQ(s.select(0, 1).select(0, 0).to_vector<float>(), (std::vector<float>{13, 15}));
  Tensor e = Tensor::arange(3).view({3, 1}).expand({3, 4});
  EXPECT_EQ(e.strides(), (Shape{1, 0}));
  EXPECT_EQ(e.contiguous().to_vector<float>(),
            (std::vector<float>{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2}));
}

TEST(Tensor, AlignedStorageAndDtypes) {
  Tensor a = Tensor::zeros({3, 5}, DType::F64);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.raw_data()) % 64, 0u);
  EXPECT_EQ(a.to(DType::F32).dtype(), DType::F32);
  EXPECT_THROW(a.data<float>(), DTypeError);
  Tensor b = Tensor::empty({2}, DType::BF16);
  EXPECT_EQ(b.nbytes(), 4u);
}

// Round to nearest, ties to even, on the 16 dropped bits; the values as torch's
// torch.tensor([...]).to(torch.bfloat16) gives them.
TEST(Tensor, BFloat16RoundsToNearestEven) {
  auto bits = [](float x) { return bf16_bits_from_float(x); };
  EXPECT_EQ(bits(1.0f), 0x3f80);
  EXPECT_EQ(bits(-2.0f), 0xc000);
  EXPECT_EQ(bits(1.0f + 1.0f / 256), 0x3f80);             // halfway: to the even 1.0
  EXPECT_EQ(bits(1.0f + 3.0f / 256), 0x3f82);             // halfway: up to the even 0x3f82
  EXPECT_EQ(bits(1.0f + 1.0f / 256 + 1.0f / 4096), 0x3f81);  // above halfway: up
  EXPECT_EQ(bits(std::numeric_limits<float>::max()), 0x7f80);  // past the largest bf16: +inf
  EXPECT_EQ(bits(std::bit_cast<float>(0x7f7f7fffu)), 0x7f7f);  // just below halfway: down
  EXPECT_EQ(bits(-0.0f), 0x8000);
  EXPECT_EQ(bits(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_TRUE(std::isnan(bf16_bits_to_float(bits(std::numeric_limits<float>::quiet_NaN()))));
  // A NaN whose payload sits only in the dropped bits must not turn into infinity.
  EXPECT_TRUE(std::isnan(bf16_bits_to_float(bits(std::bit_cast<float>(0x7f800001u)))));
  EXPECT_EQ(bf16_bits_to_float(0x4049), 3.140625f);

  // Tensor::to converts both ways (any dtype to BF16 through float), strided sources included.
  const Tensor f = Tensor::from_vector(std::vector<float>{1.0f, 3.14159265f, -1e-3f, 65504.f,
                                                          1.0f + 1.0f / 256, 7.0f},
                                       {2, 3});  // (2, 3)
  const Tensor h = f.transpose(0, 1).to(DType::BF16);  // (3, 2), a strided source
  ASSERT_EQ(h.dtype(), DType::BF16);
  EXPECT_EQ(h.to(DType::F32).to_vector<float>(),
            (std::vector<float>{1.0f, 65536.f, 3.140625f, 1.0f, -0.00099945068359375f, 7.0f}));
  EXPECT_EQ(Tensor::arange(4, DType::I64).to(DType::BF16).to(DType::F64).to_vector<double>(),
            (std::vector<double>{0, 1, 2, 3}));
}

TEST(Tensor, ErrorsCarryShapes) {
  Tensor a = Tensor::zeros({2, 3});
  try {
    a.view({4, 2});
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("(2, 3)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(a.transpose(0, 1).view({6}), ShapeError);
  EXPECT_EQ(a.transpose(0, 1).reshape({6}).numel(), 6);  // reshape copies when it must
  EXPECT_THROW(a.permute({0, 0}), ShapeError);
  EXPECT_THROW(a.select(1, 3), ShapeError);
  EXPECT_THROW(a.expand({3, 3}), ShapeError);
  EXPECT_THROW(Tensor::zeros({-1}), ValueError);
  EXPECT_THROW(a.item(), ShapeError);
}

TEST(Rng, CounterBasedAndDeterministic) {
  Rng r1(5), r2(5);
  std::vector<float> x(1000), y(1000);
  r1.fill_uniform(x.data(), 1000, 0.f, 1.f);
  r2.fill_uniform(y.data(), 1000, 0.f, 1.f);
  EXPECT_EQ(x, y);
  EXPECT_EQ(r1.offset(), r2.offset());
  double mean = 0;
  for (float v : x) mean += v;
  EXPECT_NEAR(mean / 1000, 0.5, 0.05);
  // Philox-4x32-10 known-answer test (Random123 reference vector: key 0, counter 0).
  const auto w = philox4x32(0, 0, 0);
  EXPECT_EQ(w[0], 0x6627e8d5u);
  EXPECT_EQ(w[1], 0xe169c58du);
  EXPECT_EQ(w[2], 0xbc57ac4cu);
  EXPECT_EQ(w[3], 0x9b00dbd8u);
}
