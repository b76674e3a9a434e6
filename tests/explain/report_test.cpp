// `focus report`: tiny real runs built in a temp folder (a ViT and a CNN trained for 2 epochs on
// 400 Fashion-MNIST images through the Trainer; a translate run from a freshly initialised
// Seq2Seq with a hand-written metrics.jsonl), their reports' sections and charts, the accuracy
// they state checked against evaluate(), self-containment (no URL of any kind), missing optional
// pieces, errors naming the file, the CLI, and the page in headless Chromium (no console message,
// no network request, the SVGs parsed as elements, a non-blank screenshot).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "explain/report_support.hpp"
#include "focus/data/dataset.hpp"
#include "focus/explain/report.hpp"
#include "focus/infer/seq2seq_file.hpp"
#include "focus/models/image_classifier.hpp"
#include "focus/models/seq2seq.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/text/tokenizer.hpp"
#include "focus/train/trainer.hpp"
#include "support/expect_error.hpp"

using namespace focus;
using namespace focus::report_test;
using focus::testing::expect_error;
namespace fs = std::filesystem;

namespace {

// Small enough for a test: the first 300 test images, 2 examples each way, 2 faithfulness images.
ReportOptions quick_options() {
  ReportOptions o;
  o.limit = 300;
  o.examples = 2;
  o.faithfulness_images = 2;
  o.alignments = 3;
  o.worst = 5;
  return o;
}

// A real image run: `model` trained for 2 epochs on 400 images (100 held out) into `dir`.
void train_image_run(const std::string& dir, const std::string& cli_name, const std::string& registry,
                     const std::string& model_config) {
  TrainConfig cfg;
  cfg.model = cli_name;
  cfg.model_config = model_config;
  cfg.epochs = 2;
  cfg.batch = 50;
  cfg.val_size = 100;
  cfg.limit_train = 400;
  cfg.augment = false;
  cfg.warmup_epochs = 0.5;
  cfg.out = dir;
  cfg = with_task_defaults(cfg);
  static const ImageDataset train = load_fashion_mnist(kFashionMnistDir, Split::Train);
  Rng rng(cfg.seed);
  auto model = make_image_model(registry, nlohmann::json::parse(model_config), rng);
  Trainer trainer(cfg, *model, train);
  trainer.fit();
}

// A translate run: reversal TSVs, a fresh tiny Seq2Seq, and two epochs of hand-written metrics.
void make_translate_run(const std::string& dir) {
  fs::create_directories(dir);
  std::ofstream tr(dir + "/train.tsv"), va(dir + "/valid.tsv"), te(dir + "/test.tsv");
  const char* words[] = {"ab", "ba", "abc", "cab", "bca", "aab", "cc", "acb", "bb a", "ca b"};
  std::vector<std::string> src, tgt;
  for (const char* w : words) {
    const std::string s = w, r(s.rbegin(), s.rend());
    tr << s << "\t" << r << "\n";
    va << s << "\t" << r << "\n";
    te << r << "\t" << s << "\n";
    src.push_back(s);
    tgt.push_back(r);
  }
  tr.close(), va.close(), te.close();
  TrainConfig cfg;
  cfg.task = "translate";
  cfg.train_file = dir + "/train.tsv";
  cfg.valid_file = dir + "/valid.tsv";
  cfg.test_file = dir + "/test.tsv";
  cfg.src_tokenizer = cfg.tgt_tokenizer = "char";
  cfg.out = dir;
  cfg = with_task_defaults(cfg);
  std::ofstream(dir + "/config.json") << to_json(cfg).dump(2);
  std::ofstream m(dir + "/metrics.jsonl");
  m << R"({"epoch":1,"lr":0.001,"train_loss":2.5,"val_loss":2.2,"val_bleu":3.5,"val_chrf":20.1,"train_seconds_total":1.5})" "\n"
    << R"({"epoch":2,"lr":0.0005,"train_loss":1.9,"val_loss":1.8,"val_bleu":9.0,"val_chrf":31.0,"train_seconds_total":3.0})" "\n";
  m.close();
  const auto src_tok = train_tokenizer("char", src), tgt_tok = train_tokenizer("char", tgt);
  Seq2SeqConfig mc;
  mc.src_vocab = src_tok->vocab().size();
  mc.tgt_vocab = tgt_tok->vocab().size();
  mc.d_model = 16;
  mc.n_enc_layers = mc.n_dec_layers = 1;
  mc.n_heads = 2;
  mc.d_ff = 32;
  mc.max_len = 10;
  Rng rng(3);
  Seq2Seq model(mc, rng);
  save_seq2seq(dir + "/model_best.safetensors", model, *src_tok, *tgt_tok, "translate");
}

// The runs are built on first use and kept for the suite (ctest runs each test in a process of
// its own, which then builds only the runs it needs).
class ReportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = (fs::temp_directory_path() / ("focus_report_" + std::to_string(::getpid()))).string();
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }
  // The run directory `name` (vit, cnn, translate), built if needed.
  static std::string run(const std::string& name) {
    const std::string dir = root_ + "/" + name;
    if (fs::exists(dir + "/config.json")) return dir;
    if (name == "vit")
      train_image_run(dir, "vit", "vit", R"({"dim":16,"depth":2,"heads":2,"patch":7,"mlp_ratio":2,"dropout":0})");
    else if (name == "cnn")
      train_image_run(dir, "cnn-se", "cnn_se", R"({"channels":[4,8,8]})");
    else
      make_translate_run(dir);
    return dir;
  }
  static std::string root_;
};
std::string ReportTest::root_;

void expect_sections(const std::string& html, std::initializer_list<const char*> ids) {
  for (const char* id : ids)
    EXPECT_NE(html.find(fmt::format("<section id=\"{}\">", id)), std::string::npos) << id;
}

void expect_titles(const std::string& html, std::initializer_list<const char*> titles) {
  for (const char* t : titles) EXPECT_NE(html.find(fmt::format(">{}</text>", t)), std::string::npos) << t;
}

}  // namespace

TEST_F(ReportTest, VitRun) {
  const Report r = build_report(run("vit"), quick_options());
  const std::string& h = r.html;
  EXPECT_TRUE(r.missing.empty()) << r.missing.front();
  expect_sections(h, {"summary", "curves", "test", "examples", "faithfulness", "config"});
  expect_titles(h, {"Loss", "Accuracy", "Learning rate", "Confusion matrix", "Per-class scores",
                    "Faithfulness areas", "Deletion curves (mean)", "Insertion curves (mean)"});
  EXPECT_EQ(r.charts, count(h, "<svg"));
  EXPECT_EQ(r.charts, 8);
  EXPECT_EQ(count(h, "class=\"example\""), 4);  // 2 most + 2 least confident
  EXPECT_EQ(count(h, "src=\"data:image/png;base64,"), 4);
  EXPECT_NE(h.find("rollout relevance"), std::string::npos);  // the ViT's overlay
  for (const char* m : {">attention<", ">rollout<", ">grad-rollout<"})  // faithfulness rows
    EXPECT_NE(h.find(m), std::string::npos) << m;
  EXPECT_NE(h.find("<td>vit</td>"), std::string::npos);
  EXPECT_NE(h.find("2 of 2"), std::string::npos);  // epochs
  expect_self_contained(h);
  // The stated accuracy agrees with an independent evaluation of the same model and images.
  LoadedModel lm = load_model(run("vit") + "/model_best.safetensors");
  const ImageDataset test = load_fashion_mnist(kFashionMnistDir, Split::Test);
  std::vector<int64_t> idx(300);
  std::iota(idx.begin(), idx.end(), int64_t(0));
  const EvalResult ev = evaluate(*lm.model, test, idx, lm.info.norm);
  EXPECT_NE(h.find(fmt::format("<td>test accuracy (first 300 images)</td><td>{:.2f}%</td>",
                               100 * ev.accuracy())),
            std::string::npos);
  // The confusion matrix cells hold the same counts.
  for (int64_t k = 0; k < 10; ++k)
    EXPECT_NE(h.find(fmt::format("predicted {}: {} (", lm.info.class_names[k], ev.cm.at(k, k))),
              std::string::npos) << k;
}

TEST_F(ReportTest, CnnRunUsesGradCam) {
  const Report r = build_report(run("cnn"), quick_options());
  expect_sections(r.html, {"curves", "test", "examples", "faithfulness", "config"});
  EXPECT_NE(r.html.find("grad-cam relevance"), std::string::npos);
  EXPECT_NE(r.html.find("<td>cnn_se</td>"), std::string::npos);
  EXPECT_NE(r.html.find("se_reduction"), std::string::npos);  // the model's full config
  expect_self_contained(r.html);
}

TEST_F(ReportTest, TranslateRun) {
  const Report r = build_report(run("translate"), quick_options());
  const std::string& h = r.html;
  EXPECT_TRUE(r.missing.empty()) << r.missing.front();
  expect_sections(h, {"curves", "test", "alignments", "config"});
  expect_titles(h, {"Loss", "Validation BLEU / chrF", "Learning rate"});
  EXPECT_EQ(count(h, "<h2>"), 5);  // summary, curves, test, alignments, config
  EXPECT_EQ(r.charts, 3 + 3);      // curves + 3 alignments
  EXPECT_NE(h.find("Greedy decoding of the first 10 test sentences"), std::string::npos);
  EXPECT_NE(h.find("best validation BLEU"), std::string::npos);
  EXPECT_NE(h.find("9.00 (epoch 2)"), std::string::npos);
  EXPECT_NE(h.find("mean over the 3 samples"), std::string::npos);  // token faithfulness
  expect_self_contained(h);
}

TEST_F(ReportTest, MissingPiecesAreListed) {
  const std::string dir = root_ + "/bare";
  fs::create_directories(dir);
  fs::copy_file(run("vit") + "/config.json", dir + "/config.json", fs::copy_options::overwrite_existing);
  Report r = build_report(dir, quick_options());
  ASSERT_EQ(r.missing.size(), 2u);
  EXPECT_NE(r.missing[0].find("metrics.jsonl"), std::string::npos);
  EXPECT_NE(r.missing[1].find("no model file"), std::string::npos);
  EXPECT_NE(r.html.find("Not in this report"), std::string::npos);
  EXPECT_EQ(r.html.find("<section id=\"test\">"), std::string::npos);
  expect_sections(r.html, {"summary", "config"});
  // With the model but without the data set: the evaluation is missing, said with the reason.
  fs::copy_file(run("vit") + "/model_best.safetensors", dir + "/model_last.safetensors",
                fs::copy_options::overwrite_existing);
  ReportOptions o = quick_options();
  o.data_dir = dir + "/no-such-data";
  r = build_report(dir, o);
  ASSERT_EQ(r.missing.size(), 2u);
  EXPECT_NE(r.missing[1].find("no-such-data"), std::string::npos) << r.missing[1];
  EXPECT_NE(r.html.find("model_last.safetensors"), std::string::npos);
}

TEST_F(ReportTest, ErrorsNameTheFile) {
  expect_error<IOError>([&] { build_report(root_ + "/nope"); }, {"nope", "does not exist"});
  const std::string dir = root_ + "/broken";
  fs::create_directories(dir);
  expect_error<IOError>([&] { build_report(dir); }, {dir + "/config.json"});
  std::ofstream(dir + "/config.json") << "{\"epochs\": 3,";
  expect_error<FormatError>([&] { build_report(dir); }, {"config.json", "not valid JSON"});
  std::ofstream(dir + "/config.json") << "{\"epochz\": 3}";
  expect_error<FormatError>([&] { build_report(dir); }, {"config.json", "epochz"});
  fs::copy_file(run("vit") + "/config.json", dir + "/config.json", fs::copy_options::overwrite_existing);
  std::ofstream(dir + "/metrics.jsonl") << "{\"epoch\": 1}\n{\"epoch\": 2,\n";
  expect_error<FormatError>([&] { build_report(dir); }, {"metrics.jsonl", "line 2"});
  fs::remove(dir + "/metrics.jsonl");
  std::ofstream(dir + "/model_best.safetensors") << "not a model";
  expect_error<FormatError>([&] { build_report(dir); }, {"model_best.safetensors"});
  fs::copy_file(run("translate") + "/model_best.safetensors", dir + "/model_best.safetensors",
                fs::copy_options::overwrite_existing);  // a seq2seq model in an image run
  expect_error<FormatError>([&] { build_report(dir); }, {"seq2seq", "fashion-mnist"});
  ReportOptions o;
  o.limit = -1;
  expect_error<ValueError>([&] { build_report(run("vit"), o); }, {"limit -1"});
}

TEST_F(ReportTest, WritesAtomicallyAndThroughTheCli) {
  ReportOptions o = quick_options();
  o.faithfulness_images = 0;
  const Report r = write_report(run("cnn"), "", o);
  EXPECT_EQ(read_text(run("cnn") + "/report.html"), r.html);
  EXPECT_EQ(r.html.find("<section id=\"faithfulness\">"), std::string::npos);  // skipped by option
  const std::string out = root_ + "/cli.html";
  Cmd c = run_command(std::string(FOCUS_BINARY) + " report " + run("vit") + " -o " + out +
                      " --limit 100 --examples 1 --faithfulness-images 1 --threads 1");
  EXPECT_EQ(c.code, 0) << c.out;
  EXPECT_NE(c.out.find("8 charts"), std::string::npos) << c.out;
  EXPECT_NE(read_text(out).find("test accuracy (first 100 images)"), std::string::npos);
  c = run_command(std::string(FOCUS_BINARY) + " report " + root_ + "/missing-run");
  EXPECT_EQ(c.code, 1);
  EXPECT_NE(c.out.find(root_ + "/missing-run"), std::string::npos) << c.out;
  c = run_command(std::string(FOCUS_BINARY) + " report " + run("vit") + " --limit -3");
  EXPECT_EQ(c.code, 2) << c.out;
}

// Headless Chromium loads every kind of report without a console message or a network request,
// parses all the SVGs, and renders a non-blank page.
TEST_F(ReportTest, LoadsInHeadlessChromium) {
  const std::string browser = chromium_path();
  if (browser.empty()) {
    if (skip_browser_tests()) GTEST_SKIP() << "FOCUS_SKIP_BROWSER_TESTS=1 and no chromium";
    FAIL() << "headless Chromium is needed for this test: run tools/install-deps.sh (installs "
              "Debian's chromium), or set FOCUS_SKIP_BROWSER_TESTS=1 to skip it";
  }
  for (const std::string name : {"vit", "translate"}) {
    const std::string html = build_report(run(name), quick_options()).html;
    const std::string page = root_ + "/" + name + "_page.html";
    std::ofstream(page) << html;
    const BrowserCheck b = load_in_chromium(browser, page, root_ + "/" + name + "_browser");
    EXPECT_TRUE(b.ran) << b.log;
    EXPECT_TRUE(b.console.empty()) << name << ": " << b.console;
    EXPECT_TRUE(b.requests.empty()) << name << ": " << b.requests;
    EXPECT_EQ(count(b.dom, "<svg"), count(html, "<svg")) << name;
    EXPECT_NE(b.dom.find("Training report: " + name), std::string::npos);
    EXPECT_GT(b.screenshot_colors, 16) << name;
    EXPECT_GT(b.screenshot_variance, 1e-4) << name;
  }
}

// The checks above can fail: a page with a console error, a script error and a remote image is
// caught on all three counts.
TEST_F(ReportTest, BrowserCheckCatchesBadPages) {
  const std::string browser = chromium_path();
  if (browser.empty()) {
    if (skip_browser_tests()) GTEST_SKIP() << "FOCUS_SKIP_BROWSER_TESTS=1 and no chromium";
    FAIL() << "headless Chromium is needed: run tools/install-deps.sh";
  }
  const std::string page = root_ + "/bad.html";
  std::ofstream(page) << "<!DOCTYPE html><html><body><h1>bad</h1>"
                         "<img src=\"https://example.invalid/x.png\">"
                         "<script>console.error('boom'); undefinedFunction();</script></body></html>";
  const BrowserCheck b = load_in_chromium(browser, page, root_ + "/bad_browser");
  EXPECT_TRUE(b.ran) << b.log;
  EXPECT_NE(b.console.find("boom"), std::string::npos) << b.log;
  EXPECT_NE(b.console.find("undefinedFunction"), std::string::npos) << b.log;
  EXPECT_NE(b.requests.find("https://example.invalid/x.png"), std::string::npos) << b.requests;
}
