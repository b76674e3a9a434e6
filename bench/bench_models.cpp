// bench_models: training and inference throughput and peak memory of focus's image models
// (cnn_se, vit; default configs from the model registry). bench/torch_models.py is its PyTorch
// twin and bench/compare.py runs the two side by side.
//   training:  images/s at --batch (default 128): zero_grad, forward, cross-entropy, backward,
//              AdamW step (lr 1e-3, weight decay 1e-2) on one fixed random batch.
//   inference: images/s at --infer-batch (default 1 and 256), eval mode under NoGradGuard, through
//              the compiled plan where one exists (infer/image_plan.hpp: cnn_se on oneDNN;
//              FOCUS_INFER_ENGINE=native times the model's own forward), as focus predict and
//              focus serve run it; the JSON names the engine.
//   memory:    peak resident set (VmHWM) per phase; the counter is reset (/proc/self/clear_refs)
//              before each phase, so each phase's peak is its own. Inference runs first.
// Verify first, time second: inference outputs must be finite (N, classes), identical over two
// calls, the batch-1 output must match row 0 of the batch, a plan's logits must match the model's
// own forward (1e-4 of the largest logit); the training losses must be finite
// and fall over the warm-up steps. Figures are medians of repeated calls.
// Limits: Linux only (memory from /proc); random inputs (throughput does not depend on the data).
// Same weights as another runtime (bench/compare_ort.py, issue 21):
//   --save-weights FILE  writes the seeded model (Rng(1)) after a few AdamW steps in train mode on
//                        a fixed random batch (so batch norm's running statistics are not the
//                        trivial 0 / 1) as a focus model file (infer/model_file), then exits.
//   --weights FILE       times (or dumps) the model in that file instead of the seeded one.
//   --dump-logits IN OUT runs the model (eval mode) on the raw float32 (N, C, S, S) batch in IN
//                        and writes its raw float32 (N, classes) outputs to OUT, then exits.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "focus/kernels/precision.hpp"
#include "focus/autograd/node.hpp"
#include "focus/infer/image_plan.hpp"
#include "focus/infer/image_predictor.hpp"
#include "focus/infer/model_file.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/kernels/gemm.hpp"
#include "focus/models/image_classifier.hpp"
#include "focus/ops/loss.hpp"
#include "focus/optim/adam.hpp"
#include "focus/tensor/error.hpp"
#include "focus/tensor/rng.hpp"

using namespace focus;

namespace {

// --- memory (Linux /proc) ---

double status_mib(const std::string& key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key + ":", 0) == 0) return std::stod(line.substr(key.size() + 1)) / 1024.0;
  throw StateError(fmt::format("bench_models: {} not in /proc/self/status", key));
}
double rss_mib() { return status_mib("VmRSS"); }
double peak_rss_mib() { return status_mib("VmHWM"); }
// Resets VmHWM to the current RSS (Linux >= 4.0).
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

// --- timing ---

double seconds(const std::function<void()>& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// CPU seconds of the whole process (all threads): on a loaded machine a steadier measure of the
// work than wall time (idle OpenMP threads sleep: OMP_WAIT_POLICY=PASSIVE).
double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

double median_seconds(const std::function<void()>& fn, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) t.push_back(seconds(fn));
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Timed calls at an inference batch: iters at 256 images, up to 50 * iters at batch 1.
int infer_reps(int64_t batch, int iters) {
  return std::max<int>(iters, std::min<int>(50 * iters, int(std::lround(iters * 256.0 / batch))));
}

// --- checks ---

void check(bool ok, const std::string& what) {
  if (!ok) throw StateError("bench_models: verification failed: " + what);
}

std::vector<float> values(const Tensor& t) { return t.contiguous().to_vector<float>(); }

// The inference forward: the compiled plan (infer/image_plan.hpp) where one exists, else the
// model's own forward. Built after eval(): the plan copies the weights as they are.
using Forward = std::function<Tensor(const Tensor&)>;
Forward inference_forward(ImageClassifier& m, std::unique_ptr<ImagePlan>& plan) {
  m.eval();
  plan = compile_image_plan(m);
  if (plan) return [&plan](const Tensor& x) { return plan->forward(x); };
  return [&m](const Tensor& x) {
    ScopedThreads threads(inference_threads(x.size(0)));  // as ImagePredictor runs it
    return m.forward(x);
  };
}

// Eval outputs: finite (N, classes), deterministic, row 0 independent of the batch, and (with a
// plan) the plan's logits within float rounding of the model's own forward.
void verify_inference(ImageClassifier& m, const Forward& f, bool planned, const Tensor& x,
                      int64_t classes) {
  const int64_t n = x.size(0);
  const Tensor y1 = f(x), y2 = f(x);  // (N, classes)
  check(y1.dim() == 2 && y1.size(0) == n && y1.size(1) == classes,
        "inference output shape " + to_string(y1.shape()));
  const std::vector<float> a = values(y1), b = values(y2);
  check(std::all_of(a.begin(), a.end(), [](float v) { return std::isfinite(v); }),
        "inference outputs finite");
  check(a == b, "eval outputs identical over two calls");
  const std::vector<float> r0 = values(f(x.slice(0, 0, 1)));  // (1, classes)
  for (int64_t j = 0; j < classes; ++j)
    check(std::abs(r0[j] - a[j]) <= 1e-5 + 1e-4 * std::abs(a[j]),
          fmt::format("batch-1 output {} vs row 0 of the batch {} at class {}", r0[j], a[j], j));
  if (!planned) return;
  const std::vector<float> ref = values(m.forward(x));
  float scale = 1, err = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    scale = std::max(scale, std::abs(ref[i]));
    err = std::max(err, std::abs(a[i] - ref[i]));
  }
  check(err <= 1e-4f * scale, fmt::format("compiled plan vs the model's forward: max |diff| {} "
                                          "over logits up to {}", err, scale));
}

nlohmann::json bench_inference(ImageClassifier& m, int64_t batch, int iters, int64_t classes,
                               Rng& rng) {
  reset_peak_rss();
  const double rss0 = rss_mib();
  NoGradGuard no_grad;
  std::unique_ptr<ImagePlan> plan;
  const Forward f = inference_forward(m, plan);
  const Tensor x = Tensor::randn({batch, 1, 28, 28}, rng);  // (N, 1, 28, 28)
  verify_inference(m, f, plan != nullptr, x, classes);
  const int reps = infer_reps(batch, iters);
  const double med = median_seconds([&] { f(x); }, std::max(3, reps / 10), reps);
  return {{"batch", batch},
          {"reps", reps},
          {"median_ms", med * 1e3},
          {"images_per_s", batch / med},
          {"engine", plan ? plan->describe() : "native"},
          {"rss_before_mib", rss0},
          {"peak_rss_mib", peak_rss_mib()}};
}

nlohmann::json bench_train(ImageClassifier& m, int64_t batch, int iters, int64_t classes, Rng& rng,
                           int warmup = 5) {
  reset_peak_rss();
  const double rss0 = rss_mib();
  m.train();
  AdamW opt(m.named_parameters(), AdamWOptions{});
  const Tensor x = Tensor::randn({batch, 1, 28, 28}, rng);  // (N, 1, 28, 28)
  std::vector<int64_t> labels(batch);
  for (auto& l : labels) l = rng.randint(classes);
  const Tensor y = Tensor::from_vector(labels, {batch});  // (N)
  std::vector<double> losses;
  auto step = [&] {
    opt.zero_grad();
    const Tensor loss = cross_entropy(m.forward(x), y);
    loss.backward();
    opt.step();
    losses.push_back(loss.item());
  };
  for (int i = 0; i < warmup; ++i) step();
  check(std::all_of(losses.begin(), losses.end(), [](double v) { return std::isfinite(v); }) &&
            losses.back() < losses.front(),
        fmt::format("training losses fall on a fixed batch: {}", fmt::join(losses, ", ")));
  const double cpu0 = cpu_seconds();
  const double med = median_seconds(step, 0, iters);
  const double cpu_ms = (cpu_seconds() - cpu0) * 1e3 / iters;
  return {{"batch", batch},
          {"iters", iters},
          {"median_ms", med * 1e3},
          {"cpu_ms_per_step", cpu_ms},
          {"images_per_s", batch / med},
          {"loss_first", losses.front()},
          {"loss_after_warmup", losses[warmup - 1]},
          {"rss_before_mib", rss0},
          {"peak_rss_mib", peak_rss_mib()}};
}

// A few AdamW steps (lr 1e-2) in train mode on one fixed random batch: moves the weights off
// their initialisation (logits of order 1, not 0.1: a verification against another runtime then
// means something) and batch norm's running statistics off 0 / 1 before the model is saved.
void settle(ImageClassifier& m, int64_t classes, Rng& rng, int steps = 10) {
  m.train();
  AdamWOptions o;
  o.lr = 1e-2;
  AdamW opt(m.named_parameters(), o);
  const Tensor x = Tensor::randn({32, 1, 28, 28}, rng);  // (N, 1, 28, 28)
  std::vector<int64_t> labels(32);
  for (auto& l : labels) l = rng.randint(classes);
  const Tensor y = Tensor::from_vector(labels, {32});  // (N)
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    cross_entropy(m.forward(x), y).backward();
    opt.step();
  }
  m.eval();
}

std::vector<float> read_floats(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  check(bool(f), "cannot open " + path);
  const auto bytes = static_cast<size_t>(f.tellg());
  std::vector<float> v(bytes / sizeof(float));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(v.data()), std::streamsize(v.size() * sizeof(float)));
  check(bool(f) && bytes % sizeof(float) == 0, "cannot read float32 values from " + path);
  return v;
}

// IN: raw float32 (N, C, S, S); OUT: the model's raw float32 (N, classes) outputs in eval mode.
void dump_logits(ImageClassifier& m, const std::string& in, const std::string& out) {
  const int64_t c = m.config().value("in_channels", int64_t(1));
  const int64_t s = m.config().value("image_size", int64_t(28));
  std::vector<float> x = read_floats(in);
  check(!x.empty() && int64_t(x.size()) % (c * s * s) == 0,
        fmt::format("{}: {} floats is not N x ({}, {}, {})", in, x.size(), c, s, s));
  const int64_t n = int64_t(x.size()) / (c * s * s);
  NoGradGuard no_grad;
  std::unique_ptr<ImagePlan> plan;
  const std::vector<float> y =
      values(inference_forward(m, plan)(Tensor::from_vector(x, {n, c, s, s})));  // (N, K)
  std::ofstream f(out, std::ios::binary);
  f.write(reinterpret_cast<const char*>(y.data()), std::streamsize(y.size() * sizeof(float)));
  check(bool(f), "cannot write " + out);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"focus image-model benchmark: training/inference images/s and peak memory"};
  std::string model;
  std::vector<int64_t> infer_batch{1, 256};
  int64_t batch = 128;
  int iters = 20, threads = 0;
  bool json = false, skip_train = false;
  app.add_option("--model", model, "cnn_se | vit")->required()->check(CLI::IsMember(image_model_names()));
  app.add_option("--batch", batch, "training batch")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--infer-batch", infer_batch, "inference batches, comma-separated")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--iters", iters, "timed training steps")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "threads (0 = policy)");
  std::string model_config = "{}";
  app.add_option("--model-config", model_config, "model config JSON (registry defaults: {})");
  app.add_flag("--skip-train", skip_train, "inference only");
  std::string weights, save_weights;
  std::vector<std::string> dump;
  app.add_option("--weights", weights, "focus model file of --model to use instead of the seeded one")
      ->check(CLI::ExistingFile);
  app.add_option("--save-weights", save_weights, "write the seeded, settled model to FILE and exit");
  app.add_option("--dump-logits", dump, "IN OUT: raw float32 batch in, raw float32 outputs out")
      ->expected(2);
  std::string precision = "f32";
  app.add_option("--precision", precision,
                 "f32 | bf16: the training steps' GEMMs and convolutions at bf16 with F32 "
                 "accumulation (kernels/precision.hpp; refused without AVX512-BF16 or AMX); the "
                 "inference rows keep their F32 paths")
      ->capture_default_str();
  app.add_flag("--json", json, "print JSON");
  CLI11_PARSE(app, argc, argv);
  ensure_passive_omp_wait(argv);  // as the focus CLI: idle OpenMP threads sleep (kernels/cpu.hpp)
  try {
    const Precision train_precision = supported_precision(precision);
    if (threads > 0) set_num_threads(threads);
    Rng rng(1);
    std::unique_ptr<ImageClassifier> m;
    if (!weights.empty()) {
      m = load_model(weights).model;
      check(m->name() == model, fmt::format("{} holds a {}, not a {}", weights, m->name(), model));
    } else {
      m = make_image_model(model, nlohmann::json::parse(model_config), rng);
    }
    const int64_t classes = m->config().value("num_classes", int64_t(10));
    if (!save_weights.empty()) {
      settle(*m, classes, rng);
      ModelInfo info;
      for (int64_t k = 0; k < classes; ++k) info.class_names.push_back(std::to_string(k));
      info.task = "benchmark";
      save_model(save_weights, *m, info);
      return 0;
    }
    if (!dump.empty()) {
      dump_logits(*m, dump[0], dump[1]);
      return 0;
    }
    nlohmann::json out{{"framework", "focus"},
                       {"model", model},
                       {"threads", num_threads()},
                       {"isa", isa_name(active_isa())},
                       {"precision", precision},
                       {"blas", gemm_backend_info()},
                       {"omp_wait_policy", std::getenv("OMP_WAIT_POLICY") ? std::getenv("OMP_WAIT_POLICY") : ""},
                       {"params", m->num_parameters()},
                       {"weights", weights.empty() ? "seeded" : weights},
                       {"config", m->config()}};
    for (const auto& [name, p] : m->named_parameters())
      out["param_shapes"][name] = std::vector<int64_t>(p.shape().begin(), p.shape().end());
    for (int64_t b : infer_batch)
      out["infer"].push_back(bench_inference(*m, b, iters, classes, rng));
    if (!skip_train) {
      const ScopedPrecision scoped(train_precision);
      out["train"] = bench_train(*m, batch, iters, classes, rng);
    }
    if (json) {
      std::printf("%s\n", out.dump(2).c_str());
      return 0;
    }
    std::printf("focus %s: %lld parameters, %d threads, %s\n", model.c_str(),
                (long long)m->num_parameters(), num_threads(), gemm_backend_info().c_str());
    for (const auto& r : out["infer"])
      std::printf("inference batch %4lld: %10.1f images/s (%.3f ms/call, peak RSS %.0f MiB)\n",
                  (long long)r["batch"].get<int64_t>(), r["images_per_s"].get<double>(),
                  r["median_ms"].get<double>(), r["peak_rss_mib"].get<double>());
    if (!skip_train) {
      const auto& t = out["train"];
      std::printf("training  batch %4lld: %10.1f images/s (%.1f ms/step, loss %.3f -> %.3f, "
                  "peak RSS %.0f MiB)\n",
                  (long long)batch, t["images_per_s"].get<double>(), t["median_ms"].get<double>(),
                  t["loss_first"].get<double>(), t["loss_after_warmup"].get<double>(),
                  t["peak_rss_mib"].get<double>());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_models: %s\n", e.what());
    return 1;
  }
  return 0;
}
