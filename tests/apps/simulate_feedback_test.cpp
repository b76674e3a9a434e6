// The simulator's shifted stream and feedback run (apps/review_feedback.hpp): the shifts pixel by
// pixel (invert, a quarter turn, seeded noise), then a small feedback run on inverted test images
// with a small cnn-se: every round's candidate answers more of the items it was trained on than
// the served model did, the held-out evaluation slice gains with feedback and not without, and
// the run is the same twice with the same seed (the library call and `focus simulate-review
// --stream shifted --feedback-every N`, whose JSON and HTML carry it).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "focus/apps/review_feedback.hpp"
#include "focus/models/image_classifier.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/train/trainer.hpp"
#include "support/expect_error.hpp"
#include "support/run_command.hpp"

namespace fs = std::filesystem;

namespace focus {
namespace {

using json = nlohmann::json;
using focus::testing::expect_error;

ImageDataset small(std::vector<uint8_t> px, int64_t n, int64_t s) {
  return ImageDataset(std::move(px), std::vector<int64_t>(size_t(n), 0), 1, s, s, {"a", "b"});
}

TEST(ShiftImages, PixelByPixel) {
  std::vector<uint8_t> px(2 * 9);
  for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t(10 * i);
  const ImageDataset ds = small(px, 2, 3);
  const ImageDataset inv = shift_images(ds, "invert", 0);
  for (size_t i = 0; i < px.size(); ++i) EXPECT_EQ(inv.pixels()[i], 255 - px[i]);
  // A quarter turn clockwise: the left column, bottom to top, becomes the top row.
  const ImageDataset rot = shift_images(ds, "rotate90", 0);
  EXPECT_EQ(std::vector<uint8_t>(rot.pixels(), rot.pixels() + 3), (std::vector<uint8_t>{60, 30, 0}));
  ImageDataset back = rot;
  for (int k = 0; k < 3; ++k) back = shift_images(back, "rotate90", 0);
  EXPECT_EQ(std::vector<uint8_t>(back.pixels(), back.pixels() + 18), px);
  const ImageDataset n1 = shift_images(ds, "noise", 1), n1b = shift_images(ds, "noise", 1), n2 = shift_images(ds, "noise", 2);
  const std::vector<uint8_t> a(n1.pixels(), n1.pixels() + 18), b(n1b.pixels(), n1b.pixels() + 18),
      c(n2.pixels(), n2.pixels() + 18);
  EXPECT_EQ(a, b);  // seeded
  EXPECT_NE(a, c);
  EXPECT_NE(a, px);
  const ImageDataset none = shift_images(ds, "none", 0);
  EXPECT_EQ(std::vector<uint8_t>(none.pixels(), none.pixels() + 18), px);
  EXPECT_EQ(inv.labels(), ds.labels());
  expect_error<ValueError>([&] { shift_images(ds, "blur", 0); }, {"'blur'", "invert"});
}

json without_timings(json j) {
  for (const char* run : {"with", "without"})
    for (json& r : j[run]["rounds"]) r.erase("seconds");
  return j;
}

TEST(FeedbackRun, LabelsFedBackImproveTheShiftedStreamDeterministically) {
  const std::string dir = ::testing::TempDir() + "feedback_run/";
  fs::remove_all(dir);
  // A small cnn-se on clean images.
  TrainConfig cfg;
  cfg.model = "cnn-se";
  cfg.epochs = 3;
  cfg.batch = 50;
  cfg.lr = 1e-2;
  cfg.warmup_epochs = 0.2;
  cfg.limit_train = 3000;
  cfg.val_size = 500;
  cfg.augment = false;
  cfg.out = dir + "base";
  {
    const ImageDataset train = load_fashion_mnist(kFashionMnistDir, Split::Train);
    Rng rng(7);
    auto model = make_image_model("cnn_se", json::parse(R"({"channels":[8,16]})"), rng);
    Trainer trainer(cfg, *model, train);
    trainer.fit();
  }
  FeedbackOptions o;
  o.model = dir + "base/model_best.safetensors";
  o.data_dir = kFashionMnistDir;
  o.shift = "invert";
  o.work_dir = dir + "work";
  o.budget = 0.3;
  o.every = 100;
  o.target = 200;
  o.gate_items = 200;
  o.eval_items = 400;
  o.window = 250;
  o.limit = 1600;
  o.epochs = 3;
  o.lr = 1e-3;
  o.batch = 50;
  o.seed = 4;
  o.quiet = true;
  const json j = run_feedback(o);
  EXPECT_EQ(j.at("stream_items"), 1000);
  EXPECT_EQ(j.at("gate_items"), 200);
  EXPECT_LT(j.at("base_eval_accuracy").get<double>(), j.at("clean_eval_accuracy").get<double>() - 0.2) << j;
  const json& with = j.at("with");
  const json& without = j.at("without");
  EXPECT_GE(with.at("labels").get<int64_t>(), 200);
  EXPECT_EQ(with.at("labels"), without.at("labels")) << "the same reviewers' pace";
  ASSERT_GE(with.at("rounds").size(), 3u);  // the start, then rounds at 100 and 200 labels
  for (size_t k = 1; k < with.at("rounds").size(); ++k) {
    const json& r = with.at("rounds")[k];
    EXPECT_EQ(r.at("labels"), int64_t(100 * k));
    EXPECT_EQ(r.at("replay_images"), r.at("reviewed_images"));  // replay share 0.5
    EXPECT_GT(r.at("candidate_on_trained_labels").get<double>(), r.at("served_on_trained_labels").get<double>() + 0.1) << r;
  }
  EXPECT_EQ(without.at("rounds").size(), 1u);
  ASSERT_FALSE(j.at("after_target").is_null()) << j;
  EXPECT_EQ(j.at("after_target").at("without"), j.at("base_eval_accuracy"));
  EXPECT_GT(j.at("after_target").at("gain_points").get<double>(), 5.0) << j;
  ASSERT_EQ(with.at("windows").size(), 4u);
  EXPECT_EQ(with.at("windows")[3].at("end_item"), 1000);
  // Later windows: the model with feedback answers more of the stream right than without.
  EXPECT_GT(with.at("windows")[3].at("model_accuracy").get<double>(),
            without.at("windows")[3].at("model_accuracy").get<double>()) << j;

  // The same run through the CLI: the same numbers, in review.json and the page.
  const auto r = focus::testing::run_command(
      std::string(FOCUS_BINARY) + " simulate-review --model " + o.model + " --stream shifted --shift invert "
      "--feedback-every 100 --feedback-budget 0.3 --feedback-target 200 --gate-items 200 --eval-items 400 "
      "--feedback-window 250 --limit 1600 --ft-epochs 3 --ft-lr 1e-3 --ft-batch 50 --seed 4 --risk-splits 5 "
      "--work-dir " + o.work_dir + " --out " + dir + "sim 2>&1");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("after 200 reviewed labels"), std::string::npos) << r.out;
  const json cli = json::parse(std::ifstream(dir + "sim/review.json"));
  EXPECT_EQ(cli.at("stream"), "shifted");
  EXPECT_EQ(without_timings(cli.at("feedback")), without_timings(j));
  std::ifstream html(dir + "sim/review.html");
  const std::string page((std::istreambuf_iterator<char>(html)), {});
  EXPECT_NE(page.find("Feedback on the invert stream"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir + "sim/feedback.svg"));
  EXPECT_TRUE(fs::exists(dir + "sim/feedback_rounds.svg"));
  // Slices that leave no stream are refused.
  o.gate_items = 1000;
  o.eval_items = 600;
  expect_error<ValueError>([&] { run_feedback(o); }, {"leave fewer than 10"});
}

}  // namespace
}  // namespace focus
