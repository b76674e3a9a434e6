// `focus report RUN_DIR`: one self-contained HTML page for a training run (curves, evaluation,
// explanations, configuration); see explain/report.hpp.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "focus/apps/commands.hpp"
#include "focus/explain/report.hpp"
#include "focus/kernels/cpu.hpp"

namespace focus {

Command add_report_command(CLI::App& app) {
  CLI::App* sub = app.add_subcommand(
      "report", "write a self-contained HTML report of a training run (curves, confusion matrix, "
                "per-class metrics, explained examples, faithfulness or alignments, configuration)");
  struct Opts {
    std::string run_dir, out;
    ReportOptions report;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  ReportOptions& r = o->report;
  sub->add_option("RUN_DIR", o->run_dir, "training run directory (config.json, metrics.jsonl, model files)")
      ->required();
  sub->add_option("-o,--out", o->out, "output HTML file (default: RUN_DIR/report.html)");
  sub->add_option("--model", r.model, "model file (default: RUN_DIR/model_best.safetensors, else model_last)");
  sub->add_option("--data-dir", r.data_dir, "image runs: Fashion-MNIST directory (default: the run's)");
  sub->add_option("--cmudict", r.cmudict, "g2p runs: CMUdict dict.txt (default: the run's, else the data cache)");
  sub->add_option("--limit", r.limit, "test images / sources evaluated (0 = all)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--examples", r.examples, "image runs: most and least confident examples shown")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--faithfulness-images", r.faithfulness_images,
                  "image runs: test images averaged for the faithfulness areas (0 = skip)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--alignments", r.alignments, "seq2seq runs: sample alignments drawn")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--worst", r.worst, "seq2seq runs: worst errors listed")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--seed", r.seed, "seed of the faithfulness baseline's random orders")->capture_default_str();
  sub->add_option("--threads", o->threads, "threads (0 = all cores)");
  return [o] {
    if (o->threads > 0) set_num_threads(o->threads);
    const Report rep = write_report(o->run_dir, o->out, o->report);
    for (const std::string& m : rep.missing) std::fprintf(stderr, "focus: report: not shown: %s\n", m.c_str());
    std::printf("%s (%lld charts, %.1f s)\n", o->out.empty() ? (o->run_dir + "/report.html").c_str() : o->out.c_str(),
                (long long)rep.charts, rep.seconds);
    return 0;
  };
}

}  // namespace focus
