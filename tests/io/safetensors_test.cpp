// safetensors: round trips of every dtype (0-d, empty, non-contiguous tensors, metadata), a file
// assembled byte by byte from the spec, every corruption the reader must reject (with the file and
// tensor named in the message), the data's SHA-256 ("focus.sha256": recorded, verified, optional),
// atomic writes, and optimizer state through a file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "focus/io/atomic_file.hpp"
#include "focus/io/safetensors.hpp"
#include "focus/io/sha256.hpp"
#include "focus/optim/adam.hpp"
#include "focus/tensor/rng.hpp"

using namespace focus;
namespace fs = std::filesystem;

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}
std::string u64_le(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}
template <class T>
std::string bytes_of(std::initializer_list<T> vals) {
  std::string s;
  for (T v : vals) s.append(reinterpret_cast<const char*>(&v), sizeof(T));
  return s;
}
// Substring check that prints the whole message on failure.
#define EXPECT_CONTAINS(text, part) \
  EXPECT_NE(std::string(text).find(part), std::string::npos) << "'" << (text) << "' lacks '" << (part) << "'"

bool same_bytes(const Tensor& a, const Tensor& b) {
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(ca.raw_data(), cb.raw_data(), ca.nbytes()) == 0;
}

// A fresh directory per test, removed afterwards.
class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "focus_io_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (fs::path(dir_) / name).string(); }

  // A file from a header text and a data buffer, laid out per the spec.
  std::string raw_file(const std::string& header, const std::string& data,
                       const std::string& name = "raw.safetensors") {
    const std::string p = path(name);
    write_bytes(p, u64_le(header.size()) + header + data);
    return p;
  }
  // Expects load_safetensors(p) to throw E with a message containing every fragment and the path.
  template <class E>
  void expect_error(const std::string& p, std::initializer_list<std::string> fragments) {
    try {
      load_safetensors(p);
      ADD_FAILURE() << "no exception for " << p;
    } catch (const E& e) {
      EXPECT_CONTAINS(e.what(), p);
      for (const std::string& f : fragments) EXPECT_CONTAINS(e.what(), f);
    }
  }
  std::string dir_;
};

// One tensor of every dtype; BF16 and I8 filled with raw bit patterns.
std::map<std::string, Tensor> all_dtypes() {
  Rng rng(7);
  std::map<std::string, Tensor> t;
  t["f32"] = Tensor::randn({2, 3}, rng);                       // (2, 3)
  t["f64.scalar"] = Tensor::scalar(-3.25, DType::F64);         // ()
  t["i32.empty"] = Tensor::zeros({0, 4}, DType::I32);          // (0, 4)
  t["i64"] = Tensor::from_vector(std::vector<int64_t>{-1, 0, 1LL << 40, 5, 6}, {5});  // (5)
  Tensor bf = Tensor::empty({3, 2}, DType::BF16);              // (3, 2)
  const uint16_t bits[6] = {0x3f80, 0xbf80, 0x0000, 0x7f80, 0x4049, 0x0001};
  std::memcpy(bf.raw_data(), bits, sizeof(bits));
  t["bf16"] = bf;
  Tensor i8 = Tensor::empty({4}, DType::I8);                   // (4)
  const int8_t b[4] = {-128, -1, 0, 127};
  std::memcpy(i8.raw_data(), b, 4);
  t["i8"] = i8;
  t["f32.empty1d"] = Tensor::empty({0});                       // (0)
  return t;
}

}  // namespace

TEST_F(SafetensorsTest, RoundTripsEveryDtypeAndMetadata) {
  const auto tensors = all_dtypes();
  const std::map<std::string, std::string> meta{{"format", "pt"}, {"epoch", "3"}, {"note", ""}};
  const std::string p = path("all.safetensors");
  save_safetensors(p, tensors, meta);
  const SafetensorsFile f = load_safetensors(p);
  EXPECT_EQ(f.metadata, meta);
  ASSERT_EQ(f.tensors.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    ASSERT_TRUE(f.tensors.count(name)) << name;
    EXPECT_TRUE(same_bytes(f.tensors.at(name), t)) << name;
  }
  EXPECT_EQ(f.tensors.at("f64.scalar").dim(), 0);
  EXPECT_EQ(f.tensors.at("i32.empty").shape(), (Shape{0, 4}));
}

// parse_safetensors is the reader on bytes in memory: the same tensors and digest as the file, the
// same errors naming the caller's `what`, and no read past the buffer on any prefix of it.
TEST_F(SafetensorsTest, ParsesBytesInMemoryLikeTheFile) {
  const auto tensors = all_dtypes();
  const std::string p = path("mem.safetensors");
  save_safetensors(p, tensors, {{"format", "pt"}});
  const std::string bytes = read_bytes(p);
  const SafetensorsFile from_file = load_safetensors(p);
  const SafetensorsFile f = parse_safetensors(bytes, "upload");
  EXPECT_EQ(f.metadata, from_file.metadata);
  EXPECT_EQ(f.data_sha256, from_file.data_sha256);
  EXPECT_EQ(f.data_sha256.size(), 64u);
  ASSERT_EQ(f.tensors.size(), tensors.size());
  for (const auto& [name, t] : tensors) EXPECT_TRUE(same_bytes(f.tensors.at(name), t)) << name;

  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    const std::string prefix = bytes.substr(0, cut);  // its own allocation: ASan sees overreads
    try {
      parse_safetensors(prefix, "upload");
      ADD_FAILURE() << "a " << cut << "-byte prefix parsed";
    } catch (const FormatError& e) {
      EXPECT_CONTAINS(e.what(), "'upload'");
    }
  }
  std::string flipped = bytes;
  flipped.back() = static_cast<char>(flipped.back() ^ 1);
  try {
    parse_safetensors(flipped, "upload");
    ADD_FAILURE() << "a flipped data byte parsed";
  } catch (const FormatError& e) {
    EXPECT_CONTAINS(e.what(), "'upload': tensor data does not match its SHA-256");
  }
}

TEST_F(SafetensorsTest, LayoutFollowsTheSpec) {
  // Read the written bytes independently: length, space padding, JSON entries, packed data.
  Tensor a = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});  // (2, 3)
  Tensor at = a.transpose(0, 1);  // (3, 2), non-contiguous: must be packed row-major
  const std::string p = path("layout.safetensors");
  save_safetensors(p, {{"t", at}, {"s", Tensor::scalar(7, DType::I32)}});
  const std::string bytes = read_bytes(p);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
  EXPECT_EQ(n % 8, 0u);
  ASSERT_LE(8 + n, bytes.size());
  const std::string header = bytes.substr(8, n);
  const size_t last = header.find_last_not_of(' ');  // the JSON ends, then < 8 spaces of padding
  EXPECT_EQ(header[last], '}');
  EXPECT_LT(n - last - 1, 8u);
  const auto j = nlohmann::json::parse(header);
  // None given: only the digest of the data buffer (everything after the header) is written.
  EXPECT_EQ(j["__metadata__"],
            nlohmann::json({{"focus.sha256", sha256_hex(std::string_view(bytes).substr(8 + n))}}));
  EXPECT_EQ(j["t"]["dtype"], "F32");
  EXPECT_EQ(j["t"]["shape"], nlohmann::json({3, 2}));
  EXPECT_EQ(j["s"]["shape"], nlohmann::json::array());
  const uint64_t tb = j["t"]["data_offsets"][0], te = j["t"]["data_offsets"][1];
  EXPECT_EQ(te - tb, 24u);
  EXPECT_EQ(bytes.size(), 8 + n + 24 + 4);
  EXPECT_EQ(bytes.substr(8 + n + tb, 24), bytes_of<float>({1, 4, 2, 5, 3, 6}));
}

TEST_F(SafetensorsTest, ReadsAHandAssembledFile) {
  // Data order differs from name order, the header is not padded, metadata holds one entry.
  const std::string header =
      R"({"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)"
      R"("a":{"dtype":"I64","shape":[],"data_offsets":[0,8]},)"
      R"("c":{"dtype":"F64","shape":[1,0],"data_offsets":[16,16]},)"
      R"("__metadata__":{"format":"pt"}})";
  const std::string p =
      raw_file(header, bytes_of<int64_t>({-7}) + bytes_of<float>({1.5f, -2.0f}));
  const SafetensorsFile f = load_safetensors(p);
  EXPECT_EQ(f.metadata.at("format"), "pt");
  EXPECT_EQ(f.data_sha256, "");  // no digest recorded: loaded unverified
  EXPECT_EQ(f.tensors.at("a").dtype(), DType::I64);
  EXPECT_EQ(f.tensors.at("a").item(), -7.0);
  EXPECT_EQ(f.tensors.at("b").to_vector<float>(), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(f.tensors.at("c").shape(), (Shape{1, 0}));
}

TEST_F(SafetensorsTest, TruncatedFiles) {
  const std::string good = path("good.safetensors");
  save_safetensors(good, {{"weight", Tensor::ones({4, 4})}});
  const std::string bytes = read_bytes(good);
  const std::string p = path("cut.safetensors");
  for (size_t cut : {size_t{0}, size_t{3}, size_t{7}}) {
    write_bytes(p, bytes.substr(0, cut));
    expect_error<FormatError>(p, {"truncated", "8-byte header length"});
  }
  for (size_t cut : {size_t{8}, size_t{20}}) {  // inside the header
    write_bytes(p, bytes.substr(0, cut));
    expect_error<FormatError>(p, {"header length", "larger than the file"});
  }
  write_bytes(p, bytes.substr(0, bytes.size() - 1));  // inside the data
  expect_error<FormatError>(p, {"weight", "out of range"});
}

TEST_F(SafetensorsTest, CorruptHeaderLengthAndJson) {
  const std::string good = path("good.safetensors");
  save_safetensors(good, {{"w", Tensor::ones({2})}});
  const std::string bytes = read_bytes(good);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
  const std::string p = path("bad.safetensors");
  write_bytes(p, u64_le(1ULL << 40) + bytes.substr(8));
  expect_error<FormatError>(p, {"header length 1099511627776", "larger than the file"});
  // Header cut short before the JSON's closing brace (past it lie only spaces): unterminated.
  write_bytes(p, u64_le(bytes.substr(8, n).find_last_of('}')) + bytes.substr(8));
  expect_error<FormatError>(p, {"malformed JSON"});
  expect_error<FormatError>(raw_file(R"({"w": {"dtype": "F32",)", ""), {"malformed JSON"});
  expect_error<FormatError>(raw_file("[1, 2]", ""), {"not an object"});
}

TEST_F(SafetensorsTest, BadEntries) {
  const std::string d8(8, '\0');
  expect_error<FormatError>(
      raw_file(R"({"x":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}})", d8),
      {"tensor 'x'", "unknown dtype 'F16'"});
  expect_error<FormatError>(
      raw_file(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", d8),
      {"tensor 'x'", "span 8 bytes", "needs 12"});
  expect_error<FormatError>(
      raw_file(R"({"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", d8),
      {"tensor 'x'", "non-negative"});
  expect_error<FormatError>(raw_file(R"({"x":{"dtype":"F32","shape":[2]}})", d8),
                            {"tensor 'x'", "missing \"data_offsets\""});
  expect_error<FormatError>(
      raw_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8,9]}})", d8),
      {"tensor 'x'", "data_offsets must be [begin, end]"});
  expect_error<FormatError>(
      raw_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", d8),
      {"tensor 'x'", "out of range", "8 bytes"});
}

TEST_F(SafetensorsTest, OverlapsGapsRepeatsAndTrailingBytes) {
  expect_error<FormatError>(
      raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
               R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
               std::string(12, '\0')),
      {"tensor 'b'", "overlap tensor 'a'"});
  expect_error<FormatError>(
      raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
               R"("b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}})",
               std::string(16, '\0')),
      {"tensor 'b'", "gap of 4 unused bytes"});
  expect_error<FormatError>(
      raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", std::string(10, '\0')),
      {"2 trailing bytes"});
  expect_error<FormatError>(
      raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
               R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
               std::string(8, '\0')),
      {"tensor 'a' appears twice"});
}

TEST_F(SafetensorsTest, MetadataMustBeStrings) {
  expect_error<FormatError>(raw_file(R"({"__metadata__":{"epoch":3}})", ""),
                            {"'epoch'", "not a string"});
  expect_error<FormatError>(raw_file(R"({"__metadata__":["a"]})", ""), {"not an object"});
}

// A file's header length, JSON header and data buffer.
struct Parts {
  uint64_t header_len;
  nlohmann::json header;
  std::string data;
};
Parts split(const std::string& bytes) {
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  return {n, nlohmann::json::parse(bytes.substr(8, n)), bytes.substr(8 + n)};
}

TEST_F(SafetensorsTest, RecordsAndVerifiesTheSha256OfTheData) {
  const auto tensors = all_dtypes();
  const std::string p = path("hashed.safetensors");
  save_safetensors(p, tensors, {{"format", "pt"}});
  const Parts parts = split(read_bytes(p));
  const std::string recorded = parts.header["__metadata__"]["focus.sha256"];
  EXPECT_EQ(recorded, sha256_hex(parts.data));  // computed independently of the reader
  const SafetensorsFile f = load_safetensors(p);
  EXPECT_EQ(f.data_sha256, recorded);
  EXPECT_EQ(f.metadata, (std::map<std::string, std::string>{{"format", "pt"}}));  // key stripped
  // Saving what was loaded (metadata included) gives the same file: a model round trips.
  const std::string p2 = path("again.safetensors");
  save_safetensors(p2, f.tensors, f.metadata);
  EXPECT_EQ(read_bytes(p2), read_bytes(p));
  // The key is the writer's own.
  EXPECT_THROW(save_safetensors(p2, tensors, {{"focus.sha256", recorded}}), ValueError);
}

TEST_F(SafetensorsTest, CorruptDataIsAFormatErrorNamingTheFile) {
  Rng rng(3);
  const std::string good = path("good.safetensors");
  save_safetensors(good, {{"w", Tensor::randn({64, 32}, rng)}, {"b", Tensor::randn({32}, rng)}});
  const std::string bytes = read_bytes(good);
  const size_t data_start = 8 + split(bytes).header_len;
  const std::string p = path("bad.safetensors");
  // One bit, one byte at each end of the data buffer, and the issue's 50 scattered bytes.
  std::vector<std::vector<size_t>> edits = {{data_start}, {bytes.size() - 1}, {data_start + 100}};
  std::vector<size_t> fifty;
  for (size_t i = 0; i < 50; ++i)
    fifty.push_back(data_start + i * (bytes.size() - data_start) / 50);
  edits.push_back(fifty);
  for (const auto& at : edits) {
    std::string bad = bytes;
    for (size_t i : at) bad[i] = static_cast<char>(bad[i] ^ (at.size() == 1 ? 0x01 : 0x5a));
    write_bytes(p, bad);
    expect_error<FormatError>(p, {"tensor data does not match its SHA-256", "the file is corrupt"});
  }
}

TEST_F(SafetensorsTest, HeaderCorruptionIsHandledAsBefore) {
  const std::string good = path("good.safetensors");
  save_safetensors(good, {{"w", Tensor::ones({4})}}, {{"format", "pt"}});
  const std::string bytes = read_bytes(good);
  const Parts parts = split(bytes);
  const std::string p = path("bad.safetensors");
  std::string bad = bytes;
  bad[8] = '[';  // the JSON's opening brace
  write_bytes(p, bad);
  expect_error<FormatError>(p, {"malformed JSON"});
  // The recorded digest edited: one digit changed, not hex, too short.
  const std::string recorded = parts.header["__metadata__"]["focus.sha256"];
  const auto with_digest = [&](const std::string& digest) {
    nlohmann::json h = parts.header;
    h["__metadata__"]["focus.sha256"] = digest;
    return raw_file(h.dump(), parts.data);
  };
  std::string changed = recorded;
  changed[10] = changed[10] == '0' ? '1' : '0';
  expect_error<FormatError>(with_digest(changed), {"does not match its SHA-256"});
  expect_error<FormatError>(with_digest(std::string(64, 'z')), {"'focus.sha256' is not a SHA-256"});
  expect_error<FormatError>(with_digest(recorded.substr(1)), {"'focus.sha256' is not a SHA-256"});
  std::string upper = recorded;  // hex in capitals is the same digest
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  EXPECT_EQ(load_safetensors(with_digest(upper)).data_sha256, recorded);
}

TEST_F(SafetensorsTest, AFileWithoutTheDigestLoadsUnverified) {
  // A focus file with "focus.sha256" removed (as older focus files and other writers have it):
  // loads, and so does the same file with a changed data byte, which nothing can detect then.
  const std::string good = path("good.safetensors");
  save_safetensors(good, {{"w", Tensor::ones({4})}}, {{"format", "pt"}});
  Parts parts = split(read_bytes(good));
  parts.header["__metadata__"].erase("focus.sha256");
  const std::string old = raw_file(parts.header.dump(), parts.data, "old.safetensors");
  SafetensorsFile f = load_safetensors(old);
  EXPECT_EQ(f.data_sha256, "");
  EXPECT_EQ(f.metadata.at("format"), "pt");
  EXPECT_EQ(f.tensors.at("w").to_vector<float>(), (std::vector<float>{1, 1, 1, 1}));
  parts.data[0] = static_cast<char>(parts.data[0] ^ 0x40);
  f = load_safetensors(raw_file(parts.header.dump(), parts.data, "old.safetensors"));
  EXPECT_NE(f.tensors.at("w").to_vector<float>()[0], 1.0f);
}

TEST_F(SafetensorsTest, MissingFileIsIOError) {
  expect_error<IOError>(path("nope.safetensors"), {"cannot open"});
  EXPECT_THROW(load_safetensors(dir_), IOError);  // a directory, not a file
}

TEST_F(SafetensorsTest, SaveIsAtomicAndChecksItsInput) {
  const std::string p = path("m.safetensors");
  save_safetensors(p, {{"a", Tensor::ones({3})}});
  save_safetensors(p, {{"b", Tensor::zeros({2})}});  // replaces the first file whole
  EXPECT_EQ(load_safetensors(p).tensors.count("a"), 0u);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{"m.safetensors"});  // no "*.tmp-<pid>" left

  EXPECT_THROW(save_safetensors(path("missing/dir/m.safetensors"), {{"a", Tensor::ones({1})}}),
               IOError);
  EXPECT_THROW(save_safetensors(p, {{"__metadata__", Tensor::ones({1})}}), ValueError);
  EXPECT_THROW(save_safetensors(p, {{"u", Tensor()}}), ValueError);
  EXPECT_EQ(load_safetensors(p).tensors.count("b"), 1u);  // failed saves left it alone
}

TEST_F(SafetensorsTest, UncommittedAtomicFileLeavesNothing) {
  const std::string p = path("notes.json");
  write_file_atomic(p, "old");
  {
    AtomicFile f(p);
    f.write(std::string_view("new, never committed"));
    EXPECT_TRUE(fs::exists(f.temp_path()));
    EXPECT_CONTAINS(f.temp_path(), ".tmp-" + std::to_string(getpid()));
  }
  EXPECT_EQ(read_bytes(p), "old");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
  EXPECT_THROW(write_file_atomic(path("no/such/dir/x.json"), "x"), IOError);
}

TEST_F(SafetensorsTest, OptimizerStateThroughAFileResumesBitIdentically) {
  // Adam, 3 steps, state and parameters saved; a fresh optimizer resumed from the file must
  // take the same next steps, bit for bit, as the original.
  Rng rng(11);
  auto make = [&] { return Tensor::randn({40}, rng).requires_grad_(); };  // (40)
  Tensor w = make();
  auto grad_of = [](const Tensor& p) {  // a fixed function of the parameter values
    std::vector<float> g = p.to_vector<float>();
    for (float& x : g) x = std::sin(3.f * x) + 0.1f;
    return Tensor::from_vector(g, p.shape());
  };
  AdamOptions o;
  o.lr = 0.05;
  o.weight_decay = 0.01;
  Adam a({{"w", w}}, o);
  for (int i = 0; i < 3; ++i) { w.set_grad(grad_of(w)); a.step(); }
  const std::string p = path("ckpt.safetensors");
  StateDict sd = a.state_dict();
  sd["param.w"] = w;
  save_safetensors(p, sd);

  SafetensorsFile f = load_safetensors(p);
  Tensor w2 = f.tensors.at("param.w").clone().requires_grad_();
  f.tensors.erase("param.w");
  Adam b({{"w", w2}}, o);
  b.load_state_dict(f.tensors);
  for (int i = 0; i < 3; ++i) {
    w.set_grad(grad_of(w)); a.step();
    w2.set_grad(grad_of(w2)); b.step();
  }
  EXPECT_TRUE(same_bytes(w, w2));
  EXPECT_EQ(b.steps(), 6);
}
