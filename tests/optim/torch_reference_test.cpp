// focus's optimizers against torch.optim of PyTorch 1.13, bit for bit: the parameter after each
// of 4 steps, F32 and F64, for SGD / Adam / AdamW / RMSprop variants. The reference file and the
// optimizer arguments of each case come from make_torch_reference.py (run once with torch; the
// file is committed). Exactness assumes an FMA-capable build (-march=native on x86-64), like
// torch's AVX2/AVX-512 kernels whose roundings the update loops reproduce.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include <nlohmann/json.hpp>

#include "focus/io/safetensors.hpp"
#include "focus/optim/adam.hpp"
#include "focus/optim/rmsprop.hpp"
#include "focus/optim/sgd.hpp"

using namespace focus;

namespace {

std::unique_ptr<Optimizer> make(const nlohmann::json& c, NamedTensors params) {
  const std::string name = c.at("optimizer");
  auto get = [&](const char* k, double d) { return c.contains(k) ? c[k].get<double>() : d; };
  if (name == "SGD")
    return std::make_unique<SGD>(std::move(params),
                                 SGDOptions{.lr = get("lr", 0.0),
                                            .momentum = get("momentum", 0.0),
                                            .dampening = get("dampening", 0.0),
                                            .weight_decay = get("weight_decay", 0.0),
                                            .nesterov = c.value("nesterov", false)});
  const double b1 = c.contains("betas") ? c["betas"][0].get<double>() : 0.9;
  const double b2 = c.contains("betas") ? c["betas"][1].get<double>() : 0.999;
  if (name == "Adam")
    return std::make_unique<Adam>(std::move(params),
                                  AdamOptions{.lr = get("lr", 1e-3), .beta1 = b1, .beta2 = b2,
                                              .eps = get("eps", 1e-8),
                                              .weight_decay = get("weight_decay", 0.0)});
  if (name == "AdamW")
    return std::make_unique<AdamW>(std::move(params),
                                   AdamWOptions{.lr = get("lr", 1e-3), .beta1 = b1, .beta2 = b2,
                                                .eps = get("eps", 1e-8),
                                                .weight_decay = get("weight_decay", 1e-2)});
  if (name == "RMSprop")
    return std::make_unique<RMSprop>(std::move(params),
                                     RMSpropOptions{.lr = get("lr", 1e-2),
                                                    .alpha = get("alpha", 0.99),
                                                    .eps = get("eps", 1e-8),
                                                    .weight_decay = get("weight_decay", 0.0),
                                                    .momentum = get("momentum", 0.0),
                                                    .centered = c.value("centered", false)});
  throw ValueError("unknown optimizer " + name);
}

}  // namespace

TEST(TorchReference, OptimizersMatchBitForBit) {
  const SafetensorsFile ref =
      load_safetensors(FOCUS_SOURCE_DIR "/tests/optim/torch_optim_reference.safetensors");
  int cases = 0;
  for (const auto& [name, config] : ref.metadata) {
    if (name == "torch") continue;
    for (const std::string dt : {"f32", "f64"}) {
      SCOPED_TRACE(name + "." + dt);
      const Tensor grads = ref.tensors.at("grads." + dt);   // (T, N)
      const Tensor want = ref.tensors.at(name + "." + dt);  // (T, N)
      Tensor p = ref.tensors.at("p0." + dt).clone().requires_grad_();  // (N)
      auto opt = make(nlohmann::json::parse(config), {{"p", p}});
      for (int64_t t = 0; t < grads.size(0); ++t) {
        p.set_grad(grads.select(0, t).clone());
        opt->step();
        const Tensor w = want.select(0, t);
        ASSERT_EQ(std::memcmp(p.raw_data(), w.raw_data(), p.nbytes()), 0)
            << "step " << t + 1 << ": first values " << p.to_vector<double>()[0] << " vs "
            << w.to_vector<double>()[0];
      }
      ++cases;
    }
  }
  EXPECT_EQ(cases, 18);
}
