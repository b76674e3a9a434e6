// Vocab: specials first, lookups, unknowns and errors.
#include "focus/text/vocab.hpp"

#include <gtest/gtest.h>

#include "data/temp_dir.hpp"
#include "focus/tensor/error.hpp"

namespace focus {
namespace {

using testing::throws_with;

TEST(Vocab, SpecialsFirstThenSymbols) {
  const Vocab v({"a", "b", "ch"});
  EXPECT_EQ(v.size(), 7);
  EXPECT_EQ(v.tokens(), (std::vector<std::string>{"<pad>", "<s>", "</s>", "<unk>", "a", "b", "ch"}));
  EXPECT_EQ(v.symbols(), (std::vector<std::string>{"a", "b", "ch"}));
  EXPECT_EQ(v.id("<pad>"), Vocab::kPad);
  EXPECT_EQ(v.id("<s>"), Vocab::kBos);
  EXPECT_EQ(v.id("</s>"), Vocab::kEos);
  EXPECT_EQ(v.id("<unk>"), Vocab::kUnk);
  for (int64_t i = 0; i < v.size(); ++i) EXPECT_EQ(v.id(v.token(i)), i);
}

TEST(Vocab, UnknownSymbols) {
  const Vocab v({"a"});
  EXPECT_EQ(v.id("zz"), Vocab::kUnk);
  EXPECT_FALSE(v.contains("zz"));
  EXPECT_TRUE(v.contains("a"));
  EXPECT_TRUE(v.contains("<unk>"));
  EXPECT_EQ(Vocab({}).size(), 4);
}

TEST(Vocab, Errors) {
  EXPECT_TRUE(throws_with<ValueError>([] { Vocab({"a", "b", "a"}); }, "duplicate symbol 'a'"));
  EXPECT_TRUE(throws_with<ValueError>([] { Vocab({"x", "</s>"}); }, "reserved special"));
  const Vocab v({"a"});
  EXPECT_TRUE(throws_with<ValueError>([&] { v.token(5); }, "id 5 outside [0, 5)"));
  EXPECT_TRUE(throws_with<ValueError>([&] { v.token(-1); }, "id -1"));
}

}  // namespace
}  // namespace focus
