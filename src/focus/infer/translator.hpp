// Translator: the seq2seq predictor. Loads a focus seq2seq model file with its tokenizers,
// prepares the weights for inference once (eval mode; Module::set_inference_dtype: bf16 packed
// panels with weights = BF16; with I8 every Linear of encoder and decoder (attention projections,
// feed-forward) and the tied output projection get int8 weights per output channel, activations
// quantised per row on each call, the decoder's one-token steps included), checks every input in
// one place (empty text, symbols the source tokenizer cannot encode, more tokens than the model's
// max_len: InputError naming the item),
// normalises sources per task (g2p: lower-cased), and decodes in length-bucketed batches with
// greedy (beam 1) or beam search, n-best per input. A batched answer equals the answer to the
// same input alone (the searches treat each row independently; tests/infer checks it).
//
//   Translator tr("runs/g2p/model_best.safetensors");
//   SearchOptions so;  so.beam = 5;  so.nbest = 3;
//   for (const Translation& t : tr.translate({"colonel", "yacht"}, so))
//     for (const TranslationHypothesis& h : t.nbest) std::cout << h.text << " " << h.score << "\n";
//
// Not thread-safe: one call at a time per Translator (the model's forward keeps no state between
// calls, but the kernels use every thread already).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "focus/infer/input_error.hpp"
#include "focus/infer/seq2seq_decode.hpp"
#include "focus/infer/seq2seq_file.hpp"

namespace focus {

struct TranslatorOptions {
  DType weights = DType::F32;  // F32, BF16 or I8 inference weights
  // I8 only: the tied output projection (h @ tgt_emb^T) int8 too; false keeps it F32.
  bool int8_output = true;
  int64_t max_tokens = 4096;   // source tokens per decoding batch (beam rows count beam times)
};

struct TranslationHypothesis {
  std::string text;             // decoded target
  std::vector<int64_t> tokens;  // target ids, without <s> / </s>
  double log_prob = 0, score = 0;  // score = log p / length^length_penalty
  bool finished = true;         // false when cut at the maximum length
};

struct Translation {
  std::string input;                         // as given
  std::vector<TranslationHypothesis> nbest;  // best first, at most SearchOptions::nbest
};

class Translator {
 public:
  // Loads `path` (IOError if missing; FormatError if it is not a focus seq2seq model file, names
  // what it is instead: an image model, a training checkpoint, corrupt metadata or tensors).
  explicit Translator(const std::string& path, const TranslatorOptions& opt = {});
  // Takes a model already in memory (tests, a trainer's model saved and reloaded).
  explicit Translator(Seq2SeqModelFile file, const TranslatorOptions& opt = {});

  // The source as the model reads it (g2p: lower-cased).
  std::string normalize(const std::string& text) const;
  // The checks alone: the token ids the model reads for `text`, or InputError(index, reason) with
  // reason "empty input", "unknown symbols 'x', 'y' (the model knows N symbols)" or
  // "N tokens, over the maximum length M".
  std::vector<int64_t> encode(const std::string& text, size_t index = 0) const;
  // Checks every input (InputError for the first bad one, nothing decoded), then decodes them in
  // batches; one Translation per input, in input order. ValueError for nbest > beam.
  std::vector<Translation> translate(const std::vector<std::string>& inputs,
                                     const SearchOptions& search) const;
  // The same for inputs already checked and encoded by encode() (sources[i] = encode(inputs[i])),
  // so a caller that checks inputs one by one does not tokenize them twice.
  std::vector<Translation> translate_encoded(const std::vector<std::string>& inputs,
                                             const std::vector<std::vector<int64_t>>& sources,
                                             const SearchOptions& search) const;
  // Decodes the groups' sources (normalised; over-long ones truncated, unknown symbols as <unk>,
  // so every reference counts) and scores them: WER / PER (g2p) or BLEU / chrF (translate).
  // limit > 0 takes the first `limit` groups.
  CorpusScore score(const std::vector<RefGroup>& groups, const SearchOptions& search,
                    int64_t limit = 0) const;

  const std::string& task() const { return file_.task; }        // "g2p" | "translate"
  const nlohmann::json& extra() const { return file_.extra; }   // keep_stress, ...
  const Tokenizer& source_tokenizer() const { return *file_.src_tok; }
  const Tokenizer& target_tokenizer() const { return *file_.tgt_tok; }
  // The model, in eval mode with the prepared weights (explanations run it directly).
  Seq2Seq& model() const { return *file_.model; }
  DType weights() const { return opt_.weights; }
  // The Linear layers that run int8 (weights = I8; Linear::int8_active), by
  // Module::named_modules name; empty otherwise. The tied output projection is not a Linear:
  // it is int8 with weights = I8 and int8_output (tests/infer compare its logits).
  std::vector<std::string> int8_layers() const;

 private:
  Seq2SeqModelFile file_;
  TranslatorOptions opt_;
};

}  // namespace focus
