// The dynamic batcher: batched answers equal single ones, batches form under load and respect
// max_batch, a full queue refuses, a job past its deadline does not run, a cancelled job is
// dropped, one bad input fails only its own job, and drain waits for admitted work; asynchronous
// jobs are ended by the scheduler itself (executor, or the watch at a deadline or a departure).
#include "focus/serve/scheduler.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "focus/serve/metrics.hpp"
#include "infer/infer_fixtures.hpp"
#include "serve/scheduler_jobs.hpp"

namespace focus {
namespace {

std::shared_ptr<const ServedModel> image_model() {
  static std::shared_ptr<const ServedModel> m = [] {
    const auto path = std::filesystem::path(::testing::TempDir()) / "scheduler_test_cnn.safetensors";
    testing::save_tiny_image_model(path.string());
    return load_served_model("cnn", path.string());
  }();
  return m;
}

std::shared_ptr<Job> image_job(int64_t n, uint64_t seed, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  return testing::image_job(image_model(), n, seed, timeout);
}

using testing::random_pixels;
using testing::wait;

TEST(Scheduler, BatchedAnswersEqualSingleOnes) {
  Metrics metrics;
  SchedulerOptions so;
  so.max_batch = 16;
  so.max_queue_delay_ms = 30;  // let the jobs gather
  Scheduler s(so, &metrics);
  std::vector<std::shared_ptr<Job>> jobs;
  for (int i = 0; i < 6; ++i) jobs.push_back(image_job(1 + i % 3, 100 + i));
  for (auto& j : jobs) ASSERT_EQ(s.submit(j), Admit::Ok);
  for (auto& j : jobs) wait(*j);
  int64_t biggest = 0;
  for (auto& j : jobs) {
    ASSERT_EQ(j->status, 0) << j->error;
    biggest = std::max(biggest, j->batch_items);
    EXPECT_LE(j->batch_items, 16);
    const Tensor alone = image_model()->image->probabilities(j->pixels);
    const std::vector<float> a = alone.to_vector<float>(), b = j->probs.to_vector<float>();
    ASSERT_EQ(a.size(), b.size());
    for (size_t k = 0; k < a.size(); ++k) EXPECT_NEAR(a[k], b[k], 1e-6f) << k;
  }
  EXPECT_GT(biggest, 3);  // batches above one request formed
  EXPECT_TRUE(metrics.render().find("focus_batch_size_count") != std::string::npos);
}

TEST(Scheduler, FullQueueRefusesAndDeadlinesAndCancelsAreHonoured) {
  SchedulerOptions so;
  so.max_batch = 64;
  so.queue_capacity = 3;
  so.max_queue_delay_ms = 300;  // the head waits for company: the queue fills first
  Scheduler s(so, nullptr);
  auto expired = image_job(1, 1, std::chrono::milliseconds(0));
  auto cancelled = image_job(1, 2);
  auto ok = image_job(1, 3);
  ASSERT_EQ(s.submit(expired), Admit::Ok);
  ASSERT_EQ(s.submit(cancelled), Admit::Ok);
  ASSERT_EQ(s.submit(ok), Admit::Ok);
  EXPECT_EQ(s.submit(image_job(1, 4)), Admit::QueueFull);
  EXPECT_TRUE(cancelled->cancel());
  EXPECT_EQ(s.submit(image_job(1, 5)), Admit::Ok);  // the cancelled job's place was freed
  wait(*expired);
  EXPECT_EQ(expired->status, 504);
  EXPECT_FALSE(expired->probs.defined());  // never ran
  wait(*ok);
  EXPECT_EQ(ok->status, 0);
  EXPECT_EQ(cancelled->state.load(), Job::Cancelled);
  EXPECT_FALSE(cancelled->probs.defined());
}

// Asynchronous jobs (on_done, no waiting thread): the watch ends a queued one at its deadline
// and one whose client left, while the only executor is busy; one that runs is answered by its
// executor. Each on_done runs once, with the outcome in place.
TEST(Scheduler, AsynchronousJobsEndAtTheirDeadlinesOrWhenTheirClientsLeave) {
  SchedulerOptions so;
  so.executors = 1;
  Scheduler s(so, nullptr);
  auto busy = image_job(1, 30);
  busy->run_alone = [](Job&) { std::this_thread::sleep_for(std::chrono::milliseconds(400)); };
  ASSERT_EQ(s.submit(busy), Admit::Ok);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the executor has taken it
  struct Seen {
    std::atomic<int> calls{0}, status{-1};
    std::atomic<bool> had_probs{false};
    SteadyClock::time_point at;
  };
  auto watched = [](const std::shared_ptr<Job>& j, Seen& seen) {
    j->on_done = [&seen](Job& done) {
      seen.at = SteadyClock::now();
      seen.status = done.status;
      seen.had_probs = done.probs.defined();
      ++seen.calls;
    };
  };
  Seen late, left, ran;
  std::atomic<bool> gone{false};
  auto j_late = image_job(1, 31, std::chrono::milliseconds(60));
  auto j_left = image_job(1, 32);
  auto j_ran = image_job(2, 33);
  watched(j_late, late), watched(j_left, left), watched(j_ran, ran);
  j_left->client_left = [&gone] { return gone.load(); };
  const auto t0 = SteadyClock::now();
  ASSERT_EQ(s.submit(j_late), Admit::Ok);
  ASSERT_EQ(s.submit(j_left), Admit::Ok);
  ASSERT_EQ(s.submit(j_ran), Admit::Ok);
  gone = true;
  wait(*busy);
  wait(*j_late), wait(*j_left), wait(*j_ran);
  // finish() wakes waiters before it calls on_done: give the three calls their moment.
  for (int i = 0; i < 400 && (late.calls.load() == 0 || left.calls.load() == 0 || ran.calls.load() == 0); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(late.calls.load(), 1);
  EXPECT_EQ(late.status.load(), 504);
  EXPECT_FALSE(late.had_probs.load());
  // Ended by the watch, not when the busy executor came to it (400 ms).
  EXPECT_LT(late.at - t0, std::chrono::milliseconds(300));
  EXPECT_EQ(left.calls.load(), 1);
  EXPECT_EQ(left.status.load(), 499);
  EXPECT_LT(left.at - t0, std::chrono::milliseconds(300));
  EXPECT_EQ(ran.calls.load(), 1);
  EXPECT_EQ(ran.status.load(), 0);
  EXPECT_TRUE(ran.had_probs.load());
  EXPECT_EQ(j_ran->probs.size(0), 2);
  EXPECT_FALSE(j_ran->on_done);  // called once, then let go
}

TEST(Scheduler, ABadInputFailsOnlyItsOwnJob) {
  SchedulerOptions so;
  so.max_queue_delay_ms = 30;
  Scheduler s(so, nullptr);
  auto good = image_job(2, 7);
  auto bad = image_job(1, 8);
  bad->pixels.data<float>()[5] = std::nanf("");
  ASSERT_EQ(s.submit(good), Admit::Ok);
  ASSERT_EQ(s.submit(bad), Admit::Ok);
  wait(*good);
  wait(*bad);
  EXPECT_EQ(good->status, 0) << good->error;
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->error.find("nan"), std::string::npos) << bad->error;
}

TEST(Scheduler, DrainFinishesAdmittedWorkAndRefusesNew) {
  SchedulerOptions so;
  so.max_batch = 2;
  Scheduler s(so, nullptr);
  std::vector<std::shared_ptr<Job>> jobs;
  for (int i = 0; i < 10; ++i) {
    jobs.push_back(image_job(2, 20 + i));
    ASSERT_EQ(s.submit(jobs.back()), Admit::Ok);
  }
  EXPECT_TRUE(s.drain(std::chrono::seconds(60)));
  for (auto& j : jobs) {
    EXPECT_EQ(j->state.load(), Job::Done);
    EXPECT_EQ(j->status, 0);
  }
  EXPECT_EQ(s.submit(image_job(1, 99)), Admit::Draining);
}

// Under an SLO a batch's estimated compute stays within slo_batch_share x SLO: with a share so
// small that one item passes it, queued requests that would batch together run one by one.
TEST(Scheduler, TheSloCapsABatchByItsEstimatedCompute) {
  SchedulerOptions so;
  so.max_batch = 16;
  so.max_queue_delay_ms = 30;  // let the jobs gather (as in BatchedAnswersEqualSingleOnes)
  so.slo_p99_ms = 60000;       // no shedding
  so.slo_batch_share = 1e-9;
  Scheduler s(so, nullptr);
  auto first = image_job(1, 40);  // measures the time per item
  ASSERT_EQ(s.submit(first), Admit::Ok);
  wait(*first);
  std::vector<std::shared_ptr<Job>> jobs;
  for (int i = 0; i < 6; ++i) jobs.push_back(image_job(1, 41 + i));
  for (auto& j : jobs) ASSERT_EQ(s.submit(j), Admit::Ok);
  for (auto& j : jobs) {
    wait(*j);
    EXPECT_EQ(j->status, 0) << j->error;
    EXPECT_EQ(j->batch_items, 1);
  }
}

// Shedding counts the time a request spent before it was queued: one that arrived long ago is
// refused behind a short queue that admits a fresh one; an empty queue still admits anything.
TEST(Scheduler, SheddingCountsTheTimeSinceTheRequestArrived) {
  SchedulerOptions so;
  so.max_queue_delay_ms = 300;  // the queue holds its head for a while
  so.slo_p99_ms = 1000;
  Scheduler s(so, nullptr);
  auto first = image_job(1, 50);  // measures the time per item
  ASSERT_EQ(s.submit(first), Admit::Ok);
  wait(*first);
  const auto old_request = [](uint64_t seed) {
    auto j = image_job(1, seed);
    j->received = j->admitted - std::chrono::seconds(5);
    return j;
  };
  auto head = old_request(51);
  EXPECT_EQ(s.submit(head), Admit::Ok);             // the queue was empty
  EXPECT_EQ(s.submit(old_request(52)), Admit::Shed);  // 5 s spent: past 0.8 x 1 s
  auto fresh = image_job(1, 53);
  EXPECT_EQ(s.submit(fresh), Admit::Ok);
  wait(*head);
  wait(*fresh);
  EXPECT_EQ(fresh->status, 0) << fresh->error;
}

}  // namespace
}  // namespace focus
