// Seeded mutations of IDX files, plain and gzip (tests/support/mutate.hpp): bit flips, overwrites,
// every truncation and every append (all must be rejected: the payload size is exact and a gzip
// stream has a length and CRC trailer), and targeted edits of the magic, rank and dims (0, 2^31,
// 2^32 - 1, products that overflow) and of the gzip trailer (ISIZE, CRC). A file that loads must
// hold product(dims) bytes and, for labels, every label below the class count.
#include <gtest/gtest.h>
#include <zlib.h>

#include "data/temp_dir.hpp"
#include "focus/data/idx.hpp"
#include "support/mutate.hpp"

FOCUS_TESTING_DEFINE_ALLOC_WATCH();

using namespace focus;
using namespace focus::testing;

namespace {

constexpr int64_t kClasses = 10;

// The bytes of `raw` as one gzip member (zlib's gzip writer, as write_idx uses).
std::string gzip_bytes(const std::string& raw, const std::string& tmp) {
  gzFile g = gzopen(tmp.c_str(), "wb");
  EXPECT_TRUE(g);
  EXPECT_EQ(gzwrite(g, raw.data(), static_cast<unsigned>(raw.size())),
            static_cast<int>(raw.size()));
  gzclose(g);
  return focus::testing::read_file(tmp);
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string check(const IdxArray& a, bool labels) {
  if (a.dims.empty() || a.dims.size() > 4) return fmt::format("rank {}", a.dims.size());
  uint64_t n = 1;
  for (int64_t d : a.dims)
    if (d < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return "dims overflow";
  if (a.data.size() != n) return fmt::format("{} bytes for {} elements", a.data.size(), n);
  if (labels && a.dims.size() != 1) return "labels of rank != 1";
  if (!labels && a.dims.size() != 3) return "images of rank != 3";
  if (labels)
    for (uint8_t v : a.data)
      if (v >= kClasses) return fmt::format("label {}", v);
  return "";
}

TEST(IdxMutation, EveryMutantLoadsConsistentlyOrIsAFormatError) {
  TempDir dir;
  // Images (3, 4, 5) and labels (12), each plain and gzipped.
  std::vector<uint8_t> pixels(60), labels(12);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 37);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<uint8_t>(i % kClasses);
  struct File {
    std::string name;
    bool labels, gzip;
  };
  const std::vector<File> files = {{"images.idx", false, false},
                                   {"labels.idx", true, false},
                                   {"images.idx.gz", false, true},
                                   {"labels.idx.gz", true, true}};
  Tally tally{"idx + gzip"};
  const std::string path = dir.file("mutant");
  for (const File& f : files) {
    const std::string p = dir.file(f.name);
    if (f.labels)
      write_idx(p, {12}, labels, f.gzip);
    else
      write_idx(p, {3, 4, 5}, pixels, f.gzip);
    const std::string valid = focus::testing::read_file(p);
    const auto load = [&](const std::string& q) {
      return f.labels ? check(read_idx_labels(q, kClasses), true)
                      : check(read_idx_images(q), false);
    };
    ASSERT_EQ(load(p), "");
    ++tally.files;

    const int rank = f.labels ? 1 : 3;
    MutationPlan plan;
    plan.boundaries = {2, 4, static_cast<size_t>(4 + 4 * rank)};
    if (f.gzip) plan.boundaries = {2, 10, valid.size() - 8, valid.size() - 4};  // header, trailer
    plan.reject_all_truncations = true;
    plan.reject_appends = true;
    const uint64_t seed = kMutationSeed + static_cast<uint64_t>(tally.files);
    const std::vector<Mutant> mutants = Mutator(seed).mutate(valid, plan);
    EXPECT_EQ(mutants.size(), Mutator::planned_count(valid.size(), plan, seed));
    for (const Mutant& m : mutants) feed(tally, path, m, load);

    // Header edits on the uncompressed bytes (gzipped again for the .gz files). All are
    // rejected: a wrong magic, type or rank, or dims that disagree with the 60 / 12 payload bytes.
    std::string plain(4 + 4 * rank, '\0');
    plain[2] = 0x08;
    plain[3] = static_cast<char>(rank);
    if (f.labels)
      plain.replace(4, 4, be32(12));
    else
      plain.replace(4, 12, be32(3) + be32(4) + be32(5));
    plain.append(f.labels ? std::string(labels.begin(), labels.end())
                          : std::string(pixels.begin(), pixels.end()));
    std::vector<std::pair<std::string, std::string>> edits;
    for (int d = 0; d < rank; ++d)
      for (uint32_t v : {0u, 1u, 0x7fffffffu, 0x80000000u, 0xffffffffu}) {
        std::string b = plain;
        b.replace(4 + 4 * d, 4, be32(v));
        edits.emplace_back(fmt::format("dim {} = {}", d, v), b);
      }
    for (int r : {0, 2, 4, 5, 255}) {  // rank: more dims read from the payload, or invalid
      std::string b = plain;
      b[3] = static_cast<char>(r);
      edits.emplace_back(fmt::format("rank {}", r), b);
    }
    {  // rank 4, every dim 2^32 - 1: the product overflows int64
      std::string b = std::string("\0\0\x08\x04", 4) + be32(0xffffffffu) + be32(0xffffffffu) +
                      be32(0xffffffffu) + be32(0xffffffffu) + plain.substr(4 + 4 * rank);
      edits.emplace_back("rank 4, dims (2^32-1)^4", b);
    }
    for (uint8_t type : {0x00, 0x09, 0x0b, 0x0d, 0x0e, 0xff}) {
      std::string b = plain;
      b[2] = static_cast<char>(type);
      edits.emplace_back(fmt::format("type 0x{:02x}", type), b);
    }
    for (auto& [what, b] : edits)
      feed(tally, path, {what, f.gzip ? gzip_bytes(b, dir.file("tmp.gz")) : b, true}, load);

    if (f.gzip) {  // the trailer: ISIZE (the reader's allocation guess) and CRC
      for (uint32_t isize : {0u, 1u, 0x7fffffffu, 0xffffffffu}) {
        std::string b = valid;
        for (int i = 0; i < 4; ++i) b[b.size() - 4 + i] = static_cast<char>(isize >> (8 * i));
        feed(tally, path, {fmt::format("ISIZE {}", isize), b, true}, load);
      }
      std::string b = valid;
      b[b.size() - 8] = static_cast<char>(b[b.size() - 8] ^ 0x55);
      feed(tally, path, {"CRC changed", b, true}, load);
      // Trailing zero padding, and a second gzip member holding a valid header plus garbage.
      feed(tally, path, {"4 zero bytes after the stream", valid + std::string(4, '\0'), true},
           load);
      feed(tally, path, {"a second member", valid + gzip_bytes("xyz", dir.file("tmp.gz")), true},
           load);
    }
  }
  tally.expect_clean();
  EXPECT_GT(tally.loaded, 0);  // flips of plain pixel bytes load
  EXPECT_EQ(tally.rejected_naming_file, tally.rejected);
}

}  // namespace
