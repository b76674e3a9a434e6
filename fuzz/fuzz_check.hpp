// What every fuzz target shares: FUZZ_ASSERT (an invariant that failed aborts the run, so
// libFuzzer records it as a crash and saves the input) and expect_focus_error (the input was
// refused: the refusal must be the documented focus error with a message naming the input; any
// other exception escaping a decoder is a bug). Fuzz code only: the library never aborts.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <typeinfo>

#include "focus/tensor/error.hpp"

#define FUZZ_ASSERT(cond, ...)                                               \
  do {                                                                       \
    if (!(cond)) {                                                           \
      std::fprintf(stderr, "fuzz invariant failed: %s\n  ", #cond);          \
      std::fprintf(stderr, __VA_ARGS__);                                     \
      std::fprintf(stderr, "\n");                                            \
      std::abort();                                                          \
    }                                                                        \
  } while (0)

namespace focus::fuzz {

// Runs `decode`; a thrown E whose message contains `name` is a correct refusal. Any other exception
// (a focus error of another type, nlohmann::json::exception, std::bad_alloc, std::out_of_range...)
// aborts. Returns true when `decode` returned normally. With FOCUS_FUZZ_VERBOSE set in the
// environment each input's verdict is printed (to check seeds: `build-fuzz/png_fuzz seed.png`).
template <class E, class F>
bool accepts(F&& decode, const std::string& name) {
  static const bool verbose = std::getenv("FOCUS_FUZZ_VERBOSE") != nullptr;
  try {
    decode();
    if (verbose) std::fprintf(stderr, "accepted\n");
    return true;
  } catch (const E& e) {
    FUZZ_ASSERT(std::string(e.what()).find(name) != std::string::npos,
                "the error does not name the input '%s': %s", name.c_str(), e.what());
    if (verbose) std::fprintf(stderr, "refused: %s\n", e.what());
    return false;
  } catch (const std::exception& e) {
    FUZZ_ASSERT(false, "unexpected exception %s: %s", typeid(e).name(), e.what());
  }
  return false;
}

}  // namespace focus::fuzz
