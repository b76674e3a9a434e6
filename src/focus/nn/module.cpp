// Module registry, naming and state dicts (see module.hpp).
#include "focus/nn/module.hpp"

#include <set>

namespace focus {

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  FOCUS_CHECK(t.defined(), ValueError, "register_parameter: '{}' is undefined", name);
  t.requires_grad_(true);
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  FOCUS_CHECK(t.defined(), ValueError, "register_buffer: '{}' is undefined", name);
  buffers_.emplace_back(name, t);
  return t;
}

Tensor Module::register_fixed_buffer(const std::string& name, Tensor t) {
  register_buffer(name, t);
  fixed_.insert(name);
  return t;
}

void Module::collect(const std::string& prefix, NamedTensors& out, bool buffers, bool updated_only) const {
  for (const auto& [n, t] : buffers ? buffers_ : params_)
    if (!updated_only || !fixed_.count(n)) out.emplace_back(prefix + n, t);
  for (const auto& [n, m] : children_) m->collect(prefix + n + ".", out, buffers, updated_only);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", out, false);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", out, true);
  return out;
}

NamedTensors Module::named_updated_buffers() const {
  NamedTensors out;
  collect("", out, true, true);
  return out;
}

StateDict Module::state_dict() const {
  StateDict sd;
  for (auto& [n, t] : named_parameters()) sd.emplace(n, t);
  for (auto& [n, t] : named_buffers()) sd.emplace(n, t);
  return sd;
}

void Module::load_state_dict(const StateDict& sd, bool strict) {
  set_inference_dtype(DType::F32);  // copies of the old weights
  std::set<std::string> used;
  auto load = [&](const NamedTensors& mine) {
    for (auto& [name, t] : mine) {
      auto it = sd.find(name);
      if (it == sd.end()) {
        FOCUS_CHECK(!strict, FormatError, "load_state_dict: missing tensor '{}' (shape {})", name,
                    to_string(t.shape()));
        continue;
      }
      FOCUS_CHECK(it->second.shape() == t.shape(), ShapeError,
                  "load_state_dict: tensor '{}' has shape {} in the file, the model expects {}",
                  name, to_string(it->second.shape()), to_string(t.shape()));
      Tensor dst = t;
      dst.copy_(it->second);
      used.insert(name);
    }
  };
  load(named_parameters());
  load(named_buffers());
  if (strict)
    for (auto& [name, t] : sd)
      FOCUS_CHECK(used.count(name), FormatError,
                  "load_state_dict: unexpected tensor '{}' (shape {}) not in the model", name,
                  to_string(t.shape()));
}

std::vector<std::pair<std::string, Rng*>> Module::named_rngs() const {
  std::vector<std::pair<std::string, Rng*>> out = rngs_;
  for (const auto& [n, m] : children_)
    for (auto& [cn, r] : m->named_rngs()) out.emplace_back(n + "." + cn, r);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() const {
  std::vector<std::pair<std::string, Module*>> out;
  for (const auto& [n, m] : children_) {
    out.emplace_back(n, m.get());
    for (auto& [cn, c] : m->named_modules()) out.emplace_back(n + "." + cn, c);
  }
  return out;
}

void Module::set_inference_dtype(DType dtype) {
  FOCUS_CHECK(dtype == DType::F32 || dtype == DType::BF16 || dtype == DType::I8, DTypeError,
              "set_inference_dtype: {} not supported (F32, BF16, I8)", dtype_name(dtype));
  on_inference_dtype(dtype);
  for (auto& [n, m] : children_) m->set_inference_dtype(dtype);
}

void Module::train(bool on) {
  training_ = on;
  if (on) on_inference_dtype(DType::F32);  // the children drop theirs in their train()
  for (auto& [n, m] : children_) m->train(on);
}

void Module::to(DType dtype) {
  FOCUS_CHECK(dtype == DType::F32 || dtype == DType::F64, DTypeError,
              "Module::to: {} not supported (F32, F64)", dtype_name(dtype));
  set_inference_dtype(DType::F32);
  NamedTensors all = named_parameters();
  for (auto& nb : named_buffers()) all.push_back(nb);
  for (auto& [name, t] : all) {
    const DType dt = t.dtype();
    if (dt == dtype || !(dt == DType::F32 || dt == DType::F64)) continue;
    const Tensor c = t.to(dtype);  // packed copy
    Tensor handle = t;
    handle.zero_grad();
    TensorImpl* impl = handle.impl();
    impl->storage = c.impl()->storage;
    impl->strides = c.strides();
    impl->offset = 0;
    impl->dtype = dtype;
  }
}

void Module::zero_grad() {
  for (auto& [n, t] : named_parameters()) {
    Tensor p = t;
    p.zero_grad();
  }
}

}  // namespace focus
