// SHA-256 through OpenSSL's EVP interface (libcrypto): incremental (update as the bytes arrive,
// e.g. tensor by tensor while a file is read) and in one call. Digests are given as 64 lowercase
// hex digits. Used for the integrity check of model files (safetensors.hpp, "focus.sha256").
//
//   Sha256 h;
//   h.update(a, na);
//   h.update(b, nb);
//   std::string hex = h.hex();   // SHA-256 of a then b; the object is then spent
//   sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace focus {

class Sha256 {
 public:
  Sha256();  // throws StateError if OpenSSL cannot provide SHA-256
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // The digest of everything passed to update(); call once (StateError on a second call).
  std::array<uint8_t, 32> digest();
  std::string hex();  // digest() as 64 lowercase hex digits

 private:
  void* ctx_;  // EVP_MD_CTX*, kept out of the header so users need no OpenSSL headers
  bool done_ = false;
};

std::string sha256_hex(std::string_view bytes);

// True for 64 hex digits (either case): the form a stored digest must have.
bool is_sha256_hex(std::string_view s);

}  // namespace focus
