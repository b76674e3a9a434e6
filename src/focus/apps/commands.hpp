// The `focus` subcommands. Each registers its CLI11 subcommand and options on `app` and returns
// the function that runs it once parsing has succeeded (its exit code).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "focus/tensor/dtype.hpp"

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
Command add_bench_text_command(CLI::App& bench);  // cmd_bench_text.cpp
Command add_translate_command(CLI::App& app);
Command add_explain_command(CLI::App& app);
Command add_report_command(CLI::App& app);  // cmd_report.cpp
Command add_average_command(CLI::App& app);  // cmd_average.cpp
Command add_serve_command(CLI::App& app);    // cmd_serve.cpp
Command add_keys_command(CLI::App& app);     // cmd_serve.cpp
Command add_calibrate_command(CLI::App& app);  // cmd_calibrate.cpp
Command add_simulate_review_command(CLI::App& app);  // cmd_simulate_review.cpp
Command add_review_command(CLI::App& app);           // cmd_review.cpp
Command add_promote_command(CLI::App& app);          // cmd_promote.cpp
Command add_cv_command(CLI::App& app);  // cmd_text.cpp
Command add_pretrain_command(CLI::App& app);  // cmd_pretrain.cpp
Command add_text_import_command(CLI::App& app);  // cmd_text_import.cpp
Command add_quantize_command(CLI::App& app);  // cmd_quantize.cpp
Command add_plan_command(CLI::App& app);      // cmd_plan.cpp
Command add_prune_heads_command(CLI::App& app);  // cmd_prune_heads.cpp
Command add_early_exit_command(CLI::App& app);   // cmd_early_exit.cpp
// `bench infer` under `bench` (cmd_bench_infer.cpp); returns -1 when another bench subcommand ran.
Command add_bench_infer_command(CLI::App& bench);

struct TrainConfig;
class Communicator;
// True (after saying so on stderr when `print`) when a resumed run has no epochs left
// (cmd_train.cpp).
bool already_trained(int start_epoch, int epochs, bool print = true);
// Under mpirun, rank 0 says how many ranks train (cmd_train.cpp).
void report_ranks(const Communicator& comm);
// --weights f32|bf16: the inference weights of a seq2seq model (Module::set_inference_dtype), for
// `eval` and `translate` (cmd_seq2seq.cpp).
void add_weights_option(CLI::App* sub, std::string& weights);
// The option's value as the predictors take it.
DType weights_dtype(const std::string& weights);
// The text halves of `train`, `eval` and `predict` (cmd_text.cpp).
int train_text_and_report(const TrainConfig& cfg);
bool is_text_model_file(const std::string& path);  // a classifier file with a tokenizer
int eval_text(const std::string& model, const std::string& input, bool json);
int predict_text(const std::string& model, const std::vector<std::string>& texts,
                 const std::string& input, int top, bool uncalibrated);
// The text half of `explain` (cmd_explain_text.cpp).
int explain_text_model(const std::string& model_path, const std::string& text, int64_t target,
                       const std::string& out, bool faithfulness, bool json);
// The seq2seq halves of `train` and `eval` (cmd_seq2seq.cpp).
int train_seq2seq_and_report(const TrainConfig& cfg);
int eval_seq2seq(const std::string& model_path, const std::string& task, const std::string& split,
                 const std::string& input, const std::string& cmudict, int beam,
                 double length_penalty, int worst, bool json, const std::string& weights);

}  // namespace focus
