// Base64 (RFC 4648, standard alphabet, '=' padding) through OpenSSL's EVP block functions: data
// URLs of report and explanation images, and base64 PNGs in request bodies.
// Decoding is strict: the length must be a multiple of 4, only the alphabet and trailing padding
// are allowed (no whitespace, no line breaks); anything else is a FormatError naming `what`.
#pragma once
#include <string>
#include <string_view>

namespace focus {

std::string base64_encode(std::string_view bytes);
std::string base64_decode(std::string_view text, std::string_view what = "base64");

}  // namespace focus
