// The server's side of the human review queue (docs/REVIEW.md, "In the server"): which
// classified images go to people, their tickets, and what the reviewers' endpoints do. The queue
// itself is a review::QueueStore (SQLite or PostgreSQL, durable); the routing is review/'s:
//   - a fixed threshold on the error score (1 - calibrated max probability): defer above it; or
//   - a capacity (--review-capacity-per-hour C): review::CapacityController moves the threshold
//     so the inflow matches what the reviewers answer, the queue pulling it toward half its cap;
//   - audits: a random share of the would-be-accepted also goes to review, so the error of what
//     the model answered alone is estimated without bias (metric focus_review_audit_labels_total);
//   - a full queue (--review-queue-cap items waiting): the model answers, flagged
//     "review": "queue_full", never dropped.
// Every call that touches the store runs on a handler thread (the store's calls block on disk
// or network); one mutex serialises them, as a store holds one connection.
//
//   ReviewDesk desk(options, &metrics);
//   ReviewDesk::Routed r = desk.route(model, version, request_id, {png, "image/png"}, probs, class_names);
//   if (r.ticket) answer {"status": "pending_review", "ticket": r.ticket, ...}
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "focus/review/capacity.hpp"
#include "focus/review/queue_store.hpp"
#include "focus/serve/metrics.hpp"
#include "focus/serve/review_webhook.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {

struct ReviewDeskOptions {
  std::string store;              // queue URL (sqlite:///path.db, postgresql://...); "" = no review
  double threshold = 0.2;         // fixed routing: defer when the error score is above it
  double capacity_per_hour = 0;   // > 0: the capacity controller sets the threshold instead
  int64_t queue_cap = 1000;       // items waiting at most
  double audit_share = 0;         // share of the would-be-accepted sent to review as audits
  int64_t lease_ms = 300000;      // how long a reviewer's claim holds
  int64_t undo_window_ms = 600000;  // how long a reviewer may take back their own label
  int64_t ttl_ms = 0;             // > 0: an item unlabelled this long expires (the model's answer stands)
  std::string webhook;            // "" or http://HOST[:PORT]/PATH: closed tickets are POSTed there
  std::string webhook_secret;     // sent as Authorization: Bearer
  uint64_t seed = 0;              // audit draws
};

class ReviewDesk {
 public:
  // Opens the store (QueueStoreError, ValueError naming the URL or option).
  ReviewDesk(const ReviewDeskOptions& opt, Metrics* metrics);

  enum class Decision { Model, Review, Audit, QueueFull };
  struct Routed {
    Decision decision = Decision::Model;
    int64_t ticket = 0;   // the queue item's id when queued
    double score = 0;     // the error score
  };
  // What was classified: an image (PNG bytes, "image/png") or a text ("text/plain; charset=utf-8").
  struct Input {
    const std::string& bytes;
    const char* content_type;
  };
  // Routes one classified input (calibrated probabilities `probs` over `class_names`); queues it
  // (idempotently by request_id) when it goes to people, with the JSON `evidence()` returns (the
  // explanation the reviewer page shows: {"method", "png"}; called only for a queued item, outside
  // the desk's lock; null or a throw = queued without it).
  using Evidence = std::function<nlohmann::json()>;
  Routed route(const std::string& model, const std::string& version, const std::string& request_id,
               const Input& input, std::span<const float> probs,
               const std::vector<std::string>& class_names, const Evidence& evidence = {});

  // A ticket's state: {"ticket", "status": pending_review | done, "provisional", "label",
  // "decided_by"}; nullopt for an unknown ticket.
  std::optional<nlohmann::json> ticket(int64_t id);
  // The next item for `reviewer` (claimed for lease_ms), as the reviewer page shows it; nullopt
  // when none waits.
  std::optional<nlohmann::json> claim(const std::string& reviewer);
  // Records a label (true) or a repeat of the same label (false); QueueConflictError when another
  // label is recorded, ValueError for an unknown item or a label the model does not have.
  bool label(int64_t id, const std::string& reviewer, const std::string& label);
  bool skip(int64_t id, const std::string& reviewer);  // returns the claim to the queue
  // Takes back `reviewer`'s own label given less than undo_window_ms ago: the item, claimed by
  // the reviewer again, as claim() shows it (the ticket is pending again). QueueConflictError
  // naming why not; ValueError for an unknown item.
  nlohmann::json undo(int64_t id, const std::string& reviewer);
  nlohmann::json stats();
  void refresh_metrics();  // the queue gauges, from the store (called when /metrics is read)

 private:
  ReviewDeskOptions opt_;
  Metrics* metrics_;
  std::mutex mu_;
  std::unique_ptr<review::QueueStore> store_;
  std::unique_ptr<review::CapacityController> controller_;
  std::unique_ptr<Webhook> webhook_;  // closed tickets go out here (when --review-webhook is set)
  Rng rng_;
  nlohmann::json view(const review::QueueItem& it);  // an item as the reviewer page shows it (lock held)
  static nlohmann::json ticket_json(const review::QueueItem& it);  // a ticket's state
  int64_t waiting_ = 0;         // the store's waiting count, refreshed now and then
  double waiting_checked_ = -1;  // when (seconds since start)
  double t0_;
};

// A fresh idempotency key for a queued item (32 hex digits from the system's random source).
std::string random_request_id();

// The reviewer page, GET /review (reviewer_page.cpp): an HTML file, its script and its style,
// served under a strict Content-Security-Policy (nothing from outside, no inline code).
const std::string& reviewer_page_html();
const std::string& reviewer_page_js();
const std::string& reviewer_page_css();
const char* reviewer_page_csp();

}  // namespace focus
