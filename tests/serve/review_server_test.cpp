// The review queue inside focus serve (--review-store): classify answers with the model's label or
// a ticket and the provisional answer; tickets turn final when a reviewer labels; the review
// role claims, labels, skips; idempotent request ids; a full queue answers by the model, flagged;
// the metrics and the reviewer page with its Content-Security-Policy.
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>

#include "focus/review/queue_store.hpp"
#include "focus/serve/review_webhook.hpp"
#include "serve/serve_fixture.hpp"
#include "support/expect_error.hpp"

namespace focus {
namespace {

using nlohmann::json;
using testing::ServeFixture;
using testing::tiny_png;

json body_of(const httplib::Result& r) { return r ? json::parse(r->body, nullptr, false) : json(); }

std::string store_url(const std::string& name) {
  return "sqlite://" + (std::filesystem::path(::testing::TempDir()) / (name + ".db")).string();
}

TEST(ServeReview, DeferredClassificationsGetTicketsThatReviewersClose) {
  const std::string url = store_url("review_flow");
  std::filesystem::remove(url.substr(9));
  ServeFixture f("review_flow", [&](ServeOptions& o) {
    o.review_store = url;
    o.review_threshold = 0;  // every classification goes to people
  });
  auto c = f.client();
  std::vector<int64_t> tickets;
  for (int i = 0; i < 3; ++i) {
    httplib::Headers h = f.auth("infer");
    h.emplace("X-Request-Id", "req-" + std::to_string(i));
    const auto r = c->Post("/v1/models/cnn/classify", h, tiny_png(10 + i), "image/png");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const json p = body_of(r)["predictions"][0];
    EXPECT_EQ(p["status"], "pending_review");
    EXPECT_EQ(p["decided_by"], "model_provisional");
    EXPECT_FALSE(p["top"].empty());
    tickets.push_back(p["ticket"].get<int64_t>());
  }
  {  // the same request id again: the same ticket, nothing new queued
    httplib::Headers h = f.auth("infer");
    h.emplace("X-Request-Id", "req-1");
    const auto r = c->Post("/v1/models/cnn/classify", h, tiny_png(11), "image/png");
    EXPECT_EQ(body_of(r)["predictions"][0]["ticket"], tickets[1]);
  }
  auto t = c->Get("/v1/review/tickets/" + std::to_string(tickets[0]), f.auth("infer"));
  ASSERT_EQ(t->status, 200) << t->body;
  EXPECT_EQ(body_of(t)["status"], "pending_review");
  EXPECT_EQ(c->Get("/v1/review/tickets/999999", f.auth("infer"))->status, 404);
  EXPECT_EQ(c->Post("/v1/review/next", f.auth("infer"), "", "application/json")->status, 403);

  // A reviewer claims the first item, labels it; a second reviewer gets the next one.
  auto n = c->Post("/v1/review/next", f.auth("review"), "", "application/json");
  ASSERT_EQ(n->status, 200) << n->body;
  const json item = body_of(n);
  EXPECT_EQ(item["image"].get<std::string>().rfind("data:image/png;base64,", 0), 0u);
  EXPECT_EQ(item["classes"].size(), 10u);
  EXPECT_EQ(item["queue"]["waiting"], 2);
  const int64_t first = item["id"].get<int64_t>();
  const std::string other = item["classes"][0] == item["prediction"] ? item["classes"][1] : item["classes"][0];
  const std::string path = "/v1/review/items/" + std::to_string(first) + "/label";
  auto l = c->Post(path, f.auth("review"), json{{"label", other}}.dump(), "application/json");
  ASSERT_EQ(l->status, 200) << l->body;
  EXPECT_EQ(body_of(l)["recorded"], true);
  l = c->Post(path, f.auth("review"), json{{"label", other}}.dump(), "application/json");
  EXPECT_EQ(body_of(l)["recorded"], false);  // the same answer again: a no-op
  l = c->Post(path, f.auth("reviewer2"), json{{"label", item["prediction"]}}.dump(), "application/json");
  EXPECT_EQ(l->status, 409) << l->body;
  l = c->Post(path, f.auth("review"), json{{"label", "NoSuchClass"}}.dump(), "application/json");
  EXPECT_EQ(l->status, 400) << l->body;
  EXPECT_EQ(c->Post(path, f.auth("review"), "{", "application/json")->status, 400);
  t = c->Get("/v1/review/tickets/" + std::to_string(first), f.auth("infer"));
  EXPECT_EQ(body_of(t)["status"], "done");
  EXPECT_EQ(body_of(t)["label"], other);
  EXPECT_EQ(body_of(t)["decided_by"], "reviewer");
  EXPECT_EQ(body_of(t)["agrees_with_model"], false);

  auto n2 = c->Post("/v1/review/next", f.auth("reviewer2"), "", "application/json");
  ASSERT_EQ(n2->status, 200);
  const int64_t second = body_of(n2)["id"].get<int64_t>();
  EXPECT_NE(second, first);
  auto s = c->Post("/v1/review/items/" + std::to_string(second) + "/skip", f.auth("reviewer2"), "", "application/json");
  EXPECT_EQ(body_of(s)["released"], true);
  // Skipped: it waits again, and the next claim (highest priority first) can be it.
  const json stats = body_of(c->Get("/v1/review/stats", f.auth("metrics")));
  EXPECT_EQ(stats["waiting"], 2);
  EXPECT_EQ(stats["done"], 1);
  EXPECT_EQ(stats["backend"], "sqlite");
  while (true) {  // the rest, by the first reviewer, with the model's answer
    auto r = c->Post("/v1/review/next", f.auth("review"), "", "application/json");
    if (r->status == 204) break;
    ASSERT_EQ(r->status, 200);
    const json it = body_of(r);
    ASSERT_EQ(c->Post("/v1/review/items/" + std::to_string(it["id"].get<int64_t>()) + "/label", f.auth("review"),
                      json{{"label", it["prediction"]}}.dump(), "application/json")->status, 200);
  }
  const std::string m = c->Get("/metrics", f.auth("metrics"))->body;
  EXPECT_NE(m.find("focus_review_routed_total{model=\"cnn\",route=\"review\"} 4"), std::string::npos) << m;
  EXPECT_NE(m.find("focus_review_labels_total{model=\"cnn\",agree=\"false\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("focus_review_labels_total{model=\"cnn\",agree=\"true\"} 2"), std::string::npos) << m;
  EXPECT_NE(m.find("focus_review_waiting 0"), std::string::npos) << m;
  f.stop();
  // Every label is in the store.
  auto store = review::open_queue_store(url);
  EXPECT_EQ(store->counts().done, 3);
  EXPECT_EQ(store->get(first)->label, other);
}

TEST(ServeReview, AReviewerUndoesTheirLastLabelAndTheTicketReopens) {
  const std::string url = store_url("review_undo");
  std::filesystem::remove(url.substr(9));
  ServeFixture f("review_undo", [&](ServeOptions& o) {
    o.review_store = url;
    o.review_threshold = 0;
  });
  auto c = f.client();
  const auto r = c->Post("/v1/models/cnn/classify", f.auth("infer"), tiny_png(3), "image/png");
  ASSERT_EQ(r->status, 200) << r->body;
  const int64_t ticket = body_of(r)["predictions"][0]["ticket"].get<int64_t>();
  const json item = body_of(c->Post("/v1/review/next", f.auth("review"), "", "application/json"));
  ASSERT_EQ(item["id"], ticket);
  // The item was queued with the model's evidence: an overlay PNG and the method that made it.
  ASSERT_TRUE(item.contains("evidence")) << item.dump();
  EXPECT_EQ(item["evidence"]["png"].get<std::string>().rfind("data:image/png;base64,", 0), 0u);
  EXPECT_GT(item["evidence"]["png"].get<std::string>().size(), 100u);
  EXPECT_FALSE(item["evidence"]["method"].get<std::string>().empty());
  const std::string id = std::to_string(ticket);
  const std::string first = item["prediction"];
  const std::string second = item["classes"][0] == first ? item["classes"][1] : item["classes"][0];
  ASSERT_EQ(c->Post("/v1/review/items/" + id + "/label", f.auth("review"), json{{"label", first}}.dump(),
                    "application/json")->status, 200);
  EXPECT_EQ(body_of(c->Get("/v1/review/tickets/" + id, f.auth("infer")))["status"], "done");
  // Another reviewer cannot take it back; an unknown item is 400.
  EXPECT_EQ(c->Post("/v1/review/items/" + id + "/undo", f.auth("reviewer2"), "", "application/json")->status, 409);
  EXPECT_EQ(c->Post("/v1/review/items/x/undo", f.auth("review"), "", "application/json")->status, 400);
  EXPECT_EQ(c->Post("/v1/review/items/" + id + "/undo", f.auth("infer"), "", "application/json")->status, 403);
  // The labeller can: the item comes back, claimed, its ticket pending again.
  auto u = c->Post("/v1/review/items/" + id + "/undo", f.auth("review"), "", "application/json");
  ASSERT_EQ(u->status, 200) << u->body;
  EXPECT_EQ(body_of(u)["id"], ticket);
  EXPECT_EQ(body_of(u)["undone_label"], first);
  EXPECT_TRUE(body_of(u).contains("evidence"));
  EXPECT_EQ(body_of(c->Get("/v1/review/tickets/" + id, f.auth("infer")))["status"], "pending_review");
  EXPECT_EQ(c->Post("/v1/review/next", f.auth("reviewer2"), "", "application/json")->status, 204);  // still claimed
  ASSERT_EQ(c->Post("/v1/review/items/" + id + "/label", f.auth("review"), json{{"label", second}}.dump(),
                    "application/json")->status, 200);
  const json t = body_of(c->Get("/v1/review/tickets/" + id, f.auth("infer")));
  EXPECT_EQ(t["label"], second);
  EXPECT_EQ(t["agrees_with_model"], false);
  const std::string m = c->Get("/metrics", f.auth("metrics"))->body;
  EXPECT_NE(m.find("focus_review_undone_total{model=\"cnn\",agree=\"true\"} 1"), std::string::npos) << m;
  f.stop();
  EXPECT_EQ(review::open_queue_store(url)->get(ticket)->label, second);
}

TEST(ServeReview, AnItemNobodyLabelsInTimeExpiresWithTheModelsAnswer) {
  const std::string url = store_url("review_ttl");
  std::filesystem::remove(url.substr(9));
  ServeFixture f("review_ttl", [&](ServeOptions& o) {
    o.review_store = url;
    o.review_threshold = 0;
    o.review_ttl_ms = 200;
    o.review_evidence = false;
  });
  auto c = f.client();
  const auto r = c->Post("/v1/models/cnn/classify", f.auth("infer"), tiny_png(8), "image/png");
  ASSERT_EQ(r->status, 200) << r->body;
  const json pred = body_of(r)["predictions"][0];
  const std::string ticket = "/v1/review/tickets/" + std::to_string(pred["ticket"].get<int64_t>());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // past the 200 ms TTL whatever the load
  const json t = body_of(c->Get(ticket, f.auth("infer")));
  EXPECT_EQ(t["status"], "expired") << t.dump();
  EXPECT_EQ(t["decided_by"], "model");
  EXPECT_EQ(t["label"], pred["top"][0]["name"]);
  EXPECT_EQ(c->Post("/v1/review/next", f.auth("review"), "", "application/json")->status, 204);
  EXPECT_EQ(body_of(c->Get("/v1/review/stats", f.auth("review")))["expired"], 1);
}

TEST(ServeReview, AClosedTicketIsPostedToTheWebhook) {
  httplib::Server hook;  // the client's endpoint, on loopback
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> got;  // (Authorization, body)
  hook.Post("/hook", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mu);
    got.emplace_back(req.get_header_value("Authorization"), req.body);
    res.status = 204;
  });
  const int hook_port = hook.bind_to_any_port("127.0.0.1");
  std::thread hook_thread([&] { hook.listen_after_bind(); });
  const std::string url = store_url("review_hook");
  std::filesystem::remove(url.substr(9));
  {
    ServeFixture f("review_hook", [&](ServeOptions& o) {
      o.review_store = url;
      o.review_threshold = 0;
      o.review_evidence = false;
      o.review_webhook = "http://127.0.0.1:" + std::to_string(hook_port) + "/hook";
      o.review_webhook_secret = "s3cret";
    });
    auto c = f.client();
    httplib::Headers h = f.auth("infer");
    h.emplace("X-Request-Id", "order-42");
    const auto r = c->Post("/v1/models/cnn/classify", h, tiny_png(12), "image/png");
    ASSERT_EQ(r->status, 200) << r->body;
    const json item = body_of(c->Post("/v1/review/next", f.auth("review"), "", "application/json"));
    ASSERT_EQ(c->Post("/v1/review/items/" + std::to_string(item["id"].get<int64_t>()) + "/label", f.auth("review"),
                      json{{"label", item["classes"][3]}}.dump(), "application/json")->status, 200);
    for (int i = 0; i < 500; ++i) {  // delivery is asynchronous: wait for it (at most 5 s)
      {
        std::lock_guard<std::mutex> lock(mu);
        if (!got.empty()) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].first, "Bearer s3cret");
    const json t = json::parse(got[0].second, nullptr, false);
    EXPECT_EQ(t["ticket"], item["id"]);
    EXPECT_EQ(t["request_id"], "order-42#0");
    EXPECT_EQ(t["status"], "done");
    EXPECT_EQ(t["label"], item["classes"][3]);
    EXPECT_EQ(t["decided_by"], "reviewer");
    const std::string m = c->Get("/metrics", f.auth("metrics"))->body;
    EXPECT_NE(m.find("focus_review_webhook_total{outcome=\"ok\"} 1"), std::string::npos) << m;
  }
  hook.stop();
  hook_thread.join();
  testing::expect_error<ValueError>([] { Webhook("https://example.org/x", "", nullptr); }, {"HTTPS"});
  testing::expect_error<ValueError>([] { Webhook("http://:80/x", "", nullptr); }, {"http://HOST[:PORT][/PATH]"});
}

TEST(ServeReview, EvidenceCanBeTurnedOff) {
  const std::string url = store_url("review_noev");
  std::filesystem::remove(url.substr(9));
  ServeFixture f("review_noev", [&](ServeOptions& o) {
    o.review_store = url;
    o.review_threshold = 0;
    o.review_evidence = false;
  });
  auto c = f.client();
  ASSERT_EQ(c->Post("/v1/models/cnn/classify", f.auth("infer"), tiny_png(4), "image/png")->status, 200);
  const json item = body_of(c->Post("/v1/review/next", f.auth("review"), "", "application/json"));
  ASSERT_TRUE(item.contains("id")) << item.dump();
  EXPECT_FALSE(item.contains("evidence"));
}

TEST(ServeReview, ConfidentPredictionsStayWithTheModelAndAFullQueueIsFlagged) {
  ServeFixture f("review_full", [&](ServeOptions& o) {
    o.review_store = store_url("review_full");
    o.review_threshold = 0;
    o.review_queue_cap = 1;
  });
  auto c = f.client();
  auto r = c->Post("/v1/models/cnn/classify", f.auth("infer"), tiny_png(1), "image/png");
  EXPECT_EQ(body_of(r)["predictions"][0]["status"], "pending_review");
  r = c->Post("/v1/models/cnn/classify", f.auth("infer"), tiny_png(2), "image/png");
  const json p = body_of(r)["predictions"][0];
  EXPECT_EQ(p["decided_by"], "model");
  EXPECT_EQ(p["review"], "queue_full");
  EXPECT_FALSE(p.contains("ticket"));

  ServeFixture g("review_none", [&](ServeOptions& o) {
    o.review_store = store_url("review_none");
    o.review_threshold = 1;  // nothing is uncertain enough
  });
  auto d = g.client();
  r = d->Post("/v1/models/cnn/classify", g.auth("infer"), tiny_png(3), "image/png");
  EXPECT_EQ(body_of(r)["predictions"][0]["decided_by"], "model");
  EXPECT_EQ(d->Post("/v1/review/next", g.auth("review"), "", "application/json")->status, 204);
}

TEST(ServeReview, TheReviewerPageIsServedUnderAStrictPolicy) {
  ServeFixture f("review_page", [&](ServeOptions& o) { o.review_store = store_url("review_page"); });
  auto c = f.client();
  for (const char* path : {"/review", "/review/app.js", "/review/app.css"}) {
    const auto r = c->Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path;
    const std::string csp = r->get_header_value("Content-Security-Policy");
    EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << path;
    EXPECT_NE(csp.find("script-src 'self'"), std::string::npos);
    EXPECT_EQ(csp.find("unsafe"), std::string::npos);
  }
  EXPECT_NE(c->Get("/review")->body.find("<script src=\"/review/app.js\""), std::string::npos);
  EXPECT_EQ(c->Get("/review")->body.find("<script>"), std::string::npos);  // no inline script
  ServeFixture g("review_off");  // without a store there is no review endpoint
  EXPECT_EQ(g.client()->Get("/review")->status, 404);
}

}  // namespace
}  // namespace focus
