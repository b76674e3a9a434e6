// explain_bench: how long one explanation takes (issue 5's budget: under 100 ms per image or
// word on 2 cores for the trained models). Per image model (--vit, --cnn: trained model files;
// without them, freshly initialised default models, reported as such) and method: the median
// wall time of explain_image on one test image (--reps calls over --images test images), and of
// the deletion / insertion faithfulness curves; per seq2seq model (--g2p) the median time of
// explain_translation (greedy hypothesis + the alignment) over a word list.
// Verify first, time second: relevance finite, in [0, 1] with max 1, probabilities summing to 1;
// the fused kernel's maps equal the reference kernel's to 1e-5; cross-attention rows sum to 1.
// Limits: batch 1 (what a person asking "why?" runs), F32, eval mode.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>

#include "focus/data/dataset.hpp"
#include "focus/explain/image_explain.hpp"
#include "focus/explain/seq2seq_explain.hpp"
#include "focus/infer/model_file.hpp"
#include "focus/infer/translator.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/models/image_classifier.hpp"
#include "focus/ops/attention.hpp"
#include "focus/tensor/error.hpp"
#include "focus/tensor/rng.hpp"

using namespace focus;

namespace {

double median_ms(const std::function<void()>& fn, int reps) {
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    t.push_back(1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

FILE* g_say = stdout;  // human-readable lines (stderr with --json, which owns stdout)

void check(bool ok, const std::string& what) {
  if (!ok) throw StateError("explain_bench: verification failed: " + what);
}

void verify(const ImageExplanation& e, const std::string& what) {
  const std::vector<float> r = e.relevance.to_vector<float>();
  float lo = 1, hi = 0;
  for (float v : r) {
    check(std::isfinite(v), what + ": relevance not finite");
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  check(lo >= 0.f && (hi == 1.f || hi == 0.f), what + ": relevance outside [0, 1] or max != 1");
  double s = 0;
  for (double p : e.probs) s += p;
  check(std::fabs(s - 1.0) < 1e-6, what + ": probabilities do not sum to 1");
}

nlohmann::json bench_image(const std::string& label, LoadedModel& lm, const ImageDataset& test,
                           int images, int reps) {
  ImageClassifier& model = *lm.model;
  std::vector<Tensor> xs;
  for (int i = 0; i < images; ++i) xs.push_back(image_to_tensor(test.image_at(i), lm.info.norm));
  const std::vector<ImageMethod> methods = image_methods_for(model, xs[0]);
  nlohmann::json out = {{"model", label}, {"name", model.name()}};
  for (ImageMethod m : methods) {
    ImageExplainOptions opt;
    opt.method = m;
    for (const Tensor& x : xs) verify(explain_image(model, x, opt), label + " " + image_method_name(m));
    if (m == ImageMethod::Attention || m == ImageMethod::Rollout) {  // fused == reference maps
      const ImageExplanation fused = explain_image(model, xs[0], opt);
      set_attention_kernel(AttentionKernel::Reference);
      const ImageExplanation ref = explain_image(model, xs[0], opt);
      set_attention_kernel(AttentionKernel::Auto);
      for (size_t l = 0; l < ref.maps.size(); ++l) {
        const std::vector<float> a = fused.maps[l].to_vector<float>(), b = ref.maps[l].to_vector<float>();
        for (size_t i = 0; i < a.size(); ++i)
          check(std::fabs(a[i] - b[i]) <= 1e-5, label + ": fused map differs from the reference");
      }
    }
    size_t k = 0;
    const double ms = median_ms([&] { explain_image(model, xs[k++ % xs.size()], opt); }, reps);
    Rng rng(1);
    const ImageExplanation e = explain_image(model, xs[0], opt);
    const float baseline = -lm.info.norm.mean / lm.info.norm.std;
    const double fms = median_ms(
        [&] { faithfulness(model, xs[0], e.relevance, e.target, baseline, rng, 1); }, std::max(3, reps / 4));
    std::fprintf(g_say, "%-10s %-13s explain %7.2f ms   faithfulness curves (2 orders) %8.2f ms\n",
                label.c_str(), image_method_name(m).c_str(), ms, fms);
    out["methods"][image_method_name(m)] = {{"explain_ms", ms}, {"faithfulness_ms", fms}};
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  ensure_passive_omp_wait(argv);  // as the focus CLI: idle OpenMP threads sleep (kernels/cpu.hpp)
  CLI::App app{"focus explanation latency: one image or word at a time"};
  std::string vit, cnn, g2p, data_dir = kFashionMnistDir;
  int reps = 30, images = 10, threads = 0;
  bool json = false;
  app.add_option("--vit", vit, "trained ViT model file (default: fresh default ViT)");
  app.add_option("--cnn", cnn, "trained cnn_se model file (default: fresh default cnn_se)");
  app.add_option("--g2p", g2p, "trained g2p model file (skipped when absent)");
  app.add_option("--data-dir", data_dir, "Fashion-MNIST directory")->capture_default_str();
  app.add_option("--reps", reps, "timed calls per method")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--images", images, "test images cycled through")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--threads", threads, "threads (0 = policy)");
  app.add_flag("--json", json, "print JSON");
  CLI11_PARSE(app, argc, argv);
  try {
    if (threads > 0) set_num_threads(threads);
    if (json) g_say = stderr;
    std::fprintf(g_say, "focus explain latency, %d threads, batch 1, median of %d calls\n", num_threads(), reps);
    const ImageDataset test = load_fashion_mnist(data_dir, Split::Test);
    nlohmann::json out = {{"threads", num_threads()}, {"reps", reps}};
    Rng rng(1);
    for (const auto& [label, file, name] :
         {std::tuple<std::string, std::string, std::string>{"vit", vit, "vit"}, {"cnn_se", cnn, "cnn_se"}}) {
      LoadedModel lm;
      if (!file.empty()) {
        lm = load_model(file);
      } else {
        lm.model = make_image_model(name, nlohmann::json::object(), rng);
        lm.model->eval();
      }
      out["image"].push_back(bench_image(file.empty() ? label + "(untrained)" : label, lm, test, images, reps));
    }
    if (!g2p.empty()) {
      const Translator tr(g2p);
      const std::vector<std::string> words = {"attention", "focus", "pronunciation", "colonel",
                                              "explain", "quixotic", "machine", "worcester"};
      for (const auto& w : words) {
        const AlignmentExplanation e = explain_translation(tr, w);
        const std::vector<float> c = pick_map(e.cross, -1, 0).to_vector<float>();
        const int64_t S = static_cast<int64_t>(e.source_tokens.size());
        for (size_t r = 0; r < c.size() / S; ++r) {
          double s = 0;
          for (int64_t j = 0; j < S; ++j) s += c[r * S + j];
          check(std::fabs(s - 1.0) < 1e-5, "cross-attention row does not sum to 1");
        }
      }
      for (int beam : {1, 5}) {
        SearchOptions so;
        so.beam = beam;
        size_t k = 0;
        const double ms = median_ms(
            [&] { explain_translation(tr, words[k++ % words.size()], so); }, reps);
        std::fprintf(g_say, "%-10s %-13s explain %7.2f ms (hypothesis with beam %d + all maps)\n", "g2p",
                    "alignment", ms, beam);
        out["g2p"]["beam" + std::to_string(beam) + "_ms"] = ms;
      }
    }
    if (json) std::printf("%s\n", out.dump(2).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "explain_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
