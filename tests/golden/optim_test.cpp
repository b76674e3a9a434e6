// Golden tests of the optimizers against torch.optim (PyTorch 1.13): 10 AdamW steps and 5 SGD
// (momentum, Nesterov) steps training a tiny model (Linear 4->8, GELU, LayerNorm, Linear 8->3)
// with cross-entropy on one fixed batch, from torch's initial parameters. Compares the loss
// before every step and the final parameters, F64 and F32.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "focus/nn/linear.hpp"
#include "focus/nn/norm.hpp"
#include "focus/ops/loss.hpp"
#include "focus/ops/unary.hpp"
#include "focus/optim/adam.hpp"
#include "focus/optim/sgd.hpp"
#include "focus/tensor/rng.hpp"
#include "golden/golden.hpp"

using namespace focus;
using golden::Fixture;

namespace {

// fc1 (4 -> 8) -> GELU -> norm (LayerNorm 8) -> fc2 (8 -> 3), named as the fixture's.
struct TinyModel : Module {
  explicit TinyModel(Rng& rng)
      : fc1(register_module("fc1", std::make_shared<Linear>(4, 8, rng))),
        norm(register_module("norm", std::make_shared<LayerNorm>(8))),
        fc2(register_module("fc2", std::make_shared<Linear>(8, 3, rng))) {}
  Tensor forward(const Tensor& x) { return fc2->forward(norm->forward(gelu(fc1->forward(x)))); }

  const std::shared_ptr<Linear> fc1;
  const std::shared_ptr<LayerNorm> norm;
  const std::shared_ptr<Linear> fc2;
};

// Trains `m` with `opt` for the fixture's steps and compares losses and final parameters.
void train_and_compare(const Fixture& fx, TinyModel& m, Optimizer& opt) {
  const Tensor x = fx.at("input");   // (N, 4)
  const Tensor y = fx.at("target");  // (N) I64
  std::vector<double> losses;
  for (int64_t step = 0; step < fx.meta_int("steps"); ++step) {
    opt.zero_grad();
    Tensor loss = cross_entropy(m.forward(x), y);  // ()
    losses.push_back(loss.item());
    loss.backward();
    opt.step();
  }
  const int64_t n = static_cast<int64_t>(losses.size());
  EXPECT_TRUE(golden::matches(fx, "losses", Tensor::from_vector(losses, {n}).to(fx.dtype())));
  for (const auto& [name, p] : m.named_parameters())
    EXPECT_TRUE(golden::matches(fx, "final." + name, p));
}

void check_adamw(const std::string& stem) {
  const Fixture fx(stem);
  Rng rng(4);
  TinyModel m(rng);
  m.to(fx.dtype());
  fx.load_into(m);
  AdamWOptions o;
  o.lr = fx.meta_double("lr");
  o.beta1 = fx.meta_double("beta1");
  o.beta2 = fx.meta_double("beta2");
  o.eps = fx.meta_double("eps");
  o.weight_decay = fx.meta_double("weight_decay");
  AdamW opt(m.named_parameters(), o);
  train_and_compare(fx, m, opt);
}

void check_sgd(const std::string& stem) {
  const Fixture fx(stem);
  Rng rng(5);
  TinyModel m(rng);
  m.to(fx.dtype());
  fx.load_into(m);
  SGDOptions o;
  o.lr = fx.meta_double("lr");
  o.momentum = fx.meta_double("momentum");
  o.dampening = fx.meta_double("dampening");
  o.weight_decay = fx.meta_double("weight_decay");
  o.nesterov = fx.meta("nesterov") == "True";
  SGD opt(m.named_parameters(), o);
  train_and_compare(fx, m, opt);
}

}  // namespace

TEST(GoldenOptim, AdamWF64) { check_adamw("adamw_f64"); }
TEST(GoldenOptim, AdamWF32) { check_adamw("adamw_f32"); }
TEST(GoldenOptim, SgdNesterovF64) { check_sgd("sgd_nesterov_f64"); }
TEST(GoldenOptim, SgdNesterovF32) { check_sgd("sgd_nesterov_f32"); }
