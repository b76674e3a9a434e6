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

extern "C" int __sanitizer_install_malloc_and_free_hooks(
    void (*malloc_hook)(const volatile void*, size_t), void (*free_hook)(const volatile void*));

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

// The largest single allocation since reset(): a decoder of JSON must allocate in proportion to
// the body it reads, never what a number inside the body claims (a 100-byte body asking for a
// shape of 38 million values must not reserve 154 MB before finding the data missing). Uses the
// sanitizer allocator's hooks, so it sees malloc, operator new and aligned_alloc alike.
struct AllocPeak {
  static inline size_t peak = 0;
  static void hook(const volatile void*, size_t n) {
    if (n > peak) peak = n;
  }
  static void free_hook(const volatile void*) {}
  static void install() {  // both hooks are required: with a null one nothing is installed
    static const bool ok = __sanitizer_install_malloc_and_free_hooks(hook, free_hook) != 0;
    FUZZ_ASSERT(ok, "cannot install the sanitizer malloc hooks");
  }
  static void reset() { peak = 0; }
};

// FUZZ_ASSERT that no allocation since AllocPeak::reset() exceeded `factor` bytes per input byte
// plus 1 MiB. FOCUS_FUZZ_NO_ALLOC_CHECK=1 turns the check off (to fuzz past a known finding).
inline void check_alloc_proportional(size_t input_bytes, size_t factor, const char* what) {
  static const bool off = std::getenv("FOCUS_FUZZ_NO_ALLOC_CHECK") != nullptr;
  if (off) return;
  const size_t cap = factor * input_bytes + (size_t(1) << 20);
  FUZZ_ASSERT(AllocPeak::peak <= cap,
              "%s allocated %zu bytes at once for a %zu-byte input (cap %zu = %zu x input + 1 MiB)",
              what, AllocPeak::peak, input_bytes, cap, factor);
}

}  // namespace focus::fuzz
