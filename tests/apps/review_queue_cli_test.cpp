// The review queue from the command line and the labels' way back into training, through the
// `focus` binary: `focus review enqueue|next|label|release|stats|export` on a SQLite queue (ids,
// idempotency, a conflict is exit 1 with the reason, the export is JSON lines of the labelled
// items), then `focus train --extra-labels labels.jsonl` on a tiny run: the 50 reviewed images
// join the training split (5 steps of 50 instead of 4, "extra_train_images": 50 in the metrics,
// the validation split unchanged), and a label that names no class is refused with file and line.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "focus/data/dataset.hpp"
#include "focus/data/png.hpp"
#include "focus/review/queue_store.hpp"
#include "support/run_command.hpp"

namespace fs = std::filesystem;

namespace {

using json = nlohmann::json;

focus::testing::CommandResult run(const std::string& args) {
  return focus::testing::run_command(std::string(FOCUS_BINARY) + " " + args);
}

// The last line of the output that parses as JSON (the commands print one document on stdout).
json last_json(const std::string& out) {
  std::istringstream in(out);
  json last;
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line, nullptr, false);
    if (!j.is_discarded()) last = j;
  }
  return last;
}

std::vector<json> read_lines(const std::string& path) {
  std::ifstream f(path);
  std::vector<json> v;
  for (std::string line; std::getline(f, line);) v.push_back(json::parse(line));
  return v;
}

TEST(ReviewQueueCli, EnqueueClaimLabelExportThenTrainOnTheLabels) {
  const std::string kData = focus::kFashionMnistDir;
  const focus::ImageDataset test = focus::load_fashion_mnist(kData, focus::Split::Test);
  const std::string dir = ::testing::TempDir() + "review_cli/";
  fs::create_directories(dir);
  const std::string store = "sqlite://" + dir + "queue.db";
  const auto& names = focus::fashion_mnist_classes();

  // Two items through the CLI.
  for (int i = 0; i < 2; ++i) focus::write_png(dir + "in" + std::to_string(i) + ".png", test.image_at(i));
  auto r = run("review enqueue --store " + store + " --request-id cli-0 --input " + dir +
               "in0.png --model cnn-se --prediction Coat --priority 0.2 --scores '{\"p\":0.5}'");
  ASSERT_EQ(r.code, 0) << r.out;
  const int64_t id0 = last_json(r.out).at("id").get<int64_t>();
  EXPECT_TRUE(last_json(r.out).at("created").get<bool>());
  r = run("review enqueue --store " + store + " --request-id cli-0 --input " + dir + "in1.png");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(last_json(r.out).at("id").get<int64_t>(), id0);
  EXPECT_FALSE(last_json(r.out).at("created").get<bool>());
  r = run("review enqueue --store " + store + " --request-id cli-1 --input " + dir + "in1.png --priority 0.9");
  ASSERT_EQ(r.code, 0) << r.out;
  const int64_t id1 = last_json(r.out).at("id").get<int64_t>();
  r = run("review next --store " + store + " --reviewer alice --lease-s 60 --save-input " + dir + "got.png");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(last_json(r.out).at("id").get<int64_t>(), id1);  // the higher priority first
  EXPECT_EQ(last_json(r.out).at("state"), "claimed");
  {
    std::ifstream a(dir + "in1.png", std::ios::binary), b(dir + "got.png", std::ios::binary);
    EXPECT_EQ(std::string(std::istreambuf_iterator<char>(a), {}), std::string(std::istreambuf_iterator<char>(b), {}));
  }
  r = run("review release --store " + store + " --id " + std::to_string(id1) + " --reviewer alice");
  EXPECT_TRUE(last_json(r.out).at("released").get<bool>()) << r.out;
  for (int64_t id : {id1, id0}) {
    const std::string label = names[size_t(test.label(id == id0 ? 0 : 1))];
    r = run("review label --store " + store + " --id " + std::to_string(id) + " --reviewer alice --label '" + label + "'");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_TRUE(last_json(r.out).at("recorded").get<bool>());
  }
  r = run("review label --store " + store + " --id " + std::to_string(id0) + " --reviewer bob --label Bag");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("already labelled"), std::string::npos) << r.out;

  // 48 more through the library (the server's path), labelled with their true classes.
  {
    auto q = focus::review::open_queue_store(store);
    for (int i = 2; i < 50; ++i) {
      focus::review::NewItem it;
      it.request_id = "lib-" + std::to_string(i);
      it.content_type = "image/png";
      it.input = focus::encode_png(test.image_at(i));
      const int64_t id = q->enqueue(it).id;
      q->label(id, "bob", names[size_t(test.label(i))]);
    }
  }
  r = run("review stats --store " + store + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(last_json(r.out).at("done"), 50);
  EXPECT_EQ(last_json(r.out).at("pending"), 0);
  r = run("review export --store " + store + " --out " + dir + "labels.jsonl");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(last_json(r.out).at("items"), 50);
  const auto lines = read_lines(dir + "labels.jsonl");
  ASSERT_EQ(lines.size(), 50u);
  EXPECT_EQ(lines[0].at("id"), id1);  // label order
  EXPECT_EQ(lines[1].at("prediction"), "Coat");
  EXPECT_EQ(lines[1].at("scores").at("p"), 0.5);
  EXPECT_EQ(lines[49].at("label"), names[size_t(test.label(49))]);

  // Training: 300 images, the first 100 validate, 200 train (+ 50 reviewed), batch 50.
  const std::string common = "train --model cnn-se --model-config '{\"channels\":[4,8]}' --epochs 1 --batch 50 "
                             "--limit-train 300 --val-size 100 --threads 2 --augment false --data-dir " + kData;
  r = run(common + " --out " + dir + "plain");
  ASSERT_EQ(r.code, 0) << r.out;
  r = run(common + " --out " + dir + "extra --extra-labels " + dir + "labels.jsonl");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("50 reviewed images"), std::string::npos) << r.out;
  const auto plain = read_lines(dir + "plain/metrics.jsonl"), extra = read_lines(dir + "extra/metrics.jsonl");
  ASSERT_EQ(plain.size(), 1u);
  ASSERT_EQ(extra.size(), 1u);
  EXPECT_EQ(plain[0].at("step"), 4);
  EXPECT_EQ(extra[0].at("step"), 5);
  EXPECT_FALSE(plain[0].contains("extra_train_images"));
  EXPECT_EQ(extra[0].at("extra_train_images"), 50);
  const json cfg = json::parse(std::ifstream(dir + "extra/config.json"));
  EXPECT_EQ(cfg.at("extra-labels"), dir + "labels.jsonl");

  // A label that is no class: refused, naming the file and line.
  std::string text;
  {
    std::ifstream f(dir + "labels.jsonl");
    std::getline(f, text);
  }
  json bad = json::parse(text);
  bad["label"] = "Hat";
  std::ofstream(dir + "bad.jsonl") << text << "\n" << bad.dump() << "\n";
  r = run(common + " --out " + dir + "bad --extra-labels " + dir + "bad.jsonl");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("bad.jsonl:2: the label 'Hat' is not one of the model's 10 classes"), std::string::npos) << r.out;
}

}  // namespace
