// Seq2seq model files: safetensors with the model's state dict and, in `__metadata__`, everything
// needed to use it: format tag, focus version, task (g2p | translate), the model config, both
// tokenizers (vocabularies and BPE merges, as JSON), and whether stress was kept (g2p). Written
// atomically (temp name + rename).
#pragma once
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "focus/infer/file_metadata.hpp"
#include "focus/models/seq2seq.hpp"
#include "focus/text/tokenizer.hpp"

namespace focus {

struct Seq2SeqModelFile {
  std::unique_ptr<Seq2Seq> model;  // in eval mode after load
  std::unique_ptr<Tokenizer> src_tok, tgt_tok;
  std::string task = "g2p";
  nlohmann::json extra = nlohmann::json::object();  // e.g. keep_stress, training summary
};

void save_seq2seq(const std::string& path, const Seq2Seq& model, const Tokenizer& src_tok,
                  const Tokenizer& tgt_tok, const std::string& task,
                  const nlohmann::json& extra = nlohmann::json::object());
// IOError for a missing file; FormatError for a file that is not a focus seq2seq model (names
// what is missing or what it is instead), corrupt metadata, or mismatching tensors.
Seq2SeqModelFile load_seq2seq(const std::string& path);

}  // namespace focus
