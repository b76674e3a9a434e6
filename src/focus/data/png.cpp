// libpng reading and writing (see png.hpp).
// Error handling: libpng reports errors by longjmp to the setjmp point in decode()/encode(). Those
// two functions own no C++ objects (only pointers into state held by the caller), so the jump
// skips no destructor; the caller's RAII handles free the libpng structs on every path, and the
// message captured by on_error() becomes a FormatError naming the input. I/O is in memory (files
// are read whole first), so the same decoder serves files and HTTP request bodies.
#include "focus/data/png.hpp"

#include <png.h>
#include <cerrno>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "focus/io/atomic_file.hpp"
#include "focus/tensor/error.hpp"

namespace focus {
namespace {

constexpr uint32_t kMaxSide = 16384;
constexpr uint64_t kMaxDeflateRatio = 1032;  // deflate's largest output per input byte

struct ErrorText {
  char msg[256] = "unknown libpng error";
};

[[noreturn]] void on_error(png_structp png, png_const_charp msg) {
  auto* err = static_cast<ErrorText*>(png_get_error_ptr(png));
  std::snprintf(err->msg, sizeof(err->msg), "%s", msg);
  png_longjmp(png, 1);
}
void on_warning(png_structp, png_const_charp) {}

struct ReadHandle {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~ReadHandle() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};
struct WriteHandle {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~WriteHandle() { png_destroy_write_struct(&png, info ? &info : nullptr); }
};

struct Decoded {
  bool too_large = false;  // refused for max_pixels (ImageTooLargeError)
  uint32_t width = 0, height = 0;
  int channels = 0, bit_depth = 0;  // after expansion: 1..4 channels, 8 or 16 bits
  std::vector<uint8_t> bytes;
  std::vector<png_bytep> rows;
};

// The bytes libpng reads from: the buffer after its 8 signature bytes. A read past the end is a
// libpng error ("truncated"), never a read out of bounds.
struct MemoryReader {
  const uint8_t* data;
  size_t size, pos;
};
void read_memory(png_structp png, png_bytep out, png_size_t n) {
  auto* r = static_cast<MemoryReader*>(png_get_io_ptr(png));
  if (n > r->size - r->pos) png_error(png, "truncated data");
  std::memcpy(out, r->data + r->pos, n);
  r->pos += n;
}
void write_memory(png_structp png, png_bytep data, png_size_t n) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<const char*>(data), n);
}
void flush_memory(png_structp) {}

// Decodes the image after the 8 signature bytes of a `size`-byte PNG. Returns false after a
// libpng error. Before allocating, the header's width x height is checked against max_pixels
// (out->too_large), and the size it claims against the input:
// deflate compresses at most 1032:1, so n bytes hold at most 1032 n bytes of filtered rows (one
// filter byte and rowbytes per row), and a corrupt header cannot ask for gigabytes.
bool decode(png_structp png, png_infop info, MemoryReader* in, uint64_t max_pixels, Decoded* out) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_read_fn(png, in, read_memory);
  png_set_sig_bytes(png, 8);
  png_set_user_limits(png, kMaxSide, kMaxSide);
  // Every ancillary chunk but tRNS (text, profiles, EXIF, gamma...) is skipped unread: libpng
  // would otherwise allocate the length a chunk header claims before reading it (41 bytes of
  // input asking for ~1 GB, found by fuzz/png_fuzz); skipped chunks stream through a small buffer.
  png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, nullptr, -1);
  png_read_info(png, info);
  const uint64_t pixels = uint64_t(png_get_image_width(png, info)) * png_get_image_height(png, info);
  if (pixels > max_pixels) {
    char msg[160];
    std::snprintf(msg, sizeof(msg), "%ux%u pixels, over the limit of %llu pixels",
                  png_get_image_width(png, info), png_get_image_height(png, info),
                  static_cast<unsigned long long>(max_pixels));
    out->too_large = true;
    png_error(png, msg);
  }
  const uint64_t filtered =
      (uint64_t(png_get_rowbytes(png, info)) + 1) * png_get_image_height(png, info);
  if (filtered > kMaxDeflateRatio * uint64_t(in->size)) {
    char msg[160];
    std::snprintf(msg, sizeof(msg),
                  "the header's %ux%u image needs %llu bytes of pixel data, more than %llu "
                  "bytes of PNG can hold", png_get_image_width(png, info),
                  png_get_image_height(png, info), static_cast<unsigned long long>(filtered),
                  static_cast<unsigned long long>(in->size));
    png_error(png, msg);
  }
  const int color = png_get_color_type(png, info);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8)
    png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  out->width = png_get_image_width(png, info);
  out->height = png_get_image_height(png, info);
  out->channels = png_get_channels(png, info);
  out->bit_depth = png_get_bit_depth(png, info);
  const size_t stride = png_get_rowbytes(png, info);
  out->bytes.resize(stride * out->height);
  out->rows.resize(out->height);
  for (uint32_t y = 0; y < out->height; ++y) out->rows[y] = out->bytes.data() + y * stride;
  png_read_image(png, out->rows.data());
  png_read_end(png, nullptr);
  return true;
}

// Writes 8-bit rows of the given colour type to `out`. Returns false after a libpng error.
bool encode(png_structp png, png_infop info, std::string* out, uint32_t width, uint32_t height,
            int color_type, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_write_fn(png, out, write_memory, flush_memory);
  png_set_IHDR(png, info, width, height, 8, color_type, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, nullptr);
  return true;
}

}  // namespace

Image decode_png(std::string_view bytes, const std::string& what, int64_t max_pixels) {
  FOCUS_CHECK(max_pixels >= 1, ValueError, "{}: max_pixels {} must be positive", what, max_pixels);
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  FOCUS_CHECK(bytes.size() >= 8 && png_sig_cmp(data, 0, 8) == 0, FormatError,
              "{}: not a PNG (bad signature)", what);
  ErrorText err;
  Decoded dec;
  ReadHandle h;
  h.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &err, on_error, on_warning);
  FOCUS_CHECK(h.png, Error, "{}: libpng initialisation failed", what);
  h.info = png_create_info_struct(h.png);
  FOCUS_CHECK(h.info, Error, "{}: libpng initialisation failed", what);
  MemoryReader in{data, bytes.size(), 8};
  if (!decode(h.png, h.info, &in, static_cast<uint64_t>(max_pixels), &dec)) {
    if (dec.too_large) throw ImageTooLargeError(fmt::format("{}: {}", what, err.msg));
    throw FormatError(fmt::format("{}: corrupt or truncated PNG ({})", what, err.msg));
  }

  // Interleaved samples -> planar floats; alpha (the last sample of 2 and 4) multiplies colour.
  const int nc = dec.channels, color_channels = nc >= 3 ? 3 : 1;
  const bool alpha = nc == 2 || nc == 4;
  const int64_t H = dec.height, W = dec.width;
  Image img = make_image(color_channels, H, W);  // (C, H, W)
  const float scale = dec.bit_depth == 16 ? 1.f / 65535.f : 1.f / 255.f;
  for (int64_t y = 0; y < H; ++y) {
    const uint8_t* row = dec.rows[y];
    for (int64_t x = 0; x < W; ++x) {
      float s[4];
      for (int c = 0; c < nc; ++c) {
        const int64_t k = x * nc + c;
        s[c] = (dec.bit_depth == 16 ? (row[2 * k] << 8 | row[2 * k + 1]) : row[k]) * scale;
      }
      const float a = alpha ? s[nc - 1] : 1.f;
      for (int c = 0; c < color_channels; ++c) img.data[(c * H + y) * W + x] = s[c] * a;
    }
  }
  return img;
}

Image read_png(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  FOCUS_CHECK(f, IOError, "read_png: {}: cannot open ({})", path, std::strerror(errno));
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  FOCUS_CHECK(!f.bad(), IOError, "read_png: {}: read failed", path);
  return decode_png(bytes, "read_png: " + path);
}

Image read_png_gray(const std::string& path, int64_t height, int64_t width) {
  return resize(to_gray(read_png(path)), height, width);
}

std::string encode_png(const Image& img) {
  FOCUS_CHECK(img.channels == 1 || img.channels == 3, ShapeError,
              "encode_png: {} channels (need 1 or 3)", img.channels);
  FOCUS_CHECK(img.height > 0 && img.width > 0 && img.height <= kMaxSide && img.width <= kMaxSide &&
                  img.data.size() == static_cast<size_t>(img.channels * img.height * img.width),
              ShapeError, "encode_png: malformed image (C={}, H={}, W={}, {} values)",
              img.channels, img.height, img.width, img.data.size());
  const int64_t C = img.channels, H = img.height, W = img.width;
  std::vector<uint8_t> bytes(static_cast<size_t>(C * H * W));  // (H, W, C) interleaved
  for (int64_t c = 0; c < C; ++c)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        const float v = img.at(c, y, x);  // NaN -> 0
        bytes[(y * W + x) * C + c] =
            v > 0.f ? (v < 1.f ? static_cast<uint8_t>(std::lround(v * 255.f)) : 255) : 0;
      }
  std::vector<png_bytep> rows(static_cast<size_t>(H));
  for (int64_t y = 0; y < H; ++y) rows[y] = bytes.data() + y * W * C;
  ErrorText err;
  WriteHandle h;
  h.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &err, on_error, on_warning);
  h.info = h.png ? png_create_info_struct(h.png) : nullptr;
  FOCUS_CHECK(h.info, Error, "encode_png: libpng initialisation failed");
  std::string out;
  if (!encode(h.png, h.info, &out, static_cast<uint32_t>(W), static_cast<uint32_t>(H),
              C == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, rows.data()))
    throw Error(fmt::format("encode_png: {}", err.msg));
  return out;
}

void write_png(const std::string& path, const Image& img) {
  std::string bytes;
  try {
    bytes = encode_png(img);
  } catch (const ShapeError& e) {
    throw ShapeError(fmt::format("write_png: {}: {}", path, e.what()));
  }
  write_file_atomic(path, bytes);
}

}  // namespace focus
