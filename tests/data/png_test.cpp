// PNG and image helpers: write/read round trips (gray, RGB); 16-bit gray, RGBA and palette files
// written independently with libpng's simplified API decode to the expected values; truncated,
// garbage and missing files give typed errors naming the file; a 56x56 image becomes the 2x2
// block means at 28x28; resize and to_gray against hand-computed values.
#include <gtest/gtest.h>
#include <malloc.h>
#include <png.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>

#include "data/png_writer.hpp"
#include "data/temp_dir.hpp"
#include "focus/data/png.hpp"
#include "focus/tensor/rng.hpp"

using namespace focus;
using focus::testing::read_bytes;
using focus::testing::TempDir;
using focus::testing::throws_with;
using focus::testing::write_bytes;
using focus::testing::write_simplified;

namespace {

// Byte 25 of a PNG is the IHDR colour type.
int color_type_of(const std::string& path) { return read_bytes(path).at(25); }

// glibc's "max mmap bytes" (malloc_stats() prints it on stderr): the most memory this process
// ever held in mmap'd blocks, which is where an allocation of 128 KiB or more lands.
size_t max_mmap_bytes() {
  std::fflush(stderr);
  const int saved = dup(2);
  FILE* tmp = std::tmpfile();
  dup2(fileno(tmp), 2);
  malloc_stats();
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  std::rewind(tmp);
  char line[256];
  size_t bytes = 0;
  while (std::fgets(line, sizeof line, tmp))
    if (std::sscanf(line, "max mmap bytes = %zu", &bytes) == 1) break;
  std::fclose(tmp);
  return bytes;
}

}  // namespace

TEST(Png, GrayAndRgbRoundTrip) {
  TempDir dir;
  for (int64_t C : {1, 3}) {
    Image img = make_image(C, 5, 7);  // (C, 5, 7): every 8-bit level k/255 comes back exactly
    for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = ((i * 37) % 256) / 255.f;
    const std::string p = dir.file(C == 1 ? "gray.png" : "rgb.png");
    write_png(p, img);
    EXPECT_EQ(color_type_of(p), C == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB);
    const Image back = read_png(p);
    ASSERT_EQ(back.channels, C);
    ASSERT_EQ(back.height, 5);
    ASSERT_EQ(back.width, 7);
    for (size_t i = 0; i < img.data.size(); ++i) EXPECT_FLOAT_EQ(back.data[i], img.data[i]) << i;
  }
  // Out-of-range values clamp; no temporary file is left behind.
  Image img = make_image(1, 1, 3);
  img.data = {-0.5f, 2.f, 0.5f};
  write_png(dir.file("clamp.png"), img);
  const Image back = read_png(dir.file("clamp.png"));
  EXPECT_EQ(back.data, (std::vector<float>{0.f, 1.f, 128 / 255.f}));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.str()),
                          std::filesystem::directory_iterator()),
            3);
  EXPECT_THROW(write_png(dir.file("two.png"), make_image(2, 4, 4)), ShapeError);
  EXPECT_THROW(write_png(dir.str() + "/missing_dir/x.png", make_image(1, 4, 4)), IOError);
}

TEST(Png, DecodesSixteenBitRgbaAndPalette) {
  TempDir dir;
  // 16-bit gray (linear format: written as stored).
  const uint16_t g16[4] = {0, 40000, 65535, 1234};
  write_simplified(dir.file("g16.png"), 2, 2, PNG_FORMAT_LINEAR_Y, g16);
  Image img = read_png(dir.file("g16.png"));
  ASSERT_EQ(img.channels, 1);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(img.data[i], g16[i] / 65535.f, 1e-7) << i;

  // RGBA: colour is multiplied by alpha (composited over black).
  const uint8_t rgba[8] = {255, 0, 100, 128, 10, 20, 30, 255};
  write_simplified(dir.file("rgba.png"), 2, 1, PNG_FORMAT_RGBA, rgba);
  EXPECT_EQ(color_type_of(dir.file("rgba.png")), PNG_COLOR_TYPE_RGB_ALPHA);
  img = read_png(dir.file("rgba.png"));
  ASSERT_EQ(img.channels, 3);
  const float a = 128 / 255.f;
  EXPECT_NEAR(img.at(0, 0, 0), 1.f * a, 1e-6);
  EXPECT_NEAR(img.at(1, 0, 0), 0.f, 1e-6);
  EXPECT_NEAR(img.at(2, 0, 0), 100 / 255.f * a, 1e-6);
  EXPECT_NEAR(img.at(2, 0, 1), 30 / 255.f, 1e-6);

  // Palette: indices into an RGB colour map.
  const uint8_t idx[4] = {0, 1, 2, 1};
  const uint8_t cmap[9] = {0, 0, 0, 255, 255, 255, 10, 20, 30};
  write_simplified(dir.file("pal.png"), 2, 2, PNG_FORMAT_RGB_COLORMAP, idx, cmap, 3);
  EXPECT_EQ(color_type_of(dir.file("pal.png")), PNG_COLOR_TYPE_PALETTE);
  img = read_png(dir.file("pal.png"));
  ASSERT_EQ(img.channels, 3);
  EXPECT_NEAR(img.at(0, 1, 0), 10 / 255.f, 1e-6);
  EXPECT_NEAR(img.at(1, 1, 0), 20 / 255.f, 1e-6);
  EXPECT_NEAR(img.at(2, 0, 1), 1.f, 1e-6);
  EXPECT_NEAR(img.at(0, 0, 0), 0.f, 1e-6);
  // The model view: gray with the 601 weights.
  const Image gray = read_png_gray(dir.file("pal.png"), 2, 2);
  EXPECT_NEAR(gray.at(0, 1, 0), (0.299f * 10 + 0.587f * 20 + 0.114f * 30) / 255.f, 1e-6);
}

TEST(Png, CorruptFilesAreFormatErrorsNamingTheFile) {
  TempDir dir;
  Image noise = make_image(3, 64, 64);  // incompressible, so the pixel data spans the file
  Rng rng(7);
  rng.fill_uniform(noise.data.data(), static_cast<int64_t>(noise.data.size()), 0.f, 1.f);
  write_png(dir.file("ok.png"), noise);
  const std::vector<uint8_t> good = read_bytes(dir.file("ok.png"));
  ASSERT_GT(good.size(), 10000u);
  for (double keep : {0.9, 0.5, 0.05}) {
    const std::string p = dir.file("cut" + std::to_string(int(keep * 100)) + ".png");
    write_bytes(p, {good.begin(), good.begin() + static_cast<long>(good.size() * keep)});
    EXPECT_TRUE(throws_with<FormatError>([&] { read_png(p); }, p)) << keep;
  }
  auto flipped = good;
  for (size_t i = 100; i < 200; ++i) flipped[i] ^= 0xFF;  // CRC / zlib errors
  write_bytes(dir.file("flipped.png"), flipped);
  EXPECT_TRUE(throws_with<FormatError>([&] { read_png(dir.file("flipped.png")); },
                                       dir.file("flipped.png")));
  write_bytes(dir.file("text.png"), {'h', 'e', 'l', 'l', 'o'});
  EXPECT_TRUE(throws_with<FormatError>([&] { read_png(dir.file("text.png")); }, "not a PNG"));
  EXPECT_TRUE(throws_with<IOError>([&] { read_png(dir.file("none.png")); }, dir.file("none.png")));
  EXPECT_NO_THROW(read_png(dir.file("ok.png")));  // the good file still reads
}

// Ancillary chunks are skipped unread. Found by fuzz/png_fuzz: 41 bytes whose iTXt header claimed
// ~1 GB made libpng allocate that much before finding the data missing (and an allocation that
// fails is only a libpng warning, so the error was "truncated data" either way). Complete text,
// EXIF and gamma chunks change nothing; a chunk claiming 2 GB after IHDR is "truncated data",
// and glibc's high-water mark of mmap'd bytes shows that the 2 GB were never asked for.
TEST(Png, AncillaryChunksAreSkippedWithoutAllocatingTheirClaimedLength) {
  Image img = make_image(1, 3, 4);  // (1, 3, 4)
  for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = i / 11.f;
  const std::string good = encode_png(img);
  const size_t after_ihdr = 8 + 8 + 13 + 4;  // signature, IHDR length+type, data, CRC
  ASSERT_EQ(good.substr(12, 4), "IHDR");
  auto chunk = [](const std::string& type, const std::string& body, uint32_t claimed) {
    std::string c;
    for (int s = 24; s >= 0; s -= 8) c += static_cast<char>((claimed >> s) & 0xFF);
    c += type + body;
    const uint32_t crc = static_cast<uint32_t>(crc32(
        crc32(0, reinterpret_cast<const Bytef*>(type.data()), 4),
        reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size())));
    for (int s = 24; s >= 0; s -= 8) c += static_cast<char>((crc >> s) & 0xFF);
    return c;
  };
  std::string with_chunks = good;
  with_chunks.insert(after_ihdr, chunk("tEXt", std::string("Comment\0hi", 10), 10) +
                                     chunk("iTXt", std::string(5000, 'x'), 5000) +
                                     chunk("eXIf", std::string("MM\0*", 4), 4) +
                                     chunk("gAMA", std::string("\0\0\xaf\xc8", 4), 4));
  const Image back = decode_png(with_chunks, "chunks");
  EXPECT_EQ(back.data, decode_png(good, "good").data);

  std::string bomb = good.substr(0, after_ihdr);
  bomb += chunk("iTXt", "", 0x7FFFFF00u).substr(0, 8);  // the header alone: 2 GB claimed, none sent
  const size_t before = max_mmap_bytes();
  EXPECT_TRUE(throws_with<FormatError>([&] { decode_png(bomb, "bomb"); },
                                       "bomb: corrupt or truncated PNG (truncated"));
  if (before < (size_t(1) << 30)) {  // glibc serves a 2 GB malloc by mmap, counted here
    EXPECT_LT(max_mmap_bytes(), size_t(1) << 30) << "the claimed 2 GB were allocated";
  }
}

// A decompression bomb: 16384x16384 black pixels at 1 bit deflate to ~33 KB, and decoding them
// would take 268 MB of rows and 1 GB of floats. With max_pixels the header alone refuses them
// (ImageTooLargeError, a FormatError) and nothing of that size is allocated; within the limit an
// image decodes as before.
TEST(Png, MaxPixelsRefusesABombFromItsHeader) {
  auto bomb = [](uint32_t side) {  // a 1-bit gray PNG of side x side zeros
    auto be32 = [](uint32_t v) {
      return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
    };
    auto chunk = [&](const std::string& type, const std::string& body) {
      const uLong crc = crc32(crc32(0, reinterpret_cast<const Bytef*>(type.data()), 4),
                              reinterpret_cast<const Bytef*>(body.data()), uInt(body.size()));
      return be32(uint32_t(body.size())) + type + body + be32(uint32_t(crc));
    };
    const std::string raw(size_t(side) * (1 + (side + 7) / 8), '\0');  // filter 0, zero bits
    std::string z(compressBound(uLong(raw.size())), '\0');
    uLongf zn = z.size();
    EXPECT_EQ(compress2(reinterpret_cast<Bytef*>(z.data()), &zn,
                        reinterpret_cast<const Bytef*>(raw.data()), uLong(raw.size()), 9), Z_OK);
    z.resize(zn);
    return std::string("\x89PNG\r\n\x1a\n", 8) +
           chunk("IHDR", be32(side) + be32(side) + std::string("\x01\x00\x00\x00\x00", 5)) +
           chunk("IDAT", z) + chunk("IEND", "");
  };
  const std::string big = bomb(16384);
  EXPECT_LT(big.size(), 64u << 10);
  const size_t before = max_mmap_bytes();
  EXPECT_TRUE(throws_with<ImageTooLargeError>([&] { decode_png(big, "body", 4096 * 4096); },
                                              "body: 16384x16384 pixels, over the limit of "
                                              "16777216 pixels"));
  if (before < (size_t(128) << 20)) { EXPECT_LT(max_mmap_bytes(), size_t(128) << 20); }

  const std::string small = bomb(64);
  EXPECT_TRUE(throws_with<FormatError>([&] { decode_png(small, "s", 64 * 64 - 1); }, "64x64"));
  const Image img = decode_png(small, "s", 64 * 64);
  EXPECT_EQ(img.channels, 1);
  EXPECT_EQ(img.height * img.width, 64 * 64);
  EXPECT_THROW(decode_png(small, "s", 0), ValueError);
}

TEST(Png, ResizesFiftySixToTwentyEightByBlockMeans) {
  TempDir dir;
  Image big = make_image(1, 56, 56);
  for (int64_t y = 0; y < 56; ++y)
    for (int64_t x = 0; x < 56; ++x) big.data[y * 56 + x] = ((y * 31 + x * 17) % 256) / 255.f;
  write_png(dir.file("big.png"), big);
  const Image small = read_png_gray(dir.file("big.png"));
  ASSERT_EQ(small.channels, 1);
  ASSERT_EQ(small.height, 28);
  ASSERT_EQ(small.width, 28);
  for (int64_t y = 0; y < 28; ++y)
    for (int64_t x = 0; x < 28; ++x) {
      const float mean = (big.at(0, 2 * y, 2 * x) + big.at(0, 2 * y, 2 * x + 1) +
                          big.at(0, 2 * y + 1, 2 * x) + big.at(0, 2 * y + 1, 2 * x + 1)) / 4;
      ASSERT_NEAR(small.at(0, y, x), mean, 1e-6) << y << "," << x;
    }
  const Tensor t = image_to_tensor(small, Normalization{});
  EXPECT_EQ(t.shape(), (Shape{1, 1, 28, 28}));
  EXPECT_NEAR(t.data<float>()[29], (small.data[29] - 0.2860f) / 0.3530f, 1e-6);
}

TEST(Image, ResizeByHand) {
  // Area, 3 -> 2: output 0 covers source [0, 1.5) = 1 * a + 0.5 * b over 1.5.
  Image row = make_image(1, 1, 3);
  row.data = {0.f, 0.3f, 0.9f};
  Image r = resize(row, 1, 2);
  EXPECT_NEAR(r.data[0], (0.f + 0.5f * 0.3f) / 1.5f, 1e-6);
  EXPECT_NEAR(r.data[1], (0.5f * 0.3f + 0.9f) / 1.5f, 1e-6);
  // Bilinear, 2 -> 4 (half-pixel centres): sources -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
  Image two = make_image(1, 1, 2);
  two.data = {0.f, 1.f};
  r = resize(two, 1, 4);
  EXPECT_EQ(r.data.size(), 4u);
  EXPECT_NEAR(r.data[0], 0.f, 1e-6);
  EXPECT_NEAR(r.data[1], 0.25f, 1e-6);
  EXPECT_NEAR(r.data[2], 0.75f, 1e-6);
  EXPECT_NEAR(r.data[3], 1.f, 1e-6);
  // Mixed: height grows 1 -> 2 (rows copied), width shrinks 2 -> 1 (mean).
  r = resize(two, 2, 1);
  EXPECT_NEAR(r.data[0], 0.5f, 1e-6);
  EXPECT_NEAR(r.data[1], 0.5f, 1e-6);
  EXPECT_THROW(resize(two, 0, 3), ShapeError);
  // to_gray with the 601 weights.
  Image rgb = make_image(3, 1, 1);
  rgb.data = {1.f, 0.5f, 0.25f};
  EXPECT_NEAR(to_gray(rgb).data[0], 0.299f + 0.587f * 0.5f + 0.114f * 0.25f, 1e-6);
  EXPECT_THROW(to_gray(make_image(2, 1, 1)), ShapeError);
}
