// Training reports (`focus report RUN_DIR`): one self-contained HTML file describing a training
// run directory, with every figure drawn by focus as inline SVG or a PNG data URI, inline CSS, no
// script and no external reference of any kind (a Content-Security-Policy forbids loads too):
//   header       run name, task, model, parameter count, epochs, training time, what is missing
//   curves       per epoch: train / validation loss; accuracy (images), validation WER / PER
//                (g2p) or BLEU / chrF (translate); learning rate
//   image runs   the run's model on the first `limit` Fashion-MNIST test images: confusion
//                matrix, per-class precision / recall / F1, the most and least confident
//                examples with their explanation overlays (rollout for ViTs, Grad-CAM for CNNs),
//                faithfulness per method (deletion / insertion areas vs random order, averaged
//                over a few images)
//   seq2seq runs the test metrics training recorded, greedy decoding of the first `limit` test
//                sources with the worst errors, and cross-attention alignments (last decoder
//                layer, head mean) of a few samples with their token faithfulness
//   config       the effective configuration (config.json; the model's full config)
// Required: the run directory and its config.json (IOError naming what is missing, FormatError
// naming a corrupt file and line). metrics.jsonl, the model file and the test data are optional:
// the report shows what it can and lists what is missing and why. A corrupt model file or
// metrics.jsonl is an error (FormatError naming it), not a silent gap.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace focus {

struct ReportOptions {
  std::string model;     // model file; "" = RUN_DIR/model_best.safetensors, else model_last
  std::string data_dir;  // image runs: Fashion-MNIST directory; "" = the run's data-dir
  std::string cmudict;   // g2p runs: CMUdict dict.txt; "" = the run's, else the data cache
  int64_t limit = 2000;  // test images / sources evaluated (0 = all)
  int64_t examples = 6;  // image runs: most and least confident examples shown (each)
  int64_t faithfulness_images = 20;  // image runs: images averaged per method (0 = skip)
  int64_t alignments = 4;            // seq2seq runs: sample alignments drawn
  int64_t worst = 10;                // seq2seq runs: worst errors listed
  uint64_t seed = 1;                 // the random orders of the faithfulness baseline
};

struct Report {
  std::string html;
  std::vector<std::string> missing;  // what the report could not show, and why
  int64_t charts = 0;                // <svg> figures in the page
  double seconds = 0;                // time spent building it
};

// ValueError for negative counts in `opt`.
Report build_report(const std::string& run_dir, const ReportOptions& opt = {});
// build_report, then writes the page atomically to `out` ("" = RUN_DIR/report.html).
Report write_report(const std::string& run_dir, const std::string& out,
                    const ReportOptions& opt = {});

}  // namespace focus
