// allreduce_bench: the time of one sum-all-reduce of n floats across the ranks of `mpirun`, for
// message sizes from --min-bytes to --max-bytes (x4 steps), through focus's communicator
// (dist/communicator.hpp: MPI_Allreduce in place, MPI_FLOAT, MPI_SUM). For docs/DISTRIBUTED.md
// and the ring cost model fitted there (bench/dist_cost_model.py).
// Verify first: rank r fills element i with (r + 1) + i % 7; after the all-reduce every element
// must be N (N + 1) / 2 + N (i % 7), exactly (small integers in float), on every rank. Then time:
// a barrier, then --reps calls (at least --min-seconds in all), each timed alone; the median,
// the minimum and the algorithm bandwidth (bytes / median) and the ring "bus" bandwidth
// (2 (N - 1) / N bytes / median) are printed by rank 0, one JSON object per size.
// Usage: mpirun -np 2 build/allreduce_bench [--min-bytes 4] [--max-bytes 67108864] [--reps 20]
//   (as root add --allow-run-as-root; --mca btl tcp,self forces TCP over loopback; across
//   network namespaces: tools/netns-mpirun.sh -- build/allreduce_bench)
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include <nlohmann/json.hpp>

#include "focus/dist/communicator.hpp"

using namespace focus;

int main(int argc, char** argv) {
  CLI::App app{"all-reduce time against message size across mpirun's ranks"};
  int64_t min_bytes = 4, max_bytes = int64_t(64) << 20;
  int reps = 20;
  double min_seconds = 0.2;
  std::string label = "loopback";
  app.add_option("--min-bytes", min_bytes)->capture_default_str();
  app.add_option("--max-bytes", max_bytes)->capture_default_str();
  app.add_option("--reps", reps, "timed calls per size (at least)")->capture_default_str();
  app.add_option("--min-seconds", min_seconds, "and at least this long per size")->capture_default_str();
  app.add_option("--label", label, "transport label in the output")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    Communicator& w = world();
    const int R = w.rank(), N = w.size();
    for (int64_t bytes = min_bytes; bytes <= max_bytes; bytes *= 4) {
      const int64_t n = std::max<int64_t>(1, bytes / 4);
      std::vector<float> v(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) v[size_t(i)] = float(R + 1 + i % 7);
      w.allreduce_sum(v.data(), n);
      int64_t bad = 0;
      for (int64_t i = 0; i < n; ++i)
        bad += v[size_t(i)] != float(N * (N + 1) / 2 + N * (i % 7));
      double bad_all = double(bad);
      w.allreduce_sum(&bad_all, 1);
      if (bad_all != 0) {
        if (R == 0) std::fprintf(stderr, "allreduce_bench: %g wrong sums at %lld bytes\n", bad_all, (long long)bytes);
        return 1;
      }
      std::vector<double> times;
      w.barrier();
      const auto start = std::chrono::steady_clock::now();
      for (;;) {
        const auto t0 = std::chrono::steady_clock::now();
        w.allreduce_sum(v.data(), n);
        const auto t1 = std::chrono::steady_clock::now();
        times.push_back(std::chrono::duration<double>(t1 - t0).count());
        // Every rank must make the same number of calls: rank 0 decides and tells the others.
        double more = R == 0 && (int(times.size()) < reps ||
                                 std::chrono::duration<double>(t1 - start).count() < min_seconds) ? 1 : 0;
        w.broadcast(&more, sizeof more, 0);
        if (more == 0) break;
      }
      std::sort(times.begin(), times.end());
      const double med = times[times.size() / 2];
      if (R == 0) {
        const nlohmann::json j = {{"transport", label}, {"ranks", N}, {"bytes", n * 4},
                                  {"calls", times.size()}, {"median_us", med * 1e6},
                                  {"min_us", times.front() * 1e6},
                                  {"algbw_GBps", double(n * 4) / med / 1e9},
                                  {"busbw_GBps", 2.0 * (N - 1) / N * double(n * 4) / med / 1e9}};
        std::printf("%s\n", j.dump().c_str());
        std::fflush(stdout);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "allreduce_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
