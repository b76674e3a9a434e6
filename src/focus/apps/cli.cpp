// `focus` command dispatch: every subcommand registers itself; errors from the library become
// one clear line on stderr and a non-zero exit (2 for usage, 1 for everything else).
#include "focus/apps/cli.hpp"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>

#include "focus/apps/commands.hpp"
#include "focus/dist/communicator.hpp"
#include "focus/tensor/error.hpp"

namespace focus {

namespace {

// Under mpirun with several ranks, an error on one rank ends them all (MPI_Abort), with the
// message on this rank's stderr; returning would leave the others waiting in a collective.
void fail_job(const std::string& message) {
  focus::Communicator* w = focus::world_if_started();
  if (w && w->size() > 1) w->abort(message, 1);
}

}  // namespace

int run_cli(int argc, char** argv) {
  CLI::App app{"focus: attention models on ordinary machines (train, evaluate, predict, translate, explain, serve, benchmark)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("focus ") + FOCUS_VERSION);
  std::map<std::string, Command> commands;
  commands["train"] = add_train_command(app, argc, argv);
  commands["eval"] = add_eval_command(app);
  commands["predict"] = add_predict_command(app);
  commands["demo"] = add_demo_command(app);
  commands["bench"] = add_bench_command(app);
  commands["translate"] = add_translate_command(app);
  commands["explain"] = add_explain_command(app);
  commands["report"] = add_report_command(app);
  commands["average"] = add_average_command(app);
  commands["serve"] = add_serve_command(app);
  commands["keys"] = add_keys_command(app);
  commands["calibrate"] = add_calibrate_command(app);
  commands["simulate-review"] = add_simulate_review_command(app);
  commands["review"] = add_review_command(app);
  commands["promote"] = add_promote_command(app);
  commands["cv"] = add_cv_command(app);
  commands["pretrain"] = add_pretrain_command(app);
  commands["text-import"] = add_text_import_command(app);
  commands["quantize"] = add_quantize_command(app);
  commands["plan"] = add_plan_command(app);
  commands["prune-heads"] = add_prune_heads_command(app);
  commands["early-exit"] = add_early_exit_command(app);
  try {
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e) == 0 ? 0 : 2;
    }
    for (CLI::App* sub : app.get_subcommands()) return commands.at(sub->get_name())();
  } catch (const focus::Error& e) {
    fail_job(std::string("error: ") + e.what());
    std::fprintf(stderr, "focus: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fail_job(std::string("internal error: ") + e.what());
    std::fprintf(stderr, "focus: internal error: %s\n", e.what());
    return 1;
  }
  return 2;
}

}  // namespace focus
