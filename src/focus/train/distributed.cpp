// ReplicaGroup (see distributed.hpp).
#include "focus/train/distributed.hpp"

#include <chrono>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "focus/autograd/grad_sink.hpp"
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
      overlap_(cfg.dist_overlap),
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
    return local;  // one rank (no sinks with more)
  }
  const bool overlap = overlapping(plan);
  if (size() > 1) begin_exchange();
  // With overlap the last part runs alone below, under the callback.
  const int64_t end = overlap ? plan.last - 1 : plan.last;
  for (int64_t a0 = plan.first; a0 < end; a0 += plan.workers) {
    const int64_t n = std::min<int64_t>(plan.workers, end - a0);
    for (const double l :
         run_micro_batches(n, plan.workers, salt, [&](int64_t i) { return run(a0 + i); }, a0))
      local += l;
  }
  if (overlap) {
    // The earlier parts' sum is in the parameters' .grad now; each parameter's final gradient of
    // the last part joins it in its bucket as soon as backward makes it final.
    const int64_t a = plan.last - 1;
    comm_.set_activity(fmt::format("the all-reduce of the gradients of step {}", step));
    local += run_micro_batches(1, 1, salt, [&](int64_t) {
      auto ready = [&](const AutogradMeta& leaf, Tensor* g) {
        const auto it = param_index_.find(&leaf);
        if (it == param_index_.end() || filled_[it->second]) return;
        const double t0 = now_seconds();
        fill(it->second, g, true);
        if (g) *g = Tensor();  // taken: the sink does not add it to the parameter again
        progress();
        comm_seconds_ += now_seconds() - t0;
      };
      // Parameters this backward does not reach are final already (.grad: the earlier parts'):
      // in now, so that their buckets do not hold back the ones after them.
      auto reached = [&](const std::vector<const AutogradMeta*>& leaves) {
        std::vector<char> in(params_.size(), 0);
        for (const AutogradMeta* l : leaves)
          if (const auto it = param_index_.find(l); it != param_index_.end()) in[it->second] = 1;
        for (size_t i = 0; i < params_.size(); ++i)
          if (!in[i] && !filled_[i]) fill(i, nullptr, true);
      };
      const LeafReadyScope scope(ready, reached);
      return run(a);
    }, a)[0];
  }
  if (size() > 1) finish_exchange(step, overlap);
  return local;
}

void ReplicaGroup::layout() {
  params_ = model_.parameters();
  const size_t np = params_.size();
  slots_.assign(np, Slot{});
  buckets_.clear();
  param_index_.clear();
  int64_t off = 0;
  // Reverse registration order: about the order backward finishes the gradients.
  for (size_t k = 0; k < np;) {
    Bucket b;
    b.offset = off;
    int64_t floats = 0;
    size_t e = k;
    while (e < np && (e == k || floats + params_[np - 1 - e].numel() <= bucket_))
      floats += params_[np - 1 - e].numel(), ++e;
    b.params = int(e - k);
    int64_t g = off + b.params;
    for (size_t j = k; j < e; ++j) {
      const size_t i = np - 1 - j;
      const Tensor& p = params_[i];
      FOCUS_CHECK(p.dtype() == DType::F32, DTypeError,
                  "multi-process training needs F32 parameters, got {}", dtype_name(p.dtype()));
      slots_[i] = Slot{int(buckets_.size()), off + int64_t(j - k), g};
      g += p.numel();
      param_index_.emplace(p.impl()->autograd.get(), i);
    }
    b.length = g - off;
    off = g;
    buckets_.push_back(b);
    k = e;
  }
  flat_.assign(size_t(off), 0.f);
}

void ReplicaGroup::begin_exchange() {
  if (params_.empty() || params_.size() != model_.parameters().size()) layout();
  filled_.assign(params_.size(), 0);
  for (Bucket& b : buckets_) {
    b.pending = b.params;
    b.request = -1;
    b.started = b.done = false;
  }
  next_start_ = 0;
}

void ReplicaGroup::fill(size_t i, const Tensor* part, bool overlap) {
  // The same additions as flushing the part's sink into .grad: prev + part, else whichever exists.
  const Tensor prev = params_[i].grad();
  const bool has_part = part && part->defined(), has_prev = prev.defined();
  const Slot& s = slots_[i];
  float* dst = flat_.data() + s.grad;
  const int64_t n = params_[i].numel();
  flat_[size_t(s.flag)] = has_part || has_prev ? 1.f : 0.f;
  if (has_part && has_prev) {
    const Tensor a = prev.contiguous(), b = part->contiguous();
    const float *pa = a.data<float>(), *pb = b.data<float>();
    for (int64_t j = 0; j < n; ++j) dst[j] = pa[j] + pb[j];
  } else if (has_part || has_prev) {
    const Tensor c = (has_part ? *part : prev).contiguous();
    std::memcpy(dst, c.data<float>(), size_t(n) * sizeof(float));
  } else {
    std::memset(dst, 0, size_t(n) * sizeof(float));
  }
  filled_[i] = 1;
  Bucket& b = buckets_[size_t(s.bucket)];
  --b.pending;
  if (!overlap) return;
  // Start, in bucket order, every bucket whose parameters are all in.
  while (next_start_ < buckets_.size() && buckets_[next_start_].pending == 0) {
    Bucket& nb = buckets_[next_start_++];
    nb.request = comm_.start_allreduce_sum(flat_.data() + nb.offset, nb.length);
    nb.started = true;
  }
}

void ReplicaGroup::progress() {
  for (size_t k = 0; k < next_start_; ++k) {
    Bucket& b = buckets_[k];
    if (!b.done) b.done = comm_.test(b.request);
  }
}

void ReplicaGroup::finish_exchange(int64_t step, bool overlap) {
  const double t0 = now_seconds();
  comm_.set_activity(fmt::format("the all-reduce of the gradients of step {}", step));
  // Parameters the last part did not reach (or all, without overlap): their .grad is the rank sum.
  for (size_t i = 0; i < params_.size(); ++i)
    if (!filled_[i]) fill(i, nullptr, overlap);
  for (Bucket& b : buckets_) {
    if (overlap) comm_.wait(b.request);
    else comm_.allreduce_sum(flat_.data() + b.offset, b.length);
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    const Slot& s = slots_[i];
    if (flat_[size_t(s.flag)] <= 0) continue;
    Tensor p = params_[i];
    Tensor g = p.grad();
    if (!g.defined() || !g.is_contiguous()) {
      g = Tensor::empty(p.shape());
      p.set_grad(g);
    }
    std::memcpy(g.data<float>(), flat_.data() + s.grad, size_t(p.numel()) * sizeof(float));
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
  const auto buffers = model_.named_updated_buffers();  // fixed ones never change in training
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
