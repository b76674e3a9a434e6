// How the serve decoder targets read their input: an HTTP request reduced to what the decoders
// see. "<content-type>\n<top query parameter>\n<body>" when the input holds two newlines (seeds
// are written that way), otherwise the whole input is an application/json body with no ?top=.
// Also the invariant every decoder shares: a refusal is a RequestError with status 400, 413 or 415
// and a message; any other exception escaping a decoder is a bug (the server would answer 500).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "focus/serve/decode.hpp"
#include "fuzz_check.hpp"

namespace focus::fuzz {

struct ServeInput {
  std::string_view content_type = "application/json", top, body;
};

inline ServeInput split_serve_input(const uint8_t* data, size_t size) {
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  ServeInput in;
  in.body = all;
  const size_t a = all.find('\n');
  if (a == std::string_view::npos || a > 100) return in;
  const size_t b = all.find('\n', a + 1);
  if (b == std::string_view::npos || b - a > 20) return in;
  in.content_type = all.substr(0, a);
  in.top = all.substr(a + 1, b - a - 1);
  in.body = all.substr(b + 1);
  return in;
}

// Small limits, so that every 413 path is reachable from small inputs.
inline DecodeLimits small_limits() {
  DecodeLimits lim;
  lim.max_items = 3;
  lim.max_values = 300;
  lim.max_image_pixels = 100;
  lim.max_text_bytes = 40;
  return lim;
}

// Runs decode(); true when it returned, false after a well-formed RequestError.
template <class F>
bool serve_accepts(F&& decode) {
  static const bool verbose = std::getenv("FOCUS_FUZZ_VERBOSE") != nullptr;
  try {
    decode();
    if (verbose) std::fprintf(stderr, "accepted\n");
    return true;
  } catch (const RequestError& e) {
    FUZZ_ASSERT(e.status() == 400 || e.status() == 413 || e.status() == 415, "status %d: %s",
                e.status(), e.what());
    FUZZ_ASSERT(e.what()[0] != '\0', "a RequestError without a message");
    if (verbose) std::fprintf(stderr, "refused %d: %s\n", e.status(), e.what());
    return false;
  } catch (const std::exception& e) {
    FUZZ_ASSERT(false, "a decoder threw %s (not a RequestError): %s", typeid(e).name(), e.what());
  }
  return false;
}

}  // namespace focus::fuzz
