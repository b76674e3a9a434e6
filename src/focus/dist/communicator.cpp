// Communicator helpers, the single-process stub and the choice of the process-wide communicator
// (see communicator.hpp). The MPI implementation is in mpi_communicator.cpp.
#include "focus/dist/communicator.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace focus {

#if FOCUS_HAVE_MPI
std::unique_ptr<Communicator> make_mpi_communicator();  // mpi_communicator.cpp
#endif

namespace {

class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "local"; }
  void allreduce_sum(float*, int64_t) override {}
  void allreduce_sum(double*, int64_t) override {}
  void broadcast(void*, int64_t, int root) override {
    FOCUS_CHECK(root == 0, ValueError, "broadcast: root {} of a single process", root);
  }
  void barrier() override {}
  std::vector<uint64_t> allgather(uint64_t value) override { return {value}; }
  [[noreturn]] void abort(const std::string& message, int code) override {
    std::fprintf(stderr, "focus: %s\n", message.c_str());
    std::fflush(stderr);
    std::_Exit(code);
  }
};

std::unique_ptr<Communicator>& world_slot() {
  static std::unique_ptr<Communicator> w;
  return w;
}

int env_int(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : -1;
}

}  // namespace

void allreduce_sum_buckets(Communicator& comm, float* data, int64_t n, int64_t bucket) {
  FOCUS_CHECK(n >= 0, ValueError, "allreduce_sum_buckets: n = {}", n);
  if (comm.size() == 1 || n == 0) return;
  const int64_t b = bucket > 0 ? bucket : n;
  for (int64_t off = 0; off < n; off += b) comm.allreduce_sum(data + off, std::min(b, n - off));
}

void broadcast_buckets(Communicator& comm, float* data, int64_t n, int64_t bucket, int root) {
  FOCUS_CHECK(n >= 0, ValueError, "broadcast_buckets: n = {}", n);
  if (comm.size() == 1 || n == 0) return;
  const int64_t b = bucket > 0 ? bucket : n;
  for (int64_t off = 0; off < n; off += b)
    comm.broadcast(data + off, std::min(b, n - off) * int64_t(sizeof(float)), root);
}

std::vector<int> ranks_differing(Communicator& comm, uint64_t value) {
  const std::vector<uint64_t> all = comm.allgather(value);
  std::vector<int> out;
  for (size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0]) out.push_back(int(r));
  return out;
}

uint64_t checksum_bytes(const void* data, size_t bytes, uint64_t seed) {
  // Four independent 64-bit lanes (multiply-xorshift), folded at the end: ~1 byte/cycle per lane.
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h[4] = {seed, seed ^ 0xC2B2AE3D27D4EB4Full, seed ^ 0x165667B19E3779F9ull,
                   seed ^ 0x27D4EB2F165667C5ull};
  auto mix = [](uint64_t x, uint64_t w) {
    x ^= w * 0x9E3779B97F4A7C15ull;
    x *= 0xBF58476D1CE4E5B9ull;
    return x ^ (x >> 31);
  };
  size_t i = 0;
  for (; i + 32 <= bytes; i += 32)
    for (int k = 0; k < 4; ++k) {
      uint64_t w;
      std::memcpy(&w, p + i + 8 * size_t(k), 8);
      h[k] = mix(h[k], w);
    }
  uint64_t tail = 0;
  for (size_t j = 0; i + j < bytes; ++j) tail |= uint64_t(p[i + j]) << (8 * (j % 8));
  uint64_t out = mix(h[0], tail ^ uint64_t(bytes));
  for (int k = 1; k < 4; ++k) out = mix(out, h[k]);
  return out;
}

std::unique_ptr<Communicator> make_local_communicator() { return std::make_unique<LocalCommunicator>(); }

bool mpi_built() { return FOCUS_HAVE_MPI != 0; }

bool launched_by_mpirun() {
  return env_int("OMPI_COMM_WORLD_SIZE") > 0 || env_int("PMIX_RANK") >= 0 ||
         env_int("PMI_SIZE") > 0;
}

Communicator& world() {
  static std::mutex m;
  std::lock_guard<std::mutex> lock(m);
  auto& w = world_slot();
  if (w) return *w;
#if FOCUS_HAVE_MPI
  if (launched_by_mpirun()) {
    w = make_mpi_communicator();
    return *w;
  }
#endif
  const int n = std::max(env_int("OMPI_COMM_WORLD_SIZE"), env_int("PMI_SIZE"));
  FOCUS_CHECK(n <= 1, CommError,
              "started by mpirun with {} processes, but this focus was built without MPI "
              "(install libopenmpi-dev and reconfigure with -DFOCUS_MPI=ON)",
              n);
  w = make_local_communicator();
  return *w;
}

Communicator* world_if_started() { return world_slot().get(); }

}  // namespace focus
