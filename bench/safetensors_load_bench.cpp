// safetensors_load_bench: the cost of verifying a model file's SHA-256 at load (io/safetensors,
// "focus.sha256"). Writes one model-sized file (default 12.5 MB, the g2p model's size: 64
// tensors of random F32 values) twice, with its digest and with the key removed (as an older
// file, which loads unverified), then times load_safetensors on each in turns, page cache warm
// (the worst case for the relative cost: no disk time to hide the hash). Verify first: both
// load the same tensors, the hashed one reports the digest, a flipped data byte is refused.
// Also times the bare SHA-256 of the data (GB/s). Usage: safetensors_load_bench [--mb 12.5]
// [--reps 41] [--dir /tmp]
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "focus/io/atomic_file.hpp"
#include "focus/io/safetensors.hpp"
#include "focus/io/sha256.hpp"
#include "focus/tensor/error.hpp"
#include "focus/tensor/rng.hpp"

using namespace focus;

namespace {

template <class Fn>
double ms(Fn&& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) try {
  CLI::App app{"load time of a safetensors model file with and without its SHA-256 check"};
  double mb = 12.5;
  int reps = 41;
  std::string dir = std::filesystem::temp_directory_path().string();
  app.add_option("--mb", mb, "file size in MB")->check(CLI::Range(0.01, 4096.0));
  app.add_option("--reps", reps, "timed loads of each file")->check(CLI::Range(1, 100000));
  app.add_option("--dir", dir, "where to write the two files");
  CLI11_PARSE(app, argc, argv);

  // 64 tensors of equal size, each (rows, 256) F32.
  const int64_t rows = std::max<int64_t>(1, static_cast<int64_t>(mb * 1e6 / 64 / 256 / 4));
  Rng rng(1);
  std::map<std::string, Tensor> tensors;
  for (int i = 0; i < 64; ++i)
    tensors[fmt::format("layer.{:02d}.weight", i)] = Tensor::randn({rows, 256}, rng);
  const std::string hashed = dir + "/focus_load_bench_hashed.safetensors";
  const std::string plain = dir + "/focus_load_bench_plain.safetensors";
  save_safetensors(hashed, tensors, {{"format", "bench"}});
  std::ifstream in(hashed, std::ios::binary);
  const std::string bytes(std::istreambuf_iterator<char>(in), {});
  uint64_t hl = 0;
  std::memcpy(&hl, bytes.data(), 8);
  nlohmann::json header = nlohmann::json::parse(bytes.substr(8, hl));
  header["__metadata__"].erase("focus.sha256");
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t n = text.size();
  std::string plain_bytes(reinterpret_cast<const char*>(&n), 8);
  write_file_atomic(plain, plain_bytes + text + bytes.substr(8 + hl));

  // Verify first.
  const SafetensorsFile a = load_safetensors(hashed), b = load_safetensors(plain);
  FOCUS_CHECK(a.data_sha256.size() == 64 && b.data_sha256.empty(), StateError, "digest state");
  for (const auto& [name, t] : a.tensors)
    FOCUS_CHECK(std::memcmp(t.raw_data(), b.tensors.at(name).raw_data(), t.nbytes()) == 0,
                StateError, "tensor {} differs", name);
  {
    std::string bad = bytes;
    bad[bad.size() / 2] ^= 1;
    const std::string corrupt = dir + "/focus_load_bench_corrupt.safetensors";
    write_file_atomic(corrupt, bad);
    bool refused = false;
    try {
      load_safetensors(corrupt);
    } catch (const FormatError&) {
      refused = true;
    }
    std::filesystem::remove(corrupt);
    FOCUS_CHECK(refused, StateError, "a flipped data byte loaded");
  }

  // Time, in turns.
  std::vector<double> t_hashed, t_plain, t_sha;
  const std::string data = bytes.substr(8 + hl);
  for (int r = 0; r < reps + 2; ++r) {
    const double th = ms([&] { load_safetensors(hashed); });
    const double tp = ms([&] { load_safetensors(plain); });
    const double ts = ms([&] { sha256_hex(data); });
    if (r < 2) continue;  // warm-up
    t_hashed.push_back(th);
    t_plain.push_back(tp);
    t_sha.push_back(ts);
  }
  const double mh = median(t_hashed), mp = median(t_plain), msha = median(t_sha);
  std::printf("file %.2f MB (%zu data bytes, 64 tensors), %d loads each, warm page cache\n",
              bytes.size() / 1e6, data.size(), reps);
  std::printf("load without digest (unverified): median %.2f ms\n", mp);
  std::printf("load with digest (verified):      median %.2f ms  (+%.2f ms, %.2fx)\n", mh, mh - mp,
              mh / mp);
  std::printf("SHA-256 alone:                    median %.2f ms  (%.2f GB/s)\n", msha,
              data.size() / msha / 1e6);
  std::filesystem::remove(hashed);
  std::filesystem::remove(plain);
  return 0;
} catch (const focus::Error& e) {
  std::fprintf(stderr, "safetensors_load_bench: %s\n", e.what());
  return 1;
}
