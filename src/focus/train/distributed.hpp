// Data-parallel training over processes (the ranks of a Communicator, dist/) and threads: how one
// optimizer step's global batch is shared out, and the exchanges that keep the model replicas
// equal. Both trainers run their steps through a ReplicaGroup (one rank: a group of one, no
// exchange, the same code path).
//
// Parts. A step's global batch of B rows is cut into P = ranks x accum x workers parts of
// consecutive rows, part a being rows [a B / P, (a + 1) B / P) (workers = the threads with
// --data-parallel, else 1). Rank r runs parts [r P / ranks, (r + 1) P / ranks), which are rows
// [r B / ranks, (r + 1) B / ranks): every rank takes its deterministic shard of every global
// batch, and N ranks see exactly the batches one process sees. A part weights its loss by its
// share of the batch (rows, or target tokens), so the sum of the parts' gradients is the gradient
// of the global batch's mean loss.
//
// Gradients. With --data-parallel or more than one rank ("sinks"), each part collects its gradient
// in its own sink and draws its dropout masks from the stream (step salt, a) (run_micro_batches);
// a rank adds its parts' sinks in part order, then the ranks' sums are added by MPI, bucket by
// bucket. Buckets: the parameters in reverse registration order (about the order backward
// finishes them), cut into runs of at most cfg.dist_bucket_mb (a larger parameter is a bucket of
// its own); a bucket holds one flag per parameter (1: this rank has a gradient; a parameter no
// rank reached keeps no gradient, as in one process), then the gradients. The same layout every
// step and every run, started in the same order on every rank.
// Overlap (cfg.dist_overlap, one part at a time per rank: workers = 1): the rank's last part runs
// its backward under a LeafReadyScope; when a parameter's gradient is final (its last use in the
// graph has run; a tied embedding only after both uses), its rank sum (earlier parts' sum + this
// part's) goes into its bucket, and a bucket whose parameters are all in is started
// (MPI_Iallreduce) once every bucket before it has been; each ready parameter also calls MPI_Test
// on the started buckets (with one thread per rank MPI progresses only inside MPI calls). After
// the backward the remaining buckets start, all are waited for in order, and the sums go to the
// parameters' gradients before the optimizer step. Without overlap (the reference, or
// --data-parallel threads) the same buckets are filled after the backward and summed by blocking
// MPI_Allreduce calls in the same order: the same sums, bit for bit, on 2 ranks (a + b either
// way; on more ranks MPI's non-blocking and blocking sums may add in different orders: a few
// ulps). Without sinks (one rank, no --data-parallel) the parts run in turn and add into the
// parameters' gradients directly, as before.
//
// Reproducibility. The result depends on (seed, P), not on the ranks: two ranks equal one process
// with accum 2 and --data-parallel (one thread each) bit for bit, since a + b is the same on both
// sides (with accum k > 1 a rank adds its k parts first: (a + b) + (c + d) against one process's
// ((a + b) + c) + d, a few ulps); for more than two ranks MPI's reduction order differs from one
// process's sequential sum (a few float ulps). Buffers (BatchNorm's running statistics) are rank 0's,
// broadcast after every step (as PyTorch DDP's broadcast_buffers). Every cfg.dist_check_every
// steps the ranks compare a checksum of their parameters and buffers and all stop with a CommError
// naming the step when they differ.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "focus/dist/communicator.hpp"
#include "focus/nn/module.hpp"
#include "focus/train/config.hpp"

namespace focus {

struct StepPlan {
  int64_t rows = 0;             // B: the global batch
  int64_t parts = 1;            // P
  int64_t first = 0, last = 1;  // this rank's parts [first, last)
  int workers = 1;              // parts run at once (threads)
  bool sinks = false;           // one gradient sink per part, added in part order
  // Global rows [lo, hi) of part a.
  std::pair<int64_t, int64_t> part_rows(int64_t a) const { return {a * rows / parts, (a + 1) * rows / parts}; }
  // This rank's rows.
  std::pair<int64_t, int64_t> rank_rows() const { return {part_rows(first).first, part_rows(last - 1).second}; }
};

class ReplicaGroup {
 public:
  // `comm` and `model` must outlive the group.
  ReplicaGroup(Communicator& comm, Module& model, const TrainConfig& cfg);

  Communicator& comm() { return comm_; }
  int rank() const { return comm_.rank(); }
  int size() const { return comm_.size(); }
  bool root() const { return comm_.rank() == 0; }

  StepPlan plan(int64_t rows) const;
  // Runs fn(a, lo, hi) for this rank's parts (a part with no rows is skipped): the forward and
  // backward of part a, global rows [lo, hi), returning its weighted loss. Then sums the gradients
  // over the ranks. Returns the sum of this rank's part losses. `step` names the step in messages
  // and `salt` keys the parts' dropout streams. fn calls backward once: with overlap, what that
  // backward makes final is sent at once (a second backward in the same part would be lost).
  double backward(const StepPlan& plan, uint64_t salt, int64_t step,
                  const std::function<double(int64_t a, int64_t lo, int64_t hi)>& fn);
  // Sums values over the ranks, in place (per-step statistics); from rank 0 to all, in place.
  void sum(std::span<double> values);
  void broadcast(std::span<double> values);
  // Parameters and buffers from rank 0 to every rank (start and resume).
  void broadcast_state();
  // After the optimizer step `step` (1-based count): buffers from rank 0; the checksum compare
  // every cfg.dist_check_every steps.
  void after_step(int64_t step);
  // Compares the replicas now; CommError naming `step` when they differ.
  void check_replicas(int64_t step);
  // Seconds spent exchanging gradients since the last call (metrics): in the MPI calls, the
  // bucket copies and the wait for the other ranks (with overlap: inside the backward's callbacks
  // and after it).
  double take_comm_seconds();
  bool overlapping(const StepPlan& plan) const { return overlap_ && size() > 1 && plan.workers == 1; }

 private:
  struct Bucket {
    int64_t offset = 0, length = 0;  // floats of flat_: flags, then gradients
    int params = 0;                  // parameters in it
    int pending = 0;                 // parameters not filled yet this step
    Communicator::Request request = -1;
    bool started = false, done = false;
  };
  struct Slot {  // a parameter's place
    int bucket = 0;
    int64_t flag = 0, grad = 0;  // offsets into flat_
  };
  void layout();
  void begin_exchange();
  // Parameter i's rank sum (its .grad plus `part`, the last part's gradient, when given) into its
  // bucket; starts what is ready, in order.
  void fill(size_t i, const Tensor* part, bool overlap);
  void progress();
  void finish_exchange(int64_t step, bool overlap);

  Communicator& comm_;
  Module& model_;
  int accum_, workers_;
  bool sinks_, overlap_;
  int64_t bucket_;  // floats
  int check_every_;
  int64_t diverge_at_ = -1;  // test hook FOCUS_TEST_DIVERGE_AT: the last rank perturbs a weight
  std::vector<Tensor> params_;
  std::unordered_map<const AutogradMeta*, size_t> param_index_;
  std::vector<Slot> slots_;
  std::vector<Bucket> buckets_;
  std::vector<char> filled_;
  size_t next_start_ = 0;
  std::vector<float> flat_;
  double comm_seconds_ = 0;
};

}  // namespace focus
