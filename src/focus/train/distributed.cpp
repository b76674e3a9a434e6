// ReplicaGroup (see distributed.hpp).
#include "focus/train/distributed.hpp"

#include <chrono>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "focus/autograd/node.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/train/data_parallel.hpp"

namespace focus {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Every parameter and buffer, parameters first, in registration order.
std::vector<Tensor> state_tensors(const Module& m) {
  std::vector<Tensor> out = m.parameters();
  for (auto& [name, b] : m.named_buffers()) out.push_back(b);
  return out;
}

uint64_t checksum_of(const std::vector<Tensor>& ts) {
  uint64_t h = 0x9E3779B97F4A7C15ull;
  for (const Tensor& t : ts) {
    const Tensor c = t.detach().contiguous();
    h = checksum_bytes(c.raw_data(), c.nbytes(), h);
  }
  return h;
}

}  // namespace

ReplicaGroup::ReplicaGroup(Communicator& comm, Module& model, const TrainConfig& cfg)
    : comm_(comm),
      model_(model),
      accum_(cfg.accum),
      workers_(cfg.data_parallel ? num_threads() : 1),
      sinks_(cfg.data_parallel || comm.size() > 1),
      bucket_(std::max<int64_t>(1, int64_t(cfg.dist_bucket_mb * 1024 * 1024 / sizeof(float)))),
      check_every_(cfg.dist_check_every) {
  if (const char* d = std::getenv("FOCUS_TEST_DIVERGE_AT"); d && *d) diverge_at_ = std::atoll(d);
}

StepPlan ReplicaGroup::plan(int64_t rows) const {
  StepPlan p;
  p.rows = rows;
  const int64_t per_rank = int64_t(accum_) * workers_;
  p.parts = per_rank * size();
  p.first = per_rank * rank();
  p.last = p.first + per_rank;
  p.workers = workers_;
  p.sinks = sinks_;
  return p;
}

double ReplicaGroup::backward(const StepPlan& plan, uint64_t salt, int64_t step,
                              const std::function<double(int64_t, int64_t, int64_t)>& fn) {
  auto run = [&](int64_t a) {
    const auto [lo, hi] = plan.part_rows(a);
    return lo < hi ? fn(a, lo, hi) : 0.0;
  };
  double local = 0;
  if (!plan.sinks) {
    for (int64_t a = plan.first; a < plan.last; ++a) local += run(a);
  } else {
    for (int64_t a0 = plan.first; a0 < plan.last; a0 += plan.workers) {
      const int64_t n = std::min<int64_t>(plan.workers, plan.last - a0);
      for (const double l :
           run_micro_batches(n, plan.workers, salt, [&](int64_t i) { return run(a0 + i); }, a0))
        local += l;
    }
  }
  reduce_gradients(step);
  return local;
}

void ReplicaGroup::reduce_gradients(int64_t step) {
  if (size() == 1) return;
  const double t0 = now_seconds();
  const std::vector<Tensor> params = model_.parameters();
  const int64_t np = int64_t(params.size());
  int64_t total = np;
  for (const Tensor& p : params) {
    FOCUS_CHECK(p.dtype() == DType::F32, DTypeError,
                "multi-process training needs F32 parameters, got {}", dtype_name(p.dtype()));
    total += p.numel();
  }
  flat_.assign(size_t(total), 0.f);
  // Flags first (1: this rank has a gradient), then every gradient, in parameter order.
  int64_t off = np;
  for (int64_t i = 0; i < np; ++i) {
    const Tensor g = params[size_t(i)].grad();
    const int64_t n = params[size_t(i)].numel();
    if (g.defined()) {
      flat_[size_t(i)] = 1.f;
      const Tensor c = g.contiguous();
      std::memcpy(flat_.data() + off, c.data<float>(), size_t(n) * sizeof(float));
    }
    off += n;
  }
  comm_.set_activity(fmt::format("the all-reduce of the gradients of step {}", step));
  allreduce_sum_buckets(comm_, flat_.data(), total, bucket_);
  off = np;
  for (int64_t i = 0; i < np; ++i) {
    Tensor p = params[size_t(i)];
    const int64_t n = p.numel();
    if (flat_[size_t(i)] > 0) {
      Tensor g = p.grad();
      if (!g.defined() || !g.is_contiguous()) {
        g = Tensor::empty(p.shape());
        p.set_grad(g);
      }
      std::memcpy(g.data<float>(), flat_.data() + off, size_t(n) * sizeof(float));
    }
    off += n;
  }
  comm_seconds_ += now_seconds() - t0;
}

void ReplicaGroup::sum(std::span<double> values) {
  if (size() == 1 || values.empty()) return;
  const double t0 = now_seconds();
  comm_.allreduce_sum(values.data(), int64_t(values.size()));
  comm_seconds_ += now_seconds() - t0;
}

void ReplicaGroup::broadcast(std::span<double> values) {
  if (size() == 1 || values.empty()) return;
  comm_.broadcast(values.data(), int64_t(values.size() * sizeof(double)), 0);
}

void ReplicaGroup::broadcast_state() {
  if (size() == 1) return;
  comm_.set_activity("the broadcast of the model from rank 0");
  NoGradGuard no_grad;
  for (Tensor t : state_tensors(model_)) {
    FOCUS_CHECK(t.is_contiguous(), StateError, "broadcast_state: a non-contiguous parameter");
    const int64_t bytes = int64_t(t.nbytes());
    for (int64_t o = 0; o < bytes; o += bucket_ * 4)
      comm_.broadcast(static_cast<char*>(t.raw_data()) + o, std::min(bucket_ * 4, bytes - o), 0);
  }
}

void ReplicaGroup::after_step(int64_t step) {
  if (size() == 1) return;
  if (step == diverge_at_ && rank() == size() - 1) {  // test hook: this replica drifts
    Tensor p = model_.parameters().front();
    p.data<float>()[0] += 1e-3f;
  }
  const auto buffers = model_.named_buffers();
  if (!buffers.empty()) {
    comm_.set_activity(fmt::format("the broadcast of the buffers after step {}", step));
    for (auto& [name, b] : buffers) {
      Tensor t = b;
      comm_.broadcast(t.raw_data(), int64_t(t.nbytes()), 0);
    }
  }
  if (check_every_ > 0 && step % check_every_ == 0) check_replicas(step);
}

void ReplicaGroup::check_replicas(int64_t step) {
  if (size() == 1) return;
  const uint64_t mine = checksum_of(state_tensors(model_));
  comm_.set_activity(fmt::format("the parameter checksum compare after step {}", step));
  const std::vector<uint64_t> all = comm_.allgather(mine);
  std::string bad;
  for (size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0]) bad += fmt::format("{}rank {} ({:016x})", bad.empty() ? "" : ", ", r, all[r]);
  FOCUS_CHECK(bad.empty(), CommError,
              "the model replicas differ after step {}: rank 0's parameter checksum is {:016x}, "
              "but {}; stopping (the ranks must run the same build, data and configuration)",
              step, all[0], bad);
}

double ReplicaGroup::take_comm_seconds() {
  const double s = comm_seconds_;
  comm_seconds_ = 0;
  return s;
}

}  // namespace focus
