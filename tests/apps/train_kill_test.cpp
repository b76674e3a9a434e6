// Kill test of `focus train`, both trainers (a tiny ViT on Fashion-MNIST, a tiny translate
// Transformer on a TSV written here): the binary is killed with SIGKILL at named points of the
// commit protocol (FOCUS_TEST_KILL_AT, io/atomic_file.hpp: mid-step, before the commit, inside
// the checkpoint's atomic write, between each pair of file writes, after the final commit) and at
// seeded random moments (fork/exec, sleep, kill; the resumed runs are killed again). After each
// kill every file in the run directory must load (model files with the model loaders, the
// checkpoint as a focus checkpoint, metrics.jsonl as JSON lines that are never ahead of the
// checkpoint and at most one epoch behind) or be the temporary file of an interrupted write,
// which `--resume` refuses with a typed error when pointed at and removes otherwise. Then
// `--resume` runs to the end, and the model files are bit-identical to an uninterrupted run's,
// the checkpoint's tensors too, its metadata and metrics.jsonl equal apart from the timings.
// Prints each kill point and its outcome. FOCUS_KILL_TEST_SEED changes the random moments.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "apps/reverse_task.hpp"
#include "focus/infer/model_file.hpp"
#include "focus/infer/seq2seq_file.hpp"
#include "focus/io/safetensors.hpp"
#include "focus/tensor/error.hpp"
#include "focus/train/checkpoint.hpp"

namespace fs = std::filesystem;

namespace {

using Args = std::vector<std::string>;

struct Exit {
  bool killed = false;  // by our SIGKILL (a kill point or the timer)
  int code = -1;        // exit status when not killed
  double seconds = 0;
};

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Runs the binary with `args`, stdout and stderr appended to `log`; FOCUS_TEST_KILL_AT=kill_at
// when given; SIGKILL `kill_after` seconds (> 0) after the file `marker` is written (or, with no
// marker, after the start) if it still runs.
Exit run_focus(const Args& args, const std::string& log, const std::string& kill_at = "",
               double kill_after = 0, const std::string& marker = "") {
  const auto t0 = std::chrono::steady_clock::now();
  const auto t0_file = std::chrono::file_clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    if (kill_at.empty()) unsetenv("FOCUS_TEST_KILL_AT");
    else setenv("FOCUS_TEST_KILL_AT", kill_at.c_str(), 1);
    std::vector<char*> argv{const_cast<char*>(FOCUS_BINARY)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(FOCUS_BINARY, argv.data());
    _exit(127);
  }
  Exit e;
  int status = 0;
  if (pid < 0) return e;
  if (kill_after > 0) {
    auto deadline = std::chrono::steady_clock::time_point::max();
    auto arm = [&] {
      deadline = std::chrono::steady_clock::now() +
                 std::chrono::duration_cast<std::chrono::microseconds>(
                     std::chrono::duration<double>(kill_after));
    };
    if (marker.empty()) arm();
    while (waitpid(pid, &status, WNOHANG) == 0) {
      std::error_code ec;
      if (deadline == std::chrono::steady_clock::time_point::max() &&
          fs::last_write_time(marker, ec) > t0_file && !ec)
        arm();
      if (std::chrono::steady_clock::now() >= deadline) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  } else {
    waitpid(pid, &status, 0);
  }
  e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  e.killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  e.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return e;
}

// metrics.jsonl records and the checkpoint's history without what differs between two runs of
// one configuration: the timings.
nlohmann::json without_timings(std::vector<nlohmann::json> records) {
  for (auto& r : records)
    for (const char* k : {"epoch_seconds", "images_per_s", "tokens_per_s", "train_seconds_total",
                          "stolen_seconds", "val_decode_seconds", "wall_seconds"})
      r.erase(k);
  return records;
}

// A config as JSON without the fields that name the run: its directory and the resume path.
nlohmann::json without_paths(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text);
  j.erase("out");
  j.erase("resume");
  return j;
}

bool is_temp(const std::string& name) { return contains(name, ".tmp-"); }

struct Inspection {
  std::string summary;                // what the directory holds, one line
  std::vector<std::string> partial;   // temporary files that hold part of a checkpoint
  int checkpoint_epoch = -1;          // -1: no checkpoint
};

// The checks after a kill.
Inspection inspect(const std::string& dir) {
  Inspection r;
  if (!fs::exists(dir)) {
    r.summary = "no run directory yet";
    return r;
  }
  int ck_epoch = -1;  // -1: no checkpoint yet
  std::vector<std::string> temps;
  const std::string ck = dir + "/" + focus::kCheckpointFile;
  if (fs::exists(ck)) {
    try {
      const focus::SafetensorsFile f = focus::load_safetensors(ck);
      const std::string format = focus::metadata_field(f.metadata, "format", ck, "checkpoint");
      EXPECT_TRUE(format == "focus-checkpoint/1" || format == "focus-seq2seq-checkpoint/1") << format;
      ck_epoch = std::stoi(f.metadata.at("epoch"));
      EXPECT_EQ(int(focus::from_json_lines(f.metadata.at("history")).size()), ck_epoch) << ck;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "the checkpoint does not load: " << e.what();
    }
  }
  std::string summary = ck_epoch < 0 ? "no checkpoint" : "checkpoint epoch " + std::to_string(ck_epoch);
  std::vector<std::string> models;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string(), path = entry.path().string();
    if (is_temp(name)) {
      // An interrupted atomic write: only ever a temporary name; as a safetensors file it is
      // either complete (killed before the rename) or refused with a typed error.
      std::string what = "complete";
      if (contains(name, ".safetensors.")) {
        try {
          focus::load_safetensors(path);
        } catch (const focus::Error&) {
          what = "partial, typed error";
          if (contains(name, focus::kCheckpointFile)) r.partial.push_back(path);
        } catch (const std::exception& e) {
          ADD_FAILURE() << name << ": untyped error " << e.what();
        }
      } else {
        what = "text";
      }
      temps.push_back(name.substr(0, name.find(".tmp-")) + ".tmp-PID (" + what + ")");
    } else if (name == focus::kCheckpointFile) {  // checked above
    } else if (name == "metrics.jsonl") {
      try {
        const auto records = focus::from_json_lines(read_text(path));
        for (size_t i = 0; i < records.size(); ++i) EXPECT_EQ(records[i]["epoch"], int(i) + 1) << path;
        const int n = int(records.size());
        EXPECT_TRUE(ck_epoch >= 0 && n <= ck_epoch && n >= ck_epoch - 1)
            << "metrics.jsonl has " << n << " epochs, the checkpoint " << ck_epoch;
        summary += ", metrics " + std::to_string(n);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "metrics.jsonl does not parse: " << e.what();
      }
    } else if (name == "config.json") {
      EXPECT_NO_THROW(nlohmann::json::parse(read_text(path))) << path;
    } else if (name.rfind("model_", 0) == 0 && name.size() > 12 &&
               name.substr(name.size() - 12) == ".safetensors") {
      try {
        if (focus::model_file_format(path) == "focus-seq2seq/1") focus::load_seq2seq(path);
        else focus::load_model(path);
        models.push_back(name.substr(6, name.size() - 18));
      } catch (const std::exception& e) {
        ADD_FAILURE() << name << " does not load: " << e.what();
      }
    } else {
      ADD_FAILURE() << "unexpected file " << name;
    }
  }
  std::sort(models.begin(), models.end());
  if (!models.empty()) {
    summary += ", models";
    for (const auto& m : models) summary += " " + m;
  }
  for (const auto& t : temps) summary += ", temp " + t;
  r.summary = summary;
  r.checkpoint_epoch = ck_epoch;
  return r;
}

// The finished run in `dir` against the uninterrupted one in `ref`.
void expect_same_run(const std::string& ref, const std::string& dir, const std::string& label) {
  std::vector<std::string> names, got;
  for (const auto& e : fs::directory_iterator(ref)) names.push_back(e.path().filename().string());
  for (const auto& e : fs::directory_iterator(dir)) got.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, names) << label << ": the files differ (temporary files left?)";
  for (const auto& name : names) {
    const std::string a = ref + "/" + name, b = dir + "/" + name;
    if (!fs::exists(b)) continue;
    if (name == focus::kCheckpointFile) {
      const focus::SafetensorsFile fa = focus::load_safetensors(a), fb = focus::load_safetensors(b);
      ASSERT_EQ(fa.tensors.size(), fb.tensors.size()) << label;
      for (const auto& [key, t] : fa.tensors) {
        const auto it = fb.tensors.find(key);
        ASSERT_TRUE(it != fb.tensors.end()) << label << ": " << key;
        const focus::Tensor u = t.contiguous(), v = it->second.contiguous();
        ASSERT_EQ(u.shape(), v.shape()) << label << ": " << key;
        ASSERT_EQ(u.dtype(), v.dtype()) << label << ": " << key;
        EXPECT_EQ(std::memcmp(u.raw_data(), v.raw_data(), u.nbytes()), 0)
            << label << ": checkpoint tensor " << key << " differs";
      }
      ASSERT_EQ(fa.metadata.size(), fb.metadata.size()) << label;
      for (const auto& [key, value] : fa.metadata) {
        const std::string& other = fb.metadata.at(key);
        if (key == "history")
          EXPECT_EQ(without_timings(focus::from_json_lines(value)),
                    without_timings(focus::from_json_lines(other))) << label;
        else if (key == "config")
          EXPECT_EQ(without_paths(value), without_paths(other)) << label;
        else
          EXPECT_EQ(value, other) << label << ": checkpoint metadata " << key;
      }
    } else if (name == "metrics.jsonl") {
      EXPECT_EQ(without_timings(focus::from_json_lines(read_text(a))),
                without_timings(focus::from_json_lines(read_text(b)))) << label;
    } else if (name == "config.json") {
      EXPECT_EQ(without_paths(read_text(a)), without_paths(read_text(b))) << label;
    } else {
      EXPECT_TRUE(read_text(a) == read_text(b)) << label << ": " << name << " is not bit-identical";
    }
  }
}

// One trainer's kill test: the uninterrupted reference, then each named kill point, then a
// chain of random kills; every killed run is inspected, resumed to the end and compared.
class KillTest {
 public:
  KillTest(std::string label, Args args, std::string root)
      : label_(std::move(label)), args_(std::move(args)), root_(std::move(root)) {}

  void reference() {
    const auto t0 = std::chrono::file_clock::now();
    const Exit e = run_focus(with_out(dir("reference")), log());
    ASSERT_EQ(e.code, 0) << read_text(log());
    // The training window, from the file times: config.json is written as training starts, the
    // checkpoint last at the final epoch's end; random kills fall in it.
    auto since_t0 = [&](const char* name) {
      return std::chrono::duration<double>(fs::last_write_time(dir("reference") + "/" + name) - t0)
          .count();
    };
    window_ = {since_t0("config.json"), since_t0(focus::kCheckpointFile) + 0.02};
    const auto records = focus::from_json_lines(read_text(dir("reference") + "/metrics.jsonl"));
    ASSERT_FALSE(records.empty());
    steps_per_epoch_ = records[0]["step"].get<int>();
    epochs_ = int(records.size());
    std::printf("[%s] uninterrupted run: %zu epochs of %d steps, %.2f s (training from %.3f s "
                "to %.3f s)\n", label_.c_str(), records.size(), steps_per_epoch_, e.seconds,
                window_.first, window_.second);
  }

  // The kill point in the middle of epoch `epoch` (from 1): a step's gradients computed, the
  // weights not yet updated.
  std::string mid_step(int epoch) const {
    return "step#" + std::to_string((epoch - 1) * steps_per_epoch_ + steps_per_epoch_ / 2 + 1);
  }

  // Kill at a named point of a fresh run; `tamper` may change the directory before the resume.
  void named(const std::string& point, const std::function<void(const std::string&)>& tamper = {}) {
    const std::string d = dir(point);
    const Exit e = run_focus(with_out(d), log(), point);
    EXPECT_TRUE(e.killed) << label_ << " " << point << ": not reached (exit " << e.code << ")\n"
                          << read_text(log());
    const Inspection in = inspect(d);
    std::string outcome = in.summary;
    for (const std::string& temp : in.partial) {  // pointed at by --resume: refused, by name
      fs::remove(log());
      const Exit r = run_focus({"train", "--resume", temp}, log());
      const std::string out = read_text(log());
      EXPECT_TRUE(!r.killed && r.code == 1 && contains(out, temp)) << out;
      outcome += " (--resume of it: exit " + std::to_string(r.code) + ")";
    }
    if (tamper) {
      tamper(d);
      outcome += " [tampered]";
    }
    outcome += " -> " + resume_to_end(d);
    std::printf("[%s] kill at %-44s %s\n", label_.c_str(), point.c_str(), outcome.c_str());
    std::fflush(stdout);
    expect_same_run(dir("reference"), d, label_ + " " + point);
  }

  // Runs killed at `kills` random moments of their training (config.json is written as it
  // starts): a fresh run is killed, resumed and killed again until its checkpoint is final or it
  // finishes first; then it is resumed to the end and compared, and the next kill starts a new run.
  void random_kills(std::mt19937& gen, int kills) {
    std::uniform_real_distribution<double> at(0, window_.second - window_.first);
    int runs = 0;
    std::string d;
    auto finish = [&](const std::string& end) {
      std::printf("[%s] random run %d -> %s\n", label_.c_str(), runs, end.c_str());
      std::fflush(stdout);
      expect_same_run(dir("reference"), d, label_ + " random run " + std::to_string(runs));
      d.clear();
    };
    for (int k = 1; k <= kills; ++k) {
      if (d.empty()) d = dir("random" + std::to_string(++runs));
      const double t = at(gen);
      fs::remove(log());
      const Exit e = fs::exists(d + "/" + focus::kCheckpointFile)
                         ? run_focus(resume_args(d), log(), "", t, d + "/config.json")
                         : run_focus(with_out(d), log(), "", t, d + "/config.json");
      if (!e.killed) {
        std::printf("[%s] random kill %d (run %d), %.3f s into training: finished first (exit %d)\n",
                    label_.c_str(), k, runs, t, e.code);
        // Finishing first is fine; crashing or failing is not (1 = resumed a finished run).
        EXPECT_TRUE(e.code == 0 || (e.code == 1 && read_text(log()).find("already finished") !=
                                                        std::string::npos))
            << label_ << " random run " << runs << " ended with " << e.code << ":\n"
            << read_text(log());
        if (e.code == 0) finish("ran to the end");
        else finish(resume_to_end(d));
        continue;
      }
      const Inspection in = inspect(d);
      std::printf("[%s] random kill %d (run %d), %.3f s into training: %s\n", label_.c_str(), k,
                  runs, t, in.summary.c_str());
      if (in.checkpoint_epoch == epochs_) finish(resume_to_end(d));
    }
    if (!d.empty()) finish(resume_to_end(d));
  }

 private:
  std::string dir(std::string name) const {
    for (char& c : name)
      if (c == ':' || c == '#') c = '_';
    return root_ + "/" + label_ + "_" + name;
  }
  std::string log() const { return root_ + "/" + label_ + ".log"; }
  Args with_out(const std::string& d) const {
    Args a = args_;
    a.insert(a.end(), {"--out", d});
    return a;
  }
  static Args resume_args(const std::string& d) {
    return {"train", "--resume", d + "/" + focus::kCheckpointFile};
  }

  // Resumes (or, with no checkpoint yet, restarts) the run in `d` until it has finished.
  std::string resume_to_end(const std::string& d) {
    fs::remove(log());
    const bool has_ck = fs::exists(d + "/" + focus::kCheckpointFile);
    const Exit e = run_focus(has_ck ? resume_args(d) : with_out(d), log());
    const std::string out = read_text(log());
    if (e.code == 1 && contains(out, "already finished"))  // killed after the final commit
      return "resume: checkpoint already final, files rewritten from it";
    EXPECT_EQ(e.code, 0) << label_ << " " << d << ":\n" << out;
    return has_ck ? "resumed to the end" : "no checkpoint, restarted";
  }

  std::string label_;
  Args args_;
  std::string root_;
  std::pair<double, double> window_{0.1, 1.0};  // seconds after the start
  int steps_per_epoch_ = 1, epochs_ = 1;
};

class TrainKill : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (fs::temp_directory_path() / ("focus_kill_" + std::to_string(::getpid()))).string();
    fs::remove_all(root_);
    fs::create_directories(root_);
    const char* s = std::getenv("FOCUS_KILL_TEST_SEED");
    seed_ = s ? std::strtoul(s, nullptr, 10) : 17;
    const char* isa = std::getenv("FOCUS_FORCE_ISA");
    std::printf("kill test: seed %lu, FOCUS_FORCE_ISA=%s\n", seed_, isa ? isa : "(unset)");
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(root_);
    else std::printf("kept %s for inspection\n", root_.c_str());
  }
  std::string root_;
  unsigned long seed_ = 17;
};

}  // namespace

TEST_F(TrainKill, ImageTrainer) {
  const std::string data = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(data + "/train-images-idx3-ubyte.gz")) GTEST_SKIP() << "no Fashion-MNIST in " << data;
  // 3 epochs of 8 steps (320 images, 64 for validation, batch 32); dropout and augmentation on,
  // so the random streams must be restored too.
  KillTest t("image",
             {"train", "--model", "vit", "--model-config",
              R"({"dim":16,"depth":1,"heads":2,"dropout":0.1})", "--epochs", "3",
              "--limit-train", "320", "--val-size", "64", "--batch", "32", "--augment", "true",
              "--threads", "2", "--seed", "7", "--data-dir", data},
             root_);
  t.reference();
  if (HasFatalFailure()) return;
  t.named(t.mid_step(2));
  t.named("commit#2");                                    // epoch 2 trained, nothing written
  t.named("atomic-partial:checkpoint_last.safetensors#2");  // inside the checkpoint's write
  t.named("atomic-rename:checkpoint_last.safetensors#2");   // complete, not yet renamed
  t.named("after:checkpoint_last.safetensors#2");           // committed, nothing derived yet
  t.named("after:metrics.jsonl#2");
  t.named("after:model_last.safetensors#1");  // epoch 1 set the best: model_best not yet written
  // The case of the old protocol: metrics.jsonl ahead of the checkpoint. Resume must take the
  // history from the checkpoint and rewrite metrics.jsonl.
  t.named("commit#3", [](const std::string& d) {
    std::ofstream(d + "/metrics.jsonl", std::ios::app) << R"({"epoch":3,"val_acc":1.0})" << "\n";
  });
  t.named("after:checkpoint_last.safetensors#3");  // the final commit
  std::mt19937 gen(seed_);
  t.random_kills(gen, 5);
}

TEST_F(TrainKill, Seq2SeqTrainer) {
  focus::testing::write_reverse_task(root_ + "/train.tsv", root_ + "/valid.tsv");
  // 3 epochs of a few length-bucketed steps; dropout, EMA and the epoch files on.
  KillTest t("seq2seq",
             {"train", "--task", "translate", "--train", root_ + "/train.tsv", "--valid",
              root_ + "/valid.tsv", "--src-tokenizer", "char", "--tgt-tokenizer", "char",
              "--epochs", "3", "--max-tokens", "48", "--ema", "0.9", "--keep-epochs", "2",
              "--threads", "2", "--seed", "5", "--model-config",
              R"({"d_model":16,"n_enc_layers":1,"n_dec_layers":1,"n_heads":2,"d_ff":32,"dropout":0.1})"},
             root_);
  t.reference();
  if (HasFatalFailure()) return;
  t.named(t.mid_step(2));
  t.named("atomic-partial:checkpoint_last.safetensors#2");
  t.named("after:checkpoint_last.safetensors#2");
  t.named("after:model_last.safetensors#2");
  t.named("atomic-rename:model_epoch_002.safetensors#1");
  t.named("after:model_epoch_003.safetensors#1");  // epoch 1's file not yet removed
  t.named("after:model_last.safetensors#1");       // model_best of epoch 1 not yet written
  t.named("after:checkpoint_last.safetensors#3");
  std::mt19937 gen(seed_ + 1);
  t.random_kills(gen, 6);
}
