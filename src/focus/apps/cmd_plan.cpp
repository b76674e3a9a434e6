// `focus plan --model M --budget 'p99_ms=5,rss_mb=150' [--qps Q] [--min-accuracy A]`: the
// inference planner of an image model (docs/BUDGET.md). It enumerates variants (model file x
// inference weights f32 / bf16 / int8 x compute threads x batch size; the files: the model and
// --candidate files made from it, e.g. by `focus prune-heads` or `focus early-exit`, labelled by
// their names), measures each on this machine, and picks the most
// accurate one within the budget (infer/plan.hpp decides; this file measures):
//   - accuracy: each weights' top-1 accuracy on the run's validation split (rebuilt from the
//     config.json beside the model, as `focus calibrate` does; --val-limit caps it);
//   - latency: each variant in its own child process (this binary, `--measure-variant`): a batch
//     of validation images (written once to a file the children read: an early-exit model's
//     time depends on how sure it is, so noise would mislead) timed call by call after a
//     warm-up, for --seconds, giving the batch's p50 / p99;
//   - memory: that child's peak resident set (VmHWM of its own address space, read by the child
//     at the end: wait4's ru_maxrss would also count the parent's pages from before the exec):
//     the libraries, the model, its weights in the variant's form and the batch's activations,
//     as a serving process would hold them (the HTTP layer adds its own).
// Prints every variant with the Pareto front marked, writes the front as an SVG (--svg) and the
// chosen variant as a `focus serve --config` file (--out; with a p99 budget it also sets the SLO
// and the ladder of faster variants the server's controller steps down under load); a budget
// nothing meets is refused (exit 3) naming the variant closest to it.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "focus/apps/calibration_cli.hpp"
#include "focus/apps/commands.hpp"
#include "focus/infer/image_predictor.hpp"
#include "focus/infer/model_calibration.hpp"
#include "focus/infer/plan.hpp"
#include "focus/io/atomic_file.hpp"
#include "focus/infer/image_plan.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/tensor/rng.hpp"

extern char** environ;

namespace focus {

namespace {

struct Opts {
  std::string model, budget, out, svg, name, data_dir = kFashionMnistDir, measure, inputs;
  std::vector<std::string> candidates;  // other files of the same model (pruned, early exit)
  std::vector<std::string> weights;  // empty: f32, bf16 (where the CPU has it), int8
  std::vector<int> threads;
  std::vector<int64_t> batches{1, 8, 32};
  double qps = 0, min_accuracy = 0, seconds = 0.5;
  int64_t val_limit = 2000;
  SplitFlags split;
  bool json = false;
};

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, size_t(std::ceil(q * double(v.size())) - 1));
  return v[i];
}

Variant parse_variant(const std::string& s) {
  Variant v;
  const size_t a = s.find(':'), b = s.rfind(':');
  FOCUS_CHECK(a != std::string::npos && b != a, ValueError, "--measure-variant '{}' is not WEIGHTS:THREADS:BATCH", s);
  v.weights = s.substr(0, a);
  v.threads = std::stoi(s.substr(a + 1, b - a - 1));
  v.batch = std::stoll(s.substr(b + 1));
  FOCUS_CHECK(v.threads >= 1 && v.batch >= 1, ValueError, "--measure-variant '{}': threads and batch must be >= 1", s);
  return v;
}

// This process's peak resident set since exec (VmHWM), KiB; 0 when /proc cannot tell.
int64_t peak_rss_kb() {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::strtoll(line.c_str() + 6, nullptr, 10);
  return 0;
}

// The child's work: one variant's batch latencies, printed as one JSON line.
int measure_variant(const Opts& o) {
  const Variant v = parse_variant(o.measure);
  set_num_threads(v.threads);
  ImagePredictorOptions io;
  io.weights = v.weights;
  io.max_batch = v.batch;
  const ImagePredictor p(o.model, io);
  Tensor x = Tensor::empty({v.batch, p.channels(), p.image_size(), p.image_size()});  // (B, C, S, S)
  {  // the first B images of the parent's file (pixels in [0, 1], F32)
    std::ifstream f(o.inputs, std::ios::binary);
    f.read(reinterpret_cast<char*>(x.data<float>()), std::streamsize(x.numel() * sizeof(float)));
    FOCUS_CHECK(f.gcount() == std::streamsize(x.numel() * sizeof(float)), IOError,
                "plan: cannot read {} images from '{}'", v.batch, o.inputs);
  }
  for (int i = 0; i < 3; ++i) p.logits(x);  // warm-up: packed weights, caches
  std::vector<double> ms;
  const auto start = std::chrono::steady_clock::now();
  while (ms.size() < 20 || (std::chrono::steady_clock::now() - start < std::chrono::duration<double>(o.seconds) &&
                            ms.size() < 5000)) {
    const auto t0 = std::chrono::steady_clock::now();
    p.logits(x);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::printf("%s\n", nlohmann::json{{"p50_ms", percentile(ms, 0.5)}, {"p99_ms", percentile(ms, 0.99)},
                                     {"calls", ms.size()}, {"hwm_kb", peak_rss_kb()}}.dump().c_str());
  return 0;
}

// Runs this binary as a child measuring `v` of the model file `path`; its JSON and its peak RSS (MB).
VariantResult spawn_measure(const Opts& o, const std::string& path, const Variant& v) {
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::vector<std::string> args = {exe, "plan", "--model", path, "--budget", o.budget,
                                         "--seconds", fmt::format("{}", o.seconds), "--measure-inputs", o.inputs,
                                         "--measure-variant",
                                         fmt::format("{}:{}:{}", v.weights, v.threads, v.batch)};
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int fd[2];
  FOCUS_CHECK(pipe(fd) == 0, IOError, "plan: pipe: {}", std::strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
  posix_spawn_file_actions_addclose(&fa, fd[0]);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fd[1]);
  if (rc != 0) {
    close(fd[0]);
    throw IOError(fmt::format("plan: cannot start {}: {}", exe, std::strerror(rc)));
  }
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd[0], buf, sizeof(buf))) > 0;) out.append(buf, size_t(n));
  close(fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  FOCUS_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, StateError,
              "plan: measuring {} failed (status {}): {}", v.name(), status, out);
  const nlohmann::json j = nlohmann::json::parse(out.substr(0, out.find('\n')), nullptr, false);
  FOCUS_CHECK(j.is_object() && j.contains("p99_ms") && j.value("hwm_kb", 0) > 0, StateError, "plan: measuring {} printed '{}'", v.name(), out);
  VariantResult r;
  r.v = v;
  r.batch_p50_ms = j["p50_ms"].get<double>();
  r.batch_p99_ms = j["p99_ms"].get<double>();
  r.rss_mb = double(j["hwm_kb"].get<int64_t>()) / 1024.0;
  return r;
}

int plan(Opts o) {
  Budget b = parse_budget(o.budget);
  b.qps = o.qps;
  b.min_accuracy = o.min_accuracy;
  std::vector<int> threads = o.threads;
  if (threads.empty()) {
    threads = {1};
    if (hardware_threads() > 1) threads.push_back(hardware_threads());
  }
  // Accuracy per weights, on the validation split.
  const SplitSpec s = o.split.resolve(o.model);
  const ImageDataset train = load_fashion_mnist(o.data_dir, Split::Train);
  std::vector<int64_t> vidx = validation_indices(train, s);
  if (o.val_limit > 0 && int64_t(vidx.size()) > o.val_limit) vidx.resize(size_t(o.val_limit));
  if (o.weights.empty()) {
    o.weights = {"f32", "int8"};
    if (bf16_plan_supported()) o.weights.insert(o.weights.begin() + 1, "bf16");
  }
  // The files: the model, then its candidates, labelled by their names (made unique).
  std::vector<std::string> files{o.model}, labels{""};
  for (const std::string& c : o.candidates) {
    std::string label = std::filesystem::path(c).stem().string();
    if (std::find(labels.begin(), labels.end(), label) != labels.end())
      label += "#" + std::to_string(files.size());
    files.push_back(c);
    labels.push_back(label);
  }
  // The children's inputs: the first validation images, as many as the largest batch.
  FOCUS_CHECK(!vidx.empty(), ValueError, "plan: the validation split of {} is empty", o.model);
  std::string dir = (std::filesystem::temp_directory_path() / "focus_plan_XXXXXX").string();
  FOCUS_CHECK(mkdtemp(dir.data()) != nullptr, IOError, "plan: cannot make a directory in {}: {}",
              std::filesystem::temp_directory_path().string(), std::strerror(errno));
  const std::shared_ptr<void> remove_dir(nullptr, [&dir](void*) { std::filesystem::remove_all(dir); });
  o.inputs = dir + "/inputs.f32";
  {
    const int64_t B = *std::max_element(o.batches.begin(), o.batches.end());
    std::vector<int64_t> first;
    for (int64_t i = 0; i < B; ++i) first.push_back(vidx[size_t(i) % vidx.size()]);
    const Tensor px = dataset_pixels(ImagePredictor(o.model), train, first);  // (B, C, S, S)
    std::ofstream f(o.inputs, std::ios::binary);
    f.write(reinterpret_cast<const char*>(px.data<float>()), std::streamsize(px.numel() * sizeof(float)));
    FOCUS_CHECK(f.good(), IOError, "plan: cannot write '{}'", o.inputs);
  }
  std::map<std::pair<int, std::string>, double> acc;  // (file, weights) -> validation accuracy
  int64_t classes = 0;
  for (size_t f = 0; f < files.size(); ++f)
    for (const std::string& w : o.weights) {
      ImagePredictorOptions io;
      io.weights = w;
      const ImagePredictor p(files[f], io);
      if (f == 0) classes = p.num_classes();
      FOCUS_CHECK(p.num_classes() == classes, ValueError,
                  "--candidate {}: {} classes, the model has {}: not a version of the same model",
                  files[f], p.num_classes(), classes);
      acc[{int(f), w}] = dataset_accuracy(p, train, vidx);
    }
  std::vector<VariantResult> r;
  for (size_t f = 0; f < files.size(); ++f)
    for (const std::string& w : o.weights)
      for (int t : threads)
        for (int64_t B : o.batches) {
          VariantResult x = spawn_measure(o, files[f], Variant{w, t, B, int(f), labels[f]});
          x.accuracy = acc[{int(f), w}];
          r.push_back(x);
          if (!o.json)
            std::fprintf(stderr, "measured %-24s batch p50 %8.2f ms  p99 %8.2f ms  RSS %6.0f MB\n",
                         x.v.name().c_str(), x.batch_p50_ms, x.batch_p99_ms, x.rss_mb);
        }
  evaluate(r, b);
  mark_front(r);
  const PlanChoice c = choose(r, b);
  const std::string name = o.name.empty() ? std::filesystem::path(o.model).parent_path().filename().string() : o.name;
  nlohmann::json config;
  if (c.index) {
    const VariantResult& x = r[*c.index];
    config = {{"model", {fmt::format("{}={}", name.empty() ? "model" : name,
                                     std::filesystem::absolute(files[size_t(x.v.file)]).string())}},
              {"threads", x.v.threads}, {"max-batch", x.v.batch}, {"image-weights", x.v.weights}};
    if (std::isfinite(b.p99_ms)) {  // the controller's ladder: faster variants to step down to
      config["slo-p99-ms"] = b.p99_ms;
      config["slo-ladder"] = nlohmann::json::array();
      config["slo-accuracy"] = nlohmann::json::array();
      for (size_t i : slo_ladder(r, *c.index)) {
        config["slo-ladder"].push_back(r[i].v.weights);
        config["slo-accuracy"].push_back(r[i].accuracy);
      }
    }
    if (!o.out.empty()) write_file_atomic(o.out, config.dump(2) + "\n");
  }
  if (!o.svg.empty())
    write_file_atomic(o.svg, front_svg(r, b, c, fmt::format("{}: variants against {}", o.model, format_budget(b))));
  if (o.json) {
    nlohmann::json j = {{"model", o.model}, {"budget", format_budget(b)}, {"val_images", vidx.size()},
                        {"threads_available", hardware_threads()}, {"variants", nlohmann::json::array()}};
    for (const VariantResult& x : r) j["variants"].push_back(variant_json(x));
    if (c.index) j["chosen"] = variant_json(r[*c.index]), j["serve_config"] = config;
    else j["closest"] = variant_json(r[c.closest]);
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("plan for %s: %s; accuracy on %zu validation images%s\n\n", o.model.c_str(), format_budget(b).c_str(),
                vidx.size(), b.qps > 0 ? "; latency = batch compute + (batch - 1) / qps to fill it" : "");
    std::printf("%-24s %9s %9s %9s %8s %10s %6s %7s  %s\n", "variant", "accuracy", "p50 ms", "p99 ms", "RSS MB",
                "items/s", "front", "within", "misses");
    for (size_t i = 0; i < r.size(); ++i) {
      const VariantResult& x = r[i];
      std::printf("%-24s %8.2f%% %9.2f %9.2f %8.0f %10.0f %6s %7s  %s%s\n", x.v.name().c_str(), 100 * x.accuracy,
                  x.p50_ms, x.p99_ms, x.rss_mb, x.throughput, x.on_front ? "*" : "", x.within ? "yes" : "no",
                  x.misses.c_str(), c.index && *c.index == i ? "   <- chosen" : "");
    }
    if (c.index)
      std::printf("\nchosen: %s (%.2f%%, p99 %.2f ms, RSS %.0f MB)%s\n", r[*c.index].v.name().c_str(),
                  100 * r[*c.index].accuracy, r[*c.index].p99_ms, r[*c.index].rss_mb,
                  o.out.empty() ? "" : fmt::format("; serve config: {} (focus serve --config {} --keys ...)", o.out, o.out).c_str());
  }
  if (!c.index) {
    const VariantResult& x = r[c.closest];
    std::fprintf(stderr, "focus plan: no variant meets the budget (%s); the closest is %s, %.0f%% over (%s)\n",
                 format_budget(b).c_str(), x.v.name().c_str(), 100 * (c.closest_overrun - 1), x.misses.c_str());
    return 3;
  }
  return 0;
}

}  // namespace

Command add_plan_command(CLI::App& app) {
  CLI::App* sub = app.add_subcommand(
      "plan", "inference planner: measure an image model's variants (weights x threads x batch), print the "
              "Pareto front, pick the most accurate within --budget, write a serve config (exit 3 if none fits)");
  auto o = std::make_shared<Opts>();
  sub->add_option("--model", o->model, "image model file (.safetensors)")->required();
  sub->add_option("--budget", o->budget, "limits: 'p99_ms=MS,rss_mb=MB' (either or both)")->required();
  sub->add_option("--qps", o->qps, "arrival rate to sustain (requests/s); adds the batch's fill time to latency")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--min-accuracy", o->min_accuracy, "least validation accuracy, a fraction (0.9 = 90%)")
      ->check(CLI::Range(0.0, 1.0));
  sub->add_option("--weights", o->weights,
                  "inference weights to try (default f32, bf16 where the CPU has AVX512-BF16, int8)")
      ->delimiter(',')->check(CLI::IsMember({"f32", "bf16", "int8"}));
  sub->add_option("--candidate", o->candidates,
                  "another file of the same model to plan among (e.g. from focus prune-heads or "
                  "focus early-exit; repeatable): its variants are measured the same way")
      ->check(CLI::ExistingFile);
  sub->add_option("--threads", o->threads, "compute threads to try (default: 1 and all cores)")
      ->delimiter(',')->check(CLI::PositiveNumber);
  sub->add_option("--batch", o->batches, "batch sizes to try")->delimiter(',')->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--seconds", o->seconds, "timing per variant (at least 20 calls)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--val-limit", o->val_limit, "validation images used for accuracy (0 = all)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--data-dir", o->data_dir, "Fashion-MNIST directory")->capture_default_str();
  sub->add_option("--name", o->name, "the model's name in the serve config (default: its directory)");
  sub->add_option("-o,--out", o->out, "write the chosen variant as a focus serve --config file");
  sub->add_option("--svg", o->svg, "write the front as an SVG chart");
  sub->add_flag("--json", o->json, "print JSON");
  o->split.add_to(sub);
  sub->add_option("--measure-variant", o->measure, "(internal) measure one variant WEIGHTS:THREADS:BATCH")
      ->group("");
  sub->add_option("--measure-inputs", o->inputs, "(internal) the images the variant is timed on")->group("");
  return [o] { return o->measure.empty() ? plan(*o) : measure_variant(*o); };
}

}  // namespace focus
