// SHA-256 (io/sha256.hpp, OpenSSL EVP): the FIPS 180-2 known answers, incremental updates equal
// one call at every split, and a spent digest refuses further use.
#include <gtest/gtest.h>

#include <string>

#include "focus/io/sha256.hpp"
#include "focus/tensor/error.hpp"

using namespace focus;

TEST(Sha256, KnownAnswers) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, IncrementalEqualsOneCall) {
  std::string msg;
  for (int i = 0; i < 300; ++i) msg.push_back(static_cast<char>(i * 37 + 11));
  const std::string whole = sha256_hex(msg);
  for (size_t cut : {size_t(0), size_t(1), size_t(55), size_t(56), size_t(63), size_t(64),
                     size_t(65), size_t(299), size_t(300)}) {
    Sha256 h;
    h.update(msg.substr(0, cut));
    h.update(msg.substr(cut));
    EXPECT_EQ(h.hex(), whole) << "split at " << cut;
  }
}

TEST(Sha256, DigestIsTakenOnce) {
  Sha256 h;
  h.update("abc");
  EXPECT_EQ(h.digest()[0], 0xba);
  EXPECT_THROW(h.hex(), StateError);
  EXPECT_THROW(h.update("more"), StateError);
}

TEST(Sha256, HexForm) {
  EXPECT_TRUE(is_sha256_hex(sha256_hex("x")));
  EXPECT_TRUE(is_sha256_hex(std::string(64, 'F')));
  EXPECT_FALSE(is_sha256_hex(std::string(63, 'a')));
  EXPECT_FALSE(is_sha256_hex(std::string(65, 'a')));
  EXPECT_FALSE(is_sha256_hex(std::string(63, 'a') + "g"));
}
