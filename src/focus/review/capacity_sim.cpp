// The capacity-router replay (see capacity_sim.hpp).
#include "focus/review/capacity_sim.hpp"

#include <algorithm>
#include <cmath>

#include "focus/tensor/error.hpp"

namespace focus::review {

CapacitySimResult simulate_capacity(const std::vector<StreamItem>& items, const CapacityOptions& opt,
                                    double window_s) {
  FOCUS_CHECK(window_s > 0, ValueError, "simulate_capacity: window {} s must be positive", window_s);
  CapacityController ctl(opt);
  ReviewQueue queue(opt.queue_cap);
  CapacitySimResult r;
  r.items = int64_t(items.size());
  const double service_s = 3600 / opt.capacity_per_hour;
  double free_at = items.empty() ? 0 : items.front().time_s;  // the reviewers' next free moment
  std::vector<double> audit_p(items.size(), 1.0);  // the probability each audit was drawn with
  SimWindow w;
  w.t0 = free_at;
  w.t1 = w.t0 + window_s;
  auto review = [&](const QueuedItem& q) {
    const StreamItem& it = items[size_t(q.id)];
    ++r.reviewed;
    ++w.reviews;
    r.right += it.reviewer_right ? 1 : 0;
    if (q.audit) r.audit.add(!(it.model_right && it.reviewer_right), 1 / audit_p[size_t(q.id)]);
  };
  // Reviews finished up to time t: the reviewers take the best queued item whenever free.
  auto serve_until = [&](double t) {
    while (!queue.empty() && free_at <= t) {
      const QueuedItem q = *queue.pop();
      free_at = std::max(free_at, q.enqueued_s) + service_s;
      review(q);
    }
    if (queue.empty()) free_at = std::max(free_at, t);  // idle reviewers start on the next arrival
  };
  auto model_answers = [&](const StreamItem& it) { r.right += it.model_right ? 1 : 0; };
  for (size_t i = 0; i < items.size(); ++i) {
    const StreamItem& it = items[i];
    while (it.time_s >= w.t1) {  // close the windows that ended before this arrival
      w.threshold = ctl.threshold();
      w.rate_estimate = ctl.arrival_rate_per_hour();
      r.windows.push_back(w);
      w = SimWindow{};
      w.t0 = r.windows.back().t1;
      w.t1 = w.t0 + window_s;
    }
    serve_until(it.time_s);
    ++w.arrivals;
    const Route route = ctl.route(it.time_s, it.score, queue.size());
    if (route == Route::Accept) {
      ++r.accepted;
      model_answers(it);
      r.auto_accepted_wrong += it.model_right ? 0 : 1;
    } else {
      (route == Route::Audit ? r.audited : r.deferred) += 1;
      if (route == Route::Audit) audit_p[i] = ctl.audit_probability();
      ++w.queued;
      const auto out = queue.push({int64_t(i), route == Route::Audit ? 0.0 : it.priority, it.time_s,
                                   route == Route::Audit});
      if (out) {  // answered by the model and flagged, never dropped
        ++r.overflow;
        ++w.overflow;
        model_answers(items[size_t(out->id)]);
      }
    }
    w.max_queue = std::max(w.max_queue, queue.size());
    r.max_queue = std::max(r.max_queue, queue.size());
  }
  if (!items.empty()) {
    w.t1 = std::min(w.t1, items.back().time_s);
    w.threshold = ctl.threshold();
    w.rate_estimate = ctl.arrival_rate_per_hour();
    if (w.arrivals > 0) r.windows.push_back(w);
  }
  // The stream ends: what is still queued is answered by the model, provisionally.
  while (auto q = queue.pop()) {
    ++r.pending;
    model_answers(items[size_t(q->id)]);
  }
  return r;
}

}  // namespace focus::review
