// A discrete-event replay of a labelled stream through the capacity router (capacity.hpp): items
// arrive at given times, the controller routes each, deferred and audited items wait in the
// bounded ReviewQueue, and one reviewer pool answers them at a fixed pace (3600 / C seconds an
// item, one at a time, idle while the queue is empty). Every item ends in exactly one state:
//   accepted   answered by the model
//   reviewed   answered by a reviewer (deferred or audited)
//   overflow   deferred but pushed out of the full queue: answered by the model and flagged
//   pending    still queued when the stream ends: answered by the model (provisional)
// so accepted + reviewed + overflow + pending == items (nothing is lost). Pure: no I/O.
//
//   std::vector<StreamItem> items = ...;  // times, scores, priorities, right/wrong per answer
//   const CapacitySimResult r = simulate_capacity(items, {.capacity_per_hour = 100, .queue_cap = 50});
#pragma once
#include <cstdint>
#include <vector>

#include "focus/review/capacity.hpp"

namespace focus::review {

struct StreamItem {
  double time_s = 0;          // arrival (non-decreasing along the stream)
  double score = 0;           // error score (routing)
  double priority = 0;        // queue priority (p(error) x cost)
  bool model_right = false;   // the model's answer is right
  bool reviewer_right = false;  // the reviewer's answer would be right
};

struct SimWindow {
  double t0 = 0, t1 = 0;  // seconds
  int64_t arrivals = 0, queued = 0, reviews = 0, overflow = 0, max_queue = 0;
  double threshold = 0;    // at the window's end
  double rate_estimate = 0;  // the controller's lambda at the window's end (items / hour)
  double per_hour(int64_t n) const { return t1 > t0 ? double(n) * 3600 / (t1 - t0) : 0; }
};

struct CapacitySimResult {
  int64_t items = 0, accepted = 0, deferred = 0, audited = 0;  // routing decisions
  int64_t reviewed = 0, overflow = 0, pending = 0;             // how queued items ended
  int64_t right = 0;              // answers right in the end (model or reviewer)
  int64_t auto_accepted_wrong = 0;  // errors among items the model answered unflagged (truth)
  int64_t max_queue = 0;
  // Model errors found by audits, judged against the reviewer's answer: the model's error with a
  // perfect reviewer; with an imperfect one, a wrong reviewer answer counts as a disagreement.
  AuditEstimate audit;
  std::vector<SimWindow> windows;
  double accuracy() const { return items ? double(right) / double(items) : 0; }
  double auto_accepted_error() const {
    return accepted ? double(auto_accepted_wrong) / double(accepted) : 0;
  }
};

// window_s: length of the reporting windows. ValueError for window_s <= 0 or arrival times that
// go back.
CapacitySimResult simulate_capacity(const std::vector<StreamItem>& items, const CapacityOptions& opt,
                                    double window_s = 1800);

}  // namespace focus::review
