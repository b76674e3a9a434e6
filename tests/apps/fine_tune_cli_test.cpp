// `focus train --resume CKPT --reviewed DB`, through the binary: a small cnn-se run, then 200
// inverted test images it mostly gets wrong, labelled in a SQLite review queue; fine-tuning the
// run's checkpoint on them (with a replay share of 0.75 from the run's training split) writes a candidate
// that agrees with more of the reviewed labels, validated on the run's own validation split (the
// one `focus promote` rebuilds from the candidate's config.json), and clear errors for a missing
// store, a file that is no store, a store without images, an undecodable item, no --resume, and an
// --out that is the run.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "focus/data/dataset.hpp"
#include "focus/data/png.hpp"
#include "focus/review/queue_store.hpp"
#include "support/run_command.hpp"

namespace fs = std::filesystem;

namespace {

using json = nlohmann::json;

focus::testing::CommandResult run(const std::string& args) {
  return focus::testing::run_command(std::string(FOCUS_BINARY) + " " + args + " 2>&1");
}

json json_at(const std::string& out) {
  const size_t at = out.find('{');
  return at == std::string::npos ? json() : json::parse(out.substr(at), nullptr, false);
}

TEST(FineTuneCli, ReviewedLabelsMoveTheCandidateAndPromoteGatesIt) {
  const std::string kData = focus::kFashionMnistDir;
  const std::string dir = ::testing::TempDir() + "fine_tune_cli/";
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto r = run("train --model cnn-se --model-config '{\"channels\":[8,16]}' --epochs 3 --batch 50 --lr 1e-2 "
               "--warmup-epochs 0.2 --limit-train 3000 --val-size 500 --threads 2 --augment false --out " + dir +
               "run --data-dir " + kData);
  ASSERT_EQ(r.code, 0) << r.out;

  // 200 inverted test images in the queue, labelled with their classes; one text item.
  const focus::ImageDataset test = focus::load_fashion_mnist(kData, focus::Split::Test);
  const auto& names = focus::fashion_mnist_classes();
  const std::string db = dir + "queue.db";
  {
    auto q = focus::review::open_queue_store(db);
    for (int64_t i = 0; i < 200; ++i) {
      focus::Image img = test.image_at(i);
      for (float& v : img.data) v = 1 - v;
      focus::review::NewItem it;
      it.request_id = "r" + std::to_string(i);
      it.content_type = "image/png";
      it.input = focus::encode_png(img);
      q->label(q->enqueue(it).id, "alice", names[size_t(test.label(i))]);
    }
    q->label(q->enqueue({.request_id = "t", .content_type = "text/plain", .input = "hello"}).id, "bob", "Bag");
  }
  const std::string common = " --epochs 3 --lr 1e-3 --batch 50 --threads 2 --data-dir " + kData;
  r = run("train --resume " + dir + "run/checkpoint_last.safetensors --reviewed " + db + " --out " + dir + "ft" + common +
          " --replay-share 0.75");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("200 reviewed images"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 non-image items skipped"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("focus promote --candidate " + dir + "ft/model_last.safetensors"), std::string::npos) << r.out;
  const json s = json::parse(std::ifstream(dir + "ft/fine_tune.json"));
  EXPECT_EQ(s.at("reviewed_images"), 200);
  EXPECT_EQ(s.at("replay_images"), 600);  // 200 x 0.75 / 0.25
  EXPECT_EQ(s.at("validation_images"), 500);
  EXPECT_GT(s.at("reviewed_agreement_after").get<double>(), s.at("reviewed_agreement_before").get<double>() + 0.2) << s;
  // A small model (3 epochs on 2,500 images) moved toward a strong shift: the replay keeps its clean
  // validation accuracy within 10 points.
  EXPECT_GT(s.at("val_accuracy_after").get<double>(), s.at("val_accuracy_before").get<double>() - 0.1) << s;
  // The fine-tuning run keeps the run's split options (from the checkpoint) and its own flags.
  const json cfg = json::parse(std::ifstream(dir + "ft/config.json"));
  EXPECT_EQ(cfg.at("limit-train"), 3000);
  EXPECT_EQ(cfg.at("val-size"), 500);
  EXPECT_EQ(cfg.at("epochs"), 3);
  EXPECT_EQ(cfg.at("reviewed"), db);
  EXPECT_EQ(cfg.at("resume"), "");  // the trainer started at epoch 0 from the given weights
  EXPECT_GT(fs::file_size(dir + "ft/metrics.jsonl"), 0u);

  // The gate: promote scores both on the same 500 validation images.
  fs::copy_file(dir + "run/model_best.safetensors", dir + "served.safetensors");
  r = run("promote --candidate " + dir + "ft/model_last.safetensors --served " + dir + "served.safetensors --json "
          "--threads 2 --data-dir " + kData);
  ASSERT_TRUE(r.code == 0 || r.code == 3) << r.out;
  const json p = json_at(r.out);
  EXPECT_EQ(p.at("validation_images"), 500) << r.out;
  EXPECT_NEAR(p.at("candidate_accuracy").get<double>(), s.at("val_accuracy_after").get<double>(), 0.0021) << r.out;

  // A model file as the start (its run's config.json beside it) into the run's own directory: refused.
  r = run("train --resume " + dir + "run/model_best.safetensors --reviewed " + db + " --out " + dir + "run" + common);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("would overwrite the run it starts from"), std::string::npos) << r.out;
  r = run("train --resume " + dir + "run/model_best.safetensors --reviewed " + dir + "none.db --out " + dir + "x" + common);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("no reviewed labels at '" + dir + "none.db'"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dir + "none.db"));
  std::ofstream(dir + "junk.db") << "not a database but a text file long enough to be read as one......";
  r = run("train --resume " + dir + "run/model_best.safetensors --reviewed " + dir + "junk.db --out " + dir + "x" + common);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("junk.db"), std::string::npos) << r.out;
  r = run("train --reviewed " + db + " --out " + dir + "x" + common);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("give its checkpoint or model file with --resume"), std::string::npos) << r.out;
  {
    auto q = focus::review::open_queue_store(dir + "text.db");
    q->label(q->enqueue({.request_id = "t", .content_type = "text/plain", .input = "hi"}).id, "bob", "Bag");
    auto q2 = focus::review::open_queue_store(dir + "broken.db");
    const int64_t id = q2->enqueue({.request_id = "b", .content_type = "image/png", .input = "not a png"}).id;
    q2->label(id, "bob", "Bag");
  }
  r = run("train --resume " + dir + "run/checkpoint_last.safetensors --reviewed " + dir + "text.db --out " + dir + "x" + common);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("no labelled image/png item in it (1 other items)"), std::string::npos) << r.out;
  r = run("train --resume " + dir + "run/checkpoint_last.safetensors --reviewed " + dir + "broken.db --out " + dir + "x" + common);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("broken.db item "), std::string::npos) << r.out;
}

}  // namespace
