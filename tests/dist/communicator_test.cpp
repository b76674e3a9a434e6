// The communicator (dist/communicator.hpp): the single-process stub's identities, the buckets
// (sizes and order, through a recording communicator), the checksum, and the OpenMPI
// implementation's collectives for real: the test runs itself under `mpirun -np 3` (loopback,
// --allow-run-as-root --oversubscribe), where MpiCommunicator.Collectives checks sums (blocking
// and non-blocking), broadcast, all-gather and the replica compare on every rank. Skipped with a
// message when focus was built without MPI or mpirun is not installed.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "focus/dist/communicator.hpp"
#include "support/run_command.hpp"

using namespace focus;

namespace {

// Records the allreduce calls (their sizes) of a pretend world of 4 ranks; sums = value x 4.
class Recorder final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 4; }
  std::string backend() const override { return "recorder"; }
  void allreduce_sum(float* d, int64_t n) override {
    calls.push_back(n);
    for (int64_t i = 0; i < n; ++i) d[i] *= 4;
  }
  void allreduce_sum(double* d, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) d[i] *= 4;
  }
  void broadcast(void*, int64_t bytes, int) override { calls.push_back(bytes); }
  void barrier() override {}
  std::vector<uint64_t> allgather(uint64_t v) override { return {v, v, v + 1, v}; }
  [[noreturn]] void abort(const std::string&, int) override { std::abort(); }
  std::vector<int64_t> calls;
};

bool have_mpirun() { return std::system("command -v mpirun > /dev/null 2>&1") == 0; }

}  // namespace

TEST(Communicator, LocalStubIsTheIdentity) {
  auto c = make_local_communicator();
  EXPECT_EQ(c->rank(), 0);
  EXPECT_EQ(c->size(), 1);
  std::vector<float> v = {1, 2, 3};
  allreduce_sum_buckets(*c, v.data(), 3, 2);
  EXPECT_EQ(v, (std::vector<float>{1, 2, 3}));
  double d = 2.5;
  c->allreduce_sum(&d, 1);
  EXPECT_EQ(d, 2.5);
  EXPECT_EQ(c->allgather(7), std::vector<uint64_t>{7});
  EXPECT_TRUE(ranks_differing(*c, 42).empty());
  c->broadcast(v.data(), 12, 0);
  EXPECT_THROW(c->broadcast(v.data(), 12, 1), ValueError);
  EXPECT_THROW(allreduce_sum_buckets(*c, v.data(), -1, 2), ValueError);
  // Non-blocking: the stub's sum is done at once.
  const Communicator::Request req = c->start_allreduce_sum(v.data(), 3);
  EXPECT_TRUE(c->test(req));
  c->wait(req);
  EXPECT_EQ(v, (std::vector<float>{1, 2, 3}));
}

TEST(Communicator, BucketsInOrderAndReplicaCompare) {
  Recorder r;
  std::vector<float> v(10, 1.f);
  allreduce_sum_buckets(r, v.data(), 10, 4);
  EXPECT_EQ(r.calls, (std::vector<int64_t>{4, 4, 2}));
  for (float x : v) EXPECT_EQ(x, 4.f);
  r.calls.clear();
  allreduce_sum_buckets(r, v.data(), 10, 0);  // one call
  EXPECT_EQ(r.calls, (std::vector<int64_t>{10}));
  r.calls.clear();
  broadcast_buckets(r, v.data(), 10, 3, 0);  // bytes per call
  EXPECT_EQ(r.calls, (std::vector<int64_t>{12, 12, 12, 4}));
  EXPECT_EQ(ranks_differing(r, 5), std::vector<int>{2});
}

TEST(Communicator, ChecksumSeesEveryBitAndTheOrder) {
  std::vector<float> a(1001);
  for (size_t i = 0; i < a.size(); ++i) a[i] = float(i) * 0.5f;
  const uint64_t h = checksum_bytes(a.data(), a.size() * 4);
  EXPECT_EQ(h, checksum_bytes(a.data(), a.size() * 4));
  for (size_t i : {size_t(0), size_t(37), size_t(1000)}) {  // lanes and the tail
    std::vector<float> b = a;
    b[i] = std::nextafter(b[i], 1e9f);
    EXPECT_NE(h, checksum_bytes(b.data(), b.size() * 4)) << i;
  }
  std::vector<float> c = a;
  std::swap(c[1], c[2]);
  EXPECT_NE(h, checksum_bytes(c.data(), c.size() * 4));
  EXPECT_NE(checksum_bytes(a.data(), 8), checksum_bytes(a.data(), 9));
}

TEST(MpiCommunicator, Collectives) {
  if (!launched_by_mpirun()) {
    if (!mpi_built()) GTEST_SKIP() << "focus was built without MPI (libopenmpi-dev not found)";
    if (!have_mpirun()) GTEST_SKIP() << "mpirun not installed (Debian openmpi-bin)";
    // Run this test on 3 ranks, each rank checking what it received.
    const auto r = focus::testing::run_command(
        "LSAN_OPTIONS=detect_leaks=0 timeout 60 mpirun --allow-run-as-root --oversubscribe -np 3 /proc/" +
        std::to_string(::getpid()) + "/exe --gtest_filter=MpiCommunicator.Collectives --gtest_color=no");
    EXPECT_EQ(r.code, 0) << r.out;
    size_t passed = 0;
    for (size_t at = 0; (at = r.out.find("[  PASSED  ] 1 test", at)) != std::string::npos; ++at) ++passed;
    EXPECT_EQ(passed, 3u) << r.out;
    return;
  }
  Communicator& w = world();
  ASSERT_EQ(w.backend(), "mpi");
  const int R = w.rank(), N = w.size();
  ASSERT_EQ(N, 3);
  // Sums of 1000 floats in buckets of 300: element i of rank r holds r * 1000 + i.
  std::vector<float> v(1000);
  for (int i = 0; i < 1000; ++i) v[size_t(i)] = float(R * 1000 + i);
  allreduce_sum_buckets(w, v.data(), 1000, 300);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(v[size_t(i)], float(3000 + 3 * i)) << i;
  double d[2] = {double(R), 0.5};
  w.allreduce_sum(d, 2);
  EXPECT_EQ(d[0], 3.0);
  EXPECT_EQ(d[1], 1.5);
  std::vector<float> b(10, float(R));
  broadcast_buckets(w, b.data(), 10, 4, 2);
  for (float x : b) EXPECT_EQ(x, 2.f);
  EXPECT_EQ(w.allgather(uint64_t(10 + R)), (std::vector<uint64_t>{10, 11, 12}));
  EXPECT_TRUE(ranks_differing(w, 99).empty());
  EXPECT_EQ(ranks_differing(w, R == 1 ? 5 : 6), std::vector<int>{1});
  // Non-blocking sums, two in flight (started in the same order on every rank), progressed by
  // test(), waited for in order. After wait() the request is gone and test() says done.
  std::vector<float> x(100000, float(R + 1)), y(7, float(2 * R));
  const Communicator::Request rx = w.start_allreduce_sum(x.data(), int64_t(x.size()));
  const Communicator::Request ry = w.start_allreduce_sum(y.data(), int64_t(y.size()));
  EXPECT_NE(rx, ry);
  for (int k = 0; k < 1000 && !(w.test(rx) && w.test(ry)); ++k) ::usleep(1000);
  w.wait(rx);
  w.wait(ry);
  EXPECT_TRUE(w.test(rx));  // freed: done
  for (float e : x) ASSERT_EQ(e, 6.f);
  for (float e : y) ASSERT_EQ(e, 6.f);
  w.barrier();
}
