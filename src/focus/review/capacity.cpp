// Capacity-driven routing, the bounded review queue and audit estimates (see capacity.hpp).
#include "focus/review/capacity.hpp"

#include <algorithm>
#include <cmath>

#include "focus/review/risk_control.hpp"
#include "focus/tensor/error.hpp"

namespace focus::review {

CapacityController::CapacityController(const CapacityOptions& opt) : opt_(opt), rng_(opt.seed) {
  FOCUS_CHECK(opt.capacity_per_hour > 0 && std::isfinite(opt.capacity_per_hour), ValueError,
              "capacity {} items/hour must be positive", opt.capacity_per_hour);
  FOCUS_CHECK(opt.queue_cap >= 1, ValueError, "queue cap {} must be >= 1", opt.queue_cap);
  FOCUS_CHECK(opt.audit_share >= 0 && opt.audit_share < 1, ValueError, "audit share {} must be in [0, 1)",
              opt.audit_share);
  FOCUS_CHECK(opt.rate_window_s > 0, ValueError, "rate window {} s must be positive", opt.rate_window_s);
  FOCUS_CHECK(opt.score_window >= 1, ValueError, "score window {} must be >= 1", opt.score_window);
  FOCUS_CHECK(opt.queue_gain >= 0, ValueError, "queue gain {} must be >= 0", opt.queue_gain);
}

Route CapacityController::route(double t, double score, int64_t queue_length) {
  FOCUS_CHECK(std::isfinite(t) && (!started_ || t >= last_t_), ValueError,
              "capacity controller: time {} s before the previous arrival {} s", t, last_t_);
  FOCUS_CHECK(std::isfinite(score), ValueError, "capacity controller: score {}", score);
  // Arrival rate: decayed count / (tau (1 - exp(-elapsed / tau))), the start-corrected EWMA.
  const double tau = opt_.rate_window_s;
  if (!started_) {
    started_ = true;
    first_t_ = t;
  } else {
    decayed_ *= std::exp(-(t - last_t_) / tau);
  }
  decayed_ += 1;
  last_t_ = t;
  const double elapsed = t - first_t_;
  rate_ = elapsed > 0 ? decayed_ / (tau * -std::expm1(-elapsed / tau)) : 0;  // per second
  // The share to send to review.
  const double C = opt_.capacity_per_hour / 3600, Q = double(opt_.queue_cap);
  const double target = std::max(0.0, C * (1 + opt_.queue_gain * (Q / 2 - double(queue_length)) / Q));
  const double q_total = rate_ > 0 ? std::min(1.0, target / rate_) : 0;
  // Audits: at most half of the capacity.
  const double a = rate_ > 0 ? std::min(opt_.audit_share, C / (2 * rate_)) : opt_.audit_share;
  audit_p_ = a;
  share_ = std::clamp((q_total - a) / (1 - a), 0.0, 1.0);
  // Threshold: the (1 - q) quantile of the recent scores, this one included.
  window_.push_back(score);
  sorted_.insert(std::upper_bound(sorted_.begin(), sorted_.end(), score), score);
  if (int64_t(window_.size()) > opt_.score_window) {
    sorted_.erase(std::lower_bound(sorted_.begin(), sorted_.end(), window_.front()));
    window_.pop_front();
  }
  const int64_t n = int64_t(sorted_.size());
  const int64_t m = std::llround(share_ * double(n));  // how many of the window to defer
  threshold_ = m <= 0 ? 1e300 : m >= n ? -1e300 : sorted_[size_t(n - m - 1)];
  if (score > threshold_) return Route::Defer;
  if (a > 0 && rng_.uniform() < a) return Route::Audit;
  return Route::Accept;
}

ReviewQueue::ReviewQueue(int64_t cap) : cap_(cap) {
  FOCUS_CHECK(cap >= 1, ValueError, "review queue cap {} must be >= 1", cap);
}

std::optional<QueuedItem> ReviewQueue::push(const QueuedItem& item) {
  auto add = [this](const QueuedItem& it) {
    if (it.audit) audits_.push_back(it);
    else items_.emplace(std::pair{it.priority, -it.id}, it);
  };
  if (size() < cap_) {
    add(item);
    return std::nullopt;
  }
  // Full: the lowest-priority non-audit item of the queue and the new one does not fit.
  if (items_.empty()) return item;  // only audits queued
  const auto lowest = items_.begin();
  if (!item.audit && item.priority <= lowest->first.first) return item;
  const QueuedItem out = lowest->second;
  items_.erase(lowest);
  add(item);
  return out;
}

std::optional<QueuedItem> ReviewQueue::pop() {
  if (!audits_.empty()) {
    QueuedItem it = audits_.front();
    audits_.pop_front();
    return it;
  }
  if (items_.empty()) return std::nullopt;
  const auto top = std::prev(items_.end());
  const QueuedItem it = top->second;
  items_.erase(top);
  return it;
}

void AuditEstimate::add(bool model_wrong, double weight) {
  FOCUS_CHECK(std::isfinite(weight) && weight > 0, ValueError, "audit weight {} must be positive", weight);
  ++n_;
  errors_ += model_wrong ? 1 : 0;
  w_ += weight;
  w2_ += weight * weight;
  w_wrong_ += model_wrong ? weight : 0;
}

std::pair<double, double> AuditEstimate::interval(double alpha) const {
  if (n_ == 0) return {0.0, 1.0};
  const int64_t n = std::max<int64_t>(1, std::llround(w_ * w_ / w2_));  // Kish effective size
  const int64_t k = std::clamp<int64_t>(std::llround(estimate() * double(n)), 0, n);
  return {clopper_pearson_lower(k, n, alpha / 2), clopper_pearson_upper(k, n, alpha / 2)};
}

}  // namespace focus::review
