// The safetensors format (as written by the reference `safetensors` library): an 8-byte
// little-endian header length N, N bytes of JSON mapping each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets into the byte buffer that follows the
// header; tensors packed with no gaps or overlaps) plus an optional "__metadata__" object of
// string -> string, then the raw little-endian data. Dtypes: F32, F64, I32, I64, BF16, I8 (others,
// e.g. F16 or BOOL, are rejected). Limits: little-endian hosts only; the whole file is read.
//
// Integrity: focus writes the SHA-256 of the data buffer (every tensor's bytes as laid out in
// the file, i.e. everything after the header) as the metadata entry "focus.sha256" (64 lowercase
// hex digits) and verifies it on load, so a flipped bit in the weights is a FormatError instead
// of a model that loads and predicts nonsense. The header itself is checked by the validation
// below, not by the digest. Files without the entry (older focus files, other writers) still load
// unverified. Hashing is one pass over the bytes just read (OpenSSL, SHA-NI where the CPU has it).
#pragma once
#include <map>
#include <string>
#include <string_view>

#include "focus/tensor/tensor.hpp"

namespace focus {

// The metadata key holding the digest of the data buffer.
inline constexpr std::string_view kSha256MetadataKey = "focus.sha256";

// Writes atomically (temp file + fsync + rename, see atomic_file.hpp): tensors in name order,
// non-contiguous ones packed, the header padded with spaces to a multiple of 8 bytes.
// The metadata written is `metadata` plus "focus.sha256" (always, even with no other metadata).
// Throws ValueError for an undefined tensor, the reserved tensor name "__metadata__" or the
// reserved metadata key "focus.sha256", IOError when the file cannot be written (e.g. a missing
// directory).
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;  // without "focus.sha256"
  std::string data_sha256;  // the verified digest (lowercase hex); "" when the file records none
};

// Reads and validates a whole file. Throws IOError for a missing or unreadable file and
// FormatError (naming the file and the tensor) for a truncated file, a header length past the end,
// malformed JSON or JSON nested deeper than a header's 3 levels, an unknown dtype, a bad shape
// (one whose byte size, zeros read as ones, overflows int64), offsets out of range, overlapping,
// leaving gaps or not matching shape * dtype size, a non-string metadata value, a "focus.sha256"
// that is not 64 hex digits, and data that does not match its "focus.sha256" ("tensor data does
// not match its SHA-256: the file is corrupt").
SafetensorsFile load_safetensors(const std::string& path);

// The same reader on the bytes of a safetensors file held in memory (an upload, a fuzzer's
// input): the same checks and FormatErrors, each naming `what` where load_safetensors names the
// path. load_safetensors reads a file with this code, tensor by tensor, without holding it twice.
SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& what);

}  // namespace focus
