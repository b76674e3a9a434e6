// Text classifiers in focus serve: a text-transformer file is served by classify (one text or
// several, answered as the in-process TextPredictor answers them, with tokens and pooling
// weights), explain (token importance from the pooling), batched with concurrent requests; bad
// bodies get a 4xx naming the problem and the server goes on; an image endpoint refuses it.
#include <gtest/gtest.h>

#include <thread>

#include "focus/infer/model_file.hpp"
#include "focus/infer/text_predictor.hpp"
#include "focus/models/text_transformer.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/text/labelled.hpp"
#include "serve/serve_fixture.hpp"

namespace focus {
namespace {

using nlohmann::json;
using testing::ServeFixture;

void save_tiny_text_model(const std::string& path) {
  auto tok = train_tokenizer("word", {"good phone", "bad phone", "great battery", "awful screen"});
  Rng rng(11);
  auto model = make_classifier(
      "text_transformer", {{"vocab_size", tok->vocab().size()}, {"max_len", 8}, {"dim", 8}, {"depth", 1}, {"heads", 2}},
      rng);
  model->eval();
  ModelInfo info;
  info.class_names = {"negative", "positive"};
  info.task = "text";
  info.temperature = 1.5;
  info.tokenizer = tok->to_json().dump();
  save_model(path, *model, info);
}

json body_of(const httplib::Result& r) { return r ? json::parse(r->body, nullptr, false) : json(); }

TEST(ServeText, ClassifyAndExplainAnswerAsThePredictorDoes) {
  std::string text_path;
  ServeFixture f("text", [&](ServeOptions& o) {
    text_path = (std::filesystem::path(::testing::TempDir()) / "serve_text_model.safetensors").string();
    save_tiny_text_model(text_path);
    o.models.push_back("txt=" + text_path);
  });
  auto c = f.client();
  const TextPredictor p = TextPredictor::load(text_path);
  const std::vector<std::string> texts = {"good battery", "awful phone screen", "great"};
  const std::vector<TextPrediction> want = p.predict(texts);
  const auto r = c->Post("/v1/models/txt/classify", f.auth("infer"), json{{"texts", texts}, {"top", 2}}.dump(),
                         "application/json");
  ASSERT_EQ(r->status, 200) << r->body;
  const json preds = body_of(r)["predictions"];
  ASSERT_EQ(preds.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(preds[i]["top"][0]["index"], want[i].label);
    EXPECT_NEAR(preds[i]["top"][0]["prob"].get<double>(), want[i].probs[size_t(want[i].label)], 1e-6);
    EXPECT_EQ(preds[i]["tokens"], want[i].tokens);
    ASSERT_EQ(preds[i]["pooling"].size(), want[i].pooling.size());
    for (size_t t = 0; t < want[i].pooling.size(); ++t)
      EXPECT_NEAR(preds[i]["pooling"][t].get<double>(), want[i].pooling[t], 1e-6);
  }
  // Concurrent single-text requests are batched and answered as alone.
  std::vector<std::thread> ts;
  std::atomic<int> same{0};
  for (int t = 0; t < 6; ++t)
    ts.emplace_back([&, t] {
      auto cl = f.client();
      const std::string& s = texts[size_t(t % 3)];
      const auto one = cl->Post("/v1/models/txt/classify", f.auth("infer"), json{{"text", s}}.dump(), "application/json");
      if (one && one->status == 200 &&
          std::abs(body_of(one)["predictions"][0]["top"][0]["prob"].get<double>() -
                   want[size_t(t % 3)].probs[size_t(want[size_t(t % 3)].label)]) < 1e-6)
        ++same;
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(same.load(), 6);
  // explain: the pooling weights over the tokens.
  const auto e = c->Post("/v1/models/txt/explain", f.auth("explain"), json{{"input", texts[1]}}.dump(), "application/json");
  ASSERT_EQ(e->status, 200) << e->body;
  EXPECT_EQ(body_of(e)["method"], "pooling");
  EXPECT_EQ(body_of(e)["tokens"], want[1].tokens);
  EXPECT_EQ(body_of(e)["relevance"].size(), want[1].pooling.size());
  // The model list says what it is.
  const json models = body_of(c->Get("/v1/models", f.auth("infer")))["models"];
  bool listed = false;
  for (const json& m : models)
    if (m["name"] == "txt") {
      listed = true;
      EXPECT_EQ(m["kind"], "text-classifier");
      EXPECT_EQ(m["classes"], json({"negative", "positive"}));
    }
  EXPECT_TRUE(listed);
  // Bad bodies: a 4xx naming the problem; the next good request still succeeds.
  const auto post = [&](const std::string& b) {
    return c->Post("/v1/models/txt/classify", f.auth("infer"), b, "application/json");
  };
  auto b = post("{\"text\": \"   \"}");
  EXPECT_EQ(b->status, 400);
  EXPECT_NE(b->body.find("is empty"), std::string::npos) << b->body;
  b = post("{\"texts\": [\"ok\", 7]}");
  EXPECT_EQ(b->status, 400);
  EXPECT_NE(b->body.find("\\\"texts\\\"[1] must be a string"), std::string::npos) << b->body;
  b = post("{\"text\": \"a\", \"texts\": [\"b\"]}");
  EXPECT_EQ(b->status, 400);
  b = post("{\"text\": \"\xff\xfe\"}");
  EXPECT_EQ(b->status, 400) << b->body;
  b = post("{\"text\": \"" + std::string(5000, 'a') + "\"}");
  EXPECT_EQ(b->status, 413) << b->body;
  b = c->Post("/v2/models/txt/infer", f.auth("infer"), testing::v2_body(1, 3).first, "application/json");
  EXPECT_EQ(b->status, 400);
  EXPECT_NE(b->body.find("use POST /v1/models/txt/classify"), std::string::npos) << b->body;
  EXPECT_EQ(post(json{{"text", "good phone"}}.dump())->status, 200);
}

TEST(ServeText, UncertainTextsGoToReviewWithTheirTokenWeights) {
  std::string text_path;
  const std::string store = (std::filesystem::path(::testing::TempDir()) / "serve_text_review.db").string();
  std::filesystem::remove(store);
  ServeFixture f("text_review", [&](ServeOptions& o) {
    text_path = (std::filesystem::path(::testing::TempDir()) / "serve_text_review_model.safetensors").string();
    save_tiny_text_model(text_path);
    o.models.push_back("txt=" + text_path);
    o.review_store = "sqlite://" + store;
    o.review_threshold = 0;  // every classification goes to people
  });
  auto c = f.client();
  const auto r = c->Post("/v1/models/txt/classify", f.auth("infer"), json{{"text", "awful battery"}}.dump(),
                         "application/json");
  ASSERT_EQ(r->status, 200) << r->body;
  const json pred = body_of(r)["predictions"][0];
  EXPECT_EQ(pred["status"], "pending_review");
  const json item = body_of(c->Post("/v1/review/next", f.auth("review"), "", "application/json"));
  ASSERT_EQ(item["id"], pred["ticket"]) << item.dump();
  EXPECT_EQ(item["text"], "awful battery");
  EXPECT_FALSE(item.contains("image"));
  EXPECT_EQ(item["evidence"]["method"], "pooling");
  EXPECT_EQ(item["evidence"]["tokens"], pred["tokens"]);
  EXPECT_EQ(item["evidence"]["weights"].size(), pred["pooling"].size());
  EXPECT_EQ(item["classes"], json({"negative", "positive"}));
  ASSERT_EQ(c->Post("/v1/review/items/" + std::to_string(item["id"].get<int64_t>()) + "/label", f.auth("review"),
                    json{{"label", "negative"}}.dump(), "application/json")->status, 200);
  const json t = body_of(c->Get("/v1/review/tickets/" + std::to_string(item["id"].get<int64_t>()), f.auth("infer")));
  EXPECT_EQ(t["status"], "done");
  EXPECT_EQ(t["label"], "negative");
}

}  // namespace
}  // namespace focus
