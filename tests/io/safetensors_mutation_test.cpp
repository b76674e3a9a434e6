// Seeded mutations of safetensors files (tests/support/mutate.hpp): bit flips, overwrites, every
// truncation (all must be rejected: the data must tile the file exactly), appended garbage (must
// be rejected), and targeted edits of the 8-byte header length and of each header field (huge,
// negative, 2^63, shape products that overflow, offsets past the end, deep nesting). A file that
// loads must be internally consistent: byte sizes match shapes, tensors tile the data buffer.
// Files focus writes record the data's SHA-256 ("focus.sha256"), so a mutant that changes data
// bytes and leaves the header alone must be rejected; a fourth file, the first without its digest
// (as older files and other writers have it), still lets such mutants load.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "focus/io/safetensors.hpp"
#include "focus/tensor/rng.hpp"
#include "support/mutate.hpp"

FOCUS_TESTING_DEFINE_ALLOC_WATCH();

using namespace focus;
using namespace focus::testing;
namespace fs = std::filesystem;

namespace {

std::string u64_le(uint64_t v) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &v, 8);
  return s;
}
uint64_t header_len_of(const std::string& bytes) {
  uint64_t v = 0;
  std::memcpy(&v, bytes.data(), 8);
  return v;
}

// "" when every tensor's bytes match its shape and dtype and the tensors cover the data buffer.
std::string check(const SafetensorsFile& f, uint64_t data_bytes) {
  uint64_t total = 0;
  for (const auto& [name, t] : f.tensors) {
    uint64_t n = 1;
    for (int64_t d : t.shape())
      if (d < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n))
        return fmt::format("tensor '{}': shape {} overflows", name, to_string(t.shape()));
    if (!t.is_contiguous()) return fmt::format("tensor '{}' is not contiguous", name);
    if (t.nbytes() != n * dtype_size(t.dtype()) || static_cast<uint64_t>(t.numel()) != n)
      return fmt::format("tensor '{}': {} bytes for shape {}", name, t.nbytes(),
                         to_string(t.shape()));
    total += t.nbytes();
  }
  if (total != data_bytes)
    return fmt::format("tensors hold {} of {} data bytes", total, data_bytes);
  return "";
}

// A header JSON text and its data re-encoded as a file (header padded to 8 bytes).
std::string assemble(std::string header, const std::string& data) {
  header.append((8 - header.size() % 8) % 8, ' ');
  return u64_le(header.size()) + header + data;
}

class SafetensorsMutation : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "focus_st_mut_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Loads `path`, checking the result against the data size the mutant's own header implies.
  static std::string load(const std::string& path) {
    const SafetensorsFile f = load_safetensors(path);  // throws for a file under 8 bytes
    const std::string bytes = read_file(path);
    return check(f, bytes.size() - 8 - header_len_of(bytes));
  }
  std::string dir_;
};

TEST_F(SafetensorsMutation, EveryMutantLoadsConsistentlyOrIsAFormatError) {
  // Three valid files: several dtypes with metadata, a 0-d and an empty tensor, one big tensor.
  std::vector<std::string> valid;
  {
    Rng rng(1);
    std::map<std::string, Tensor> t = {
        {"a.weight", Tensor::randn({3, 4}, rng)},
        {"a.bias", Tensor::randn({4}, rng, DType::F64)},
        {"ids", Tensor::from_vector(std::vector<int64_t>{1, 2, 3}, {3})},
        {"i8", Tensor::zeros({2, 2}, DType::I8)},
        {"bf", Tensor::zeros({5}, DType::BF16)}};
    save_safetensors(dir_ + "/a.safetensors", t, {{"format", "test"}, {"note", "x"}});
    save_safetensors(dir_ + "/b.safetensors",
                     {{"scalar", Tensor::full({}, 2.5)}, {"empty", Tensor::zeros({0, 3})}});
    save_safetensors(dir_ + "/c.safetensors", {{"w", Tensor::randn({16, 16}, rng)}});
    for (const char* n : {"a", "b", "c"})
      valid.push_back(read_file(dir_ + "/" + n + ".safetensors"));
    const std::string a = valid.front();
    nlohmann::json h = nlohmann::json::parse(a.substr(8, header_len_of(a)));
    h["__metadata__"].erase("focus.sha256");
    valid.push_back(assemble(h.dump(), a.substr(8 + header_len_of(a))));
  }

  Tally tally{"safetensors"};
  int data_mutants = 0;  // mutants of a hashed file that change only the data
  const std::string path = dir_ + "/mutant.safetensors";
  for (const std::string& v : valid) {
    ++tally.files;
    ASSERT_EQ(load_safetensors((write_file(path, v), path)).tensors.empty(), false);
    const uint64_t hl = header_len_of(v);
    MutationPlan plan;
    plan.boundaries = {8, 8 + hl};  // the length field, the header
    const nlohmann::json header = nlohmann::json::parse(v.substr(8, hl));
    for (const auto& [name, e] : header.items())
      if (name != "__metadata__")
        plan.boundaries.push_back(8 + hl + e["data_offsets"][0].get<size_t>());
    plan.reject_all_truncations = true;
    plan.reject_appends = true;
    const size_t planned = Mutator::planned_count(v.size(), plan, kMutationSeed + tally.files);
    Mutator m(kMutationSeed + tally.files);
    std::vector<Mutant> mutants = m.mutate(v, plan);
    EXPECT_EQ(mutants.size(), planned);
    const bool hashed =
        header.value("__metadata__", nlohmann::json::object()).contains("focus.sha256");
    for (Mutant& mu : mutants) {
      // Same length, same header, different data: the digest no longer matches.
      if (hashed && mu.bytes.size() == v.size() && mu.bytes.compare(0, 8 + hl, v, 0, 8 + hl) == 0 &&
          mu.bytes != v) {
        mu.must_reject = true;
        ++data_mutants;
      }
      feed(tally, path, mu, load);
    }

    // The header length field: 0, off by one, at and past the end, overflow-prone values.
    const std::string body = v.substr(8);
    for (uint64_t len :
         {uint64_t(0), uint64_t(1), hl - 1, hl + 1, uint64_t(v.size() - 8), uint64_t(v.size() - 7),
          uint64_t(1) << 31, uint64_t(1) << 32, uint64_t(1) << 63, ~uint64_t(0), ~uint64_t(0) - 7})
      feed(tally, path, {fmt::format("header length {}", len), u64_le(len) + body, true}, load);

    // Each tensor's fields, one edit at a time, re-encoded with a consistent length field.
    const std::string data = v.substr(8 + hl);
    const std::vector<nlohmann::json> shapes = {{uint64_t(1) << 63},
                                                {-1},
                                                {1.5},
                                                {"3"},
                                                {nullptr},
                                                {uint64_t(1) << 62, uint64_t(1) << 62},
                                                {uint64_t(1) << 32, uint64_t(1) << 32},
                                                {0, uint64_t(1) << 62, uint64_t(1) << 62},
                                                {0, ~uint64_t(0)},
                                                {~uint64_t(0), 0},
                                                nlohmann::json::array(),
                                                nlohmann::json(std::vector<int>(1000, 1)),
                                                7,
                                                "shape"};
    const std::vector<nlohmann::json> offsets = {{0, ~uint64_t(0)},
                                                 {uint64_t(1) << 63, (uint64_t(1) << 63) + 4},
                                                 {8, 0},
                                                 {0},
                                                 {0, 1, 2},
                                                 {-8, 0},
                                                 {0, data.size() + 8},
                                                 {data.size(), data.size() + 48},
                                                 "0"};
    for (const auto& [name, e] : header.items()) {
      if (name == "__metadata__") continue;
      const auto edit = [&](const char* field, const nlohmann::json& value) {
        nlohmann::json h = header;
        h[name][field] = value;
        feed(tally, path,
             {fmt::format("{}.{} = {}", name, field, value.dump().substr(0, 60)),
              assemble(h.dump(), data)},
             load);
      };
      for (const auto& s : shapes) edit("shape", s);
      for (const auto& o : offsets) edit("data_offsets", o);
      for (const char* dt : {"F16", "BOOL", "", "f32", "U8"}) edit("dtype", dt);
      edit("dtype", 3);
      edit("extra", 1);
    }
    // Whole-header edits: not an object, empty, metadata of the wrong type, deep nesting (the
    // reader must refuse it without recursing: the error message used to dump the value).
    const std::string deep(200000, '['), deep_close(200000, ']');
    for (const std::string& h :
         {std::string("[]"), std::string("{}"), std::string("null"),
          std::string("{\"__metadata__\": 1}"), std::string("{\"__metadata__\": {\"k\": 1}}"),
          std::string("{\"__metadata__\": {\"k\": ") + deep + deep_close + "}}",
          std::string("{\"x\": {\"dtype\": \"F32\", \"shape\": ") + deep + deep_close +
              ", \"data_offsets\": [0, 0]}}",
          std::string("{\"x\": ") + deep + deep_close + "}", deep,
          std::string("{\"a\": 1, \"a\": 2}"), std::string("\xff\xfe{}")})
      feed(tally, path, {"header " + h.substr(0, 40), assemble(h, data), true}, load);
  }
  tally.expect_clean();
  EXPECT_GT(data_mutants, 0);  // rejected by the digest (must_reject above)
  EXPECT_GT(tally.loaded, 0);  // flips inside the data of the file without a digest load
  EXPECT_GT(tally.rejected, 0);
  EXPECT_EQ(tally.rejected_naming_file, tally.rejected);  // every message names the file
}

}  // namespace
