// The trainers' checkpoints: the "model." / "optim." tensor prefixes, the random streams as JSON,
// history records as JSON lines (metrics.jsonl and the checkpoint's "history"), and corrupt
// metadata as a FormatError naming the file (the metadata lookup and state-dict loading they share
// with the model files are in infer/file_metadata.hpp). Also the run directory's
// commit protocol that both trainers follow (commit_run_state, recover_run_dir; the protocol is
// described in trainer.hpp).
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "focus/infer/file_metadata.hpp"
#include "focus/nn/module.hpp"

namespace focus {

class Optimizer;

// model.* and optim.* tensors of a checkpoint, and back.
StateDict checkpoint_tensors(const Module& model, const Optimizer& opt);
void split_checkpoint_tensors(const StateDict& tensors, StateDict& model, StateDict& optim);

// {name: [seed, offset]} of every random stream of `model`, and back (FormatError on a missing
// stream; throws nlohmann / std exceptions on malformed values: the caller wraps them).
nlohmann::json rng_states(const Module& model);
void restore_rng_states(Module& model, const nlohmann::json& states, const std::string& path);

// One JSON object per line, and back (empty lines skipped).
std::string to_json_lines(const std::vector<nlohmann::json>& records);
std::vector<nlohmann::json> from_json_lines(const std::string& text);

// Run `read` and turn malformed metadata into a FormatError naming `path`: JSON errors and
// std::logic_error (number parsing) -> "corrupt checkpoint metadata".
void read_checkpoint_metadata(const std::string& path, const std::function<void()>& read);

// One file of the run directory that a trainer derives from its committed state (metrics.jsonl,
// model_last, ...): its name in the directory and how to write it, atomically, to the path given;
// a null `write` removes the file instead (an epoch model that fell out of the kept window).
struct RunFile {
  std::string name;
  std::function<void(const std::string& path)> write;
};

// The checkpoint's name in the run directory.
inline constexpr const char* kCheckpointFile = "checkpoint_last.safetensors";

// The commit of a trainer's state to the run directory `dir`: kill point "commit", then the
// checkpoint, written by `write_checkpoint` (the commit point: once it is renamed into place the
// state is committed), kill point "after:checkpoint_last.safetensors", then each file of `derived`
// in order, each followed by kill point "after:<its name>" (kill_point, io/atomic_file.hpp).
void commit_run_state(const std::string& dir,
                      const std::function<void(const std::string& path)>& write_checkpoint,
                      const std::vector<RunFile>& derived);
// Removes from `dir` what writers that died left behind: AtomicFile's temporary files
// "<name>.tmp-<pid>" of processes that no longer run (and of this one: call it before writing).
void remove_interrupted_writes(const std::string& dir);
// Resume into `dir`: creates it, remove_interrupted_writes, then writes every file of `derived`
// again from the state just loaded from the checkpoint, so that a kill between the checkpoint and
// its derived files leaves no stale file behind.
void recover_run_dir(const std::string& dir, const std::vector<RunFile>& derived);

}  // namespace focus
