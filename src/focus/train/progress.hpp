// Training progress: on a terminal, one redrawn line (epoch, batch i/N, loss, accuracy, images/s,
// ETA); otherwise plain log lines every `log_every` batches, so logs stay readable in files.
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace focus {

class Progress {
 public:
  // unit: what a sample is called in the rate ("img" -> "img/s").
  explicit Progress(std::FILE* out = stderr, int64_t log_every = 50, std::string unit = "img");
  void start_epoch(int epoch, int epochs, int64_t batches);
  // After batch i (0-based): running means of loss and accuracy, images seen this epoch.
  void update(int64_t i, double loss, double acc, int64_t images);
  void end_epoch(const std::string& summary);  // clears the bar and prints one summary line
  bool interactive() const { return tty_; }

 private:
  std::FILE* out_;
  bool tty_;
  int64_t log_every_;
  std::string unit_;
  int epoch_ = 0, epochs_ = 0;
  int64_t batches_ = 0;
  std::chrono::steady_clock::time_point t0_, last_draw_;
};

}  // namespace focus
