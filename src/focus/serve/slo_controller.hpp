// The latency-SLO controller of `focus serve --slo-p99-ms X` (docs/BUDGET.md): a model is served
// by a ladder of variants, rung 0 the most accurate and each next one faster (from `focus plan`:
// f32 then int8 weights), and the controller moves along the ladder to keep the p99 latency of
// requests (queue + compute) within the SLO as load changes:
//   - time is cut into windows (window_s); at each window's end its requests' p99 is compared
//     with the SLO: above down_at x SLO, one rung down (faster) at once; below up_at x SLO (or no
//     request at all) for up_windows windows in a row, one rung up (hysteresis: the gap between
//     up_at and down_at and the run of calm windows keep it from flapping); a window in which
//     admission refused requests to hold the SLO (shed) is never calm: the rung holds only
//     because load is turned away, and a slower rung would hold less;
//   - a window with fewer than min_samples requests does not move it down (too few to tell);
//   - between window ends, a batch whose oldest request has queued longer than queue_down_at x
//     SLO moves one rung down at once (at most once per window): a load step is met within a
//     batch rather than at the end of a window that already missed.
// It also counts the windows that met the SLO (attainment) and the rung's share of time, so the
// metrics can show the variant in use and the effective accuracy served. Pure and
// single-threaded: the scheduler's executor owns one per model and feeds it its clock.
#pragma once
#include <cstdint>
#include <vector>

namespace focus {

struct SloOptions {
  double p99_ms = 0;      // the SLO (> 0)
  int rungs = 1;          // ladder length (>= 1)
  double window_s = 1.0;  // decision window
  double down_at = 0.8;   // step down when a window's p99 > down_at x SLO
  double up_at = 0.4;     // a calm window: p99 < up_at x SLO, or no request
  int up_windows = 3;     // calm windows in a row before one step up
  int min_samples = 10;   // requests a window needs to move the level down
  double queue_down_at = 0.5;  // step down at once when a batch's head queued this x SLO
};

class SloController {
 public:
  explicit SloController(const SloOptions& opt);  // ValueError for options out of range

  // A request finished at `now_s` (seconds, any monotonic origin) after `latency_ms`.
  void observe(double now_s, double latency_ms);
  // `n` requests were refused (shed) at `now_s` to hold the SLO: their window is not calm.
  void shed(double now_s, int64_t n = 1);
  // Closes every window that ended by now_s (deciding after each) and returns the rung to use.
  // `head_wait_ms`: how long the oldest request of the batch about to run has queued (beyond a
  // deliberate wait for company).
  int level(double now_s, double head_wait_ms = 0);

  struct Stats {
    int64_t windows = 0;         // closed windows with at least one request
    int64_t windows_met = 0;     // ... whose p99 was within the SLO
    int64_t steps_down = 0, steps_up = 0;
    double last_p99_ms = 0;      // of the last closed window with requests
  };
  const Stats& stats() const { return stats_; }
  const SloOptions& options() const { return opt_; }

 private:
  void close_window();
  void calm_window();  // a calm window: one step up after up_windows of them in a row
  SloOptions opt_;
  int level_ = 0;
  int calm_ = 0;
  bool stepped_in_window_ = false;  // a queue-delay step this window
  double window_start_ = -1;  // < 0: no window open yet
  std::vector<double> latencies_;  // this window's
  int64_t sheds_ = 0;              // this window's
  Stats stats_;
};

// The SLO's two rules for the batcher (docs/BUDGET.md), pure: the scheduler feeds them its
// measurements (a rung's recent compute time per item, the batch in progress, the queue).
//
// The most items one batch may hold under an SLO: the batch's estimated compute (items x the
// rung's time per item) within share x SLO, at least 1, at most max_batch (max_batch while no
// time per item is known, ms_per_item <= 0). A request waits for at most the rest of the batch
// in progress and then computes in its own batch, so with share 0.25 these two take at most
// half the SLO and leave the rest to reading, decoding and answering it. Without a cap, batches
// under overload grow until a batch alone takes half the SLO (batches of 30-40 int8 cnn_se
// images at ~0.3 ms each on 2 loaded cores).
int64_t slo_batch_cap(double slo_ms, double share, double ms_per_item, int64_t max_batch);

// A request's estimated latency (ms) if admitted now: what it has spent since it arrived
// (reading and decoding it, `spent_ms`), the rest of the batch in progress (`in_progress_left_ms`),
// and the compute of the items queued ahead of it and of its own at the recent time per item.
// The scheduler sheds (refuses at once) a request whose estimate passes f x SLO.
double slo_estimated_latency_ms(double spent_ms, double in_progress_left_ms, int64_t items_ahead,
                                int64_t items, double ms_per_item);

}  // namespace focus
