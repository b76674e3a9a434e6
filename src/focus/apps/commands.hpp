// The `focus` subcommands. Each registers its CLI11 subcommand and options on `app` and returns
// the function that runs it once parsing has succeeded (its exit code).
#pragma once
#include <functional>

namespace CLI { class App; }

namespace focus {

using Command = std::function<int()>;
Command add_train_command(CLI::App& app, int argc, char** argv);  // pre-scans --config/--resume
Command add_eval_command(CLI::App& app);
Command add_predict_command(CLI::App& app);
Command add_demo_command(CLI::App& app);
Command add_bench_command(CLI::App& app);
// `bench attention` under `bench`; its command returns -1 when another bench subcommand ran.
Command add_bench_attention_command(CLI::App& bench);

}  // namespace focus
