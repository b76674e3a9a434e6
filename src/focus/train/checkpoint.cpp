// Checkpoint pieces and the run directory's commit protocol (see checkpoint.hpp).
#include "focus/train/checkpoint.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "focus/io/atomic_file.hpp"

#include "focus/optim/optimizer.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {

StateDict checkpoint_tensors(const Module& model, const Optimizer& opt) {
  StateDict t;
  for (auto& [k, v] : model.state_dict()) t["model." + k] = v;
  for (auto& [k, v] : opt.state_dict()) t["optim." + k] = v;
  return t;
}

void split_checkpoint_tensors(const StateDict& tensors, StateDict& model, StateDict& optim) {
  for (auto& [k, v] : tensors) {
    if (k.rfind("model.", 0) == 0) model[k.substr(6)] = v;
    else if (k.rfind("optim.", 0) == 0) optim[k.substr(6)] = v;
  }
}

nlohmann::json rng_states(const Module& model) {
  nlohmann::json rngs = nlohmann::json::object();
  for (auto& [name, rng] : model.named_rngs())
    rngs[name] = nlohmann::json::array({std::to_string(rng->seed()), std::to_string(rng->offset())});
  return rngs;
}

void restore_rng_states(Module& model, const nlohmann::json& states, const std::string& path) {
  for (auto& [name, rng] : model.named_rngs()) {
    FOCUS_CHECK(states.contains(name), FormatError, "'{}': no state for random stream '{}'", path,
                name);
    rng->set_state(std::stoull(states[name][0].get<std::string>()),
                   std::stoull(states[name][1].get<std::string>()));
  }
}

std::string to_json_lines(const std::vector<nlohmann::json>& records) {
  std::string lines;
  for (const auto& r : records) lines += r.dump() + "\n";
  return lines;
}

std::vector<nlohmann::json> from_json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::string line;
  std::istringstream in(text);
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

void read_checkpoint_metadata(const std::string& path, const std::function<void()>& read) {
  try {
    read();
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(fmt::format("'{}': corrupt checkpoint metadata ({})", path, e.what()));
  } catch (const std::logic_error& e) {
    throw FormatError(fmt::format("'{}': corrupt checkpoint metadata ({})", path, e.what()));
  }
}

namespace {

void write_run_files(const std::string& dir, const std::vector<RunFile>& files) {
  for (const RunFile& f : files) {
    const std::string path = dir + "/" + f.name;
    if (f.write) f.write(path);
    else std::filesystem::remove(path);
    kill_point("after:" + f.name);
  }
}

}  // namespace

void commit_run_state(const std::string& dir,
                      const std::function<void(const std::string& path)>& write_checkpoint,
                      const std::vector<RunFile>& derived) {
  kill_point("commit");
  write_run_files(dir, {{kCheckpointFile, write_checkpoint}});
  write_run_files(dir, derived);
}

void remove_interrupted_writes(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<fs::path> stale;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    const size_t at = name.rfind(".tmp-");  // AtomicFile's "<name>.tmp-<pid>"
    if (!entry.is_regular_file() || at == std::string::npos || at == 0) continue;
    const std::string pid = name.substr(at + 5);
    if (pid.empty() || pid.size() > 9 || pid.find_first_not_of("0123456789") != std::string::npos)
      continue;
    const pid_t p = pid_t(std::stol(pid));
    if (p != ::getpid() && (::kill(p, 0) == 0 || errno != ESRCH)) continue;  // may be writing
    stale.push_back(entry.path());
  }
  for (const fs::path& p : stale) {
    std::fprintf(stderr, "focus: removing '%s', left by an interrupted write\n", p.c_str());
    std::error_code ec;
    if (!fs::remove(p, ec) && ec)
      std::fprintf(stderr, "focus: could not remove '%s': %s\n", p.c_str(), ec.message().c_str());
  }
}

void recover_run_dir(const std::string& dir, const std::vector<RunFile>& derived) {
  std::filesystem::create_directories(dir);
  remove_interrupted_writes(dir);
  write_run_files(dir, derived);
}

}  // namespace focus
