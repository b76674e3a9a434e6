// IDX files (the MNIST / Fashion-MNIST container): a big-endian header (magic 0x0000TTRR with
// element type TT and rank RR, then RR uint32 dims) followed by the row-major payload. Files may
// be plain or one gzip stream (detected by the gzip magic, decompressed with zlib).
// Limits: only element type 0x08 (uint8) is supported, which is all (Fashion-)MNIST uses;
// ranks 1..4. Every reader validates magic, dims and payload size exactly (a truncated or
// oversized payload is a FormatError naming the file); a missing file is an IOError.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace focus {

struct IdxArray {
  std::vector<int64_t> dims;  // e.g. (N, 28, 28) for images, (N) for labels
  std::vector<uint8_t> data;  // product(dims) bytes, row-major
};

// Reads any uint8 IDX file of rank 1..4.
IdxArray read_idx(const std::string& path);
// Reads an image file (magic 0x00000803): dims (N, rows, cols).
IdxArray read_idx_images(const std::string& path);
// Reads a label file (magic 0x00000801): dims (N); every label must be < num_classes.
IdxArray read_idx_labels(const std::string& path, int64_t num_classes);

// Writes a uint8 IDX file (gzip-compressed when `gzip`); used by tests and tools. Throws
// ShapeError when data.size() != product(dims), IOError when the file cannot be written.
void write_idx(const std::string& path, const std::vector<int64_t>& dims,
               const std::vector<uint8_t>& data, bool gzip);

}  // namespace focus
