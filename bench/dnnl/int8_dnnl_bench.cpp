// oneDNN's int8 matmul at the shapes of focus's int8 GEMM (kernels/qgemm.hpp), for the choice
// "our kernel or oneDNN's" (docs/BUDGET.md). Standalone: oneDNN is not a build dependency, and
// this directory is outside the bench/*.cpp glob that CMake builds.
//   apt-get install -y libdnnl-dev
//   g++ -O2 -std=c++20 bench/dnnl/int8_dnnl_bench.cpp -ldnnl -o build/int8_dnnl_bench
//   build/int8_dnnl_bench 784x32x288 6272x64x576 ...   (M x N x K; threads: OMP_NUM_THREADS)
// C (M, N) f32 = A (M, K) s8 @ B (K, N) s8 with a per-column output scale, B reordered once to
// the layout the primitive picks (format_tag::any), A s8 as given: the activations' quantisation
// and the per-row scale focus applies are NOT in this figure (they are in focus's), which
// favours oneDNN. Verified first: 16 sampled entries against an exact integer dot product. GOPS
// = 2MNK / median time of repeated calls.
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace dnnl;

int main(int argc, char** argv) {
  engine eng(engine::kind::cpu, 0);
  stream s(eng);
  std::printf("%-18s %10s %10s\n", "M x N x K", "ms", "GOPS");
  for (int a = 1; a < argc; ++a) {
    long M, N, K;
    if (std::sscanf(argv[a], "%ldx%ldx%ld", &M, &N, &K) != 3) {
      std::fprintf(stderr, "bad shape %s\n", argv[a]);
      return 2;
    }
    std::mt19937 rng(1);
    std::uniform_int_distribution<int> d(-127, 127);
    std::vector<int8_t> A(size_t(M * K)), B(size_t(K * N));
    for (auto& v : A) v = int8_t(d(rng));
    for (auto& v : B) v = int8_t(d(rng));
    std::vector<float> scale(size_t(N), 1e-3f);
    memory::desc ad({M, K}, memory::data_type::s8, memory::format_tag::ab);
    memory::desc bd_any({K, N}, memory::data_type::s8, memory::format_tag::any);
    memory::desc bd({K, N}, memory::data_type::s8, memory::format_tag::ab);
    memory::desc cd({M, N}, memory::data_type::f32, memory::format_tag::ab);
    primitive_attr attr;
    attr.set_output_scales(1 << 1, scale);
    matmul::primitive_desc pd(matmul::desc(ad, bd_any, cd), attr, eng);
    memory am(ad, eng, A.data()), bm(bd, eng, B.data()), cm(cd, eng);
    memory bp(pd.weights_desc(), eng);
    reorder(bm, bp).execute(s, bm, bp);  // weights packed once
    matmul mm(pd);
    auto run = [&] {
      mm.execute(s, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bp}, {DNNL_ARG_DST, cm}});
      s.wait();
    };
    run();
    const float* C = static_cast<const float*>(cm.get_data_handle());
    for (int t = 0; t < 16; ++t) {
      const long i = long(rng() % M), j = long(rng() % N);
      long long acc = 0;
      for (long k = 0; k < K; ++k) acc += int(A[size_t(i * K + k)]) * int(B[size_t(k * N + j)]);
      const double want = double(acc) * 1e-3;
      if (std::fabs(C[i * N + j] - want) > 1e-5 * std::fabs(want) + 1e-3) {
        std::fprintf(stderr, "check failed at (%ld, %ld): %g vs %g\n", i, j, C[i * N + j], want);
        return 1;
      }
    }
    const double ops = 2.0 * M * N * K;
    const int reps = std::clamp(int(2e10 / ops), 5, 400);
    std::vector<double> t;
    for (int r = 0; r < reps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      run();
      t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(t.begin(), t.end());
    const double med = t[t.size() / 2];
    std::printf("%-18s %10.3f %10.1f\n", argv[a], med * 1e3, ops / med / 1e9);
  }
  return 0;
}
