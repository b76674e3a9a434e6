// The inference planner's decisions (`focus plan`, apps/cmd_plan.cpp, docs/BUDGET.md): given
// measured variants of one model (model file x inference weights x compute threads x batch size;
// the files: the model and candidates made from it, pruned or with early exits; each with
// its accuracy on the validation split, its latency distribution and its peak memory), which are
// Pareto-optimal, which meet a budget, and which to serve: the most accurate within the budget
// (ties: lower p99, then less memory, then fewer threads). A budget nothing meets is refused,
// naming the variant that comes closest. Pure: no I/O, no clocks (the measuring is the app's).
//
//   Budget b = parse_budget("p99_ms=5,rss_mb=150");
//   std::vector<VariantResult> r = ...measured...;
//   mark_front(r);
//   const PlanChoice c = choose(r, b);  // c.index, or c.closest when nothing fits
//
// Latency model: a request served by a variant with batch B waits for its batch to fill and then
// for the batch to compute. With an arrival rate (--qps Q), filling takes (B - 1) / Q on average,
// added to the batch's measured p50 / p99; and the variant must sustain Q (B / p50 >= Q).
// Without a rate, the latency is the batch's compute time alone (the batch is assumed full).
#pragma once
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace focus {

struct Budget {
  double p99_ms = std::numeric_limits<double>::infinity();  // request latency, 99th percentile
  double rss_mb = std::numeric_limits<double>::infinity();  // the serving process's peak memory
  double min_accuracy = 0;                                   // fraction of the validation split
  double qps = 0;                                            // arrival rate to sustain (0: none)
};
// "p99_ms=5,rss_mb=150" (either or both; spaces allowed). ValueError naming an unknown key, a
// key given twice, or a value that is not a positive finite number.
Budget parse_budget(const std::string& text);
std::string format_budget(const Budget& b);

struct Variant {
  std::string weights = "f32";  // f32 | bf16 | int8
  int threads = 1;
  int64_t batch = 1;
  // Which model file (0: the planned model; k: its k-th candidate, e.g. a pruned or early-exit
  // version) and its label in names ("" for the planned model).
  int file = 0;
  std::string label;
  std::string name() const;  // "int8 t2 b8", "pruned int8 t2 b8"
};

struct VariantResult {
  Variant v;
  double accuracy = 0;               // on the validation split
  double batch_p50_ms = 0, batch_p99_ms = 0;  // one batch's compute time, measured
  double rss_mb = 0;                 // peak resident memory of a process serving it, measured
  // Derived by evaluate():
  double p50_ms = 0, p99_ms = 0;     // a request's latency under the latency model above
  double throughput = 0;             // items per second at the measured p50
  bool on_front = false;             // Pareto-optimal (accuracy up; p99 and memory down)
  bool within = false;               // meets the budget
  std::string misses;                // what it misses, e.g. "p99 7.10 > 5 ms"
};

// Fills the derived fields of every result against `b`.
void evaluate(std::vector<VariantResult>& r, const Budget& b);
// Marks the Pareto front: a result is on it unless another is at least as good on accuracy,
// p99 and memory and better on one of them.
void mark_front(std::vector<VariantResult>& r);

struct PlanChoice {
  std::optional<size_t> index;  // the chosen variant, if any meets the budget
  size_t closest = 0;           // otherwise the one whose worst overrun (ratio) is smallest
  double closest_overrun = 0;   // that ratio (1.3 = 30% over on its worst limit)
};
// evaluate() first. ValueError for no results.
PlanChoice choose(const std::vector<VariantResult>& r, const Budget& b);

// The SLO ladder of a served choice (focus serve --slo-ladder): the chosen variant, then the
// variants of other weights of the same file at the same threads and batch that are faster than the rung before,
// in decreasing accuracy: the controller steps down it when load rises. Indices into r.
std::vector<size_t> slo_ladder(const std::vector<VariantResult>& r, size_t chosen);

// The chart: p99 latency (x, log scale) against accuracy (y), every variant a dot (filled: on the
// front), the front joined, the budget's p99 as a vertical line, the chosen variant ringed.
std::string front_svg(const std::vector<VariantResult>& r, const Budget& b, const PlanChoice& c,
                      const std::string& title);

nlohmann::json variant_json(const VariantResult& r);

}  // namespace focus
