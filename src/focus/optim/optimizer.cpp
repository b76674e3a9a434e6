// Optimizer base: parameter checks, the step loop, lazily created state, state dicts
// (see optimizer.hpp).
#include "focus/optim/optimizer.hpp"

#include <cmath>
#include <set>

namespace focus {

Optimizer::Optimizer(NamedTensors params, double lr, std::vector<std::string> slot_names)
    : params_(std::move(params)), slot_names_(std::move(slot_names)), state_(params_.size()),
      lr_(0.0) {
  set_lr(lr);
  FOCUS_CHECK(!params_.empty(), ValueError, "optimizer: empty parameter list");
  std::set<std::string> seen;
  for (const auto& [n, p] : params_) {
    FOCUS_CHECK(!n.empty(), ValueError, "optimizer: a parameter has an empty name");
    FOCUS_CHECK(seen.insert(n).second, ValueError, "optimizer: parameter name '{}' repeated", n);
    FOCUS_CHECK(p.defined(), ValueError, "optimizer: parameter '{}' is undefined", n);
    FOCUS_CHECK(p.dtype() == DType::F32 || p.dtype() == DType::F64, DTypeError,
                "optimizer: parameter '{}' is {}, not F32/F64", n, dtype_name(p.dtype()));
    FOCUS_CHECK(p.is_contiguous(), ValueError, "optimizer: parameter '{}' {} is not contiguous",
                n, to_string(p.shape()));
  }
}

void Optimizer::set_lr(double lr) {
  FOCUS_CHECK(std::isfinite(lr) && lr >= 0.0, ValueError, "optimizer: invalid learning rate {}",
              lr);
  lr_ = lr;
}

void Optimizer::step() {
  ++steps_;
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& [n, p] = params_[i];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    FOCUS_CHECK(g.shape() == p.shape(), ShapeError, "{}: grad {} of '{}' vs parameter {}", name(),
                to_string(g.shape()), n, to_string(p.shape()));
    FOCUS_CHECK(g.dtype() == p.dtype(), DTypeError, "{}: grad of '{}' is {}, parameter {}", name(),
                n, dtype_name(g.dtype()), dtype_name(p.dtype()));
    ParamState& s = state_[i];
    if (s.step == 0) {
      s.slots.clear();
      for (size_t k = 0; k < slot_names_.size(); ++k)
        s.slots.push_back(Tensor::zeros(p.shape(), p.dtype()));
    }
    ++s.step;
    update(p, g.contiguous(), s.slots, s.step);
  }
}

void Optimizer::zero_grad() {
  for (auto& [n, p] : params_) p.zero_grad();
}

StateDict Optimizer::state_dict() const {
  StateDict sd;
  sd.emplace("step", Tensor::scalar(static_cast<double>(steps_), DType::I64));
  for (size_t i = 0; i < params_.size(); ++i) {
    const ParamState& s = state_[i];
    if (s.step == 0) continue;
    const std::string& n = params_[i].first;
    sd.emplace(n + ".step", Tensor::scalar(static_cast<double>(s.step), DType::I64));
    for (size_t k = 0; k < slot_names_.size(); ++k) sd.emplace(n + "." + slot_names_[k], s.slots[k]);
  }
  return sd;
}

// A step count stored as a one-element tensor: a non-negative integer.
static int64_t read_count(const Tensor& t, const std::string& key) {
  FOCUS_CHECK(t.defined() && t.numel() == 1, FormatError,
              "optimizer state: '{}' must hold one value", key);
  const double v = t.item();
  FOCUS_CHECK(v >= 0 && v == std::floor(v) && v < 9.0e15, ValueError,
              "optimizer state: '{}' = {} is not a valid step count", key, v);
  return static_cast<int64_t>(v);
}

void Optimizer::load_state_dict(const StateDict& sd) {
  size_t used = 0;
  auto find = [&](const std::string& key, bool required) -> const Tensor* {
    auto it = sd.find(key);
    FOCUS_CHECK(it != sd.end() || !required, FormatError,
                "{}: optimizer state is missing '{}'", name(), key);
    if (it == sd.end()) return nullptr;
    ++used;
    return &it->second;
  };
  const int64_t steps = read_count(*find("step", true), "step");
  std::vector<ParamState> state(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [n, p] = params_[i];
    const Tensor* count = find(n + ".step", false);
    if (!count) continue;  // never updated: its slots must be absent too (checked below)
    state[i].step = read_count(*count, n + ".step");
    if (state[i].step == 0) continue;
    for (const std::string& slot : slot_names_) {
      const std::string key = n + "." + slot;
      const Tensor& src = *find(key, true);
      FOCUS_CHECK(src.shape() == p.shape(), ShapeError,
                  "{}: optimizer state '{}' has shape {}, parameter '{}' has {}", name(), key,
                  to_string(src.shape()), n, to_string(p.shape()));
      Tensor dst = Tensor::empty(p.shape(), p.dtype());
      dst.copy_(src);
      state[i].slots.push_back(dst);
    }
  }
  if (used != sd.size()) {
    for (const auto& [key, t] : sd) {
      bool known = key == "step";
      for (size_t i = 0; i < params_.size() && !known; ++i) {
        const std::string& n = params_[i].first;
        if (key == n + ".step") known = true;
        for (const std::string& slot : slot_names_)
          if (state[i].step > 0 && key == n + "." + slot) known = true;
      }
      FOCUS_CHECK(known, FormatError, "{}: unexpected optimizer state '{}' (shape {})", name(),
                  key, to_string(t.shape()));
    }
  }
  steps_ = steps;
  state_ = std::move(state);
}

}  // namespace focus
