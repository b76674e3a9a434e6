// Tensor views, copies and factories: strides, offsets, contiguity, broadcasting copies, errors.
#include <gtest/gtest.h>

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
  Tensor b = Tensor::empty({2}, DType::BF16);  // storage admitted, kernels later
  EXPECT_EQ(b.nbytes(), 4u);
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
