// ReplicaGroup's plan (train/distributed.hpp): parts of consecutive rows, P = ranks x accum x
// workers, each rank's parts contiguous and its rows [r B / N, (r + 1) B / N), for any batch size
// (parts may be empty); one process is a group of one with no exchange. The overlapped exchange
// (buckets started during the backward, through a pretend pair of ranks) gives the blocking one's
// gradients bit for bit, with a tied and an unused parameter. The mpirun runs:
// tests/apps/mpi_train_test.cpp.
#include <gtest/gtest.h>

#include "focus/dist/communicator.hpp"
#include "focus/nn/linear.hpp"
#include "focus/ops/ops.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/train/distributed.hpp"

using namespace focus;

namespace {

// A pretend rank `r` of `n` (the plan needs only rank and size).
class Pretend final : public Communicator {
 public:
  Pretend(int r, int n) : r_(r), n_(n) {}
  int rank() const override { return r_; }
  int size() const override { return n_; }
  std::string backend() const override { return "pretend"; }
  void allreduce_sum(float*, int64_t) override {}
  void allreduce_sum(double*, int64_t) override {}
  void broadcast(void*, int64_t, int) override {}
  void barrier() override {}
  std::vector<uint64_t> allgather(uint64_t v) override { return std::vector<uint64_t>(size_t(n_), v); }
  [[noreturn]] void abort(const std::string&, int) override { std::abort(); }

 private:
  int r_, n_;
};

}  // namespace

TEST(ReplicaGroup, PlanSharesEveryRowOnceInOrder) {
  Rng rng(1);
  Linear lin(3, 2, rng);
  TrainConfig cfg;
  cfg.accum = 3;
  for (int n : {1, 2, 4}) {
    for (int64_t B : {1, 7, 64, 65}) {
      int64_t next = 0;  // rows covered so far
      for (int r = 0; r < n; ++r) {
        Pretend comm(r, n);
        ReplicaGroup g(comm, lin, cfg);
        const StepPlan p = g.plan(B);
        EXPECT_EQ(p.parts, int64_t(n) * 3);
        EXPECT_EQ(p.last - p.first, 3);
        EXPECT_EQ(p.sinks, n > 1);
        const auto [lo, hi] = p.rank_rows();
        EXPECT_EQ(lo, r * B / n);
        EXPECT_EQ(hi, (r + 1) * B / n);
        for (int64_t a = p.first; a < p.last; ++a) {
          const auto [plo, phi] = p.part_rows(a);
          EXPECT_EQ(plo, next);
          EXPECT_LE(plo, phi);
          next = phi;
        }
      }
      EXPECT_EQ(next, B);
    }
  }
}

TEST(ReplicaGroup, OneProcessRunsThePartsAndExchangesNothing) {
  Rng rng(1);
  Linear lin(3, 2, rng);
  TrainConfig cfg;
  cfg.accum = 2;
  auto local = make_local_communicator();
  ReplicaGroup g(*local, lin, cfg);
  const StepPlan p = g.plan(5);
  std::vector<int64_t> seen;
  const double loss = g.backward(p, 1, 1, [&](int64_t a, int64_t lo, int64_t hi) {
    seen.insert(seen.end(), {a, lo, hi});
    return double(hi - lo);
  });
  EXPECT_EQ(seen, (std::vector<int64_t>{0, 0, 2, 1, 2, 5}));
  EXPECT_EQ(loss, 5.0);
  EXPECT_EQ(g.take_comm_seconds(), 0.0);
  g.after_step(1);
  g.check_replicas(1);
}

namespace {

// Rank 0 of a pretend pair whose partner holds the same gradients: a sum doubles. Records every
// sum: its length, whether it was started non-blocking, and whether a backward was running then.
bool g_in_backward = false;
class PretendPair final : public Communicator {
 public:
  struct Call {
    int64_t n;
    bool started, during_backward;
  };
  int rank() const override { return 0; }
  int size() const override { return 2; }
  std::string backend() const override { return "pretend"; }
  void allreduce_sum(float* d, int64_t n) override {
    calls.push_back({n, false, g_in_backward});
    for (int64_t i = 0; i < n; ++i) d[i] *= 2;
  }
  void allreduce_sum(double* d, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) d[i] *= 2;
  }
  Request start_allreduce_sum(float* d, int64_t n) override {
    calls.push_back({n, true, g_in_backward});
    pending.push_back({d, n});
    return Request(pending.size() - 1);
  }
  bool test(Request) override { return ++tests % 2 == 0; }
  void wait(Request r) override {
    auto& [d, n] = pending.at(size_t(r));
    for (int64_t i = 0; i < n; ++i) d[i] *= 2;
    d = nullptr;
  }
  void broadcast(void*, int64_t, int) override {}
  void barrier() override {}
  std::vector<uint64_t> allgather(uint64_t v) override { return {v, v}; }
  [[noreturn]] void abort(const std::string&, int) override { std::abort(); }
  std::vector<Call> calls;
  std::vector<std::pair<float*, int64_t>> pending;
  int tests = 0;
};

// `tied` is used first and last (as a tied embedding), `lin` between; `unused` never.
struct TiedNet : Module {
  explicit TiedNet(Rng& rng) {
    Tensor t = Tensor::empty({4, 4});
    rng.fill_normal(t.data<float>(), 16, 0.f, 0.5f);
    tied = register_parameter("tied", t);
    lin = register_module("lin", std::make_shared<Linear>(4, 4, rng));
    unused = register_parameter("unused", Tensor::ones({3}));
  }
  Tensor loss(const Tensor& x) const {
    const Tensor h = tanh(lin->forward(matmul(x, tied)));  // (b, 4)
    const Tensor out = matmul(h, tied);                    // (b, 4)
    return sum(mul(out, out));
  }
  Tensor tied, unused;
  std::shared_ptr<Linear> lin;
};

std::vector<std::vector<float>> grads_of(const Module& m) {
  std::vector<std::vector<float>> out;
  for (const Tensor& p : m.parameters())
    out.push_back(p.grad().defined() ? p.grad().to_vector<float>() : std::vector<float>{});
  return out;
}

// One step of rank 0 of the pretend pair: its rows of x (8 rows), `accum` parts.
std::vector<std::vector<float>> step(bool overlap, int accum, double bucket_mb, PretendPair& comm) {
  Rng rng(7);
  TiedNet net(rng);
  Tensor x = Tensor::empty({8, 4});
  rng.fill_normal(x.data<float>(), 32, 0.f, 1.f);
  TrainConfig cfg;
  cfg.accum = accum;
  cfg.dist_overlap = overlap;
  cfg.dist_bucket_mb = bucket_mb;
  ReplicaGroup g(comm, net, cfg);
  const StepPlan plan = g.plan(8);
  EXPECT_EQ(g.overlapping(plan), overlap);
  g.backward(plan, 1, 1, [&](int64_t, int64_t lo, int64_t hi) {
    Tensor l = net.loss(x.slice(0, lo, hi).contiguous());
    g_in_backward = true;
    l.backward();
    g_in_backward = false;
    return 0.0;
  });
  return grads_of(net);
}

}  // namespace

// Overlapped: buckets start during the backward (in bucket order: reverse parameter order), and
// the gradients after the step are the blocking reference's, bit for bit: the tied parameter's
// both uses are in its sum, the unused parameter keeps no gradient. Without a pair: the plain
// backward of the rank's rows, doubled (the partner's equal share).
TEST(ReplicaGroup, OverlappedExchangeEqualsTheBlockingOneBitForBit) {
  for (const int accum : {1, 2}) {
    for (const double mb : {1e-6, 4.0}) {  // a bucket per parameter; one bucket
      PretendPair ov, ref;
      const auto a = step(true, accum, mb, ov), b = step(false, accum, mb, ref);
      EXPECT_EQ(a, b) << "accum " << accum << " bucket " << mb;
      ASSERT_EQ(a.size(), 4u);  // tied, unused, lin.weight, lin.bias (own before children's)
      EXPECT_TRUE(a[1].empty());
      for (const auto& c : ref.calls) EXPECT_FALSE(c.started || c.during_backward);
      int during = 0;
      int64_t floats = 0;
      for (const auto& c : ov.calls) {
        EXPECT_TRUE(c.started);
        during += c.during_backward;
        floats += c.n;
      }
      EXPECT_EQ(floats, 16 + 16 + 4 + 3 + 4);  // the gradients and one flag per parameter
      // Bucket order: lin.bias, lin.weight, unused, tied. `unused` is not in the graph: it is
      // final when the backward starts and does not hold back tied's bucket. With a bucket per
      // parameter every one starts during the (last part's) backward.
      if (mb < 1) {
        ASSERT_EQ(ov.calls.size(), 4u);
        EXPECT_EQ(ov.calls[0].n, 1 + 4);
        EXPECT_EQ(ov.calls[1].n, 1 + 16);
        EXPECT_EQ(ov.calls[2].n, 1 + 3);
        EXPECT_EQ(ov.calls[3].n, 1 + 16);
        EXPECT_EQ(during, 4);
        EXPECT_GT(ov.tests, 0);  // the started ones were progressed
      } else {
        EXPECT_EQ(ov.calls.size(), 1u);
        EXPECT_EQ(during, 1);
      }
    }
  }
  // The reference itself: the rank's rows' plain gradient, doubled.
  Rng rng(7);
  TiedNet net(rng);
  Tensor x = Tensor::empty({8, 4});
  rng.fill_normal(x.data<float>(), 32, 0.f, 1.f);
  net.loss(x.slice(0, 0, 4).contiguous()).backward();
  PretendPair ref;
  const auto b = step(false, 1, 4.0, ref);
  const auto plain = grads_of(net);
  EXPECT_TRUE(plain[1].empty() && b[1].empty());
  for (size_t i : {0, 2, 3}) {
    ASSERT_EQ(plain[i].size(), b[i].size());
    ASSERT_FALSE(b[i].empty());
    for (size_t j = 0; j < plain[i].size(); ++j) EXPECT_EQ(plain[i][j] * 2, b[i][j]) << i << " " << j;
  }
}
