// Base64 through OpenSSL (see base64.hpp).
#include "focus/io/base64.hpp"

#include <openssl/evp.h>

#include <cctype>

#include "focus/tensor/error.hpp"

namespace focus {

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');  // + the NUL EVP_EncodeBlock writes
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), int(bytes.size()));
  out.resize(size_t(n));
  return out;
}

std::string base64_decode(std::string_view text, std::string_view what) {
  FOCUS_CHECK(text.size() % 4 == 0, FormatError, "{}: base64 length {} is not a multiple of 4", what,
              text.size());
  size_t pad = 0;
  if (!text.empty() && text.back() == '=') pad = text[text.size() - 2] == '=' ? 2 : 1;
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    FOCUS_CHECK(std::isalnum(c) || c == '+' || c == '/' || (c == '=' && i >= text.size() - pad),
                FormatError, "{}: not base64 (character {:#04x} at {})", what, c, i);
  }
  if (text.empty()) return {};
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), int(text.size()));
  FOCUS_CHECK(n >= 0, FormatError, "{}: malformed base64", what);
  out.resize(size_t(n) - pad);  // EVP_DecodeBlock counts the padding as zero bytes
  return out;
}

}  // namespace focus
