// The review queue's endpoints (docs/SERVING.md, docs/REVIEW.md), present when the server runs
// with --review-store:
//   GET  /v1/review/tickets/{id}          role infer: a deferred classification's state and,
//                                          once a reviewer answered, the final label
//   POST /v1/review/next                  role review: claims the next item (204 when none)
//   POST /v1/review/items/{id}/label      role review: {"label": NAME} (409 when another label
//                                          is recorded, 400 for a name the model lacks)
//   POST /v1/review/items/{id}/skip       role review: returns the claim to the queue
//   POST /v1/review/items/{id}/undo       role review: takes back the key's own label (within
//                                          --review-undo-window-ms; 409 otherwise): the item,
//                                          claimed again, as /next shows it
//   GET  /v1/review/stats                 role review or metrics: counts, age, pace, threshold
//   GET  /review, /review/app.js, /review/app.css   the reviewer page (no key: it asks for one)
// The reviewer is the key's id. Store calls block (disk, network): these run on handler threads.
#include <cstdlib>

#include "focus/serve/server_impl.hpp"

namespace focus {
namespace {

int64_t item_id(const std::string& s) {
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end || v < 1) throw RequestError(400, fmt::format("'{}' is not an item id", s));
  return v;
}

}  // namespace

void Server::Impl::review_routes() {
  const auto add = [this](const char* method, std::string pattern, std::function<void(Ctx&)> fn) {
    route_table.push_back({method, {std::move(pattern)}, 0, std::move(fn)});
  };
  // The key's id (the reviewer), after checking it holds one of `roles`; "" after answering.
  const auto reviewer_of = [this](Ctx& c, unsigned roles) -> std::string {
    return authorize(c, roles) ? c.rec.key : std::string();
  };
  add("GET", "/v1/review/tickets/*", [this, reviewer_of](Ctx& c) {
    if (reviewer_of(c, kRoleInfer).empty()) return;
    const int64_t id = item_id(c.req.matches[1]);
    if (auto t = review->ticket(id))
      reply(c, 200, *t);
    else
      refuse(c, 404, "not_found", fmt::format("no ticket {}", id));
  });
  add("POST", "/v1/review/next", [this, reviewer_of](Ctx& c) {
    const std::string who = reviewer_of(c, kRoleReview);
    if (who.empty()) return;
    if (auto item = review->claim(who))
      reply(c, 200, *item);
    else
      finish(c, 204, "", "application/json");
  });
  add("POST", "/v1/review/items/*/label", [this, reviewer_of](Ctx& c) {
    const std::string who = reviewer_of(c, kRoleReview);
    if (who.empty()) return;
    const int64_t id = item_id(c.req.matches[1]);
    const json j = json::parse(c.req.body, nullptr, false);
    if (!j.is_object() || !j.contains("label") || !j["label"].is_string())
      throw RequestError(400, "the body must be JSON {\"label\": \"CLASS NAME\"}");
    try {
      const bool recorded = review->label(id, who, j["label"].get<std::string>());
      reply(c, 200, {{"id", id}, {"label", j["label"]}, {"recorded", recorded}});
    } catch (const review::QueueConflictError& e) {
      refuse(c, 409, "conflict", e.what());
    }
  });
  add("POST", "/v1/review/items/*/skip", [this, reviewer_of](Ctx& c) {
    const std::string who = reviewer_of(c, kRoleReview);
    if (who.empty()) return;
    const int64_t id = item_id(c.req.matches[1]);
    reply(c, 200, {{"id", id}, {"released", review->skip(id, who)}});
  });
  add("POST", "/v1/review/items/*/undo", [this, reviewer_of](Ctx& c) {
    const std::string who = reviewer_of(c, kRoleReview);
    if (who.empty()) return;
    const int64_t id = item_id(c.req.matches[1]);
    try {
      reply(c, 200, review->undo(id, who));
    } catch (const review::QueueConflictError& e) {
      refuse(c, 409, "conflict", e.what());
    }
  });
  add("GET", "/v1/review/stats", [this, reviewer_of](Ctx& c) {
    if (reviewer_of(c, kRoleReview | kRoleMetrics).empty()) return;
    reply(c, 200, review->stats());
  });
  const auto page = [this](const char* type, const std::string& body) {
    return [this, type, &body](Ctx& c) {
      c.res.set_header("Content-Security-Policy", reviewer_page_csp());
      c.res.set_header("X-Content-Type-Options", "nosniff");
      c.res.set_header("Referrer-Policy", "no-referrer");
      c.res.set_header("Cache-Control", "no-store");
      finish(c, 200, body, type);
    };
  };
  add("GET", "/review", page("text/html; charset=utf-8", reviewer_page_html()));
  add("GET", "/review/app.js", page("text/javascript; charset=utf-8", reviewer_page_js()));
  add("GET", "/review/app.css", page("text/css; charset=utf-8", reviewer_page_css()));
}

}  // namespace focus
