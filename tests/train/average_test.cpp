// Checkpoint averaging (train/average.hpp): the mean of three model files equals the element-wise
// mean of their weights and loads as a model; one file averages to itself; files of different
// models, checkpoints, a missing file and an output among the inputs are refused with errors that
// name them.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "../data/temp_dir.hpp"
#include "../support/expect_error.hpp"
#include "focus/infer/seq2seq_file.hpp"
#include "focus/io/safetensors.hpp"
#include "focus/models/seq2seq.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/train/average.hpp"

using namespace focus;
using focus::testing::expect_error;

namespace {

struct Toks {
  std::unique_ptr<Tokenizer> src = train_tokenizer("char", {"abcde"});
  std::unique_ptr<Tokenizer> tgt = train_tokenizer("char", {"vwxyz"});
};

Seq2SeqConfig tiny(const Toks& t, int64_t d_ff = 24) {
  Seq2SeqConfig c;
  c.src_vocab = t.src->vocab().size();
  c.tgt_vocab = t.tgt->vocab().size();
  c.d_model = 16;
  c.n_enc_layers = 1;
  c.n_dec_layers = 1;
  c.n_heads = 2;
  c.d_ff = d_ff;
  c.max_len = 12;
  return c;
}

std::string save_random(const focus::testing::TempDir& dir, const std::string& name,
                        const Toks& t, uint64_t seed, int64_t d_ff = 24) {
  Rng rng(seed);
  Seq2Seq m(tiny(t, d_ff), rng);
  save_seq2seq(dir.file(name), m, *t.src, *t.tgt, "translate", {{"epoch", seed}});
  return dir.file(name);
}

}  // namespace

TEST(AverageModelFiles, MeanOfThreeFilesIsTheElementwiseMean) {
  focus::testing::TempDir dir;
  const Toks t;
  const std::vector<std::string> in = {save_random(dir, "a.safetensors", t, 1),
                                       save_random(dir, "b.safetensors", t, 2),
                                       save_random(dir, "c.safetensors", t, 3)};
  const AverageReport r = average_model_files(in, dir.file("avg.safetensors"));
  EXPECT_EQ(r.files, 3);
  std::vector<SafetensorsFile> f;
  for (const auto& p : in) f.push_back(load_safetensors(p));
  const SafetensorsFile avg = load_safetensors(dir.file("avg.safetensors"));
  ASSERT_EQ(avg.tensors.size(), f[0].tensors.size());
  EXPECT_EQ(r.tensors, int(f[0].tensors.size()));
  int64_t n = 0;
  for (const auto& [name, a] : avg.tensors) {
    const auto x = a.to_vector<double>();
    const auto p = f[0].tensors.at(name).to_vector<double>();
    const auto q = f[1].tensors.at(name).to_vector<double>();
    const auto s = f[2].tensors.at(name).to_vector<double>();
    ASSERT_EQ(x.size(), p.size()) << name;
    for (size_t i = 0; i < x.size(); ++i)
      EXPECT_NEAR(x[i], (p[i] + q[i] + s[i]) / 3, 1e-6 * (1 + std::abs(x[i]))) << name << " " << i;
    n += int64_t(x.size());
  }
  EXPECT_EQ(r.parameters, n);
  // The average is a model file of the same model, and says what it was made from.
  const Seq2SeqModelFile m = load_seq2seq(dir.file("avg.safetensors"));
  EXPECT_EQ(m.task, "translate");
  EXPECT_EQ(m.src_tok->to_json(), t.src->to_json());
  EXPECT_EQ(nlohmann::json::parse(avg.metadata.at("averaged_from")), nlohmann::json(in));
  // One file averages to itself, bit for bit.
  average_model_files({in[1]}, dir.file("one.safetensors"));
  const SafetensorsFile one = load_safetensors(dir.file("one.safetensors"));
  for (const auto& [name, a] : one.tensors)
    EXPECT_EQ(a.to_vector<float>(), f[1].tensors.at(name).to_vector<float>()) << name;
}

TEST(AverageModelFiles, RefusesWhatIsNotOneModel) {
  focus::testing::TempDir dir;
  const Toks t;
  const std::string a = save_random(dir, "a.safetensors", t, 1);
  const std::string wider = save_random(dir, "wider.safetensors", t, 2, 32);
  expect_error<FormatError>([&] { average_model_files({a, wider}, dir.file("o.safetensors")); },
                            {"a.safetensors", "wider.safetensors", "model_config"});
  Toks other;
  other.src = train_tokenizer("char", {"abcdf"});
  const std::string retok = save_random(dir, "retok.safetensors", other, 2);
  expect_error<FormatError>([&] { average_model_files({a, retok}, dir.file("o.safetensors")); },
                            {"retok.safetensors", "src_tokenizer"});
  expect_error<IOError>(
      [&] { average_model_files({a, dir.file("missing.safetensors")}, dir.file("o.safetensors")); },
      {"missing.safetensors"});
  expect_error<ValueError>([&] { average_model_files({a}, a); }, {"a.safetensors", "inputs"});
  expect_error<ValueError>([&] { average_model_files({}, dir.file("o.safetensors")); },
                           {"no model files"});
  save_safetensors(dir.file("ckpt.safetensors"), load_safetensors(a).tensors,
                   {{"format", "focus-seq2seq-checkpoint/1"}});
  expect_error<FormatError>(
      [&] { average_model_files({dir.file("ckpt.safetensors")}, dir.file("o.safetensors")); },
      {"ckpt.safetensors", "checkpoint"});
  save_safetensors(dir.file("plain.safetensors"), load_safetensors(a).tensors);
  expect_error<FormatError>(
      [&] { average_model_files({dir.file("plain.safetensors")}, dir.file("o.safetensors")); },
      {"plain.safetensors", "not a focus model"});
  EXPECT_FALSE(std::filesystem::exists(dir.file("o.safetensors")));  // nothing half-written
}
