// The dynamic batcher: one bounded queue per model and a fixed set of executor threads that
// run the batches; the HTTP threads only parse, wait and write.
//
// A request becomes a Job (its items: images or sentences) and waits in its model's queue. A free
// executor takes the queue whose head has waited longest (among the models it may run now, see
// below) and, once that head has waited max_queue_delay (0: at once; busy_queue_delay instead when
// it is longer and another batch is computing) or the queue holds max_batch
// items, runs one batch made of the queued jobs that share the head's model version and batch key
// (same search options), in arrival order, up to max_batch items (a single job larger than that
// runs alone; under an SLO an image batch is capped lower, by its estimated compute). Batches
// therefore grow with load by themselves: while one batch computes, the next one queues.
// Executors (SchedulerOptions::executors):
//   1 (the reference policy): one executor for all models; a batch runs on the thread policy's
//     threads (num_threads(), OpenMP), the only compute threads.
//   N > 1 (batch parallelism): N executors, each batch on executor_threads threads (the server
//     keeps N x executor_threads within the thread budget), so under moderate load small batches
//     compute side by side instead of queueing behind one batch that splits each layer over the
//     cores. A batch needs a free replica of its model (ServedModel::replicas: image models load
//     one predictor per executor). A model with fewer replicas than executors (text, seq2seq,
//     recsys: one) and an explanation (`run_alone`, on replica 0) run on all N x executor_threads
//     threads once the running batches are done; meanwhile no other batch starts (the oldest head
//     goes first). With k executors free, an executor takes at most 1/k of the head's queue,
//     leaving the rest to the others.
// Limits: a full queue refuses at once (queue_full -> 429); a job whose deadline passes before
// its batch starts is not run (504, by an executor or by the waiting thread, whichever sees it
// first); a job cancelled while queued (its client went away) is dropped. A job that has
// started always finishes. drain() stops admitting and waits until every admitted job is done.
// Asynchronous jobs (Job::on_done set: no thread waits for them) are watched instead by the
// scheduler's watch thread while queued (a tick every 20 ms, sooner for an earlier deadline): at
// its deadline a job is ended with 504, and one whose client_left() says so (asked from 50 ms in
// the queue) with 499; on_done then runs there, as it runs on the executor for a job that ran.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "focus/serve/served_model.hpp"
#include "focus/serve/slo_controller.hpp"

namespace focus {

class Metrics;

struct SchedulerOptions {
  int64_t max_batch = 64;          // items per batch
  double max_queue_delay_ms = 0;   // how long a head may wait for company
  // ... and while another batch is computing (busy: an idle server never waits). Under load a
  // batch of a few costs less per item than one of one, and the cores are then the bottleneck.
  double busy_queue_delay_ms = 0;
  int64_t queue_capacity = 256;    // queued jobs per model
  // The latency SLO (slo_controller.hpp): > 0 runs image batches on the rung the model's
  // controller picks, and feeds it each request's latency (admission to answer).
  double slo_p99_ms = 0;
  double slo_window_ms = 1000;
  std::vector<std::string> slo_ladder;  // the rungs' names (weights), for the metrics
  std::vector<double> slo_accuracy;     // their accuracies, when known
  // With an SLO, admission also sheds load early (Clockwork-style): a job whose estimated latency
  // passes f x SLO (slo_estimated_latency_ms: the time since its request arrived, the rest of the
  // batch in progress, the items queued ahead and its own at the rung's recent compute time per
  // item; an empty queue always admits) is refused at once (Admit::Shed -> 429) rather than
  // answered late. The estimate leaves out answering and the cores' other work, so f adapts
  // (AIMD, per model): halved after a window whose p99 missed the SLO, raised by 0.05 after one
  // under 0.6 x SLO, between 0.02 and slo_shed_at.
  double slo_shed_at = 0.8;
  // And an image model's batches are capped (slo_batch_cap): their estimated compute within
  // slo_batch_share x SLO.
  double slo_batch_share = 0.25;
  // Executors (see the top of this file): how many batches may compute at once, and the threads
  // each runs on (0: the thread policy's count, unscoped, as the single executor always has).
  int executors = 1;
  int executor_threads = 0;
};

using SteadyClock = std::chrono::steady_clock;

// One request's work. The HTTP thread fills the inputs, submits, waits; the executor fills the
// outputs. `run_alone` jobs (explanations) run by themselves through the closure.
struct Job {
  enum State { Queued, Running, Done, Cancelled };
  std::shared_ptr<const ServedModel> model;
  std::string batch_key;            // jobs batch together only with equal keys
  int64_t items = 1;
  SteadyClock::time_point admitted, deadline, started, finished;
  // When its request arrived (headers in; the SLO's latencies run from it): default `admitted`.
  SteadyClock::time_point received{};
  SteadyClock::time_point arrived() const { return received == SteadyClock::time_point{} ? admitted : received; }
  // Image jobs: pixels (n, C, S, S) in [0, 1] -> probs (n, K).
  Tensor pixels, probs;
  // Translation jobs: inputs, their ids (Translator::encode), the search -> results.
  std::vector<std::string> texts;
  std::vector<std::vector<int64_t>> sources;
  SearchOptions search;
  std::vector<Translation> translations;
  // Text classification jobs: texts -> one prediction each (probabilities, tokens, pooling).
  std::vector<TextPrediction> text_predictions;
  std::function<void(Job&)> run_alone;
  // Asynchronous jobs: called once when the job ends (finish()), on the thread that ends it;
  // client_left (optional) tells the watch that nobody waits for the answer any more.
  std::function<void(Job&)> on_done;
  std::function<bool()> client_left;
  // Outcome.
  int status = 0;            // 0 = ok, else the HTTP status of the failure (500, 504, ...)
  std::string error;         // message for a failure
  int64_t batch_items = 0;   // items in the batch this job ran in

  std::atomic<int> state{Queued};
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;  // under mu: outputs are final
  void finish(int st = 0, std::string err = "");
  // Waits until done or `until`; true when done.
  bool wait_until(SteadyClock::time_point until);
  // Queued -> Cancelled; false if it already started (or finished).
  bool cancel() { int q = Queued; return state.compare_exchange_strong(q, Cancelled); }
};

enum class Admit { Ok, QueueFull, Draining, Shed };  // Shed: it would wait past the SLO

class Scheduler {
 public:
  Scheduler(const SchedulerOptions& opt, Metrics* metrics);
  ~Scheduler();  // stops the executors (after drain() when graceful)
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues `job` on its model's queue (job->model->name).
  Admit submit(const std::shared_ptr<Job>& job);
  // Stops admitting (submit -> Draining) and waits until every admitted job is done or
  // `timeout` passes; true when all finished.
  bool drain(std::chrono::milliseconds timeout);
  bool draining() const { return draining_.load(); }
  const SchedulerOptions& options() const { return opt_; }
  // The most batches, and compute threads, busy at once so far (the budget's check).
  int peak_batches() const;
  int peak_threads() const;

 private:
  struct Queue {
    std::deque<std::shared_ptr<Job>> jobs;
    int64_t items = 0;
  };
  void loop(size_t worker);
  void watch();  // the asynchronous jobs' deadlines and departed clients (see the top)
  // `rung`: the SLO ladder's rung an image batch runs on (0 without an SLO); `replica`: the
  // model's predictor it runs on; `threads`: its compute threads (with executor_threads > 0).
  void run_batch(std::vector<std::shared_ptr<Job>>& batch, int rung, int replica, int threads);
  // Under mu_: a free replica of `head`'s model for a batch it leads (-1: none), and how many.
  int free_replica(const Job& head, int* free_count) const;
  void publish_depth(const std::string& model, const Queue& q);
  // The model's SLO rung for a batch starting now whose oldest request queued head_wait_ms (0
  // without an SLO); slo_done feeds it the
  // batch's latencies (from each request's arrival). slo_rung under mu_ (it passes on the sheds
  // admission counted); slo_done takes mu_.
  int slo_rung(const ServedModel& m, SteadyClock::time_point now, double head_wait_ms);
  void slo_done(const ServedModel& m, const std::vector<std::shared_ptr<Job>>& batch, SteadyClock::time_point end);

  SchedulerOptions opt_;
  Metrics* metrics_;
  mutable std::mutex mu_;
  std::condition_variable cv_, idle_cv_, watch_cv_;
  SteadyClock::time_point watch_next_{};  // under mu_: when the watch wakes next
  std::map<std::string, Queue> queues_;
  std::atomic<bool> stop_{false}, draining_{false};
  // Under mu_: batches running, their compute threads, the peaks; the replicas in use, a bit each,
  // by model version (erased when none is).
  int busy_ = 0, threads_busy_ = 0, peak_batches_ = 0, peak_threads_ = 0;
  std::map<const ServedModel*, unsigned> replicas_busy_;
  std::map<std::string, SloController> slo_;  // by model name (under mu_)
  // Under mu_: recent compute time per item, by model and rung (0: not measured yet); the rung the
  // model's latest batch ran on; per executor, the estimated end of its batch in progress (none
  // or unknown: min()).
  std::map<std::string, std::vector<double>> ms_per_item_;
  std::map<std::string, int> rung_now_;
  std::vector<SteadyClock::time_point> batch_end_estimate_;
  double per_item_ms(const std::string& model, int rung) const;  // under mu_; 0 when unknown
  std::map<std::string, double> shed_factor_;  // under mu_: the adaptive f above, by model
  std::map<std::string, int64_t> shed_since_;   // under mu_: sheds not yet told to the controller
  std::map<std::string, int64_t> slo_windows_seen_;  // under mu_: windows already acted on
  const SteadyClock::time_point t0_ = SteadyClock::now();
  std::vector<std::thread> threads_;
  std::thread watch_thread_;
};

}  // namespace focus
