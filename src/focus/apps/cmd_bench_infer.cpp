// `focus bench infer --model M [--model M2] --weights f32,int8 --batch 1,256`: image-model
// inference throughput (images/s) of model files under several inference weights, in the same
// run: for each model and batch size, the weights take turns round by round (interleaved, so
// drift in the machine's speed hits them alike), each round timing enough calls for ~0.25 s; the
// figure is the median over --rounds, with the ratio to the first weights listed. Verify first:
// every variant's logits are finite and its top class agrees with the first variant's on most
// of the batch (printed). --accuracy adds each variant's accuracy on the Fashion-MNIST test split.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>

#include "focus/apps/commands.hpp"
#include "focus/data/dataset.hpp"
#include "focus/infer/image_predictor.hpp"
#include "focus/infer/model_calibration.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/kernels/qgemm.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double test_accuracy(const ImagePredictor& p, const ImageDataset& ds) {
  std::vector<int64_t> idx(static_cast<size_t>(ds.size()));
  std::iota(idx.begin(), idx.end(), int64_t(0));
  return dataset_accuracy(p, ds, idx);
}

}  // namespace

Command add_bench_infer_command(CLI::App& bench) {
  CLI::App* b = bench.add_subcommand(
      "infer", "image-model inference images/s under several --weights, interleaved rounds");
  struct Opts {
    std::vector<std::string> models, weights{"f32", "int8"};
    std::vector<int64_t> batches{1, 256};
    int rounds = 5, threads = 0;
    bool json = false, accuracy = false;
    std::string data_dir = kFashionMnistDir;
  };
  auto o = std::make_shared<Opts>();
  b->add_option("--model", o->models, "image model files (.safetensors)")->required();
  b->add_option("--weights", o->weights, "inference weights to compare: f32 | bf16 | int8 | auto")
      ->delimiter(',')->check(CLI::IsMember({"f32", "bf16", "int8", "auto"}))->capture_default_str();
  b->add_option("--batch", o->batches, "batch sizes")->delimiter(',')->check(CLI::PositiveNumber)
      ->capture_default_str();
  b->add_option("--rounds", o->rounds, "interleaved rounds (the median is reported)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  b->add_flag("--accuracy", o->accuracy, "also each variant's accuracy on the Fashion-MNIST test split");
  b->add_option("--data-dir", o->data_dir, "Fashion-MNIST directory (--accuracy)")->capture_default_str();
  b->add_flag("--json", o->json, "print JSON");
  b->add_option("--threads", o->threads, "threads (0 = policy)");
  return [o, b] {
    if (!b->parsed()) return -1;
    if (o->threads > 0) set_num_threads(o->threads);
    nlohmann::json out = {{"threads", num_threads()}, {"isa", isa_name(active_isa())},
                          {"int8_path", qpath_name(qgemm_path())}, {"rounds", o->rounds}};
    if (!o->json)
      std::printf("threads %d, isa %s, int8 kernels %s, %d interleaved rounds (medians)\n\n"
                  "%-34s %6s %-6s %12s %8s %10s\n",
                  num_threads(), isa_name(active_isa()).c_str(), qpath_name(qgemm_path()).c_str(),
                  o->rounds, "model", "batch", "weights", "images/s", "ratio", "top-1 agree");
    std::unique_ptr<ImageDataset> test;
    if (o->accuracy) test = std::make_unique<ImageDataset>(load_fashion_mnist(o->data_dir, Split::Test));
    for (const std::string& path : o->models) {
      std::vector<std::unique_ptr<ImagePredictor>> ps;
      for (const std::string& w : o->weights) {
        ImagePredictorOptions opt;
        opt.weights = w;
        opt.max_batch = *std::max_element(o->batches.begin(), o->batches.end());
        ps.push_back(std::make_unique<ImagePredictor>(path, opt));
      }
      const int64_t C = ps[0]->channels(), S = ps[0]->image_size();
      for (int64_t B : o->batches) {
        Rng rng(7);
        Tensor x = Tensor::empty({B, C, S, S});  // (B, C, S, S) in [0, 1]
        rng.fill_uniform(x.data<float>(), x.numel(), 0.f, 1.f);
        // Verify: finite logits, top class against the first variant's.
        std::vector<double> agree;
        std::vector<int64_t> top0;
        for (size_t v = 0; v < ps.size(); ++v) {
          const Tensor z = ps[v]->logits(x);  // (B, K)
          const std::vector<float> zv = z.to_vector<float>();
          const int64_t K = ps[v]->num_classes();
          for (float f : zv)
            FOCUS_CHECK(std::isfinite(f), StateError, "bench infer: {} ({}) gave a non-finite logit",
                        path, o->weights[v]);
          std::vector<int64_t> top(static_cast<size_t>(B));
          for (int64_t i = 0; i < B; ++i)
            top[size_t(i)] = std::max_element(zv.begin() + i * K, zv.begin() + (i + 1) * K) -
                             (zv.begin() + i * K);
          if (v == 0) top0 = top;
          int64_t same = 0;
          for (int64_t i = 0; i < B; ++i) same += top[size_t(i)] == top0[size_t(i)];
          agree.push_back(double(same) / double(B));
        }
        // Time: calls per round so that a round lasts about 0.25 s (from one untimed warm-up).
        std::vector<int> calls(ps.size());
        for (size_t v = 0; v < ps.size(); ++v) {
          const auto t0 = std::chrono::steady_clock::now();
          ps[v]->logits(x);
          const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          calls[v] = std::clamp(int(0.25 / std::max(dt, 1e-6)), 1, 2000);
        }
        std::vector<std::vector<double>> ips(ps.size());
        for (int r = 0; r < o->rounds; ++r)
          for (size_t v = 0; v < ps.size(); ++v) {
            const auto t0 = std::chrono::steady_clock::now();
            for (int c = 0; c < calls[v]; ++c) ps[v]->logits(x);
            const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            ips[v].push_back(double(B) * calls[v] / dt);
          }
        const double base = median(ips[0]);
        for (size_t v = 0; v < ps.size(); ++v) {
          const double m = median(ips[v]);
          nlohmann::json row = {{"model", path}, {"batch", B}, {"weights", ps[v]->weights()},
                                {"images_per_s", m}, {"ratio", m / base},
                                {"rounds_images_per_s", ips[v]}, {"top1_agree", agree[v]}};
          out["results"].push_back(row);
          if (!o->json)
            std::printf("%-34s %6lld %-6s %12.1f %7.2fx %9.1f%%\n", path.c_str(), (long long)B,
                        ps[v]->weights().c_str(), m, m / base, 100 * agree[v]);
        }
      }
      if (test) {
        const double a0 = test_accuracy(*ps[0], *test);
        for (size_t v = 0; v < ps.size(); ++v) {
          const double a = v == 0 ? a0 : test_accuracy(*ps[v], *test);
          out["accuracy"].push_back({{"model", path}, {"weights", ps[v]->weights()},
                                     {"test_accuracy", a}, {"drop_points", 100 * (a0 - a)}});
          if (!o->json)
            std::printf("%-34s test accuracy %-6s %.2f%% (drop %.2f points)\n", path.c_str(),
                        ps[v]->weights().c_str(), 100 * a, 100 * (a0 - a));
        }
      }
    }
    if (o->json) std::printf("%s\n", out.dump(2).c_str());
    return 0;
  };
}

}  // namespace focus
