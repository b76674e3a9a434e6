// Fuzz target: the safetensors reader (io/safetensors.hpp parse_safetensors, the code behind
// every model-file load). Bytes in, and either a file whose tensors tile the data buffer exactly
// (sizes = shape x dtype, total = bytes after the header, the digest when present is the data's
// SHA-256) or a FormatError naming the input. Seeds: fuzz/corpus/safetensors_fuzz/.
#include <cstdint>
#include <cstring>
#include <string_view>

#include "focus/io/safetensors.hpp"
#include "focus/io/sha256.hpp"
#include "fuzz_check.hpp"

using namespace focus;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  SafetensorsFile f;
  if (!fuzz::accepts<FormatError>([&] { f = parse_safetensors(bytes, "fuzz-input"); }, "fuzz-input"))
    return 0;

  FUZZ_ASSERT(size >= 8, "accepted %zu bytes", size);
  uint64_t header_len;
  std::memcpy(&header_len, data, 8);
  FUZZ_ASSERT(header_len <= size - 8, "header length %llu past the end",
              static_cast<unsigned long long>(header_len));
  uint64_t total = 0, checksum = 0;
  for (const auto& [name, t] : f.tensors) {
    FUZZ_ASSERT(name != "__metadata__", "a tensor named __metadata__");
    FUZZ_ASSERT(t.is_contiguous(), "tensor '%s' is not contiguous", name.c_str());
    FUZZ_ASSERT(t.nbytes() == static_cast<size_t>(t.numel()) * dtype_size(t.dtype()),
                "tensor '%s': %zu bytes for %lld elements", name.c_str(), t.nbytes(),
                static_cast<long long>(t.numel()));
    total += t.nbytes();
    const auto* p = static_cast<const uint8_t*>(t.raw_data());
    for (size_t i = 0; i < t.nbytes(); ++i) checksum += p[i];  // every byte readable
  }
  FUZZ_ASSERT(total == size - 8 - header_len, "tensors hold %llu bytes of a %llu-byte buffer",
              static_cast<unsigned long long>(total),
              static_cast<unsigned long long>(size - 8 - header_len));
  FUZZ_ASSERT(!f.metadata.count(std::string(kSha256MetadataKey)), "the digest left in metadata");
  if (!f.data_sha256.empty()) {
    const std::string actual = sha256_hex(bytes.substr(8 + header_len));
    FUZZ_ASSERT(f.data_sha256 == actual, "digest %s, data hashes to %s", f.data_sha256.c_str(),
                actual.c_str());
  }
  (void)checksum;
  return 0;
}
