// ReplicaGroup's plan (train/distributed.hpp): parts of consecutive rows, P = ranks x accum x
// workers, each rank's parts contiguous and its rows [r B / N, (r + 1) B / N), for any batch size
// (parts may be empty); one process is a group of one with no exchange. The mpirun runs:
// tests/apps/mpi_train_test.cpp.
#include <gtest/gtest.h>

#include "focus/dist/communicator.hpp"
#include "focus/nn/linear.hpp"
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
