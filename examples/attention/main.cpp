// Example: focus as a library (see CMakeLists.txt here). Builds Q, K, V, runs the fused causal
// scaled_dot_product_attention, checks it against the same maths written as plain loops in
// double, then saves the tensors as a safetensors file and loads them back (the loader verifies
// the file's SHA-256). Prints the error and "focus example: OK"; exits 1 on a mismatch.
// Usage: attention_example [DIR]   (DIR for the file, default the temporary directory)
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "focus/io/safetensors.hpp"
#include "focus/ops/attention.hpp"
#include "focus/tensor/error.hpp"

namespace {

// B batch, H heads, L positions, D head dim.
constexpr int64_t B = 2, H = 3, L = 7, D = 16;

focus::Tensor pattern(double phase) {  // (B, H, L, D), deterministic values in [-1, 1]
  std::vector<float> v(B * H * L * D);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(std::sin(0.37 * i + phase));
  return focus::Tensor::from_vector(v, {B, H, L, D});
}

// Causal softmax(Q K^T / sqrt(D)) V for one (b, h), in double.
std::vector<double> attention_loops(const float* q, const float* k, const float* v) {
  std::vector<double> out(L * D, 0.0);
  for (int64_t i = 0; i < L; ++i) {
    std::vector<double> s(i + 1);
    double m = -INFINITY, sum = 0;
    for (int64_t j = 0; j <= i; ++j) {
      double dot = 0;
      for (int64_t d = 0; d < D; ++d) dot += double(q[i * D + d]) * k[j * D + d];
      s[j] = dot / std::sqrt(double(D));
      m = std::max(m, s[j]);
    }
    for (double& x : s) sum += (x = std::exp(x - m));
    for (int64_t j = 0; j <= i; ++j)
      for (int64_t d = 0; d < D; ++d) out[i * D + d] += s[j] / sum * v[j * D + d];
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) try {
  const focus::Tensor q = pattern(0.0), k = pattern(1.0), v = pattern(2.0);  // (B, H, L, D)
  focus::AttentionOptions opt;
  opt.causal = true;
  // (B, H, L, D)
  const focus::Tensor out = scaled_dot_product_attention(q, k, v, opt).contiguous();

  double max_err = 0;
  const float* o = out.data<float>();
  for (int64_t bh = 0; bh < B * H; ++bh) {
    const int64_t at = bh * L * D;
    const std::vector<double> want =
        attention_loops(q.data<float>() + at, k.data<float>() + at, v.data<float>() + at);
    for (int64_t i = 0; i < L * D; ++i) max_err = std::max(max_err, std::abs(o[at + i] - want[i]));
  }
  std::printf("attention (%lld, %lld, %lld, %lld) causal, kernel %s: max |focus - loops| = %.2e\n",
              (long long)B, (long long)H, (long long)L, (long long)D,
              focus::attention_kernel_name(focus::last_attention_kernel()).c_str(), max_err);

  const std::filesystem::path dir = argc > 1 ? argv[1] : std::filesystem::temp_directory_path();
  const std::string file = (dir / "focus_example.safetensors").string();
  focus::save_safetensors(file, {{"q", q}, {"k", k}, {"v", v}, {"out", out}},
                          {{"note", "example"}});
  const focus::SafetensorsFile f = focus::load_safetensors(file);
  std::filesystem::remove(file);
  const std::vector<float> back = f.tensors.at("out").to_vector<float>();
  const std::vector<float> orig = out.to_vector<float>();
  std::printf("safetensors round trip: %zu tensors, sha256 %s, %s\n", f.tensors.size(),
              f.data_sha256.c_str(), back == orig ? "equal" : "DIFFERENT");

  const bool ok = max_err < 1e-5 && back == orig && f.data_sha256.size() == 64;
  std::printf("focus example: %s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
} catch (const focus::Error& e) {
  std::fprintf(stderr, "attention_example: %s\n", e.what());
  return 1;
}
