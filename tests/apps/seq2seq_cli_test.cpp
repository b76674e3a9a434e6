// The seq2seq commands end to end through the `focus` binary: train --task translate on a tiny
// TSV, translate with bad lines in the input (each named on stderr, the rest still translated,
// exit 1), n-best output, eval with BLEU/chrF JSON (f32, bf16 and int8 weights), and clear
// errors for a wrong task, a missing TSV, a malformed TSV line and a translate run without
// --train.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "apps/reverse_task.hpp"

namespace fs = std::filesystem;

namespace {

struct Result {
  int code;
  std::string out, err;
};

Result run(const std::string& args, const std::string& dir) {
  const std::string err = dir + "/stderr.txt";
  const std::string cmd = std::string(FOCUS_BINARY) + " " + args + " 2>" + err;
  FILE* p = popen(cmd.c_str(), "r");
  Result r{-1, "", ""};
  if (!p) return r;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream e(err);
  r.err.assign(std::istreambuf_iterator<char>(e), std::istreambuf_iterator<char>());
  return r;
}

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

class Seq2SeqCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("focus_s2s_cli_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    focus::testing::write_reverse_task(dir_ + "/train.tsv", dir_ + "/valid.tsv");
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir_;
};

}  // namespace

TEST_F(Seq2SeqCli, TrainTranslateEval) {
  const Result t = run("train --task translate --train " + path("train.tsv") + " --valid " +
                           path("valid.tsv") + " --src-tokenizer char --tgt-tokenizer char --epochs 2 "
                           "--threads 1 --model-config '{\"d_model\":16,\"n_enc_layers\":1,"
                           "\"n_dec_layers\":1,\"n_heads\":2,\"d_ff\":32}' --out " + path("run"),
                       dir_);
  ASSERT_EQ(t.code, 0) << t.out << t.err;
  const std::string model = path("run/model_best.safetensors");
  ASSERT_TRUE(fs::exists(model));
  std::ifstream metrics(path("run/metrics.jsonl"));
  std::string line;
  int epochs = 0;
  while (std::getline(metrics, line)) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_TRUE(j.contains("val_bleu") && j.contains("val_chrf") && j.contains("train_seconds_total"));
    ++epochs;
  }
  EXPECT_EQ(epochs, 2);

  // Lines 2 (empty), 3 (unknown '#') and 4 (too long) are skipped with a message each.
  std::ofstream(path("in.txt")) << "abc\n\nab#\n" << std::string(200, 'a') << "\nba\n";
  const Result tr = run("translate --threads 1 --model " + model + " --input " + path("in.txt"), dir_);
  EXPECT_EQ(tr.code, 1) << tr.err;
  EXPECT_TRUE(contains(tr.err, "line 2: empty input")) << tr.err;
  EXPECT_TRUE(contains(tr.err, "line 3: unknown symbols '#'")) << tr.err;
  EXPECT_TRUE(contains(tr.err, "line 4:") && contains(tr.err, "maximum length")) << tr.err;
  EXPECT_TRUE(contains(tr.out, "abc\t")) << tr.out;
  EXPECT_TRUE(contains(tr.out, "ba\t")) << tr.out;

  std::ofstream(path("in2.txt")) << "abc\n";
  const Result nb = run("translate --threads 1 --beam 3 --nbest 3 --model " + model + " --input " +
                            path("in2.txt"), dir_);
  EXPECT_EQ(nb.code, 0) << nb.err;
  int lines = 0;
  for (char c : nb.out) lines += c == '\n';
  EXPECT_EQ(lines, 4) << nb.out;  // three hypotheses and a blank line

  const Result ev = run("eval --json --beam 2 --model " + model + " --input " + path("valid.tsv"), dir_);
  ASSERT_EQ(ev.code, 0) << ev.err;
  const auto j = nlohmann::json::parse(ev.out);
  EXPECT_TRUE(j["greedy"].contains("bleu") && j["beam2"].contains("chrf")) << ev.out;

  // bf16 inference weights: the same kind of report; an unknown --weights is refused.
  const Result ev16 = run("eval --json --beam 2 --weights bf16 --model " + model + " --input " +
                              path("valid.tsv"), dir_);
  ASSERT_EQ(ev16.code, 0) << ev16.err;
  EXPECT_TRUE(nlohmann::json::parse(ev16.out)["beam2"].contains("bleu")) << ev16.out;
  const Result tr16 = run("translate --threads 1 --weights bf16 --model " + model + " --input " +
                              path("in2.txt"), dir_);
  EXPECT_EQ(tr16.code, 0) << tr16.err;
  EXPECT_TRUE(contains(tr16.out, "abc\t")) << tr16.out;
  // int8 inference weights: accepted by eval (the JSON names them) and translate.
  const Result ev8 = run("eval --json --beam 2 --weights int8 --model " + model + " --input " +
                             path("valid.tsv"), dir_);
  ASSERT_EQ(ev8.code, 0) << ev8.err;
  const auto j8 = nlohmann::json::parse(ev8.out);
  EXPECT_EQ(j8["weights"], "int8") << ev8.out;
  EXPECT_EQ(j["weights"], "f32") << ev.out;
  EXPECT_TRUE(j8["greedy"].contains("bleu") && j8["beam2"].contains("chrf")) << ev8.out;
  const Result tr8 = run("translate --threads 1 --weights int8 --model " + model + " --input " +
                             path("in2.txt"), dir_);
  EXPECT_EQ(tr8.code, 0) << tr8.err;
  EXPECT_TRUE(contains(tr8.out, "abc\t")) << tr8.out;
  EXPECT_FALSE(contains(tr8.err, "image models")) << tr8.err;
  const Result bad16 = run("translate --weights fp8 --model " + model + " --input " + path("in2.txt"), dir_);
  EXPECT_NE(bad16.code, 0);
  EXPECT_TRUE(contains(bad16.err, "--weights")) << bad16.err;

  const Result wrong = run("eval --task g2p --model " + model, dir_);
  EXPECT_EQ(wrong.code, 1);
  EXPECT_TRUE(contains(wrong.err, "is a translate model")) << wrong.err;
}

TEST_F(Seq2SeqCli, BadInputs) {
  const Result no_files = run("train --task translate --epochs 1", dir_);
  EXPECT_NE(no_files.code, 0);
  EXPECT_TRUE(contains(no_files.err, "--train FILE")) << no_files.err;

  const Result missing = run("train --task translate --train " + path("nope.tsv") + " --valid " +
                                 path("valid.tsv") + " --out " + path("run"), dir_);
  EXPECT_EQ(missing.code, 1);
  EXPECT_TRUE(contains(missing.err, "nope.tsv")) << missing.err;

  std::ofstream(path("bad.tsv")) << "ab\tba\nno tab here\n";
  const Result bad = run("train --task translate --train " + path("bad.tsv") + " --valid " +
                             path("valid.tsv") + " --out " + path("run"), dir_);
  EXPECT_EQ(bad.code, 1);
  EXPECT_TRUE(contains(bad.err, "bad.tsv") && contains(bad.err, "2")) << bad.err;

  const Result unknown = run("train --task g2p --src-tokenizer sentencepiece", dir_);
  EXPECT_NE(unknown.code, 0);
  EXPECT_TRUE(contains(unknown.err, "sentencepiece")) << unknown.err;
}
