// profile_layers: where a model's time goes, layer by layer. Each layer of cnn_se or vit (default
// configs) is rebuilt alone at the shapes it sees inside the model and timed: in training mode
// forward and forward+backward at --batch (backward = the difference), in inference mode
// (--infer) forward under NoGradGuard in eval mode. Rows are scaled by how often the layer occurs
// in one step; the full model step (as bench_models times it) is timed too, so the rows' sum can
// be checked against it (glue such as reshapes and the graph walk is what they miss).
// bench/profile_layers.py runs this and the same rows in PyTorch side by side.
// Verification: each layer's output must be finite before it is timed.
// Limits: a layer timed alone sees warm caches that it may not see inside the model.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "focus/autograd/node.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/models/image_classifier.hpp"
#include "focus/nn/layers.hpp"
#include "focus/ops/attention.hpp"
#include "focus/ops/conv.hpp"
#include "focus/ops/elementwise.hpp"
#include "focus/ops/index.hpp"
#include "focus/ops/loss.hpp"
#include "focus/ops/unary.hpp"
#include "focus/ops/view.hpp"
#include "focus/optim/adam.hpp"
#include "focus/tensor/error.hpp"
#include "focus/tensor/rng.hpp"

using namespace focus;

namespace {

struct Row {
  std::string op, shape;
  int count;  // occurrences per step
  std::vector<Shape> inputs;
  std::vector<bool> input_grad;  // which inputs need a gradient in the model
  std::function<Tensor(const std::vector<Tensor>&)> fn;
  std::vector<std::shared_ptr<Module>> modules;  // for train/eval and zero_grad
  std::string part_of;  // nonempty: a breakdown of another row, not added to the sum
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Median seconds per call; reps sized to about 0.3 s, 5..200.
double time_median(const std::function<void()>& fn) {
  fn();
  const double t0 = now_s();
  fn();
  const double one = std::max(now_s() - t0, 1e-6);
  const int reps = std::clamp(int(0.3 / one), 5, 200);
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const double s = now_s();
    fn();
    t.push_back(now_s() - s);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::string shape_str(const Shape& s) { return to_string(s); }

std::vector<Row> cnn_se_rows(int64_t N, Rng& rng) {
  std::vector<Row> rows;
  int64_t cin = 1, H = 28;
  for (int64_t c : {32, 64, 128}) {
    const Shape x{N, cin, H, H}, h{N, c, H, H};
    for (int k = 0; k < 2; ++k) {
      auto conv = std::make_shared<Conv2d>(k ? c : cin, c, 3, rng, 1, 1, false);
      rows.push_back({fmt::format("conv3x3 {}->{}", k ? c : cin, c), shape_str(k ? h : x), 1,
                      {k ? h : x}, {k == 1 || cin > 1},
                      [conv](const std::vector<Tensor>& in) { return conv->forward(in[0]); },
                      {conv}, ""});
    }
    auto bn = std::make_shared<BatchNorm2d>(c);
    rows.push_back({"batch_norm", shape_str(h), 2, {h}, {true},
                    [bn](const std::vector<Tensor>& in) { return bn->forward(in[0]); }, {bn}, ""});
    rows.push_back({"relu", shape_str(h), 2, {h}, {true},
                    [](const std::vector<Tensor>& in) { return relu(in[0]); }, {}, ""});
    auto se = std::make_shared<SqueezeExcitation>(c, 4, rng);
    rows.push_back({"squeeze_excitation", shape_str(h), 1, {h}, {true},
                    [se](const std::vector<Tensor>& in) { return se->forward(in[0]); }, {se}, ""});
    rows.push_back({"max_pool2d 2", shape_str(h), 1, {h}, {true},
                    [](const std::vector<Tensor>& in) { return max_pool2d(in[0], 2); }, {}, ""});
    cin = c;
    H /= 2;
  }
  const Shape last{N, 128, H, H};
  rows.push_back({"global_avg_pool2d", shape_str(last), 1, {last}, {true},
                  [](const std::vector<Tensor>& in) { return global_avg_pool2d(in[0]); }, {}, ""});
  auto drop = std::make_shared<Dropout>(0.2, rng);
  rows.push_back({"dropout 0.2", shape_str({N, 128}), 1, {{N, 128}}, {true},
                  [drop](const std::vector<Tensor>& in) { return drop->forward(in[0]); }, {drop}, ""});
  auto head = std::make_shared<Linear>(128, 10, rng);
  rows.push_back({"linear 128->10", shape_str({N, 128}), 1, {{N, 128}}, {true},
                  [head](const std::vector<Tensor>& in) { return head->forward(in[0]); }, {head}, ""});
  return rows;
}

std::vector<Row> vit_rows(int64_t N, Rng& rng) {
  const int64_t T = 50, D = 64, F = 128, H = 4;
  const Shape x{N, 1, 28, 28}, tok{N, T, D}, wide{N, T, F};
  std::vector<Row> rows;
  auto patch = std::make_shared<Conv2d>(1, D, 4, rng, 4);
  rows.push_back({"patch_embed conv4x4/4 1->64", shape_str(x), 1, {x}, {false},
                  [patch](const std::vector<Tensor>& in) { return patch->forward(in[0]); },
                  {patch}, ""});
  rows.push_back({"tokens: flatten, cls concat, + positions", shape_str({N, D, 7, 7}), 1,
                  {{N, D, 7, 7}, {1, 1, D}, {T, D}}, {true, true, true},
                  [N, D](const std::vector<Tensor>& in) {
                    Tensor h = transpose(flatten(in[0], 2), 1, 2);             // (N, P, D)
                    h = concat({expand(in[1], {N, 1, D}), h}, 1);             // (N, T, D)
                    return add(h, in[2]);
                  },
                  {}, ""});
  auto drop = std::make_shared<Dropout>(0.1, rng);
  rows.push_back({"dropout 0.1", shape_str(tok), 9, {tok}, {true},
                  [drop](const std::vector<Tensor>& in) { return drop->forward(in[0]); }, {drop}, ""});
  rows.push_back({"dropout 0.1", shape_str(wide), 4, {wide}, {true},
                  [drop](const std::vector<Tensor>& in) { return drop->forward(in[0]); }, {drop}, ""});
  auto ln = std::make_shared<LayerNorm>(D);
  rows.push_back({"layer_norm", shape_str(tok), 9, {tok}, {true},
                  [ln](const std::vector<Tensor>& in) { return ln->forward(in[0]); }, {ln}, ""});
  auto mha = std::make_shared<MultiHeadAttention>(MultiHeadAttentionOptions{D, H, 0, true, 0.0}, rng);
  rows.push_back({"self-attention (4 proj + sdpa)", shape_str(tok), 4, {tok}, {true},
                  [mha](const std::vector<Tensor>& in) { return mha->forward(in[0]); }, {mha}, ""});
  const Shape qkv{N, H, T, D / H};
  rows.push_back({"sdpa core", shape_str(qkv) + " x3", 4, {qkv, qkv, qkv}, {true, true, true},
                  [](const std::vector<Tensor>& in) {
                    return scaled_dot_product_attention(in[0], in[1], in[2]);
                  },
                  {}, "self-attention (4 proj + sdpa)"});
  auto proj = std::make_shared<Linear>(D, D, rng);
  rows.push_back({"linear 64->64 (one projection)", shape_str(tok), 16, {tok}, {true},
                  [proj](const std::vector<Tensor>& in) { return proj->forward(in[0]); }, {proj},
                  "self-attention (4 proj + sdpa)"});
  auto l1 = std::make_shared<Linear>(D, F, rng);
  rows.push_back({"linear 64->128", shape_str(tok), 4, {tok}, {true},
                  [l1](const std::vector<Tensor>& in) { return l1->forward(in[0]); }, {l1}, ""});
  rows.push_back({"gelu", shape_str(wide), 4, {wide}, {true},
                  [](const std::vector<Tensor>& in) { return gelu(in[0]); }, {}, ""});
  auto l2 = std::make_shared<Linear>(F, D, rng);
  rows.push_back({"linear 128->64", shape_str(wide), 4, {wide}, {true},
                  [l2](const std::vector<Tensor>& in) { return l2->forward(in[0]); }, {l2}, ""});
  rows.push_back({"add (residual)", shape_str(tok) + " x2", 8, {tok, tok}, {true, true},
                  [](const std::vector<Tensor>& in) { return add(in[0], in[1]); }, {}, ""});
  auto head = std::make_shared<Linear>(D, 10, rng);
  rows.push_back({"cls select + linear 64->10", shape_str(tok), 1, {tok}, {true},
                  [head](const std::vector<Tensor>& in) { return head->forward(select(in[0], 1, 0)); },
                  {head}, ""});
  return rows;
}

nlohmann::json time_row(Row& r, bool infer, Rng& rng) {
  for (auto& m : r.modules) m->train(!infer);
  std::vector<Tensor> in;
  for (size_t i = 0; i < r.inputs.size(); ++i) {
    Tensor t = Tensor::randn(r.inputs[i], rng);
    if (!infer && r.input_grad[i]) t.requires_grad_(true);
    in.push_back(t);
  }
  nlohmann::json out{{"op", r.op}, {"shape", r.shape}, {"count", r.count}, {"part_of", r.part_of}};
  if (infer) {
    NoGradGuard ng;
    const std::vector<float> y = r.fn(in).contiguous().to_vector<float>();
    FOCUS_CHECK(std::all_of(y.begin(), y.end(), [](float v) { return std::isfinite(v); }),
                StateError, "profile_layers: {} gives non-finite outputs", r.op);
    out["fwd_ms"] = 1e3 * time_median([&] { r.fn(in); });
    out["bwd_ms"] = 0.0;
    return out;
  }
  const Tensor y0 = r.fn(in);
  const std::vector<float> y = y0.contiguous().to_vector<float>();
  FOCUS_CHECK(std::all_of(y.begin(), y.end(), [](float v) { return std::isfinite(v); }), StateError,
              "profile_layers: {} gives non-finite outputs", r.op);
  const Tensor g = Tensor::ones(y0.shape());
  const double fwd = time_median([&] { r.fn(in); });
  const double both = time_median([&] {
    for (auto& m : r.modules) m->zero_grad();
    for (auto& t : in) t.zero_grad();
    r.fn(in).backward(g);
  });
  out["fwd_ms"] = 1e3 * fwd;
  out["bwd_ms"] = 1e3 * std::max(0.0, both - fwd);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"focus per-layer profile of an image model at its own shapes"};
  std::string model;
  int64_t batch = 128;
  bool infer = false, json = false;
  int threads = 0;
  app.add_option("--model", model, "cnn_se | vit")->required()->check(CLI::IsMember(image_model_names()));
  app.add_option("--batch", batch, "batch")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_flag("--infer", infer, "inference (eval, no grad, forward only) instead of training");
  app.add_option("--threads", threads, "threads (0 = policy)");
  app.add_flag("--json", json, "print JSON");
  CLI11_PARSE(app, argc, argv);
  ensure_passive_omp_wait(argv);  // as the focus CLI: idle OpenMP threads sleep (kernels/cpu.hpp)
  try {
    if (threads > 0) set_num_threads(threads);
    Rng rng(3);
    std::vector<Row> rows = model == "cnn_se" ? cnn_se_rows(batch, rng) : vit_rows(batch, rng);
    nlohmann::json out{{"framework", "focus"}, {"model", model}, {"batch", batch},
                       {"mode", infer ? "infer" : "train"}, {"threads", num_threads()}};
    for (Row& r : rows) out["rows"].push_back(time_row(r, infer, rng));
    // The whole model, as bench_models times it.
    auto m = make_image_model(model, nlohmann::json::object(), rng);
    const Tensor x = Tensor::randn({batch, 1, 28, 28}, rng);  // (N, 1, 28, 28)
    if (infer) {
      m->eval();
      NoGradGuard ng;
      out["step_ms"] = 1e3 * time_median([&] { m->forward(x); });
    } else {
      std::vector<int64_t> labels(batch);
      for (auto& l : labels) l = rng.randint(10);
      const Tensor y = Tensor::from_vector(labels, {batch});  // (N)
      AdamW opt(m->named_parameters(), AdamWOptions{});
      auto fwd_loss = [&] { return cross_entropy(m->forward(x), y); };
      out["step_ms"] = 1e3 * time_median([&] {
        opt.zero_grad();
        fwd_loss().backward();
        opt.step();
      });
      // Loss and optimizer rows on the real model.
      const Tensor logits = Tensor::randn({batch, 10}, rng).requires_grad_(true);  // (N, 10)
      const double ce_f = time_median([&] { cross_entropy(logits, y); });
      const double ce_b = time_median([&] { cross_entropy(logits, y).backward(); });
      out["rows"].push_back({{"op", "cross_entropy"}, {"shape", to_string(logits.shape())},
                             {"count", 1}, {"part_of", ""}, {"fwd_ms", 1e3 * ce_f},
                             {"bwd_ms", 1e3 * std::max(0.0, ce_b - ce_f)}});
      fwd_loss().backward();
      const double step = time_median([&] { opt.step(); });
      out["rows"].push_back({{"op", "AdamW step"},
                             {"shape", fmt::format("{} parameters", m->num_parameters())},
                             {"count", 1}, {"part_of", ""}, {"fwd_ms", 1e3 * step}, {"bwd_ms", 0.0}});
    }
    if (json) {
      std::printf("%s\n", out.dump(2).c_str());
      return 0;
    }
    double sum = 0;
    std::printf("%-40s %-24s %5s %9s %9s %9s\n", "op", "shape", "count", "fwd ms", "bwd ms",
                "total ms");
    for (const auto& r : out["rows"]) {
      const double tot = r["count"].get<int>() * (r["fwd_ms"].get<double>() + r["bwd_ms"].get<double>());
      if (r["part_of"].get<std::string>().empty()) sum += tot;
      std::printf("%-40s %-24s %5d %9.3f %9.3f %9.2f\n", r["op"].get<std::string>().c_str(),
                  r["shape"].get<std::string>().c_str(), r["count"].get<int>(),
                  r["fwd_ms"].get<double>(), r["bwd_ms"].get<double>(), tot);
    }
    std::printf("rows sum %.1f ms; whole %s %.1f ms\n", sum, infer ? "forward" : "training step",
                out["step_ms"].get<double>());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "profile_layers: %s\n", e.what());
    return 1;
  }
  return 0;
}
