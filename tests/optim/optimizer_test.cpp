// Optimizers against the published update equations: the first three steps on a 2-element
// parameter with given gradients, expected values written out as the documented recurrences
// (Adam in its textbook m_hat / v_hat form), in F64 (to rounding) and F32. Plus option checks,
// skipped parameters and state-dict validation.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>

#include "focus/optim/adam.hpp"
#include "focus/optim/rmsprop.hpp"
#include "focus/optim/sgd.hpp"

using namespace focus;

namespace {

using Vec = std::vector<double>;
using Make = std::function<std::unique_ptr<Optimizer>(NamedTensors)>;

const Vec kP0 = {0.5, -1.5};
const std::vector<Vec> kG = {{0.1, -0.2}, {0.3, 0.05}, {-0.4, 0.25}};  // gradients of steps 1..3

// The parameter after each of three steps, in dtype dt.
std::vector<Vec> run3(DType dt, const Make& make) {
  Tensor p = Tensor::from_vector(kP0, {2}).to(dt).requires_grad_();  // (2)
  std::unique_ptr<Optimizer> opt = make({{"p", p}});
  std::vector<Vec> out;
  for (const Vec& g : kG) {
    p.set_grad(Tensor::from_vector(g, {2}).to(dt));
    opt->step();
    out.push_back(p.to_vector<double>());
  }
  return out;
}

// Runs in F64 and F32 and compares with want[t][j] (parameter j after step t+1).
void check(const Make& make, const std::vector<Vec>& want) {
  for (DType dt : {DType::F64, DType::F32}) {
    const double tol = dt == DType::F64 ? 1e-13 : 2e-6;
    const std::vector<Vec> got = run3(dt, make);
    for (size_t t = 0; t < 3; ++t)
      for (size_t j = 0; j < 2; ++j)
        EXPECT_NEAR(got[t][j], want[t][j], tol * std::max(1.0, std::abs(want[t][j])))
            << dtype_name(dt) << " step " << t + 1 << " element " << j;
  }
}

// want[t][j] from a per-element formula f(j) that returns the three iterates.
std::vector<Vec> per_element(const std::function<Vec(size_t)>& f) {
  std::vector<Vec> want(3, Vec(2));
  for (size_t j = 0; j < 2; ++j) {
    const Vec it = f(j);
    for (size_t t = 0; t < 3; ++t) want[t][j] = it[t];
  }
  return want;
}

template <class O, class Opt>
Make maker(Opt o) {
  return [o](NamedTensors p) { return std::make_unique<O>(std::move(p), o); };
}

}  // namespace

TEST(SGD, PlainSteps) {
  const double lr = 0.1;
  check(maker<SGD>(SGDOptions{.lr = lr}), per_element([&](size_t j) {
          const double p1 = kP0[j] - lr * kG[0][j];
          const double p2 = p1 - lr * kG[1][j];
          return Vec{p1, p2, p2 - lr * kG[2][j]};
        }));
}

TEST(SGD, MomentumWithWeightDecay) {
  const double lr = 0.1, mu = 0.9, wd = 0.1;
  check(maker<SGD>(SGDOptions{.lr = lr, .momentum = mu, .weight_decay = wd}),
        per_element([&](size_t j) {
          // The buffer starts as the first (decayed) gradient, then b = mu * b + g.
          const double b1 = kG[0][j] + wd * kP0[j];
          const double p1 = kP0[j] - lr * b1;
          const double b2 = mu * b1 + (kG[1][j] + wd * p1);
          const double p2 = p1 - lr * b2;
          const double b3 = mu * b2 + (kG[2][j] + wd * p2);
          return Vec{p1, p2, p2 - lr * b3};
        }));
}

TEST(SGD, Nesterov) {
  const double lr = 0.05, mu = 0.8;
  check(maker<SGD>(SGDOptions{.lr = lr, .momentum = mu, .nesterov = true}),
        per_element([&](size_t j) {
          const double b1 = kG[0][j];
          const double p1 = kP0[j] - lr * (kG[0][j] + mu * b1);
          const double b2 = mu * b1 + kG[1][j];
          const double p2 = p1 - lr * (kG[1][j] + mu * b2);
          const double b3 = mu * b2 + kG[2][j];
          return Vec{p1, p2, p2 - lr * (kG[2][j] + mu * b3)};
        }));
}

TEST(SGD, DampeningSparesTheFirstStep) {
  // torch: the buffer is initialised to the full first gradient; dampening applies afterwards.
  const double lr = 0.1, mu = 0.9, tau = 0.5;
  check(maker<SGD>(SGDOptions{.lr = lr, .momentum = mu, .dampening = tau}),
        per_element([&](size_t j) {
          const double b1 = kG[0][j];
          const double b2 = mu * b1 + (1 - tau) * kG[1][j];
          const double b3 = mu * b2 + (1 - tau) * kG[2][j];
          const double p1 = kP0[j] - lr * b1, p2 = p1 - lr * b2;
          return Vec{p1, p2, p2 - lr * b3};
        }));
}

// Adam in the form of Kingma & Ba (Algorithm 1), with optional L2 (Adam) or decoupled (AdamW)
// weight decay: textbook bias-corrected moments m_hat, v_hat.
static Vec adam_reference(size_t j, double lr, double b1, double b2, double eps, double l2,
                          double decoupled) {
  double p = kP0[j], m = 0, v = 0;
  Vec out;
  for (int t = 1; t <= 3; ++t) {
    p *= 1 - lr * decoupled;
    const double g = kG[t - 1][j] + l2 * p;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    const double m_hat = m / (1 - std::pow(b1, t)), v_hat = v / (1 - std::pow(b2, t));
    p -= lr * m_hat / (std::sqrt(v_hat) + eps);
    out.push_back(p);
  }
  return out;
}

TEST(Adam, StepsUnrolled) {
  const double lr = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  check(maker<Adam>(AdamOptions{.lr = lr}), per_element([&](size_t j) {
          const Vec& g = {kG[0][j], kG[1][j], kG[2][j]};
          const double m1 = (1 - b1) * g[0], v1 = (1 - b2) * g[0] * g[0];
          const double p1 = kP0[j] - lr * (m1 / (1 - b1)) / (std::sqrt(v1 / (1 - b2)) + eps);
          const double m2 = b1 * m1 + (1 - b1) * g[1], v2 = b2 * v1 + (1 - b2) * g[1] * g[1];
          const double p2 =
              p1 - lr * (m2 / (1 - b1 * b1)) / (std::sqrt(v2 / (1 - b2 * b2)) + eps);
          const double m3 = b1 * m2 + (1 - b1) * g[2], v3 = b2 * v2 + (1 - b2) * g[2] * g[2];
          const double p3 =
              p2 - lr * (m3 / (1 - b1 * b1 * b1)) / (std::sqrt(v3 / (1 - b2 * b2 * b2)) + eps);
          return Vec{p1, p2, p3};
        }));
  // The first step moves each element by lr against the gradient's sign, whatever its size.
  const auto got = run3(DType::F64, maker<Adam>(AdamOptions{.lr = lr}));
  EXPECT_NEAR(got[0][0], kP0[0] - lr, 1e-6);
  EXPECT_NEAR(got[0][1], kP0[1] + lr, 1e-6);
}

TEST(Adam, L2WeightDecayAndCustomBetas) {
  AdamOptions o{.lr = 0.05, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-3, .weight_decay = 0.2};
  check(maker<Adam>(o), per_element([&](size_t j) {
          return adam_reference(j, o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, 0.0);
        }));
}

TEST(AdamW, DecoupledWeightDecay) {
  AdamWOptions o{.lr = 0.05, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-3, .weight_decay = 0.3};
  check(maker<AdamW>(o), per_element([&](size_t j) {
          return adam_reference(j, o.lr, o.beta1, o.beta2, o.eps, 0.0, o.weight_decay);
        }));
  EXPECT_EQ(AdamWOptions{}.weight_decay, 1e-2);  // torch's default
}

// RMSprop as documented by torch (Hinton's lecture form, eps outside the root).
static Vec rmsprop_reference(size_t j, const RMSpropOptions& o) {
  double p = kP0[j], sq = 0, ga = 0, buf = 0;
  Vec out;
  for (int t = 0; t < 3; ++t) {
    const double g = kG[t][j] + o.weight_decay * p;
    sq = o.alpha * sq + (1 - o.alpha) * g * g;
    ga = o.alpha * ga + (1 - o.alpha) * g;
    const double avg = std::sqrt(o.centered ? sq - ga * ga : sq) + o.eps;
    buf = o.momentum * buf + g / avg;
    p -= o.lr * (o.momentum > 0 ? buf : g / avg);
    out.push_back(p);
  }
  return out;
}

TEST(RMSprop, PlainStepsUnrolled) {
  const double lr = 0.01, a = 0.9, eps = 1e-8;
  check(maker<RMSprop>(RMSpropOptions{.lr = lr, .alpha = a}), per_element([&](size_t j) {
          const double s1 = (1 - a) * kG[0][j] * kG[0][j];
          const double p1 = kP0[j] - lr * kG[0][j] / (std::sqrt(s1) + eps);
          const double s2 = a * s1 + (1 - a) * kG[1][j] * kG[1][j];
          const double p2 = p1 - lr * kG[1][j] / (std::sqrt(s2) + eps);
          const double s3 = a * s2 + (1 - a) * kG[2][j] * kG[2][j];
          return Vec{p1, p2, p2 - lr * kG[2][j] / (std::sqrt(s3) + eps)};
        }));
}

TEST(RMSprop, MomentumCenteredWeightDecay) {
  for (bool centered : {false, true}) {
    RMSpropOptions o{.lr = 0.02, .alpha = 0.8, .eps = 1e-4, .weight_decay = 0.1,
                     .momentum = 0.7, .centered = centered};
    check(maker<RMSprop>(o), per_element([&](size_t j) { return rmsprop_reference(j, o); }));
  }
  RMSpropOptions o{.lr = 0.02, .alpha = 0.8, .centered = true};
  check(maker<RMSprop>(o), per_element([&](size_t j) { return rmsprop_reference(j, o); }));
}

TEST(Optimizer, InvalidOptionsAndParameters) {
  Tensor p = Tensor::zeros({3}).requires_grad_();  // (3)
  EXPECT_THROW(SGD({{"p", p}}, SGDOptions{.lr = -1}), ValueError);
  EXPECT_THROW(SGD({{"p", p}}, SGDOptions{.nesterov = true}), ValueError);
  EXPECT_THROW(SGD({{"p", p}}, SGDOptions{.momentum = 0.9, .dampening = 0.1, .nesterov = true}),
               ValueError);
  EXPECT_THROW(Adam({{"p", p}}, AdamOptions{.beta1 = 1.0}), ValueError);
  EXPECT_THROW(Adam({{"p", p}}, AdamOptions{.beta2 = -0.1}), ValueError);
  EXPECT_THROW(AdamW({{"p", p}}, AdamWOptions{.eps = -1}), ValueError);
  EXPECT_THROW(RMSprop({{"p", p}}, RMSpropOptions{.alpha = -0.5}), ValueError);
  EXPECT_THROW(SGD({}, SGDOptions{}), ValueError);
  EXPECT_THROW(SGD({{"p", p}, {"p", p}}, SGDOptions{}), ValueError);
  EXPECT_THROW(SGD({{"i", Tensor::zeros({2}, DType::I64)}}, SGDOptions{}), DTypeError);
  EXPECT_THROW(SGD({{"t", Tensor::zeros({2, 3}).transpose(0, 1)}}, SGDOptions{}), ValueError);
  SGD opt({{"p", p}}, SGDOptions{});
  EXPECT_THROW(opt.set_lr(std::nan("")), ValueError);
  p.set_grad(Tensor::zeros({4}));
  EXPECT_THROW(opt.step(), ShapeError);
  p.set_grad(Tensor::zeros({3}, DType::F64));
  EXPECT_THROW(opt.step(), DTypeError);
}

TEST(Optimizer, SkipsParametersWithoutGradient) {
  Tensor a = Tensor::ones({2}).requires_grad_(), b = Tensor::ones({2}).requires_grad_();  // (2)
  Adam opt({{"a", a}, {"b", b}}, AdamOptions{.lr = 0.1});
  a.set_grad(Tensor::ones({2}));
  opt.step();
  EXPECT_EQ(b.to_vector<float>(), (std::vector<float>{1, 1}));
  const StateDict sd = opt.state_dict();
  std::vector<std::string> keys;
  for (const auto& [k, t] : sd) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"a.exp_avg", "a.exp_avg_sq", "a.step", "step"}));
  EXPECT_EQ(sd.at("step").dtype(), DType::I64);
  EXPECT_EQ(sd.at("a.step").item(), 1.0);
  opt.zero_grad();
  EXPECT_FALSE(a.grad().defined());
  opt.step();  // nothing has a gradient: parameters and per-parameter counts unchanged
  EXPECT_EQ(opt.state_dict().at("a.step").item(), 1.0);
  EXPECT_EQ(opt.steps(), 2);
}

TEST(Optimizer, LoadStateDictValidates) {
  Tensor w = Tensor::ones({3}).requires_grad_();  // (3)
  SGD opt({{"w", w}}, SGDOptions{.lr = 0.1, .momentum = 0.9});
  w.set_grad(Tensor::ones({3}));
  opt.step();
  const StateDict good = opt.state_dict();
  EXPECT_EQ(good.count("w.momentum_buffer"), 1u);

  auto expect_throw_named = [&](StateDict sd, const std::string& part, auto tag) {
    using E = decltype(tag);
    try {
      opt.load_state_dict(sd);
      ADD_FAILURE() << "no exception for " << part;
    } catch (const E& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  StateDict sd = good;
  sd.erase("step");
  expect_throw_named(sd, "'step'", FormatError{""});
  sd = good;
  sd.erase("w.momentum_buffer");
  expect_throw_named(sd, "missing 'w.momentum_buffer'", FormatError{""});
  sd = good;
  sd["v.momentum_buffer"] = Tensor::zeros({3});
  expect_throw_named(sd, "unexpected optimizer state 'v.momentum_buffer'", FormatError{""});
  sd = good;
  sd["w.momentum_buffer"] = Tensor::zeros({4});
  expect_throw_named(sd, "'w.momentum_buffer' has shape (4,)", ShapeError{""});
  sd = good;
  sd["step"] = Tensor::scalar(-2, DType::I64);
  expect_throw_named(sd, "'step' = -2", ValueError{""});
  // The failed loads left the state alone; an F64 state converts to the F32 parameter.
  EXPECT_EQ(opt.steps(), 1);
  sd = good;
  sd["w.momentum_buffer"] = Tensor::full({3}, 0.5, DType::F64);
  opt.load_state_dict(sd);
  EXPECT_EQ(opt.state_dict().at("w.momentum_buffer").dtype(), DType::F32);
  EXPECT_EQ(opt.state_dict().at("w.momentum_buffer").to_vector<float>()[2], 0.5f);
  // A state for a fresh optimizer (no parameter updated yet) holds only "step".
  Tensor u = Tensor::ones({3}).requires_grad_();
  SGD fresh({{"w", u}}, SGDOptions{.momentum = 0.9});
  EXPECT_EQ(fresh.state_dict().size(), 1u);
  opt.load_state_dict(fresh.state_dict());
  EXPECT_EQ(opt.state_dict().size(), 1u);
}
