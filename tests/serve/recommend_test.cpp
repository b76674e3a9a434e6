// Sequential recommenders in focus serve: a sasrec file is served by POST /v1/models/{m}/recommend
// (a history in, the top k out as the in-process Recommender answers, the history's items
// excluded); an unknown item id, a malformed body or another model's endpoint gets a 4xx naming
// the problem, and the server goes on.
#include <gtest/gtest.h>

#include <set>

#include "focus/infer/model_file.hpp"
#include "focus/infer/recommender.hpp"
#include "focus/models/sasrec.hpp"
#include "focus/tensor/rng.hpp"
#include "serve/serve_fixture.hpp"

namespace focus {
namespace {

using nlohmann::json;
using testing::ServeFixture;

// Items named "m10", "m20", ... "m80" (8 items, as a training file would name them).
void save_tiny_recommender(const std::string& path) {
  Rng rng(21);
  SasRec model(SasRecConfig::from_json({{"num_items", 9}, {"max_len", 4}, {"dim", 8}, {"depth", 1},
                                        {"heads", 2}, {"dropout", 0.0}}),
               rng);
  model.eval();
  ModelInfo info;
  info.task = "recsys";
  info.class_names = {"<pad>"};
  for (int i = 1; i <= 8; ++i) info.class_names.push_back("m" + std::to_string(10 * i));
  save_model(path, model, info);
}

json body_of(const httplib::Result& r) { return r ? json::parse(r->body, nullptr, false) : json(); }

TEST(ServeRecommend, TopKExcludesTheHistoryAndMatchesThePredictor) {
  std::string path;
  ServeFixture f("recommend", [&](ServeOptions& o) {
    path = (std::filesystem::path(::testing::TempDir()) / "serve_recsys_model.safetensors").string();
    save_tiny_recommender(path);
    o.models.push_back("rec=" + path);
  });
  auto c = f.client();
  const Recommender p(load_classifier(path), path);
  const std::vector<std::string> history = {"m30", "m10", "m50"};
  const auto want = p.recommend(history, 4);
  const auto r = c->Post("/v1/models/rec/recommend", f.auth("infer"), json{{"history", history}, {"k", 4}}.dump(),
                         "application/json");
  ASSERT_EQ(r->status, 200) << r->body;
  const json items = body_of(r)["items"];
  ASSERT_EQ(items.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(items[i]["item"], want[i].item);
    EXPECT_NEAR(items[i]["score"].get<double>(), want[i].score, 1e-6);
    EXPECT_EQ(std::count(history.begin(), history.end(), items[i]["item"].get<std::string>()), 0);
    if (i > 0) { EXPECT_GE(items[i - 1]["score"].get<double>(), items[i]["score"].get<double>()); }
  }
  // k larger than the unseen items: all 5 of them, none of the history.
  const auto all = c->Post("/v1/models/rec/recommend", f.auth("infer"), json{{"history", history}, {"k", 100}}.dump(),
                           "application/json");
  ASSERT_EQ(all->status, 200) << all->body;
  std::set<std::string> got;
  const json all_items = body_of(all)["items"];  // kept: a range-for over a temporary's member dangles
  for (const auto& it : all_items) got.insert(it["item"].get<std::string>());
  EXPECT_EQ(got.size(), 5u) << all->body;
  EXPECT_EQ(got, (std::set<std::string>{"m20", "m40", "m60", "m70", "m80"}));
  // A history longer than max_len keeps its last 4 items: the scores are those of that suffix,
  // with the dropped items excluded too.
  const auto longer = p.recommend({"m80", "m70", "m30", "m10", "m50", "m20"}, 2);
  ASSERT_EQ(longer.size(), 2u);
  for (const auto& x : longer) EXPECT_TRUE(x.item == "m40" || x.item == "m60") << x.item;
  // The listing names the kind and the endpoint.
  const auto list = c->Get("/v1/models", f.auth("infer"));
  ASSERT_EQ(list->status, 200);
  EXPECT_NE(list->body.find("\"recommender\""), std::string::npos) << list->body;
}

TEST(ServeRecommend, BadRequestsGet4xxAndTheServerGoesOn) {
  ServeFixture f("recommend_bad", [&](ServeOptions& o) {
    const std::string path = (std::filesystem::path(::testing::TempDir()) / "serve_recsys_bad.safetensors").string();
    save_tiny_recommender(path);
    o.models.push_back("rec=" + path);
  });
  auto c = f.client();
  const std::pair<std::string, std::string> cases[] = {
      {json{{"history", {"m10", "m999"}}}.dump(), "input 1: unknown item id 'm999'"},
      {json{{"history", json::array()}}.dump(), "must be a non-empty array of item ids"},
      {json{{"items", {"m10"}}}.dump(), "must be a non-empty array of item ids"},
      {json{{"history", {"m10", 2.5}}}.dump(), "history[1] must be an item id"},
      {json{{"history", {"m10"}}, {"k", 0}}.dump(), "is 0, must be in [1, 1000]"},
      {"{\"history\": [", "malformed JSON"},
  };
  for (const auto& [body, want] : cases) {
    const auto r = c->Post("/v1/models/rec/recommend", f.auth("infer"), body, "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << body << " -> " << r->body;
    EXPECT_NE(r->body.find(want), std::string::npos) << body << " -> " << r->body;
  }
  // Another kind's endpoints refuse the recommender, and recommend refuses an image model.
  const auto cl = c->Post("/v1/models/rec/classify", f.auth("infer"), json{{"texts", {"x"}}}.dump(), "application/json");
  EXPECT_EQ(cl->status, 400);
  EXPECT_NE(cl->body.find("/v1/models/rec/recommend"), std::string::npos) << cl->body;
  const auto ex = c->Post("/v1/models/rec/explain", f.auth("explain"), json{{"input", "x"}}.dump(), "application/json");
  EXPECT_EQ(ex->status, 400) << ex->body;
  const auto img = c->Post("/v1/models/cnn/recommend", f.auth("infer"), json{{"history", {"1"}}}.dump(), "application/json");
  EXPECT_EQ(img->status, 400) << img->body;
  EXPECT_NE(img->body.find("/classify"), std::string::npos) << img->body;
  // Still serving.
  const auto ok = c->Post("/v1/models/rec/recommend", f.auth("infer"), json{{"history", {"m10", 20}}}.dump(), "application/json");
  EXPECT_EQ(ok->status, 400);  // 20 names the item "20", unknown here
  const auto good = c->Post("/v1/models/rec/recommend", f.auth("infer"), json{{"history", {"m10"}}}.dump(), "application/json");
  EXPECT_EQ(good->status, 200) << good->body;
}

}  // namespace
}  // namespace focus
