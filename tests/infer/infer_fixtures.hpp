// Small model files for the predictor tests, written into a test's TempDir: an untrained seq2seq
// model on a 3-letter alphabet (char tokenizers, max_len 8) and an untrained cnn_se image model
// (1 x 28 x 28 inputs, 10 classes, named). Untrained weights are enough: the tests compare the
// predictors with other code paths and batched with single runs, not with references.
#pragma once
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "focus/infer/model_file.hpp"
#include "focus/infer/seq2seq_file.hpp"
#include "focus/models/cnn_se.hpp"
#include "focus/models/seq2seq.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/text/tokenizer.hpp"

namespace focus::testing {

inline Seq2SeqModelFile tiny_seq2seq(const std::string& task = "translate", uint64_t seed = 5) {
  Seq2SeqModelFile f;
  f.task = task;
  f.src_tok = train_tokenizer("char", {"abc", "cab", "bca"});
  f.tgt_tok = train_tokenizer("char", {"cba", "bac", "acb"});
  const Seq2SeqConfig c = seq2seq_config_from_json(
      {{"src_vocab", f.src_tok->vocab().size()}, {"tgt_vocab", f.tgt_tok->vocab().size()},
       {"d_model", 16}, {"n_enc_layers", 1}, {"n_dec_layers", 1}, {"n_heads", 2}, {"d_ff", 32},
       {"max_len", 8}});
  Rng rng(seed);
  f.model = std::make_unique<Seq2Seq>(c, rng);
  return f;
}

inline void save_tiny_seq2seq(const std::string& path, const std::string& task = "translate") {
  const Seq2SeqModelFile f = tiny_seq2seq(task);
  save_seq2seq(path, *f.model, *f.src_tok, *f.tgt_tok, f.task);
}

inline ModelInfo tiny_image_info() {
  ModelInfo info;
  info.class_names = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"};
  return info;
}

inline std::unique_ptr<CnnSe> tiny_cnn(uint64_t seed = 3) {
  CnnSeConfig c;
  c.channels = {4, 8};
  c.se_reduction = 2;
  Rng rng(seed);
  return std::make_unique<CnnSe>(c, rng);
}

inline void save_tiny_image_model(const std::string& path) {
  save_model(path, *tiny_cnn(), tiny_image_info());
}

}  // namespace focus::testing
