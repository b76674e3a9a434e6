// `focus explain` end to end through the binary: a ViT and a cnn_se trained for one short epoch
// on Fashion-MNIST, explained by test index and by PNG, with --out (PNG overlays that decode at
// the expected size, JSON with the raw maps), --all, --faithfulness and --json; a g2p-style
// translate model explained with its alignment (SVG, JSON); and the bad inputs: no input, both
// inputs, an index past the test set, a method the model cannot do, unknown source symbols.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "focus/data/png.hpp"
#include "support/run_command.hpp"

namespace fs = std::filesystem;

namespace {

using Result = focus::testing::CommandResult;

Result run(const std::string& args) {
  return focus::testing::run_command(std::string(FOCUS_BINARY) + " " + args);
}

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

class ExplainCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("focus_explain_cli_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string train_image_model(const std::string& model, const std::string& config) {
    const Result t = run("train --model " + model + " --epochs 1 --limit-train 512 --val-size 128 "
                         "--threads 1 --model-config '" + config + "' --out " + path(model));
    EXPECT_EQ(t.code, 0) << t.out;
    return path(model + "/model_best.safetensors");
  }
  std::string dir_;
};

}  // namespace

TEST_F(ExplainCli, VitMapsRolloutAndFaithfulness) {
  const std::string model = train_image_model("vit", R"({"dim":16,"depth":2,"heads":2})");
  const Result term = run("explain --threads 1 --model " + model + " --index 3");
  ASSERT_EQ(term.code, 0) << term.out;
  EXPECT_TRUE(contains(term.out, "predicted") && contains(term.out, "with rollout")) << term.out;
  EXPECT_GE(std::count(term.out.begin(), term.out.end(), '\n'), 8) << term.out;  // 7 grid rows

  const Result r = run("explain --threads 1 --model " + model +
                       " --index 3 --all --faithfulness --method grad-rollout --out " + path("out"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "deletion area") && contains(r.out, "insertion area")) << r.out;
  const focus::Image overlay = focus::read_png(path("out/test3_grad-rollout.png"));
  EXPECT_EQ(overlay.channels, 3);
  EXPECT_EQ(overlay.height, 28 * 8);
  EXPECT_GT(overlay.width, 28 * 8);  // the image and the colour bar
  for (const char* f : {"test3_attention_l0_mean.png", "test3_attention_l1_h1.png"}) {
    const focus::Image m = focus::read_png(path(std::string("out/") + f));
    EXPECT_EQ(m.height, 28 * 8) << f;
  }
  EXPECT_FALSE(fs::exists(path("out/test3_attention_l2_mean.png")));  // depth 2
  std::ifstream js(path("out/test3_grad-rollout.json"));
  const auto j = nlohmann::json::parse(js);
  EXPECT_EQ(j["attention"].size(), 2u);
  EXPECT_EQ(j["attention"][1][0].size(), 50u);
  EXPECT_TRUE(j["faithfulness"].contains("deletion_area_random"));

  // A PNG input (written by the test: the overlay itself, converted to 28x28 gray) and --json.
  const Result pj = run("explain --threads 1 --json --method attention --layer 0 --head 1 --model " +
                        model + " --input " + path("out/test3_grad-rollout.png"));
  ASSERT_EQ(pj.code, 0) << pj.out;
  EXPECT_EQ(nlohmann::json::parse(pj.out)["method"], "attention");

  const Result none = run("explain --model " + model);
  EXPECT_EQ(none.code, 1);
  EXPECT_TRUE(contains(none.out, "exactly one of --input PNG and --index N")) << none.out;
  const Result far = run("explain --model " + model + " --index 10000");
  EXPECT_EQ(far.code, 1);
  EXPECT_TRUE(contains(far.out, "--index 10000")) << far.out;
  const Result cam = run("explain --model " + model + " --index 1 --method grad-cam");
  EXPECT_EQ(cam.code, 1);
  EXPECT_TRUE(contains(cam.out, "grad-cam needs a convolutional feature map")) << cam.out;
  const Result head = run("explain --model " + model + " --index 1 --method attention --head 5");
  EXPECT_EQ(head.code, 1);
  EXPECT_TRUE(contains(head.out, "head 5")) << head.out;
  const Result missing = run("explain --model " + model + " --input " + path("nope.png"));
  EXPECT_EQ(missing.code, 1);
  EXPECT_TRUE(contains(missing.out, "nope.png")) << missing.out;
}

TEST_F(ExplainCli, CnnSeGradCamAndGates) {
  const std::string model = train_image_model("cnn-se", R"({"channels":[8,16]})");
  const Result r = run("explain --threads 1 --model " + model + " --index 0 --out " + path("out"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "with grad-cam") && contains(r.out, "SE block 1 gates")) << r.out;
  EXPECT_EQ(focus::read_png(path("out/test0_grad-cam.png")).height, 28 * 8);
  std::ifstream gs(path("out/test0_se_gates.svg"));
  const std::string gates_svg((std::istreambuf_iterator<char>(gs)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(contains(gates_svg, "<svg xmlns=") && contains(gates_svg, "block 1 (16 channels)"))
      << gates_svg.substr(0, 300);
  std::ifstream js(path("out/test0_grad-cam.json"));
  const auto j = nlohmann::json::parse(js);
  EXPECT_EQ(j["channel_gates"].size(), 2u);
  EXPECT_EQ(j["channel_gates"][1].size(), 16u);
  EXPECT_EQ(j["relevance"].size(), 14u);  // the last stage runs at 14x14
  const Result rollout = run("explain --model " + model + " --index 0 --method rollout");
  EXPECT_EQ(rollout.code, 1);
  EXPECT_TRUE(contains(rollout.out, "needs attention maps")) << rollout.out;
}

TEST_F(ExplainCli, Seq2SeqAlignment) {
  std::ofstream tr(path("train.tsv"));
  for (const char* w : {"ab", "ba", "abc", "cab", "bca", "aab", "cc", "acb"})
    tr << w << "\t" << std::string(w).append("x") << "\n";
  tr.close();
  const Result t = run("train --task translate --train " + path("train.tsv") + " --valid " +
                       path("train.tsv") + " --src-tokenizer char --tgt-tokenizer char --epochs 1 "
                       "--threads 1 --model-config '{\"d_model\":16,\"n_enc_layers\":1,"
                       "\"n_dec_layers\":2,\"n_heads\":2,\"d_ff\":32}' --out " + path("s2s"));
  ASSERT_EQ(t.code, 0) << t.out;
  const std::string model = path("s2s/model_best.safetensors");
  const Result r = run("explain --threads 1 --model " + model + " --input abc --all --faithfulness --out " + path("out"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "abc -> ") && contains(r.out, "cross-attention")) << r.out;
  EXPECT_TRUE(contains(r.out, "faithfulness (source tokens")) << r.out;
  for (const char* f : {"abc_cross_l0.svg", "abc_cross_l1.svg", "abc_cross_l1_h1.svg",
                        "abc_decoder_self.svg", "abc_encoder_self.svg"}) {
    std::ifstream s(path(std::string("out/") + f));
    const std::string svg((std::istreambuf_iterator<char>(s)), std::istreambuf_iterator<char>());
    EXPECT_TRUE(contains(svg, "<svg") && contains(svg, "</svg>")) << f;
  }
  std::ifstream js(path("out/abc_alignment.json"));
  const auto j = nlohmann::json::parse(js);
  EXPECT_EQ(j["source_tokens"], nlohmann::json::array({"a", "b", "c"}));
  EXPECT_EQ(j["cross_attention"].size(), 2u);                  // [layer]
  EXPECT_EQ(j["cross_attention"][0].size(), 2u);               // [head]
  EXPECT_EQ(j["cross_attention"][0][0][0].size(), 3u);         // [query][key]: S = 3
  EXPECT_EQ(j["cross_attention"][0][0].size(), j["target_tokens"].size());
  EXPECT_EQ(j["faithfulness"]["deletion"].size(), 4u);  // 0..3 tokens removed

  const Result bad = run("explain --model " + model + " --input 'ab#'");
  EXPECT_EQ(bad.code, 1);
  EXPECT_TRUE(contains(bad.out, "'#'")) << bad.out;
  const Result method = run("explain --model " + model + " --input ab --method rollout");
  EXPECT_EQ(method.code, 1);
  EXPECT_TRUE(contains(method.out, "alignments only")) << method.out;
}
