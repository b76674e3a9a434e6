// Routing under a human capacity: reviewers answer C items an hour and the review queue holds at
// most Q. Three pieces, all pure (no clock, no I/O: the caller passes the times):
//
// CapacityController decides for each arriving prediction: accept (the model answers), defer
// (to the queue), or audit (a random share `audit_share` of the would-be-accepted also goes to
// review, so the error of what is auto-accepted can be estimated without bias). It keeps the
// queue's inflow at the reviewers' pace as traffic changes:
//   - the arrival rate lambda is estimated online (exponentially decayed count, time constant
//     rate_window_s, corrected for the start);
//   - the inflow target is C (1 + gain (Q/2 - L) / Q), L the queue length now: C when the queue
//     sits at half its cap, more when it runs empty, less when it fills;
//   - the share to send is q_total = target / lambda; audits take a of the rest, so the deferred
//     share is q = (q_total - a) / (1 - a), clamped to [0, 1];
//   - the threshold is the (1 - q) quantile of the last score_window scores: defer score > t;
//   - audits never take more than half the capacity: the audit probability is
//     min(audit_share, C / (2 lambda)) (audit_probability(); AuditEstimate weighs by its inverse).
// ReviewQueue is the bounded priority queue: audits first (oldest first), then the highest
// priority; when it is full, the lowest-priority non-audit item (the new one or one already
// queued) does not fit: it is returned to the caller, to be answered by the model and flagged
// (never dropped). Audits are never pushed out (that would bias the estimate); an audit that
// finds the queue full of audits is returned like any other.
// AuditEstimate: the error among audited items with a Clopper-Pearson interval. Audits are a
// uniform sample of the would-be-accepted at every moment, drawn with a known probability, so
// the inverse-probability-weighted estimate is unbiased (as a ratio estimator: consistent) for
// the error of everything that was auto-accepted.
//
//   CapacityController ctl({.capacity_per_hour = 100, .queue_cap = 50, .audit_share = 0.02});
//   ReviewQueue queue(50);
//   Route r = ctl.route(t, score, queue.size());
//   if (r != Route::Accept) if (auto out = queue.push({id, prio, t, r == Route::Audit})) flag(*out);
#pragma once
#include <cstdint>
#include <deque>
#include <optional>
#include <map>
#include <utility>
#include <vector>

#include "focus/tensor/rng.hpp"

namespace focus::review {

struct CapacityOptions {
  double capacity_per_hour = 100;  // C: items the reviewers answer per hour
  int64_t queue_cap = 50;          // Q: items the queue holds
  double audit_share = 0;          // a: share of would-be-accepted items sent to review as audits
  double rate_window_s = 900;      // time constant of the arrival-rate estimate
  int64_t score_window = 1000;     // recent scores whose quantile is the threshold
  double queue_gain = 0.5;         // pull of the queue length on the inflow target
  uint64_t seed = 0;               // audit draws
};

enum class Route { Accept, Defer, Audit };

class CapacityController {
 public:
  // ValueError for C <= 0, Q < 1, audit_share outside [0, 1), rate_window_s <= 0,
  // score_window < 1 or queue_gain < 0.
  explicit CapacityController(const CapacityOptions& opt);
  // One arrival at time_s (seconds, non-decreasing: ValueError otherwise) with its error score,
  // the queue holding queue_length items.
  Route route(double time_s, double score, int64_t queue_length);

  double threshold() const { return threshold_; }          // defer score > threshold
  double arrival_rate_per_hour() const { return rate_ * 3600; }
  double deferral_share() const { return share_; }         // q of the latest decision
  double audit_probability() const { return audit_p_; }    // of the latest decision
  const CapacityOptions& options() const { return opt_; }

 private:
  CapacityOptions opt_;
  Rng rng_;
  double decayed_ = 0, first_t_ = 0, last_t_ = 0, rate_ = 0, share_ = 0, audit_p_ = 0;
  double threshold_ = 1e300;
  bool started_ = false;
  std::deque<double> window_;
  std::vector<double> sorted_;
};

struct QueuedItem {
  int64_t id = 0;
  double priority = 0;  // higher = reviewed sooner
  double enqueued_s = 0;
  bool audit = false;
};

class ReviewQueue {
 public:
  explicit ReviewQueue(int64_t cap);  // ValueError for cap < 1
  // Adds `item`; returns the item that does not fit (see the header) or nothing.
  std::optional<QueuedItem> push(const QueuedItem& item);
  // The next item to review (audits first, then the highest priority), or nothing when empty.
  std::optional<QueuedItem> pop();
  int64_t size() const { return int64_t(audits_.size() + items_.size()); }
  int64_t capacity() const { return cap_; }
  bool empty() const { return size() == 0; }

 private:
  int64_t cap_;
  std::deque<QueuedItem> audits_;
  // Keyed (priority, -id): begin() is the lowest priority (the newest of equals), rbegin() the
  // highest (the oldest of equals).
  std::map<std::pair<double, int64_t>, QueuedItem> items_;
};

class AuditEstimate {
 public:
  // One reviewed audit; weight = 1 / the audit probability it was drawn with (CapacityController::
  // audit_probability()), so a share that changed over time still weighs every period by its
  // auto-accepted volume (Horvitz-Thompson ratio estimate).
  void add(bool model_wrong, double weight = 1);
  int64_t audited() const { return n_; }
  int64_t errors() const { return errors_; }
  double estimate() const { return w_ > 0 ? w_wrong_ / w_ : 0; }
  // Clopper-Pearson interval at level 1 - alpha ({0, 1} with no audits); with unequal weights it
  // is taken at the Kish effective sample size (sum w)^2 / sum w^2, an approximation.
  std::pair<double, double> interval(double alpha = 0.05) const;

 private:
  int64_t n_ = 0, errors_ = 0;
  double w_ = 0, w2_ = 0, w_wrong_ = 0;
};

}  // namespace focus::review
