// Seeded mutation testing of the readers of outside files (tests/*/..._mutation_test.cpp): a
// Mutator turns one valid file into planned mutants (single and multiple bit flips, byte
// overwrites, truncation at every short length, at each header boundary and at random lengths,
// appended garbage; tests add targeted edits of length fields), and feed() hands each mutant to a
// reader and tallies the outcome. The only acceptable outcomes: the reader loads it (and a check
// of the result's internal consistency passes) or it throws a focus::Error with a message. Any
// other exception, an inconsistent result, a mutant marked must_reject that loads, a load slower
// than kSlowLoadSeconds (a hang, stopped by CTest's timeout at worst) or an operator new above
// AllocWatch::cap while the reader runs is a failure, listed by mutant.
// Allocation cap: FOCUS_TESTING_DEFINE_ALLOC_WATCH() (once per test binary, in one .cpp) replaces
// the global operator new/delete with a counting version; without it, or under AddressSanitizer
// (which has its own max_allocation_size_mb), allocations are not watched. Tensor storage comes
// from aligned_alloc and is not watched: those readers are tested by their size-field edits.
#pragma once
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <new>
#include <random>
#include <set>
#include <string>
#include <typeinfo>
#include <vector>

#include "focus/tensor/error.hpp"

namespace focus::testing {

constexpr uint64_t kMutationSeed = 20240917;  // every mutation test uses this seed
constexpr double kSlowLoadSeconds = 5.0;

// Largest operator new request seen while armed; requests above `cap` throw std::bad_alloc.
struct AllocWatch {
  static inline std::atomic<bool> armed{false};
  static inline std::atomic<size_t> peak{0};
  static inline std::atomic<size_t> cap{size_t(64) << 20};  // 64 MiB: far above any test file
  static inline bool installed = false;                     // set by the replacement operator new
  static void record(size_t n) {
    if (!armed.load(std::memory_order_relaxed)) return;
    size_t p = peak.load(std::memory_order_relaxed);
    while (n > p && !peak.compare_exchange_weak(p, n, std::memory_order_relaxed)) {
    }
    if (n > cap.load(std::memory_order_relaxed)) throw std::bad_alloc();
  }
  [[gnu::noinline]] static void release(void* p) noexcept { std::free(p); }
};

struct Mutant {
  std::string what;  // e.g. "flip bit 3 of byte 17", "truncate to 12"
  std::string bytes;
  bool must_reject = false;
};

struct MutationPlan {
  int single_flips = 48;
  int multi_flips = 24;  // 2..8 bits each
  int overwrites = 24;   // 1..4 random bytes each
  int random_truncations = 12;
  int short_truncations = 64;      // every length 0 .. short_truncations-1 (below the file size)
  std::vector<size_t> boundaries;  // header boundaries: truncations at b-1, b and b+1
  size_t reject_below = 0;         // truncations shorter than this must be rejected
  bool reject_all_truncations = false;
  bool reject_appends = false;        // garbage appended must be rejected
  static constexpr int kAppends = 4;  // 1, 8 and 64 random bytes, and a second copy of the file
};

class Mutator {
 public:
  explicit Mutator(uint64_t seed) : rng_(seed) {}

  size_t below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(rng_() % n); }
  std::string random_bytes(size_t n) {
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(rng_() & 0xff);
    return s;
  }

  // The distinct truncation lengths (all < size) a plan asks for; consumes randomness.
  std::vector<size_t> truncation_lengths(size_t size, const MutationPlan& p) {
    std::set<size_t> lens;
    for (size_t n = 0; n < static_cast<size_t>(p.short_truncations) && n < size; ++n)
      lens.insert(n);
    for (size_t b : p.boundaries)
      for (size_t n : {b - 1, b, b + 1})
        if (b >= 1 && n < size) lens.insert(n);
    for (int i = 0; i < p.random_truncations && size > 0; ++i) lens.insert(below(size));
    return {lens.begin(), lens.end()};
  }

  // Planned mutants of `valid` (non-empty); the count is flips + overwrites + appends + the
  // distinct truncation lengths, which tests check through planned_count().
  std::vector<Mutant> mutate(const std::string& valid, const MutationPlan& p) {
    std::vector<Mutant> out;
    const size_t n = valid.size();
    for (int i = 0; i < p.single_flips; ++i) {
      const size_t at = below(n), bit = below(8);
      Mutant m{fmt::format("flip bit {} of byte {}", bit, at), valid};
      m.bytes[at] = static_cast<char>(m.bytes[at] ^ (1 << bit));
      out.push_back(std::move(m));
    }
    for (int i = 0; i < p.multi_flips; ++i) {
      const size_t k = 2 + below(7);
      Mutant m{fmt::format("flip {} bits:", k), valid};
      for (size_t j = 0; j < k; ++j) {
        const size_t at = below(n), bit = below(8);
        m.what += fmt::format(" {}.{}", at, bit);
        m.bytes[at] = static_cast<char>(m.bytes[at] ^ (1 << bit));
      }
      out.push_back(std::move(m));
    }
    for (int i = 0; i < p.overwrites; ++i) {
      const size_t k = 1 + below(4);
      Mutant m{fmt::format("overwrite {} bytes:", k), valid};
      for (size_t j = 0; j < k; ++j) {
        const size_t at = below(n);
        const char c = static_cast<char>(rng_() & 0xff);
        m.what += fmt::format(" [{}]={:02x}", at, static_cast<unsigned char>(c));
        m.bytes[at] = c;
      }
      out.push_back(std::move(m));
    }
    for (size_t len : truncation_lengths(n, p))
      out.push_back({fmt::format("truncate to {} of {} bytes", len, n), valid.substr(0, len),
                     p.reject_all_truncations || len < p.reject_below});
    for (size_t k : {size_t(1), size_t(8), size_t(64)})
      out.push_back(
          {fmt::format("append {} random bytes", k), valid + random_bytes(k), p.reject_appends});
    out.push_back({"append a second copy of the file", valid + valid, p.reject_appends});
    return out;
  }

  // What mutate() returns for a file of `size` bytes, computed from the plan alone (a fresh
  // Mutator with the same seed state gives the same random truncation lengths).
  static size_t planned_count(size_t size, const MutationPlan& p, uint64_t seed) {
    Mutator m(seed);
    // Replay the draws mutate() makes before the truncations, then count the lengths.
    for (int i = 0; i < p.single_flips; ++i) m.below(size), m.below(8);
    for (int i = 0; i < p.multi_flips; ++i) {
      const size_t k = 2 + m.below(7);
      for (size_t j = 0; j < k; ++j) m.below(size), m.below(8);
    }
    for (int i = 0; i < p.overwrites; ++i) {
      const size_t k = 1 + m.below(4);
      for (size_t j = 0; j < k; ++j) m.below(size), m.rng_();
    }
    return static_cast<size_t>(p.single_flips + p.multi_flips + p.overwrites +
                               MutationPlan::kAppends) +
           m.truncation_lengths(size, p).size();
  }

 private:
  std::mt19937_64 rng_;
};

// What a reader did with the mutants of its files.
struct Tally {
  explicit Tally(std::string name) : reader(std::move(name)) {}
  std::string reader;
  int files = 0, mutations = 0, loaded = 0, rejected = 0;
  int rejected_naming_file = 0;  // rejections whose message holds the file name
  size_t peak_alloc = 0;         // largest watched allocation during a load
  double slowest = 0;            // seconds
  std::vector<std::string> failures;

  void print() const {
    std::printf(
        "[mutation] %-22s seed %llu: files %d, mutations %d, loaded %d, rejected %d "
        "(%d naming the file), largest allocation %zu bytes%s, slowest load %.3f s\n",
        reader.c_str(), static_cast<unsigned long long>(kMutationSeed), files, mutations, loaded,
        rejected, rejected_naming_file, peak_alloc, AllocWatch::installed ? "" : " (not watched)",
        slowest);
  }
  // The checks every mutation test makes: no failure, every mutant accounted for.
  void expect_clean() const {
    print();
    EXPECT_EQ(loaded + rejected, mutations) << reader;
    EXPECT_TRUE(failures.empty()) << reader << ": " << failures.size() << " failures, first: "
                                  << (failures.empty() ? "" : failures.front());
    for (size_t i = 0; i < failures.size() && i < 20; ++i)
      ADD_FAILURE() << reader << ": " << failures[i];
  }
};

// j.dump() with j[key] set to the JSON text `raw`, spliced in as text: a value nested 100,000
// deep must not go through dump(), which recurses once per level.
template <class Json>
std::string dump_with(Json j, const std::string& key, const std::string& raw) {
  const std::string mark = "@@focus-raw-value@@";
  j[key] = mark;
  std::string s = j.dump();
  return s.replace(s.find("\"" + mark + "\""), mark.size() + 2, raw);
}

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw std::runtime_error("mutate: cannot write " + path);
}
inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Writes m.bytes to `path` and runs load(path), which returns "" when the result is consistent
// or says what is wrong with it. `file_name`: the text a rejection message must hold to count as
// naming the file ("" to use `path`).
template <class Load>
void feed(Tally& t, const std::string& path, const Mutant& m, Load&& load,
          const std::string& file_name = "") {
  write_file(path, m.bytes);
  ++t.mutations;
  const std::string name = file_name.empty() ? path : file_name;
  const auto start = std::chrono::steady_clock::now();
  AllocWatch::peak = 0;
  AllocWatch::armed = true;
  std::string failure;
  try {
    const std::string bad = load(path);
    AllocWatch::armed = false;
    if (!bad.empty())
      failure = "loaded an inconsistent result: " + bad;
    else if (m.must_reject)
      failure = "loaded, but must be rejected";
    else
      ++t.loaded;
  } catch (const focus::Error& e) {
    AllocWatch::armed = false;
    const std::string msg = e.what();
    if (msg.empty()) {
      failure = "typed error with an empty message";
    } else {
      ++t.rejected;
      if (msg.find(name) != std::string::npos) ++t.rejected_naming_file;
    }
  } catch (const std::bad_alloc&) {
    AllocWatch::armed = false;
    failure = fmt::format("std::bad_alloc (largest request {} bytes)", AllocWatch::peak.load());
  } catch (const std::exception& e) {
    AllocWatch::armed = false;
    failure = fmt::format("untyped exception {}: {}", typeid(e).name(), e.what());
  } catch (...) {
    AllocWatch::armed = false;
    failure = "unknown exception";
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  t.slowest = std::max(t.slowest, secs);
  t.peak_alloc = std::max(t.peak_alloc, AllocWatch::peak.load());
  if (secs > kSlowLoadSeconds && failure.empty())
    failure = fmt::format("took {:.1f} s (a hang?)", secs);
  if (!failure.empty()) t.failures.push_back(m.what + ": " + failure);
}

}  // namespace focus::testing

// Replaces the global operator new/delete with versions that report to AllocWatch. Expand once
// per test binary, at namespace scope in one .cpp; a no-op under AddressSanitizer.
#if defined(__SANITIZE_ADDRESS__)
#define FOCUS_TESTING_DEFINE_ALLOC_WATCH()
#else
// (free() sits behind a non-inlined call: GCC would otherwise see operator new's pointer reach
// free() and warn -Wmismatched-new-delete, not knowing this operator new is malloc.)
#define FOCUS_TESTING_DEFINE_ALLOC_WATCH()                                                        \
  void* operator new(std::size_t n) {                                                             \
    focus::testing::AllocWatch::record(n);                                                        \
    void* p = std::malloc(n ? n : 1);                                                             \
    if (!p) throw std::bad_alloc();                                                               \
    return p;                                                                                     \
  }                                                                                               \
  void* operator new[](std::size_t n) { return ::operator new(n); }                               \
  void operator delete(void* p) noexcept { focus::testing::AllocWatch::release(p); }              \
  void operator delete[](void* p) noexcept { focus::testing::AllocWatch::release(p); }            \
  void operator delete(void* p, std::size_t) noexcept { focus::testing::AllocWatch::release(p); } \
  void operator delete[](void* p, std::size_t) noexcept {                                         \
    focus::testing::AllocWatch::release(p);                                                       \
  }                                                                                               \
  [[maybe_unused]] static const bool focus_alloc_watch_installed =                                \
      (focus::testing::AllocWatch::installed = true)
#endif
