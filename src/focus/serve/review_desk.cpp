// ReviewDesk (review_desk.hpp): routing classified images to people and the reviewers' side.
#include "focus/serve/review_desk.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include <fmt/format.h>

#include "focus/io/base64.hpp"
#include "focus/review/scores.hpp"

namespace focus {

using nlohmann::json;

namespace {

double steady_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The top-3 of a probability row, as stored with the item and shown to the reviewer.
json top_of(std::span<const float> probs, const std::vector<std::string>& names, size_t k) {
  std::vector<size_t> order(probs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return probs[a] > probs[b]; });
  json top = json::array();
  for (size_t i = 0; i < std::min(k, order.size()); ++i)
    top.push_back({{"index", order[i]},
                   {"name", order[i] < names.size() ? names[order[i]] : std::to_string(order[i])},
                   {"prob", probs[order[i]]}});
  return top;
}

}  // namespace

std::string random_request_id() {
  static thread_local std::random_device rd;
  return fmt::format("{:08x}{:08x}{:08x}{:08x}", rd(), rd(), rd(), rd());
}

ReviewDesk::ReviewDesk(const ReviewDeskOptions& opt, Metrics* metrics)
    : opt_(opt), metrics_(metrics), rng_(opt.seed), t0_(steady_s()) {
  FOCUS_CHECK(opt.threshold >= 0 && opt.threshold <= 1, ValueError,
              "--review-threshold {} must be in [0, 1]", opt.threshold);
  FOCUS_CHECK(opt.capacity_per_hour >= 0, ValueError, "--review-capacity-per-hour {} must be >= 0",
              opt.capacity_per_hour);
  FOCUS_CHECK(opt.queue_cap >= 1, ValueError, "--review-queue-cap {} must be >= 1", opt.queue_cap);
  FOCUS_CHECK(opt.audit_share >= 0 && opt.audit_share < 1, ValueError,
              "--review-audit-share {} must be in [0, 1)", opt.audit_share);
  FOCUS_CHECK(opt.lease_ms > 0, ValueError, "--review-lease-ms {} must be > 0", opt.lease_ms);
  store_ = review::open_queue_store(opt.store);
  if (opt.capacity_per_hour > 0)
    controller_ = std::make_unique<review::CapacityController>(review::CapacityOptions{
        .capacity_per_hour = opt.capacity_per_hour, .queue_cap = opt.queue_cap,
        .audit_share = opt.audit_share, .seed = opt.seed});
  waiting_ = store_->counts().pending;
  refresh_metrics();
  if (!opt.webhook.empty()) webhook_ = std::make_unique<Webhook>(opt.webhook, opt.webhook_secret, metrics);
}

ReviewDesk::Routed ReviewDesk::route(const std::string& model, const std::string& version,
                                     const std::string& request_id, const Input& input,
                                     std::span<const float> probs,
                                     const std::vector<std::string>& class_names, const Evidence& evidence) {
  const std::vector<double> p(probs.begin(), probs.end());
  Routed r;
  r.score = review::error_score(p, review::ScoreKind::LeastConfidence);
  std::unique_lock<std::mutex> lock(mu_);
  const double now = steady_s() - t0_;
  if (now - waiting_checked_ > 0.2) {  // the store's count, at most 5 times a second
    waiting_ = store_->counts().pending;
    waiting_checked_ = now;
  }
  if (controller_) {
    const review::Route route = controller_->route(now, r.score, waiting_);
    r.decision = route == review::Route::Accept  ? Decision::Model
                 : route == review::Route::Audit ? Decision::Audit
                                                 : Decision::Review;
  } else {
    r.decision = r.score > opt_.threshold ? Decision::Review
                 : opt_.audit_share > 0 && rng_.uniform() < opt_.audit_share ? Decision::Audit
                                                                              : Decision::Model;
  }
  if (r.decision != Decision::Model && waiting_ >= opt_.queue_cap) r.decision = Decision::QueueFull;
  if (r.decision == Decision::Review || r.decision == Decision::Audit) {
    const bool audit = r.decision == Decision::Audit;
    const size_t best = size_t(review::predicted_class(p));
    review::NewItem item;
    item.request_id = request_id;
    item.model = model;
    item.model_version = version;
    item.content_type = input.content_type;
    item.input = input.bytes;
    item.prediction = best < class_names.size() ? class_names[best] : std::to_string(best);
    json scores = {{"top", top_of(probs, class_names, 3)}, {"score", r.score},
                   {"route", audit ? "audit" : "review"}, {"classes", class_names}};
    if (evidence) {  // the model's explanation, for the reviewer page: computed without the lock
      lock.unlock();
      try {
        json e = evidence();
        if (e.is_object()) scores["evidence"] = std::move(e);
      } catch (const std::exception& ex) {
        std::fprintf(stderr, "focus serve: review item %s queued without its explanation: %s\n",
                     request_id.c_str(), ex.what());
      }
      lock.lock();
    }
    item.scores = scores.dump();
    item.uncertainty = r.score;
    item.ttl_ms = opt_.ttl_ms;
    item.priority = audit ? 2.0 : r.score;  // audits first: they measure what the model decides alone
    const review::EnqueueResult e = store_->enqueue(item);
    r.ticket = e.id;
    if (e.created) ++waiting_;
  }
  static const char* kNames[] = {"model", "review", "audit", "queue_full"};
  metrics_->review_routed(model, kNames[int(r.decision)]);
  return r;
}

std::optional<json> ReviewDesk::ticket(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::optional<review::QueueItem> it = store_->get(id);
  if (!it) return std::nullopt;
  return ticket_json(*it);
}

json ReviewDesk::ticket_json(const review::QueueItem& item) {
  json t = {{"ticket", item.id}, {"request_id", item.data.request_id}, {"model", item.data.model},
            {"model_version", item.data.model_version}, {"provisional", item.data.prediction}};
  if (item.state == review::ItemState::Done) {
    t["status"] = "done";
    t["label"] = item.label;
    t["decided_by"] = "reviewer";
    t["agrees_with_model"] = item.label == item.data.prediction;
  } else if (item.expired(review::system_now_ms())) {  // nobody answered in time: the model's answer stands
    t["status"] = "expired";
    t["label"] = item.data.prediction;
    t["decided_by"] = "model";
  } else {
    t["status"] = "pending_review";
  }
  return t;
}

json ReviewDesk::view(const review::QueueItem& it) {
  json scores = json::parse(it.data.scores, nullptr, false);
  if (scores.is_discarded()) scores = json::object();
  const review::QueueCounts c = store_->counts();
  json v = {{"id", it.id},
            {"model", it.data.model},
            {"model_version", it.data.model_version},
            {"prediction", it.data.prediction},
            {"top", scores.value("top", json::array())},
            {"classes", scores.value("classes", json::array())},
            {"score", it.data.uncertainty},
            {"content_type", it.data.content_type},
            {"lease_until_ms", it.lease_until_ms},
            {"queue", {{"waiting", c.pending}, {"claimed", c.claimed}, {"done", c.done}}}};
  if (it.data.content_type.rfind("text/", 0) == 0)
    v["text"] = it.data.input;
  else
    v["image"] = "data:" + it.data.content_type + ";base64," + base64_encode(it.data.input);
  if (scores.contains("evidence") && scores["evidence"].is_object()) v["evidence"] = scores["evidence"];
  return v;
}

std::optional<json> ReviewDesk::claim(const std::string& reviewer) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::optional<review::QueueItem> it = store_->claim(reviewer, opt_.lease_ms);
  if (!it) return std::nullopt;
  return view(*it);
}

json ReviewDesk::undo(int64_t id, const std::string& reviewer) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::optional<review::QueueItem> before = store_->get(id);
  FOCUS_CHECK(before.has_value(), ValueError, "no review item {}", id);
  const review::QueueItem it = store_->undo_label(id, reviewer, opt_.undo_window_ms, opt_.lease_ms);
  metrics_->review_undone(it.data.model, before->label == it.data.prediction);
  json v = view(it);
  v["undone_label"] = before->label;
  return v;
}

bool ReviewDesk::label(int64_t id, const std::string& reviewer, const std::string& label) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::optional<review::QueueItem> it = store_->get(id);
  FOCUS_CHECK(it.has_value(), ValueError, "no review item {}", id);
  const json scores = json::parse(it->data.scores, nullptr, false);
  if (!scores.is_discarded() && scores.contains("classes") && scores["classes"].is_array() &&
      !scores["classes"].empty()) {
    const auto& cs = scores["classes"];
    FOCUS_CHECK(std::find(cs.begin(), cs.end(), json(label)) != cs.end(), ValueError,
                "'{}' is not a class of model '{}' (its classes: {})", label, it->data.model, cs.dump());
  }
  const bool recorded = store_->label(id, reviewer, label);
  if (recorded && webhook_) {  // the closed ticket, from the item read above (no second read)
    review::QueueItem done = *it;
    done.state = review::ItemState::Done;
    done.label = label;
    done.reviewer = reviewer;
    webhook_->post(ticket_json(done));
  }
  if (recorded) {
    const bool audit = !scores.is_discarded() && scores.value("route", "") == "audit";
    metrics_->review_labelled(it->data.model, label == it->data.prediction, audit);
  }
  return recorded;
}

bool ReviewDesk::skip(int64_t id, const std::string& reviewer) {
  std::lock_guard<std::mutex> lock(mu_);
  return store_->release(id, reviewer);
}

json ReviewDesk::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  const review::QueueCounts c = store_->counts();
  const review::QueueCapacity cap = store_->capacity();
  json s = {{"waiting", c.pending},
            {"claimed", c.claimed},
            {"done", c.done},
            {"expired", c.expired},
            {"queue_cap", opt_.queue_cap},
            {"oldest_age_s", cap.oldest_age_s},
            {"labels_last_hour", cap.labels_last_hour},
            {"backend", store_->backend()}};
  if (controller_) {
    s["capacity_per_hour"] = opt_.capacity_per_hour;
    s["threshold"] = controller_->threshold();
    s["arrival_rate_per_hour"] = controller_->arrival_rate_per_hour();
  } else {
    s["threshold"] = opt_.threshold;
  }
  return s;
}

void ReviewDesk::refresh_metrics() {
  std::lock_guard<std::mutex> lock(mu_);
  const review::QueueCounts c = store_->counts();
  const review::QueueCapacity cap = store_->capacity();
  metrics_->set_review_queue({.waiting = c.pending, .claimed = c.claimed, .queue_cap = opt_.queue_cap,
                              .oldest_age_s = cap.oldest_age_s, .labels_last_hour = cap.labels_last_hour,
                              .capacity_per_hour = opt_.capacity_per_hour,
                              .threshold = controller_ ? controller_->threshold() : opt_.threshold});
}

}  // namespace focus
