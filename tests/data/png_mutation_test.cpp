// Seeded mutations of PNG files (tests/support/mutate.hpp): bit flips, overwrites, every
// truncation (all must be rejected: IEND is required), appended garbage (may load: bytes after
// IEND are not read), and targeted edits of IHDR (width, height, bit depth, colour type, with the
// CRC fixed so libpng reads them: 16384 x 16384 x 16-bit RGBA must be refused before allocating)
// and of every chunk's length field. A file that loads must be a 1- or 3-channel image of
// C*H*W values in [0, 1].
#include <gtest/gtest.h>
#include <png.h>
#include <zlib.h>

#include <cmath>

#include "data/png_writer.hpp"
#include "data/temp_dir.hpp"
#include "focus/data/png.hpp"
#include "support/mutate.hpp"

using namespace focus;
using namespace focus::testing;

namespace {

void put_be32(std::string& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<char>(v >> (24 - 8 * i));
}
uint32_t get_be32(const std::string& b, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = v << 8 | static_cast<unsigned char>(b[at + i]);
  return v;
}

struct Chunk {
  size_t at;  // offset of the length field
  uint32_t length;
  std::string type;
};
std::vector<Chunk> chunks_of(const std::string& png) {
  std::vector<Chunk> out;
  for (size_t at = 8; at + 12 <= png.size();) {
    const uint32_t len = get_be32(png, at);
    out.push_back({at, len, png.substr(at + 4, 4)});
    at += 12 + len;
  }
  return out;
}

// IHDR (always the first chunk, at 8) with field bytes [16, 29) edited and its CRC recomputed.
std::string edit_ihdr(std::string png, size_t at, const std::string& bytes) {
  png.replace(at, bytes.size(), bytes);
  const uLong crc = crc32(0, reinterpret_cast<const Bytef*>(png.data() + 12), 17);
  put_be32(png, 29, static_cast<uint32_t>(crc));
  return png;
}
std::string be32(uint32_t v) {
  std::string s(4, '\0');
  put_be32(s, 0, v);
  return s;
}

std::string check(const Image& img) {
  if (img.channels != 1 && img.channels != 3) return fmt::format("{} channels", img.channels);
  if (img.height < 1 || img.width < 1 || img.height > 16384 || img.width > 16384)
    return fmt::format("{}x{}", img.height, img.width);
  if (img.data.size() != static_cast<size_t>(img.channels * img.height * img.width))
    return fmt::format("{} values", img.data.size());
  for (float v : img.data)
    if (!(v >= 0.f && v <= 1.f)) return fmt::format("value {}", v);
  return "";
}


TEST(PngMutation, EveryMutantLoadsConsistentlyOrIsAFormatError) {
  TempDir dir;
  // write_png's gray and RGB, and libpng's 16-bit gray, RGBA and palette files.
  Image gray = make_image(1, 5, 6), rgb = make_image(3, 3, 4);
  for (size_t i = 0; i < gray.data.size(); ++i) gray.data[i] = static_cast<float>(i % 7) / 7.f;
  for (size_t i = 0; i < rgb.data.size(); ++i) rgb.data[i] = static_cast<float>(i % 5) / 5.f;
  write_png(dir.file("gray.png"), gray);
  write_png(dir.file("rgb.png"), rgb);
  const uint16_t g16[4] = {0, 40000, 65535, 1234};
  write_simplified(dir.file("g16.png"), 2, 2, PNG_FORMAT_LINEAR_Y, g16);
  const uint8_t rgba[8] = {255, 0, 100, 128, 10, 20, 30, 255};
  write_simplified(dir.file("rgba.png"), 2, 1, PNG_FORMAT_RGBA, rgba);
  const uint8_t idx[4] = {0, 1, 2, 1}, cmap[9] = {0, 0, 0, 255, 255, 255, 10, 20, 30};
  write_simplified(dir.file("pal.png"), 2, 2, PNG_FORMAT_RGB_COLORMAP, idx, cmap, 3);

  Tally tally{"png"};
  const std::string path = dir.file("mutant.png");
  const auto load = [](const std::string& p) { return check(read_png(p)); };
  for (const char* name : {"gray.png", "rgb.png", "g16.png", "rgba.png", "pal.png"}) {
    const std::string valid = focus::testing::read_file(dir.file(name));
    ASSERT_EQ(load(dir.file(name)), "") << name;
    ++tally.files;
    MutationPlan plan;
    const std::vector<Chunk> chunks = chunks_of(valid);
    ASSERT_GE(chunks.size(), 3u);
    ASSERT_EQ(chunks.front().type, "IHDR");
    for (const Chunk& c : chunks) plan.boundaries.insert(plan.boundaries.end(), {c.at, c.at + 8});
    plan.boundaries.push_back(8);
    plan.reject_all_truncations = true;
    const uint64_t seed = kMutationSeed + static_cast<uint64_t>(tally.files);
    const std::vector<Mutant> mutants = Mutator(seed).mutate(valid, plan);
    EXPECT_EQ(mutants.size(), Mutator::planned_count(valid.size(), plan, seed));
    for (const Mutant& m : mutants) feed(tally, path, m, load);

    // IHDR fields with a valid CRC: sizes (0 and past 16384 refused by libpng; large ones must
    // be refused for the file's size before any allocation), bit depth, colour type, methods.
    for (uint32_t side : {0u, 1u, 1000u, 16384u, 16385u, 0x7fffffffu, 0xffffffffu}) {
      feed(tally, path, {fmt::format("width {}", side), edit_ihdr(valid, 16, be32(side))}, load);
      feed(tally, path, {fmt::format("height {}", side), edit_ihdr(valid, 20, be32(side))}, load);
    }
    for (uint8_t depth : {0, 1, 8, 16})
      for (uint8_t color : {0, 3, 6, 7}) {
        const std::string f = be32(16384) + be32(16384) + std::string{char(depth), char(color)};
        feed(tally, path,
             {fmt::format("16384x16384 depth {} colour {}", depth, color), edit_ihdr(valid, 16, f),
              true},
             load);
      }
    for (size_t at : {26, 27, 28})  // compression, filter, interlace method
      feed(tally, path, {fmt::format("IHDR byte {} = 7", at), edit_ihdr(valid, at, "\x07"), true},
           load);
    // Each chunk's length: 0, one more, past the file, the 2^31 limit, all ones.
    for (const Chunk& c : chunks)
      for (uint32_t len : {0u, c.length + 1, static_cast<uint32_t>(valid.size()), 0x7fffffffu,
                           0x80000000u, 0xffffffffu}) {
        std::string b = valid;
        put_be32(b, c.at, len);
        feed(tally, path, {fmt::format("{} length {}", c.type, len), b}, load);
      }
  }
  tally.expect_clean();
  EXPECT_GT(tally.loaded, 0);
  EXPECT_GT(tally.rejected, 0);
  EXPECT_EQ(tally.rejected_naming_file, tally.rejected);
  // Well under the 64 MiB cap: no mutant of a file this small may allocate much.
  if (AllocWatch::installed) {
    EXPECT_LT(tally.peak_alloc, size_t(8) << 20);
  }
}

}  // namespace
