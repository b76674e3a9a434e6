// `focus promote --candidate NEW --served FILE`: the gate between a model fine-tuned on reviewed
// labels (`focus train --extra-labels`, docs/REVIEW.md) and the one being served. Both are scored
// on the same validation split (the candidate's run's, rebuilt as `focus train` built it); the
// candidate replaces FILE (written to a temporary name and renamed: a server polling FILE with
// --poll-ms, or told through POST /v2/repository/models/{m}/load, reloads it) only when its
// validation accuracy is at least the served one's + --min-gain. Otherwise nothing changes and the
// exit status is 3, both accuracies printed. Image models (Fashion-MNIST) only.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "focus/apps/calibration_cli.hpp"
#include "focus/apps/commands.hpp"
#include "focus/infer/image_predictor.hpp"
#include "focus/infer/model_calibration.hpp"
#include "focus/io/atomic_file.hpp"
#include "focus/kernels/cpu.hpp"

namespace focus {
namespace {

// Validation accuracy of the model file at `path` on `idx`.
double accuracy(const std::string& path, const ImageDataset& train, const std::vector<int64_t>& idx) {
  const ImagePredictor p(path);
  FOCUS_CHECK(p.num_classes() == train.num_classes(), ValueError, "{} has {} classes, the data {}", path,
              p.num_classes(), train.num_classes());
  return dataset_accuracy(p, train, idx);
}

}  // namespace

Command add_promote_command(CLI::App& app) {
  CLI::App* sub = app.add_subcommand(
      "promote", "replace a served image model by a candidate (e.g. fine-tuned on reviewed labels) only "
                 "when it is at least as accurate on the validation split");
  struct Opts {
    std::string candidate, served, data_dir = kFashionMnistDir;
    SplitFlags split;
    double min_gain = 0;
    bool json = false;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("--candidate", o->candidate, "the new model file")->required();
  sub->add_option("--served", o->served, "the file the server loads (replaced on success)")->required();
  sub->add_option("--data-dir", o->data_dir, "Fashion-MNIST directory")->capture_default_str();
  o->split.add_to(sub);
  sub->add_option("--min-gain", o->min_gain, "accuracy the candidate must add (a fraction, may be < 0)")
      ->capture_default_str();
  sub->add_flag("--json", o->json, "print the decision as JSON");
  sub->add_option("--threads", o->threads, "threads (0 = all cores)");
  return [o] {
    if (o->threads > 0) set_num_threads(o->threads);
    FOCUS_CHECK(std::filesystem::exists(o->served), IOError, "no served model file {}", o->served);
    const SplitSpec s = o->split.resolve(o->candidate);
    const ImageDataset train = load_fashion_mnist(o->data_dir, Split::Train);
    const std::vector<int64_t> idx = validation_indices(train, s);
    const double served = accuracy(o->served, train, idx), cand = accuracy(o->candidate, train, idx);
    const bool promote = cand >= served + o->min_gain;
    if (promote) {
      std::ifstream in(o->candidate, std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      FOCUS_CHECK(in.good() || in.eof(), IOError, "cannot read {}", o->candidate);
      write_file_atomic(o->served, bytes);
    }
    if (o->json) {
      const nlohmann::json j = {{"candidate", o->candidate}, {"served", o->served},
                                {"candidate_accuracy", cand}, {"served_accuracy", served},
                                {"min_gain", o->min_gain}, {"validation_images", idx.size()},
                                {"split_from", s.from}, {"promoted", promote}};
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      std::printf("validation accuracy on %zu images (split: %s): candidate %.2f%%, served %.2f%%\n%s\n",
                  idx.size(), s.from.empty() ? "defaults" : s.from.c_str(), 100 * cand, 100 * served,
                  promote ? ("promoted: " + o->candidate + " -> " + o->served).c_str()
                          : "not promoted: the served model stays");
    }
    return promote ? 0 : 3;
  };
}

}  // namespace focus
