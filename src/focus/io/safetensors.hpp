// The safetensors format (as written by the reference `safetensors` library): an 8-byte
// little-endian header length N, N bytes of JSON mapping each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets into the byte buffer that follows the
// header; tensors packed with no gaps or overlaps) plus an optional "__metadata__" object of
// string -> string, then the raw little-endian data. Dtypes: F32, F64, I32, I64, BF16, I8 (others,
// e.g. F16 or BOOL, are rejected). Limits: little-endian hosts only; the whole file is read.
#pragma once
#include <map>
#include <string>

#include "focus/tensor/tensor.hpp"

namespace focus {

// Writes atomically (temp file + fsync + rename, see atomic_file.hpp): tensors in name order,
// non-contiguous ones packed, the header padded with spaces to a multiple of 8 bytes.
// Throws ValueError for an undefined tensor or the reserved name "__metadata__", IOError when the
// file cannot be written (e.g. a missing directory).
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

// Reads and validates a whole file. Throws IOError for a missing or unreadable file and
// FormatError (naming the file and the tensor) for a truncated file, a header length past the end,
// malformed JSON or JSON nested deeper than a header's 3 levels, an unknown dtype, a bad shape
// (one whose byte size, zeros read as ones, overflows int64), offsets out of range, overlapping,
// leaving gaps or not matching shape * dtype size, and a non-string metadata value.
SafetensorsFile load_safetensors(const std::string& path);

}  // namespace focus
