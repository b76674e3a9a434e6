// Helpers shared by the golden tests: load a PyTorch fixture (tests/fixtures, written by
// tools/make_fixtures.py), fill a module's state from it, and compare focus's tensors with the
// fixture's by name with a per-dtype tolerance, failing with the name and the max error.
//
// Error measure: max |got - ref| / max |ref| over the tensor (relative to the tensor's own
// scale, so a small-valued gradient is held as tightly as a large one). Gradients that are zero
// in exact arithmetic (the fixture's "zero_gradients" metadata, e.g. a key-projection bias under
// softmax) hold only rounding noise in torch's result: they are compared absolutely, against
// the largest gradient of the fixture.
//
// Tolerances:
//   F64: 1e-10. Both sides compute in double; different summation orders leave ~1e-15.
//   F32: 1e-4. torch's own F32 result lies up to ~1.5e-6 from its F64 result on these fixtures
//        (printed by make_fixtures.py); focus's F32 has its own rounding of that size, from
//        different GEMM blocking, vectorised exp/erf and reduction order. 1e-4 leaves ~50x margin
//        for that noise while a wrong formula (a missing term, eps in the wrong place, a biased
//        variance) shows at 1e-3 or more.
// A missing fixture file throws (the test fails, never skips): the fixtures are committed.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "focus/io/safetensors.hpp"
#include "focus/nn/module.hpp"
#include "focus/tensor/tensor.hpp"

namespace focus::golden {

inline double tolerance(DType dt) { return dt == DType::F64 ? 1e-10 : 1e-4; }

class Fixture {
 public:
  explicit Fixture(const std::string& stem)
      : stem_(stem), path_(std::string(FOCUS_SOURCE_DIR) + "/tests/fixtures/" + stem + ".safetensors") {
    FOCUS_CHECK(std::filesystem::exists(path_), IOError,
                "golden fixture {} is missing (committed; regenerate with `make fixtures`)", path_);
    file_ = load_safetensors(path_);
  }

  const std::string& stem() const { return stem_; }
  DType dtype() const { return dtype_from_name(meta("dtype")); }
  double tol() const { return tolerance(dtype()); }
  bool has(const std::string& name) const { return file_.tensors.count(name) != 0; }

  // The fixture's tensor (a fresh copy, so a test may mark it requires_grad or modify it).
  Tensor at(const std::string& name) const {
    auto it = file_.tensors.find(name);
    FOCUS_CHECK(it != file_.tensors.end(), FormatError, "{}: no tensor '{}'", path_, name);
    return it->second.clone();
  }
  // A leaf input requiring grad.
  Tensor input(const std::string& name) const { return at(name).requires_grad_(true); }

  std::string meta(const std::string& key) const {
    auto it = file_.metadata.find(key);
    FOCUS_CHECK(it != file_.metadata.end(), FormatError, "{}: no metadata '{}'", path_, key);
    return it->second;
  }
  double meta_double(const std::string& key) const { return std::stod(meta(key)); }
  int64_t meta_int(const std::string& key) const { return std::stoll(meta(key)); }

  std::vector<std::string> names_with_prefix(const std::string& prefix) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : file_.tensors)
      if (k.rfind(prefix, 0) == 0) out.push_back(k);
    return out;
  }

  // Gradient names the fixture lists as zero in exact arithmetic ("name: reason;...").
  std::set<std::string> zero_gradients() const {
    std::set<std::string> out;
    auto it = file_.metadata.find("zero_gradients");
    if (it == file_.metadata.end()) return out;
    std::stringstream ss(it->second);
    for (std::string item; std::getline(ss, item, ';');)
      if (!item.empty()) out.insert(item.substr(0, item.find(':')));
    return out;
  }

  // Copies `prefix + name` of the fixture into every parameter and buffer of `m` (strict: the
  // module and the fixture must agree on names and shapes, load_state_dict throws otherwise).
  void load_into(Module& m, const std::string& prefix = "") const {
    StateDict sd;
    for (const auto& [name, t] : m.state_dict()) sd[name] = at(prefix + name);
    m.load_state_dict(sd, /*strict=*/true);
  }

 private:
  std::string stem_, path_;
  SafetensorsFile file_;
};

struct Diff {
  double err = 0;    // max |got - ref| / scale
  double scale = 0;  // max |ref|, or the absolute reference for a zero gradient
};

inline Diff diff(const Tensor& got, const Tensor& ref, double abs_scale = 0) {
  const auto g = got.to_vector<double>(), r = ref.to_vector<double>();
  double num = 0, den = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    // NaN anywhere fails the comparison (max with a NaN would drop it).
    num = std::isnan(g[i]) ? INFINITY : std::max(num, std::abs(g[i] - r[i]));
    den = std::max(den, std::abs(r[i]));
  }
  if (abs_scale > 0) den = abs_scale;
  return {den > 0 ? num / den : num, den};
}

// EXPECT_TRUE(golden::matches(fx, "output", out)): same shape and dtype, max error <= tol.
inline ::testing::AssertionResult matches(const Fixture& fx, const std::string& name,
                                          const Tensor& got, double abs_scale = 0) {
  if (!got.defined()) return ::testing::AssertionFailure() << fx.stem() << " " << name << ": undefined";
  const Tensor ref = fx.at(name);
  if (got.shape() != ref.shape() || got.dtype() != ref.dtype())
    return ::testing::AssertionFailure() << fx.stem() << " " << name << ": got " << describe(got)
                                         << ", torch " << describe(ref);
  const Diff d = diff(got, ref, abs_scale);
  if (d.err <= fx.tol()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << fx.stem() << " " << name << " " << to_string(ref.shape()) << ": max error " << d.err
         << (abs_scale > 0 ? " (absolute / largest gradient " : " (relative to max |torch| ")
         << d.scale << ") > tolerance " << fx.tol();
}

// Compares every "grad.<name>" of the fixture with the gradient of the module parameter or the
// input of that name, and checks that every parameter of `m` has one (so neither side can
// silently drop a tensor). Zero-by-symmetry gradients compare absolutely (see the top).
inline void expect_gradients(const Fixture& fx, const Module& m,
                             const std::map<std::string, Tensor>& inputs) {
  std::map<std::string, Tensor> grads;
  for (const auto& [name, p] : m.named_parameters()) grads[name] = p.grad();
  for (const auto& [name, x] : inputs) grads[name] = x.grad();
  const auto zero = fx.zero_gradients();
  double largest = 0;
  for (const auto& name : fx.names_with_prefix("grad."))
    if (!zero.count(name)) largest = std::max(largest, diff(fx.at(name), fx.at(name)).scale);
  std::set<std::string> seen;
  for (const auto& name : fx.names_with_prefix("grad.")) {
    const std::string x = name.substr(5);
    seen.insert(x);
    auto it = grads.find(x);
    if (it == grads.end()) {
      ADD_FAILURE() << fx.stem() << ": fixture has " << name << " but focus has no such tensor";
      continue;
    }
    EXPECT_TRUE(matches(fx, name, it->second, zero.count(name) ? largest : 0));
  }
  for (const auto& [name, g] : grads)
    EXPECT_TRUE(seen.count(name)) << fx.stem() << ": no torch gradient for focus tensor " << name;
}

}  // namespace focus::golden
