// IDX reading and writing (see idx.hpp). The whole file is read into memory, gunzipped when it
// starts with the gzip magic (concatenated members allowed, anything else after the stream is an
// error), then the header is parsed and the payload size checked against the dims.
#include "focus/data/idx.hpp"

#include <zlib.h>

#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>

#include "focus/tensor/error.hpp"

namespace focus {
namespace {

constexpr int64_t kMaxBytes = int64_t(1) << 34;  // 16 GiB: far above any real IDX file

std::vector<uint8_t> read_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw IOError(fmt::format("idx: {}: no such file", path));
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  FOCUS_CHECK(f, IOError, "idx: {}: cannot open for reading", path);
  const std::streamoff n = f.tellg();
  FOCUS_CHECK(n >= 0, IOError, "idx: {}: cannot determine the file size", path);
  std::vector<uint8_t> bytes(static_cast<size_t>(n));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(bytes.data()), n);
  FOCUS_CHECK(f.gcount() == n, IOError, "idx: {}: short read ({} of {} bytes)", path, f.gcount(), n);
  return bytes;
}

bool is_gzip(const std::vector<uint8_t>& b) { return b.size() >= 2 && b[0] == 0x1f && b[1] == 0x8b; }

// Inflates one or more concatenated gzip members.
std::vector<uint8_t> gunzip(const std::vector<uint8_t>& in, const std::string& path) {
  // The last member's trailer holds its uncompressed size mod 2^32: a good first guess, capped
  // by deflate's maximal ratio (1032:1) so that a corrupt trailer cannot force a huge allocation.
  size_t guess = in.size() * 3;
  if (in.size() >= 18) {
    const uint8_t* t = in.data() + in.size() - 4;
    const size_t isize =
        uint32_t(t[0]) | uint32_t(t[1]) << 8 | uint32_t(t[2]) << 16 | uint32_t(t[3]) << 24;
    guess = std::max(guess, std::min(isize, in.size() * 1032));
  }
  std::vector<uint8_t> out(std::max<size_t>(guess, 1024));
  z_stream zs{};
  FOCUS_CHECK(inflateInit2(&zs, 15 + 16) == Z_OK, Error, "idx: {}: zlib init failed", path);
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&zs, inflateEnd);
  zs.next_in = const_cast<Bytef*>(in.data());
  size_t produced = 0;
  size_t in_left = in.size();
  for (;;) {
    if (produced == out.size()) {
      FOCUS_CHECK(static_cast<int64_t>(out.size()) < kMaxBytes, FormatError,
                  "idx: {}: decompresses to more than {} bytes", path, kMaxBytes);
      out.resize(out.size() * 2);
    }
    // zlib counts in uInt: feed and drain at most 1 GiB per call.
    const uInt in_chunk = static_cast<uInt>(std::min<size_t>(in_left, size_t(1) << 30));
    const uInt out_chunk = static_cast<uInt>(std::min<size_t>(out.size() - produced, size_t(1) << 30));
    zs.avail_in = in_chunk;
    zs.next_out = out.data() + produced;
    zs.avail_out = out_chunk;
    const int rc = inflate(&zs, Z_NO_FLUSH);
    in_left -= in_chunk - zs.avail_in;
    produced += out_chunk - zs.avail_out;
    if (rc == Z_STREAM_END) {
      if (in_left == 0) break;
      const uint8_t* next = zs.next_in;
      FOCUS_CHECK(in_left >= 2 && next[0] == 0x1f && next[1] == 0x8b, FormatError,
                  "idx: {}: {} trailing bytes after the gzip stream", path, in_left);
      inflateReset(&zs);
      continue;
    }
    if (rc == Z_BUF_ERROR && in_left == 0)
      throw FormatError(fmt::format("idx: {}: truncated gzip stream", path));
    if (rc != Z_OK && rc != Z_BUF_ERROR)
      throw FormatError(fmt::format("idx: {}: corrupt gzip stream ({})", path,
                                    zs.msg ? zs.msg : "zlib error"));
    FOCUS_CHECK(in_left > 0 || zs.avail_out == 0, FormatError, "idx: {}: truncated gzip stream",
                path);
  }
  out.resize(produced);
  return out;
}

uint32_t be32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

IdxArray parse(std::vector<uint8_t> bytes, const std::string& path) {
  FOCUS_CHECK(bytes.size() >= 4, FormatError, "idx: {}: truncated header ({} bytes)", path,
              bytes.size());
  FOCUS_CHECK(bytes[0] == 0 && bytes[1] == 0, FormatError,
              "idx: {}: bad magic 0x{:08x} (not an IDX file)", path, be32(bytes.data()));
  FOCUS_CHECK(bytes[2] == 0x08, FormatError,
              "idx: {}: element type 0x{:02x} not supported (only 0x08, uint8)", path, bytes[2]);
  const int rank = bytes[3];
  FOCUS_CHECK(rank >= 1 && rank <= 4, FormatError, "idx: {}: rank {} not supported (1..4)", path,
              rank);
  const size_t header = 4 + 4 * static_cast<size_t>(rank);
  FOCUS_CHECK(bytes.size() >= header, FormatError, "idx: {}: truncated header ({} of {} bytes)",
              path, bytes.size(), header);
  IdxArray a;
  int64_t count = 1;
  for (int d = 0; d < rank; ++d) {
    const int64_t n = be32(bytes.data() + 4 + 4 * d);
    a.dims.push_back(n);
    FOCUS_CHECK(n == 0 || count <= kMaxBytes / n, FormatError, "idx: {}: dims too large", path);
    count *= n;
  }
  const int64_t payload = static_cast<int64_t>(bytes.size() - header);
  FOCUS_CHECK(payload >= count, FormatError,
              "idx: {}: truncated payload ({} of {} bytes for dims {})", path, payload, count,
              fmt::join(a.dims, "x"));
  FOCUS_CHECK(payload == count, FormatError,
              "idx: {}: {} unexpected bytes after the payload for dims {}", path, payload - count,
              fmt::join(a.dims, "x"));
  bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(header));
  a.data = std::move(bytes);
  return a;
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  std::vector<uint8_t> bytes = read_file(path);
  if (is_gzip(bytes)) bytes = gunzip(bytes, path);
  return parse(std::move(bytes), path);
}

IdxArray read_idx_images(const std::string& path) {
  IdxArray a = read_idx(path);
  FOCUS_CHECK(a.dims.size() == 3, FormatError,
              "idx: {}: expected an image file (magic 0x00000803, dims N x rows x cols), got "
              "rank {}", path, a.dims.size());
  return a;
}

IdxArray read_idx_labels(const std::string& path, int64_t num_classes) {
  IdxArray a = read_idx(path);
  FOCUS_CHECK(a.dims.size() == 1, FormatError,
              "idx: {}: expected a label file (magic 0x00000801, dims N), got rank {}", path,
              a.dims.size());
  for (size_t i = 0; i < a.data.size(); ++i)
    FOCUS_CHECK(a.data[i] < num_classes, FormatError, "idx: {}: label {} at index {} >= {} classes",
                path, a.data[i], i, num_classes);
  return a;
}

void write_idx(const std::string& path, const std::vector<int64_t>& dims,
               const std::vector<uint8_t>& data, bool gzip) {
  FOCUS_CHECK(!dims.empty() && dims.size() <= 4, ShapeError, "write_idx: rank {} not in 1..4",
              dims.size());
  int64_t count = 1;
  for (int64_t d : dims) {
    FOCUS_CHECK(d >= 0 && d <= std::numeric_limits<uint32_t>::max(), ShapeError,
                "write_idx: dim {} out of range in ({})", d, fmt::join(dims, ", "));
    count *= d;
  }
  FOCUS_CHECK(static_cast<int64_t>(data.size()) == count, ShapeError,
              "write_idx: {} bytes for dims ({}) which need {}", data.size(), fmt::join(dims, ", "),
              count);
  std::vector<uint8_t> bytes = {0, 0, 0x08, static_cast<uint8_t>(dims.size())};
  for (int64_t d : dims)
    for (int s = 24; s >= 0; s -= 8) bytes.push_back(static_cast<uint8_t>(d >> s));
  bytes.insert(bytes.end(), data.begin(), data.end());
  if (gzip) {
    gzFile g = gzopen(path.c_str(), "wb");
    FOCUS_CHECK(g, IOError, "write_idx: {}: cannot open for writing", path);
    const bool ok = gzfwrite(bytes.data(), 1, bytes.size(), g) == bytes.size();
    FOCUS_CHECK(gzclose(g) == Z_OK && ok, IOError, "write_idx: {}: write failed", path);
  } else {
    std::ofstream f(path, std::ios::binary);
    FOCUS_CHECK(f, IOError, "write_idx: {}: cannot open for writing", path);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    f.close();
    FOCUS_CHECK(f, IOError, "write_idx: {}: write failed", path);
  }
}

}  // namespace focus
