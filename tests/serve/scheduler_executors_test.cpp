// The batcher with several executors (batch parallelism, serve/scheduler.hpp): batched answers
// equal single ones, two batches compute at once on one thread each and never more threads than
// the budget; a model with one replica, and an explanation, run one batch at a time on every
// compute thread, after the running batches; deadlines and drain hold; with a busy queue delay,
// jobs queued while a batch computes wait for company.
#include "focus/serve/scheduler.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "focus/kernels/cpu.hpp"
#include "focus/serve/metrics.hpp"
#include "infer/infer_fixtures.hpp"
#include "serve/scheduler_jobs.hpp"

namespace focus {
namespace {

// The tiny cnn with `replicas` predictors, warmed up on one thread (as the server loads it for
// one-thread executors).
std::shared_ptr<const ServedModel> model_with(int replicas) {
  const auto path = std::filesystem::path(::testing::TempDir()) / "scheduler_executors_cnn.safetensors";
  if (!std::filesystem::exists(path)) testing::save_tiny_image_model(path.string());
  ServedModelOptions o;
  o.replicas = replicas;
  o.replica_threads = 1;
  return load_served_model("cnn", path.string(), o);
}

std::shared_ptr<const ServedModel> two_replicas() {
  static const auto m = model_with(2);
  return m;
}

using testing::image_job;
using testing::random_pixels;
using testing::wait;

SchedulerOptions two_executors() {
  SchedulerOptions so;
  so.max_batch = 64;
  so.executors = 2;
  so.executor_threads = 1;
  return so;
}

TEST(SchedulerExecutors, TheModelHoldsOnePredictorPerReplica) {
  const auto m = two_replicas();
  EXPECT_EQ(m->replicas(), 2);
  EXPECT_NE(&m->image_rung(0, 0), &m->image_rung(0, 1));
  EXPECT_EQ(&m->image_rung(0, 0), m->image.get());
}

TEST(SchedulerExecutors, BatchedAnswersEqualSingleOnesAndTwoBatchesRunAtOnce) {
  Scheduler s(two_executors(), nullptr);
  // Rounds of many large jobs queued at once: the first executor takes half, the second the rest
  // while the first computes. Repeated a few times so that a slow wake-up cannot fail the test.
  for (int round = 0; round < 5 && s.peak_batches() < 2; ++round) {
    std::vector<std::shared_ptr<Job>> jobs;
    for (int i = 0; i < 16; ++i) jobs.push_back(image_job(two_replicas(), 1 + (i * 7) % 16, 100 * round + i));
    for (auto& j : jobs) ASSERT_EQ(s.submit(j), Admit::Ok);
    for (auto& j : jobs) {
      wait(*j);
      ASSERT_EQ(j->status, 0) << j->error;
      EXPECT_LE(j->batch_items, 64);
      const Tensor alone = two_replicas()->image->probabilities(j->pixels);
      const std::vector<float> a = alone.to_vector<float>(), b = j->probs.to_vector<float>();
      ASSERT_EQ(a.size(), b.size());
      for (size_t k = 0; k < a.size(); ++k) ASSERT_NEAR(a[k], b[k], 1e-5f) << k;
    }
  }
  EXPECT_EQ(s.peak_batches(), 2);
  EXPECT_LE(s.peak_threads(), 2);  // two executors on one thread each: the budget of 2
}

TEST(SchedulerExecutors, AnExplanationRunsOnEveryComputeThreadAfterTheRunningBatches) {
  Scheduler s(two_executors(), nullptr);
  std::vector<std::shared_ptr<Job>> jobs;
  for (int i = 0; i < 8; ++i) jobs.push_back(image_job(two_replicas(), 16, 200 + i));
  auto explain = image_job(two_replicas(), 1, 1);
  int seen = 0;
  explain->run_alone = [&seen](Job&) { seen = num_threads(); };
  for (auto& j : jobs) ASSERT_EQ(s.submit(j), Admit::Ok);
  ASSERT_EQ(s.submit(explain), Admit::Ok);
  for (auto& j : jobs) wait(*j);
  wait(*explain);
  EXPECT_EQ(explain->status, 0) << explain->error;
  EXPECT_EQ(seen, 2);  // both executors' threads
  EXPECT_LE(s.peak_threads(), 2);
}

TEST(SchedulerExecutors, AModelWithOneReplicaRunsOneBatchAtATimeOnEveryThread) {
  static const auto one = model_with(1);
  Scheduler s(two_executors(), nullptr);
  std::vector<std::shared_ptr<Job>> jobs;
  for (int i = 0; i < 12; ++i) jobs.push_back(image_job(one, 16, 300 + i));
  for (auto& j : jobs) ASSERT_EQ(s.submit(j), Admit::Ok);
  for (auto& j : jobs) {
    wait(*j);
    EXPECT_EQ(j->status, 0) << j->error;
  }
  EXPECT_EQ(s.peak_batches(), 1);
  EXPECT_EQ(s.peak_threads(), 2);
}

// busy_queue_delay: while another batch computes, a free executor waits for company (here until
// that batch ends), so the small jobs queued meanwhile run batched, not one by one beside it; an
// idle server never waits.
TEST(SchedulerExecutors, WhileAnotherBatchComputesSmallJobsWaitForCompany) {
  SchedulerOptions so = two_executors();
  so.busy_queue_delay_ms = 5000;  // longer than the big batch computes, on any ISA
  Scheduler s(so, nullptr);
  auto lone = image_job(two_replicas(), 1, 40);
  ASSERT_EQ(s.submit(lone), Admit::Ok);
  wait(*lone);
  EXPECT_EQ(lone->status, 0) << lone->error;
  EXPECT_LT(lone->started - lone->admitted, std::chrono::milliseconds(150));  // idle: no wait
  auto big = image_job(two_replicas(), 3000, 41);  // over max_batch: a batch of its own
  std::vector<std::shared_ptr<Job>> small;
  for (int i = 0; i < 3; ++i) small.push_back(image_job(two_replicas(), 1, 42 + i));
  ASSERT_EQ(s.submit(big), Admit::Ok);
  for (auto& j : small) ASSERT_EQ(s.submit(j), Admit::Ok);
  wait(*big);
  int64_t largest = 0;
  for (auto& j : small) {
    wait(*j);
    EXPECT_EQ(j->status, 0) << j->error;
    EXPECT_GE(j->started, big->finished);  // none ran alone beside the big batch
    largest = std::max(largest, j->batch_items);
  }
  EXPECT_GE(largest, 2);  // split between the two executors once both are free: 2 + 1
  EXPECT_EQ(big->batch_items, 3000);
}

TEST(SchedulerExecutors, DeadlinesAndDrainHold) {
  SchedulerOptions so = two_executors();
  so.max_batch = 2;
  Scheduler s(so, nullptr);
  auto expired = image_job(two_replicas(), 1, 1, std::chrono::milliseconds(0));
  ASSERT_EQ(s.submit(expired), Admit::Ok);
  std::vector<std::shared_ptr<Job>> jobs;
  for (int i = 0; i < 20; ++i) {
    jobs.push_back(image_job(two_replicas(), 2, 20 + i));
    ASSERT_EQ(s.submit(jobs.back()), Admit::Ok);
  }
  EXPECT_TRUE(s.drain(std::chrono::seconds(60)));
  EXPECT_EQ(expired->status, 504);
  EXPECT_FALSE(expired->probs.defined());  // never ran
  for (auto& j : jobs) {
    EXPECT_EQ(j->state.load(), Job::Done);
    EXPECT_EQ(j->status, 0) << j->error;
  }
  EXPECT_EQ(s.submit(image_job(two_replicas(), 1, 99)), Admit::Draining);
}

}  // namespace
}  // namespace focus
