// Progress bar / log lines (see progress.hpp).
#include "focus/train/progress.hpp"

#include <unistd.h>

namespace focus {

Progress::Progress(std::FILE* out, int64_t log_every, std::string unit)
    : out_(out), tty_(isatty(fileno(out)) != 0), log_every_(log_every), unit_(std::move(unit)) {}

void Progress::start_epoch(int epoch, int epochs, int64_t batches) {
  epoch_ = epoch;
  epochs_ = epochs;
  batches_ = batches;
  t0_ = last_draw_ = std::chrono::steady_clock::now();
}

void Progress::update(int64_t i, double loss, double acc, int64_t images) {
  const auto now = std::chrono::steady_clock::now();
  const double dt = std::chrono::duration<double>(now - t0_).count();
  const double ips = dt > 0 ? images / dt : 0;
  const double eta = i + 1 > 0 ? dt / double(i + 1) * double(batches_ - i - 1) : 0;
  if (tty_) {
    if (i + 1 < batches_ && std::chrono::duration<double>(now - last_draw_).count() < 0.2) return;
    last_draw_ = now;
    const int width = 24;
    const int filled = batches_ ? int(width * (i + 1) / batches_) : width;
    std::string bar(filled, '#');
    bar.resize(width, '.');
    std::fprintf(out_, "\repoch %d/%d [%s] %lld/%lld loss %.4f acc %.2f%% %.0f %s/s ETA %.0fs  ",
                 epoch_, epochs_, bar.c_str(), (long long)(i + 1), (long long)batches_, loss,
                 100 * acc, ips, unit_.c_str(), eta);
    std::fflush(out_);
  } else if ((i + 1) % log_every_ == 0 || i + 1 == batches_) {
    std::fprintf(out_, "epoch %d/%d batch %lld/%lld loss %.4f acc %.2f%% %.0f %s/s ETA %.0fs\n",
                 epoch_, epochs_, (long long)(i + 1), (long long)batches_, loss, 100 * acc, ips,
                 unit_.c_str(), eta);
    std::fflush(out_);
  }
}

void Progress::end_epoch(const std::string& summary) {
  if (tty_) std::fprintf(out_, "\r\033[K");
  std::fprintf(out_, "%s\n", summary.c_str());
  std::fflush(out_);
}

}  // namespace focus
