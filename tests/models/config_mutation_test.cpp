// Seeded mutations of model files (tests/support/mutate.hpp), the outside files that carry model
// configs: image models (cnn_se, vit: config JSON read by ConfigReader through the registry) and
// seq2seq models (config plus tokenizer JSON), read by load_model / load_seq2seq. Bit flips,
// overwrites, truncations and appends of the whole file, then targeted edits of every config key
// (negative, 0, 2^31, 2^40, 2^63 - 1, 2^63, 2^64 - 1, 1e300, wrong types, values nested 100,000
// deep) and of the tokenizers. Values within ConfigReader's range that make a model of gigabytes
// are not tried: the loaders build the model from the config before comparing it with the file's
// tensors (see the report of issue 17). A model that loads must run a forward pass.
#include <gtest/gtest.h>

#include "data/temp_dir.hpp"
#include "focus/infer/model_file.hpp"
#include "focus/infer/seq2seq_file.hpp"
#include "focus/io/safetensors.hpp"
#include "focus/models/cnn_se.hpp"
#include "focus/models/vit.hpp"
#include "focus/tensor/rng.hpp"
#include "support/mutate.hpp"

FOCUS_TESTING_DEFINE_ALLOC_WATCH();

using namespace focus;
using namespace focus::testing;
using J = nlohmann::json;

namespace {

// JSON texts tried for each config key; the integer ones past ConfigReader's range must be
// refused (and the wrong types, and a value nested 100,000 deep).
std::vector<std::pair<std::string, bool>> edits_for(const J& v) {
  std::vector<std::pair<std::string, bool>> out = {
      {"\"x\"", true}, {"null", true}, {std::string(100000, '[') + std::string(100000, ']'), true}};
  const auto item = [&](const std::string& x) { return v.is_array() ? "[" + x + "]" : x; };
  if (v.is_number_integer() || v.is_array()) {
    for (const char* big :
         {"2147483648", "1099511627776", "9223372036854775807", "9223372036854775808",
          "18446744073709551615", "-9223372036854775808", "1e300"})
      out.emplace_back(item(big), true);
    out.emplace_back(item("-1"), false);
    out.emplace_back(item("0"), false);
  } else if (v.is_number()) {
    out.insert(out.end(), {{"-1.0", false}, {"1e300", false}});
  }
  return out;
}

// The file with one metadata value replaced.
std::string with_meta(const std::string& path, const std::string& key, const std::string& value,
                      const std::string& out) {
  SafetensorsFile f = load_safetensors(path);
  f.metadata[key] = value;
  save_safetensors(out, f.tensors, f.metadata);
  return read_file(out);
}

template <class Load>
void mutate_model_file(Tally& tally, const TempDir& dir, const std::string& valid_path,
                       const std::vector<std::string>& json_keys, Load&& load) {
  const std::string path = dir.file("mutant.safetensors");
  const std::string valid = read_file(valid_path);
  ASSERT_EQ(load(valid_path), "") << valid_path;
  ++tally.files;
  MutationPlan plan;
  plan.single_flips = plan.multi_flips = plan.overwrites = 24;
  plan.short_truncations = 16;
  plan.reject_all_truncations = plan.reject_appends = true;
  const uint64_t seed = kMutationSeed + static_cast<uint64_t>(tally.files);
  const std::vector<Mutant> mutants = Mutator(seed).mutate(valid, plan);
  EXPECT_EQ(mutants.size(), Mutator::planned_count(valid.size(), plan, seed));
  for (const Mutant& m : mutants) feed(tally, path, m, load);

  const SafetensorsFile f = load_safetensors(valid_path);
  for (const std::string& key : json_keys) {
    const J j = J::parse(f.metadata.at(key));
    if (key == "model_config") {
      for (const auto& [field, v] : j.items())
        for (const auto& [value, must_reject] : edits_for(v)) {
          const std::string bytes =
              with_meta(valid_path, key, dump_with(j, field, value), dir.file("edit"));
          feed(tally, path,
               {fmt::format("{}.{} = {}", key, field, value.substr(0, 30)), bytes, must_reject},
               load);
        }
      J e = j;
      e["unknown_key"] = 1;
      feed(tally, path,
           {"an unknown key", with_meta(valid_path, key, e.dump(), dir.file("edit")), true}, load);
    }
    // Config and tokenizers must be objects; class names, normalisation and extra may load.
    const bool object = key == "model_config" || key.find("tokenizer") != std::string::npos;
    for (const std::string& whole : {std::string("[]"), std::string("1"), std::string("{"),
                                     std::string(100000, '[') + std::string(100000, ']')})
      feed(tally, path,
           {fmt::format("{} = {}", key, whole.substr(0, 10)),
            with_meta(valid_path, key, whole, dir.file("edit")), object || whole == "{"},
           load);
  }
}

TEST(ConfigMutation, ImageModelFiles) {
  TempDir dir;
  Rng rng(3);
  CnnSeConfig cc;
  cc.channels = {4};
  cc.num_classes = 3;
  VitConfig vc;
  vc.image_size = 8;
  vc.dim = 8;
  vc.depth = 1;
  vc.heads = 2;
  ModelInfo info;
  info.class_names = {"a", "b", "c"};
  save_model(dir.file("cnn.safetensors"), CnnSe(cc, rng), info);
  vc.num_classes = 3;
  save_model(dir.file("vit.safetensors"), Vit(vc, rng), info);
  Tally tally{"model config (image)"};
  const auto load = [](const std::string& p) -> std::string {
    LoadedModel m = load_model(p);
    const Tensor y = m.model->forward(Tensor::zeros({1, 1, 8, 8}));
    if (y.shape().size() != 2 || y.shape()[0] != 1)
      return "logits of shape " + to_string(y.shape());
    return "";
  };
  for (const char* f : {"cnn.safetensors", "vit.safetensors"})
    mutate_model_file(tally, dir, dir.file(f), {"model_config", "class_names", "normalization"},
                      load);
  tally.expect_clean();
  EXPECT_GT(tally.loaded, 0);
  EXPECT_GT(tally.rejected, 0);
  EXPECT_EQ(tally.rejected_naming_file, tally.rejected);
}

TEST(ConfigMutation, Seq2SeqModelFiles) {
  TempDir dir;
  Rng rng(4);
  const std::vector<std::string> src = {"hello", "world", "low"}, tgt = {"HH AH L OW", "W ER L D"};
  TokenizerOptions opt;
  opt.bpe_merges = 6;
  const auto st = train_tokenizer("bpe", src, opt), tt = train_tokenizer("word", tgt);
  Seq2SeqConfig c;
  c.src_vocab = st->vocab().size();
  c.tgt_vocab = tt->vocab().size();
  c.d_model = 8;
  c.n_enc_layers = c.n_dec_layers = 1;
  c.n_heads = 2;
  c.d_ff = 16;
  c.max_len = 16;
  save_seq2seq(dir.file("s2s.safetensors"), Seq2Seq(c, rng), *st, *tt, "g2p");
  Tally tally{"model config (seq2seq)"};
  const auto load = [](const std::string& p) -> std::string {
    const Seq2SeqModelFile m = load_seq2seq(p);
    if (m.src_tok->vocab().size() != m.model->config().src_vocab) return "source vocabulary";
    if (m.tgt_tok->vocab().size() != m.model->config().tgt_vocab) return "target vocabulary";
    return "";
  };
  mutate_model_file(tally, dir, dir.file("s2s.safetensors"),
                    {"model_config", "src_tokenizer", "tgt_tokenizer", "extra"}, load);
  tally.expect_clean();
  EXPECT_GT(tally.loaded, 0);
  EXPECT_GT(tally.rejected, 0);
  // Every rejection names the file, tokenizer errors included (read_model_metadata adds it).
  EXPECT_EQ(tally.rejected_naming_file, tally.rejected);
}

}  // namespace
