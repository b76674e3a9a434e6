// safetensors writer and validating reader (see safetensors.hpp).
#include "focus/io/safetensors.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <functional>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "focus/io/atomic_file.hpp"
#include "focus/io/sha256.hpp"
#include "focus/tensor/strided.hpp"

namespace focus {

static_assert(std::endian::native == std::endian::little,
              "safetensors I/O copies raw bytes and needs a little-endian host");

namespace {

using json = nlohmann::json;
constexpr const char* kMetadataKey = "__metadata__";

void put_u64_le(char* out, uint64_t v) { std::memcpy(out, &v, 8); }
uint64_t get_u64_le(const char* in) {
  uint64_t v;
  std::memcpy(&v, in, 8);
  return v;
}

// ---- reading -----------------------------------------------------------------------------------

// An open file descriptor, closed on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Reads exactly n bytes at `offset`; returns false on a short read (the file is shorter).
bool read_at(int fd, void* dst, size_t n, uint64_t offset, const std::string& path) {
  char* p = static_cast<char*>(dst);
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    FOCUS_CHECK(r >= 0, IOError, "cannot read '{}': {}", path, std::strerror(errno));
    if (r == 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return true;
}

// One tensor's header entry, validated on its own.
struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

uint64_t get_unsigned(const json& v, const std::string& path, const std::string& name,
                      const char* field) {
  FOCUS_CHECK(v.is_number_unsigned(), FormatError,
              "'{}': tensor '{}': {} must hold non-negative integers, got {}", path, name, field,
              v.dump());
  return v.get<uint64_t>();
}

Entry parse_entry(const std::string& path, const std::string& name, const json& v) {
  FOCUS_CHECK(v.is_object(), FormatError, "'{}': tensor '{}': header entry is not an object", path,
              name);
  for (const char* key : {"dtype", "shape", "data_offsets"})
    FOCUS_CHECK(v.contains(key), FormatError, "'{}': tensor '{}': missing \"{}\"", path, name, key);
  for (const auto& [key, val] : v.items())
    FOCUS_CHECK(key == "dtype" || key == "shape" || key == "data_offsets", FormatError,
                "'{}': tensor '{}': unexpected field \"{}\"", path, name, key);
  Entry e;
  e.name = name;
  const json& dt = v["dtype"];
  FOCUS_CHECK(dt.is_string(), FormatError, "'{}': tensor '{}': dtype is not a string", path, name);
  try {
    e.dtype = dtype_from_name(dt.get<std::string>());
  } catch (const FormatError&) {
    throw FormatError(fmt::format("'{}': tensor '{}': unknown dtype '{}' (supported: F32, F64, "
                                  "I32, I64, BF16, I8)", path, name, dt.get<std::string>()));
  }
  const json& shape = v["shape"];
  FOCUS_CHECK(shape.is_array(), FormatError, "'{}': tensor '{}': shape is not an array", path, name);
  // extent: the bytes of the shape with every 0 read as 1. It bounds each stride, so it must fit
  // in int64 even when a 0 makes the tensor empty (e.g. (0, 2^62, 2^62)).
  uint64_t nbytes = dtype_size(e.dtype), extent = nbytes;
  for (const json& d : shape) {
    const uint64_t n = get_unsigned(d, path, name, "shape");
    FOCUS_CHECK(!__builtin_mul_overflow(extent, std::max<uint64_t>(n, 1), &extent) &&
                    extent <= static_cast<uint64_t>(INT64_MAX),
                FormatError, "'{}': tensor '{}': shape {} is too large", path, name, shape.dump());
    nbytes *= n;  // <= extent
    e.shape.push_back(static_cast<int64_t>(n));
  }
  const json& off = v["data_offsets"];
  FOCUS_CHECK(off.is_array() && off.size() == 2, FormatError,
              "'{}': tensor '{}': data_offsets must be [begin, end], got {}", path, name, off.dump());
  e.begin = get_unsigned(off[0], path, name, "data_offsets");
  e.end = get_unsigned(off[1], path, name, "data_offsets");
  FOCUS_CHECK(e.begin <= e.end && e.end - e.begin == nbytes, FormatError,
              "'{}': tensor '{}': data_offsets [{}, {}] span {} bytes but {} {} needs {}", path,
              name, e.begin, e.end, e.end >= e.begin ? e.end - e.begin : 0, dtype_name(e.dtype),
              to_string(e.shape), nbytes);
  return e;
}

std::map<std::string, std::string> parse_metadata(const std::string& path, const json& v) {
  FOCUS_CHECK(v.is_object(), FormatError, "'{}': {} is not an object", path, kMetadataKey);
  std::map<std::string, std::string> out;
  for (const auto& [key, val] : v.items()) {
    FOCUS_CHECK(val.is_string(), FormatError, "'{}': {} value of '{}' is not a string: {}", path,
                kMetadataKey, key, val.dump());
    out.emplace(key, val.get<std::string>());
  }
  return out;
}

// Offsets must tile [0, data_size) exactly: sorted by begin, each starts where the last ended.
void check_layout(const std::string& path, std::vector<Entry>& entries, uint64_t data_size) {
  for (const Entry& e : entries)
    FOCUS_CHECK(e.end <= data_size, FormatError,
                "'{}': tensor '{}': data_offsets [{}, {}] out of range: the data buffer has {} "
                "bytes (truncated file?)", path, e.name, e.begin, e.end, data_size);
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t pos = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    FOCUS_CHECK(e.begin >= pos, FormatError,
                "'{}': tensor '{}': data_offsets [{}, {}] overlap tensor '{}' (which ends at {})",
                path, e.name, e.begin, e.end, prev ? prev->name : "", pos);
    FOCUS_CHECK(e.begin == pos, FormatError,
                "'{}': tensor '{}': gap of {} unused bytes before its data at {}", path, e.name,
                e.begin - pos, e.begin);
    pos = e.end;
    prev = &e;
  }
  FOCUS_CHECK(pos == data_size, FormatError,
              "'{}': {} trailing bytes after the last tensor's data (buffer {} bytes, tensors "
              "cover {})", path, data_size - pos, data_size, pos);
}

// The bytes being parsed: `size` of them, read on demand by `read` (n bytes at an offset into
// `dst`; false on a short read). A file is read with pread straight into each tensor's buffer, so
// loading never holds the file twice; a buffer in memory is copied from.
struct ByteSource {
  uint64_t size;
  std::function<bool(void* dst, size_t n, uint64_t offset)> read;
};

// The reader proper, on either source; `path` names the input in every message.
SafetensorsFile parse(const ByteSource& src, const std::string& path) {
  const uint64_t file_size = src.size;
  char len_bytes[8];
  FOCUS_CHECK(file_size >= 8 && src.read(len_bytes, 8, 0), FormatError,
              "'{}': truncated file: {} bytes, too short for the 8-byte header length", path,
              file_size);
  const uint64_t header_len = get_u64_le(len_bytes);
  FOCUS_CHECK(header_len <= file_size - 8, FormatError,
              "'{}': header length {} is larger than the file ({} bytes after the length field)",
              path, header_len, file_size - 8);
  std::string header(header_len, '\0');
  FOCUS_CHECK(src.read(header.data(), header_len, 8), FormatError,
              "'{}': truncated file while reading the {}-byte header", path, header_len);

  json doc;
  std::set<std::string> names;  // nlohmann keeps the last of repeated keys: reject them instead
  // A header nests 3 deep ({name: {"shape": [n]}}); deeper values are refused while parsing, so
  // that no error message dumps (recursively) a value nested thousands deep.
  const json::parser_callback_t checked = [&](int depth, json::parse_event_t ev, json& key) {
    FOCUS_CHECK(depth <= 3, FormatError, "'{}': JSON header nested deeper than 3 levels", path);
    FOCUS_CHECK(!(depth == 1 && ev == json::parse_event_t::key) || names.insert(key).second,
                FormatError, "'{}': tensor '{}' appears twice in the header", path,
                key.get<std::string>());
    return true;
  };
  try {
    doc = json::parse(header, checked);
  } catch (const json::exception& e) {
    throw FormatError(fmt::format("'{}': malformed JSON header: {}", path, e.what()));
  }
  FOCUS_CHECK(doc.is_object(), FormatError, "'{}': JSON header is not an object", path);

  SafetensorsFile out;
  std::vector<Entry> entries;
  for (const auto& [name, val] : doc.items()) {
    if (name == kMetadataKey) out.metadata = parse_metadata(path, val);
    else entries.push_back(parse_entry(path, name, val));
  }
  std::string recorded;  // the digest the file records, lowercase; "" when none
  if (auto it = out.metadata.find(std::string(kSha256MetadataKey)); it != out.metadata.end()) {
    recorded = it->second;
    FOCUS_CHECK(is_sha256_hex(recorded), FormatError,
                "'{}': metadata '{}' is not a SHA-256 (64 hex digits): '{}'", path,
                kSha256MetadataKey, recorded.substr(0, 80));
    for (char& c : recorded)  // hex in capitals is the same digest
      if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    out.metadata.erase(it);
  }
  const uint64_t data_start = 8 + header_len;
  check_layout(path, entries, file_size - data_start);  // sorts entries by offset

  // Tensor by tensor in file order, so the digest covers the data buffer as laid out.
  Sha256 digest;
  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    FOCUS_CHECK(src.read(t.raw_data(), e.end - e.begin, data_start + e.begin),
                FormatError, "'{}': tensor '{}': file truncated while reading its data", path,
                e.name);
    if (!recorded.empty()) digest.update(t.raw_data(), e.end - e.begin);
    out.tensors.emplace(e.name, std::move(t));
  }
  if (!recorded.empty()) {
    const std::string actual = digest.hex();
    FOCUS_CHECK(actual == recorded, FormatError,
                "'{}': tensor data does not match its SHA-256: the file is corrupt (recorded {}, "
                "computed {})", path, recorded, actual);
    out.data_sha256 = actual;
  }
  return out;
}

}  // namespace

SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& what) {
  const ByteSource src{bytes.size(), [bytes](void* dst, size_t n, uint64_t offset) {
                         if (offset > bytes.size() || n > bytes.size() - offset) return false;
                         if (n > 0) std::memcpy(dst, bytes.data() + offset, n);
                         return true;
                       }};
  return parse(src, what);
}

SafetensorsFile load_safetensors(const std::string& path) {
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  FOCUS_CHECK(f.fd >= 0, IOError, "cannot open '{}': {}", path, std::strerror(errno));
  struct stat st;
  FOCUS_CHECK(::fstat(f.fd, &st) == 0, IOError, "cannot stat '{}': {}", path, std::strerror(errno));
  FOCUS_CHECK(S_ISREG(st.st_mode), IOError, "'{}' is not a regular file", path);
  const ByteSource src{static_cast<uint64_t>(st.st_size),
                       [&](void* dst, size_t n, uint64_t offset) {
                         return read_at(f.fd, dst, n, offset, path);
                       }};
  return parse(src, path);
}

// ---- writing -----------------------------------------------------------------------------------

namespace {

// A packed copy of a non-contiguous tensor, byte-wise so that every dtype (BF16 too) works.
Tensor pack(const Tensor& t) {
  if (t.is_contiguous()) return t;
  Tensor out = Tensor::empty(t.shape(), t.dtype());
  const size_t es = dtype_size(t.dtype());
  const char* src = static_cast<const char*>(t.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  const Shape& packed_strides = out.strides();
  for_each_strided<2>(t.shape(), {&packed_strides, &t.strides()}, [&](int64_t od, int64_t os) {
    std::memcpy(dst + od * es, src + os * static_cast<int64_t>(es), es);
  });
  return out;
}

}  // namespace

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  FOCUS_CHECK(!metadata.count(std::string(kSha256MetadataKey)), ValueError,
              "save_safetensors '{}': metadata key '{}' is reserved (the writer records the "
              "digest itself)", path, kSha256MetadataKey);
  json header = json::object();
  std::vector<Tensor> packed;
  packed.reserve(tensors.size());
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    FOCUS_CHECK(name != kMetadataKey, ValueError,
                "save_safetensors '{}': '{}' is reserved and cannot name a tensor", path, name);
    FOCUS_CHECK(t.defined(), ValueError, "save_safetensors '{}': tensor '{}' is undefined", path,
                name);
    packed.push_back(pack(t));
    const uint64_t n = t.nbytes();
    header[name] = {{"dtype", std::string(dtype_name(t.dtype()))},
                    {"shape", t.shape()},
                    {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  Sha256 digest;  // of the data buffer: the packed tensors in name (= offset) order
  for (const Tensor& t : packed) digest.update(t.raw_data(), t.nbytes());
  json meta = metadata;
  meta[std::string(kSha256MetadataKey)] = digest.hex();
  header[kMetadataKey] = std::move(meta);
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data then starts 8-byte aligned

  char len_bytes[8];
  put_u64_le(len_bytes, text.size());
  AtomicFile file(path);
  file.write(len_bytes, 8);
  file.write(text);
  for (const Tensor& t : packed) file.write(t.raw_data(), t.nbytes());
  file.commit();
}

}  // namespace focus
