// The dynamic batcher (see scheduler.hpp).
#include "focus/serve/scheduler.hpp"

#include <algorithm>
#include <optional>
#include <utility>

#include "focus/kernels/cpu.hpp"
#include "focus/serve/metrics.hpp"

namespace focus {

void Job::finish(int st, std::string err) {
  {
    std::lock_guard<std::mutex> lock(mu);
    status = st;
    error = std::move(err);
    finished = SteadyClock::now();
    state.store(Done);
    done = true;
  }
  cv.notify_all();
  if (on_done) std::exchange(on_done, nullptr)(*this);
}

bool Job::wait_until(SteadyClock::time_point until) {
  std::unique_lock<std::mutex> lock(mu);
  return cv.wait_until(lock, until, [&] { return done; });
}

Scheduler::Scheduler(const SchedulerOptions& opt, Metrics* metrics) : opt_(opt), metrics_(metrics) {
  FOCUS_CHECK(opt_.max_batch >= 1 && opt_.queue_capacity >= 1 && opt_.max_queue_delay_ms >= 0 &&
                  opt_.busy_queue_delay_ms >= 0,
              ValueError, "scheduler: max_batch {} and queue_capacity {} must be >= 1, "
              "max_queue_delay_ms {} and busy_queue_delay_ms {} >= 0", opt_.max_batch, opt_.queue_capacity,
              opt_.max_queue_delay_ms, opt_.busy_queue_delay_ms);
  FOCUS_CHECK(opt_.executors >= 1 && opt_.executors <= 32 && opt_.executor_threads >= 0, ValueError,
              "scheduler: executors {} must be in [1, 32], executor_threads {} >= 0", opt_.executors,
              opt_.executor_threads);
  batch_end_estimate_.assign(size_t(opt_.executors), SteadyClock::time_point::min());
  for (int w = 0; w < opt_.executors; ++w) threads_.emplace_back([this, w] { loop(size_t(w)); });
  watch_thread_ = std::thread([this] { watch(); });
}

int Scheduler::peak_batches() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peak_batches_;
}

int Scheduler::peak_threads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peak_threads_;
}

int Scheduler::free_replica(const Job& head, int* free_count) const {
  const auto it = replicas_busy_.find(head.model.get());
  const unsigned used = it == replicas_busy_.end() ? 0u : it->second;
  const int n = head.run_alone ? 1 : std::min(head.model->replicas(), 32);  // explanations: replica 0
  int first = -1, count = 0;
  for (int r = 0; r < n; ++r)
    if (!(used & (1u << r))) {
      if (first < 0) first = r;
      ++count;
    }
  if (free_count) *free_count = count;
  return first;
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  watch_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
  watch_thread_.join();
  // Anything still queued (a stop without drain) is answered, never left waiting.
  for (auto& [name, q] : queues_)
    for (auto& j : q.jobs)
      if (j->cancel()) j->finish(503, "the server is shutting down");
}

void Scheduler::publish_depth(const std::string& model, const Queue& q) {
  if (metrics_) metrics_->set_queue_depth(model, int64_t(q.jobs.size()));
}

Admit Scheduler::submit(const std::shared_ptr<Job>& job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (draining_) return Admit::Draining;
    Queue& q = queues_[job->model->name];
    if (int64_t(q.jobs.size()) >= opt_.queue_capacity) {
      // Cancelled (or, asynchronous, already ended) jobs still hold places until the executor
      // passes them: purge them first.
      std::erase_if(q.jobs, [](const std::shared_ptr<Job>& j) { return j->state.load() != Job::Queued; });
      q.items = 0;
      for (const auto& j : q.jobs) q.items += j->items;
      if (int64_t(q.jobs.size()) >= opt_.queue_capacity) return Admit::QueueFull;
    }
    if (opt_.slo_p99_ms > 0 && !job->run_alone && q.items > 0) {  // shed early: it would miss the SLO
      const std::string& name = job->model->name;
      const auto r = rung_now_.find(name);
      const double per_item = per_item_ms(name, r == rung_now_.end() ? 0 : r->second);
      const auto f = shed_factor_.find(name);
      const double factor = f == shed_factor_.end() ? opt_.slo_shed_at : f->second;
      const auto now = SteadyClock::now();
      const double spent = std::chrono::duration<double, std::milli>(job->admitted - job->arrived()).count();
      // The wait for an executor: none when one is idle, else the earliest estimated end; the
      // items ahead are shared by the executors.
      double left = 0;
      if (busy_ >= opt_.executors) {
        auto first = SteadyClock::time_point::max();
        for (const auto& end : batch_end_estimate_)
          if (end != SteadyClock::time_point::min()) first = std::min(first, end);
        if (first != SteadyClock::time_point::max())
          left = std::max(0.0, std::chrono::duration<double, std::milli>(first - now).count());
      }
      const int64_t ahead = q.items / opt_.executors;
      if (per_item > 0 &&
          slo_estimated_latency_ms(spent, left, ahead, job->items, per_item) > factor * opt_.slo_p99_ms) {
        ++shed_since_[name];
        return Admit::Shed;
      }
    }
    q.jobs.push_back(job);
    q.items += job->items;
    publish_depth(job->model->name, q);
    if (job->on_done && job->deadline < watch_next_) watch_cv_.notify_one();
  }
  cv_.notify_one();
  return Admit::Ok;
}

void Scheduler::watch() {
  // A tick every 20 ms (or sooner for an earlier deadline): woken by submit() only for a job
  // whose deadline comes before the next tick, so a busy queue costs it no wake-ups.
  using namespace std::chrono_literals;
  std::unique_lock<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<Job>> late, ask;  // past their deadlines; to ask client_left()
  while (!stop_) {
    const auto now = SteadyClock::now();
    late.clear(), ask.clear();
    watch_next_ = now + 20ms;
    for (auto& [name, q] : queues_)
      for (const auto& j : q.jobs) {
        if (!j->on_done || j->state.load() != Job::Queued) continue;
        if (j->deadline <= now)
          late.push_back(j);
        else if (j->client_left && now - j->admitted >= 50ms)
          ask.push_back(j);
        if (j->deadline > now) watch_next_ = std::min(watch_next_, j->deadline);
      }
    if (!late.empty() || !ask.empty()) {
      lock.unlock();  // the answers are written outside the lock (on_done replies)
      for (const auto& j : late)
        if (j->cancel()) j->finish(504, "deadline exceeded before the request could start");
      for (const auto& j : ask)
        if (j->client_left() && j->cancel()) j->finish(499, "the client closed the connection while queued");
      lock.lock();
    }
    if (!stop_) watch_cv_.wait_until(lock, watch_next_);
  }
}

bool Scheduler::drain(std::chrono::milliseconds timeout) {
  draining_ = true;
  cv_.notify_all();
  const auto until = SteadyClock::now() + timeout;
  std::unique_lock<std::mutex> lock(mu_);
  const auto idle = [&] {
    if (busy_ > 0) return false;
    for (const auto& [name, q] : queues_)
      for (const auto& j : q.jobs)
        if (j->state.load() == Job::Queued) return false;
    return true;
  };
  while (!idle()) {
    if (SteadyClock::now() >= until) return false;
    idle_cv_.wait_for(lock, std::chrono::milliseconds(5));
  }
  return true;
}

void Scheduler::loop(size_t worker) {
  std::unique_lock<std::mutex> lock(mu_);
  const auto delay = std::chrono::duration_cast<SteadyClock::duration>(
      std::chrono::duration<double, std::milli>(opt_.max_queue_delay_ms));
  const auto busy_delay = std::max(delay, std::chrono::duration_cast<SteadyClock::duration>(
                                              std::chrono::duration<double, std::milli>(opt_.busy_queue_delay_ms)));
  while (!stop_) {
    // Drop cancelled heads; pick the queue whose head has waited longest, among those whose
    // model has a free replica (another executor may be running the rest).
    Queue* best = nullptr;
    std::string best_name;
    bool waiting = false;  // jobs queued for a model with no free replica
    for (auto& [name, q] : queues_) {
      while (!q.jobs.empty() && q.jobs.front()->state.load() != Job::Queued) {  // cancelled or ended
        q.items -= q.jobs.front()->items;
        q.jobs.pop_front();
        publish_depth(name, q);
      }
      if (q.jobs.empty()) continue;
      if (free_replica(*q.jobs.front(), nullptr) < 0) {
        waiting = true;
        continue;
      }
      if (!best || q.jobs.front()->admitted < best->jobs.front()->admitted) best = &q, best_name = name;
    }
    if (!best) {
      if (!waiting && busy_ == 0) idle_cv_.notify_all();
      cv_.wait_for(lock, std::chrono::milliseconds(50));
      continue;
    }
    const auto now = SteadyClock::now();
    const std::shared_ptr<Job> head = best->jobs.front();
    // Under an SLO an image batch runs on the controller's rung, capped by its compute estimate.
    int rung = 0;
    int64_t max_items = opt_.max_batch;
    if (opt_.slo_p99_ms > 0 && !head->run_alone && head->model->kind == ModelKind::Image) {
      // The head's wait beyond the delay it was told to wait for company.
      const double waited = std::chrono::duration<double, std::milli>(now - head->admitted).count();
      rung = slo_rung(*head->model, now, std::max(0.0, waited - opt_.max_queue_delay_ms));
      max_items = slo_batch_cap(opt_.slo_p99_ms, opt_.slo_batch_share, per_item_ms(best_name, rung), opt_.max_batch);
    }
    const auto ready_at = head->admitted + (busy_ > 0 ? busy_delay : delay);
    if (best->items < max_items && now < ready_at && !draining_) {
      cv_.wait_until(lock, ready_at);
      continue;
    }
    // Its threads: an executor's share, or every compute thread for a model with fewer replicas
    // than executors (text, seq2seq, recsys) and for explanations, which then wait until the
    // running batches are done (the oldest head goes first: no other batch starts meanwhile).
    const int budget = opt_.executors * opt_.executor_threads;
    const bool wide = opt_.executor_threads > 0 && opt_.executors > 1 &&
                      (head->run_alone || head->model->replicas() < opt_.executors);
    const int threads = opt_.executor_threads == 0 ? num_threads() : wide ? budget : opt_.executor_threads;
    if (opt_.executor_threads > 0 && threads_busy_ + threads > budget) {
      cv_.wait_for(lock, std::chrono::milliseconds(50));
      continue;
    }
    // Several executors free: this one takes its share of the queue, the others the rest.
    int free_replicas = 0;
    const int replica = free_replica(*head, &free_replicas);
    const int share = wide ? 1 : std::min(opt_.executors - busy_, free_replicas);
    if (share > 1) max_items = std::max<int64_t>(1, std::min(max_items, (best->items + share - 1) / share));
    // Take the head's companions, in order, up to max_items.
    std::vector<std::shared_ptr<Job>> batch;
    int64_t items = 0;
    for (auto it = best->jobs.begin(); it != best->jobs.end();) {
      Job& j = **it;
      const bool same = j.model == head->model && j.batch_key == head->batch_key && !j.run_alone &&
                        !head->run_alone;
      if (&j != head.get() && (!same || items + j.items > max_items)) {
        if (items >= max_items) break;
        ++it;
        continue;
      }
      std::shared_ptr<Job> taken = *it;
      best->items -= j.items;
      it = best->jobs.erase(it);
      if (taken->deadline <= now) {
        if (taken->cancel()) taken->finish(504, "deadline exceeded before the request could start");  // counted by its answer
        if (taken.get() == head.get()) break;
        continue;
      }
      int q = Job::Queued;
      if (!taken->state.compare_exchange_strong(q, Job::Running)) continue;  // cancelled meanwhile
      taken->started = now;  // the moment it was taken, before its deadline
      items += taken->items;
      batch.push_back(std::move(taken));
      if (head->run_alone) break;
    }
    publish_depth(best_name, *best);
    if (batch.empty()) continue;
    if (!best->jobs.empty() && opt_.executors > 1) cv_.notify_one();  // the rest, for another executor
    ++busy_;
    threads_busy_ += threads;
    peak_batches_ = std::max(peak_batches_, busy_);
    peak_threads_ = std::max(peak_threads_, threads_busy_);
    replicas_busy_[head->model.get()] |= 1u << replica;
    const double estimate = double(items) * per_item_ms(best_name, rung);
    batch_end_estimate_[worker] = estimate > 0 ? now + std::chrono::duration_cast<SteadyClock::duration>(
                                                           std::chrono::duration<double, std::milli>(estimate))
                                               : SteadyClock::time_point::min();
    lock.unlock();
    run_batch(batch, rung, replica, threads);
    lock.lock();
    --busy_;
    threads_busy_ -= threads;
    if (auto r = replicas_busy_.find(head->model.get()); r != replicas_busy_.end() &&
                                                         (r->second &= ~(1u << replica)) == 0)
      replicas_busy_.erase(r);
    batch_end_estimate_[worker] = SteadyClock::time_point::min();
    if (opt_.executors > 1) cv_.notify_all();  // a replica is free again
    idle_cv_.notify_all();
  }
}

double Scheduler::per_item_ms(const std::string& model, int rung) const {
  const auto it = ms_per_item_.find(model);
  return it == ms_per_item_.end() || size_t(rung) >= it->second.size() ? 0 : it->second[size_t(rung)];
}

void Scheduler::run_batch(std::vector<std::shared_ptr<Job>>& batch, int rung, int replica, int threads) {
  std::optional<ScopedThreads> scope;  // several executors: each batch on its share of the cores
  if (opt_.executor_threads > 0) scope.emplace(threads);
  const auto start = SteadyClock::now();
  int64_t items = 0;
  for (auto& j : batch) items += j->items;
  const ServedModel& m = *batch.front()->model;
  for (auto& j : batch) j->batch_items = items;
  try {
    if (batch.front()->run_alone) {
      batch.front()->run_alone(*batch.front());
    } else if (m.kind == ModelKind::Image) {
      const Tensor& p0 = batch.front()->pixels;
      const int64_t C = p0.size(1), S = p0.size(2), D = C * S * S;
      Tensor all = Tensor::empty({items, C, S, S});  // (items, C, S, S)
      int64_t row = 0;
      for (auto& j : batch) {
        const Tensor x = j->pixels.contiguous();
        std::copy(x.data<float>(), x.data<float>() + j->items * D, all.data<float>() + row * D);
        row += j->items;
      }
      const Tensor probs = m.image_rung(rung, replica).probabilities(all);  // (items, K)
      const int64_t K = probs.size(1);
      row = 0;
      for (auto& j : batch) {
        Tensor out = Tensor::empty({j->items, K});  // (n, K)
        std::copy(probs.data<float>() + row * K, probs.data<float>() + (row + j->items) * K,
                  out.data<float>());
        j->probs = out;
        row += j->items;
      }
    } else if (m.kind == ModelKind::Text) {
      std::vector<std::string> texts;
      for (auto& j : batch) texts.insert(texts.end(), j->texts.begin(), j->texts.end());
      std::vector<TextPrediction> out = m.text->predict(texts);
      size_t at = 0;
      for (auto& j : batch) {
        j->text_predictions.assign(std::make_move_iterator(out.begin() + at),
                                   std::make_move_iterator(out.begin() + at + j->texts.size()));
        at += j->texts.size();
      }
    } else {
      std::vector<std::string> texts;
      std::vector<std::vector<int64_t>> sources;
      for (auto& j : batch) {
        texts.insert(texts.end(), j->texts.begin(), j->texts.end());
        sources.insert(sources.end(), j->sources.begin(), j->sources.end());
      }
      std::vector<Translation> out = m.translator->translate_encoded(texts, sources, batch.front()->search);
      size_t at = 0;
      for (auto& j : batch) {
        j->translations.assign(std::make_move_iterator(out.begin() + at),
                               std::make_move_iterator(out.begin() + at + j->texts.size()));
        at += j->texts.size();
      }
    }
  } catch (const InputError& e) {
    // One job's bad input must not fail the others: rerun each alone to find it.
    if (batch.size() > 1) {
      for (auto& j : batch) {
        std::vector<std::shared_ptr<Job>> one{j};
        run_batch(one, rung, replica, threads);
      }
      return;
    }
    batch.front()->finish(400, e.what());
    return;
  } catch (const ValueError& e) {
    for (auto& j : batch) j->finish(400, e.what());
    return;
  } catch (const std::exception& e) {
    for (auto& j : batch) j->finish(500, fmt::format("internal error: {}", e.what()));
    return;
  }
  const double compute = std::chrono::duration<double>(SteadyClock::now() - start).count();
  if (opt_.slo_p99_ms > 0 && !batch.front()->run_alone && items > 0) {  // the SLO's estimates
    std::lock_guard<std::mutex> lock(mu_);
    const double per_item = 1000.0 * compute / double(items);
    std::vector<double>& by_rung = ms_per_item_[m.name];
    if (by_rung.size() <= size_t(rung)) by_rung.resize(size_t(rung) + 1, 0.0);
    double& est = by_rung[size_t(rung)];
    est = est > 0 ? 0.8 * est + 0.2 * per_item : per_item;
    rung_now_[m.name] = rung;
  }
  if (metrics_) {
    metrics_->observe_batch(m.name, items);
    for (auto& j : batch) {
      metrics_->observe_compute(m.name, compute);
      metrics_->observe_queue(m.name, std::chrono::duration<double>(start - j->admitted).count());
    }
  }
  const auto end = SteadyClock::now();
  for (auto& j : batch) j->finish();
  if (m.kind == ModelKind::Image && !batch.front()->run_alone) slo_done(m, batch, end);
}

int Scheduler::slo_rung(const ServedModel& m, SteadyClock::time_point now, double head_wait_ms) {
  if (opt_.slo_p99_ms <= 0 || m.rungs() < 2) return 0;
  auto it = slo_.find(m.name);
  if (it == slo_.end())
    it = slo_.emplace(m.name, SloController(SloOptions{.p99_ms = opt_.slo_p99_ms, .rungs = m.rungs(),
                                                       .window_s = opt_.slo_window_ms / 1000.0})).first;
  const double t = std::chrono::duration<double>(now - t0_).count();
  if (auto s = shed_since_.find(m.name); s != shed_since_.end() && s->second > 0)  // under mu_ (loop)
    it->second.shed(t, std::exchange(s->second, 0));
  return std::min(it->second.level(t, head_wait_ms), m.rungs() - 1);
}

void Scheduler::slo_done(const ServedModel& m, const std::vector<std::shared_ptr<Job>>& batch,
                         SteadyClock::time_point end) {
  std::unique_lock<std::mutex> lock(mu_);
  auto it = slo_.find(m.name);
  if (it == slo_.end()) return;
  SloController& c = it->second;
  const double now = std::chrono::duration<double>(end - t0_).count();
  for (const auto& j : batch)
    if (j->status == 0) c.observe(now, std::chrono::duration<double, std::milli>(end - j->arrived()).count());
  const int rung = std::min(c.level(now), m.rungs() - 1);
  double shed = opt_.slo_shed_at;
  int64_t cap = opt_.max_batch;
  {  // AIMD on the shedding factor, once per closed window with requests
    auto [f, fresh] = shed_factor_.emplace(m.name, opt_.slo_shed_at);
    int64_t& seen = slo_windows_seen_[m.name];
    if (c.stats().windows > seen) {
      seen = c.stats().windows;
      if (c.stats().last_p99_ms > opt_.slo_p99_ms)
        f->second = std::max(0.02, f->second * 0.5);
      else if (c.stats().last_p99_ms < 0.6 * opt_.slo_p99_ms)
        f->second = std::min(opt_.slo_shed_at, f->second + 0.05);
    }
    shed = f->second;
    cap = slo_batch_cap(opt_.slo_p99_ms, opt_.slo_batch_share, per_item_ms(m.name, rung), opt_.max_batch);
  }
  if (!metrics_) return;
  Metrics::SloGauges g;
  g.rung = rung;
  for (int k = 0; k < m.rungs(); ++k)
    g.ladder.push_back(size_t(k) < opt_.slo_ladder.size() ? opt_.slo_ladder[size_t(k)] : m.image_rung(k).weights());
  g.variant = g.ladder[size_t(rung)];
  g.accuracy = size_t(rung) < opt_.slo_accuracy.size() ? opt_.slo_accuracy[size_t(rung)] : -1;
  g.target_ms = opt_.slo_p99_ms;
  g.windows = c.stats().windows;
  g.windows_met = c.stats().windows_met;
  g.steps_down = c.stats().steps_down;
  g.steps_up = c.stats().steps_up;
  g.last_p99_ms = c.stats().last_p99_ms;
  g.shed_factor = shed;
  g.batch_cap = cap;
  metrics_->set_slo(m.name, g);
}

}  // namespace focus
