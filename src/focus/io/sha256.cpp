// SHA-256 on OpenSSL's EVP digest API (see sha256.hpp). OpenSSL picks the fastest code for the
// CPU at run time (SHA-NI where present, else AVX2 / SSSE3 / scalar).
#include "focus/io/sha256.hpp"

#include <openssl/evp.h>

#include "focus/tensor/error.hpp"

namespace focus {

namespace {
EVP_MD_CTX* ctx_of(void* p) { return static_cast<EVP_MD_CTX*>(p); }
}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  FOCUS_CHECK(ctx_ != nullptr, StateError, "sha256: cannot allocate an OpenSSL digest context");
  if (EVP_DigestInit_ex(ctx_of(ctx_), EVP_sha256(), nullptr) != 1) {
    EVP_MD_CTX_free(ctx_of(ctx_));
    throw StateError("sha256: OpenSSL cannot initialise SHA-256");
  }
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_of(ctx_)); }

void Sha256::update(const void* data, size_t n) {
  FOCUS_CHECK(!done_, StateError, "sha256: update after the digest was taken");
  if (n == 0) return;
  FOCUS_CHECK(EVP_DigestUpdate(ctx_of(ctx_), data, n) == 1, StateError,
              "sha256: OpenSSL digest update failed");
}

std::array<uint8_t, 32> Sha256::digest() {
  FOCUS_CHECK(!done_, StateError, "sha256: the digest was already taken");
  done_ = true;
  std::array<uint8_t, 32> out{};
  unsigned int n = 0;
  FOCUS_CHECK(EVP_DigestFinal_ex(ctx_of(ctx_), out.data(), &n) == 1 && n == out.size(),
              StateError, "sha256: OpenSSL digest final failed");
  return out;
}

std::string Sha256::hex() {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(64);
  for (uint8_t b : digest()) {
    s.push_back(kDigits[b >> 4]);
    s.push_back(kDigits[b & 15]);
  }
  return s;
}

std::string sha256_hex(std::string_view bytes) {
  Sha256 h;
  h.update(bytes);
  return h.hex();
}

bool is_sha256_hex(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
  return true;
}

}  // namespace focus
