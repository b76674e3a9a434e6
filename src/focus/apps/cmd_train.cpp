// Temporary stubs for the commands still being built (replaced as they land).
#include <CLI/CLI.hpp>
#include "focus/apps/commands.hpp"
namespace focus {
Command add_train_command(CLI::App& app) { app.add_subcommand("train", "train a model"); return [] { return 2; }; }
Command add_eval_command(CLI::App& app) { app.add_subcommand("eval", "evaluate a model"); return [] { return 2; }; }
Command add_predict_command(CLI::App& app) { app.add_subcommand("predict", "classify an image"); return [] { return 2; }; }
Command add_demo_command(CLI::App& app) { app.add_subcommand("demo", "train the default model"); return [] { return 2; }; }
}  // namespace focus
