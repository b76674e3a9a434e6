// Data for the sequence-to-sequence tasks: loading (g2p: CMUdict split by a stable hash of the
// word; translate: the user's TSV files), tokenizers trained on the training side, encoding to
// id sequences, padded batches, and batched decoding of a corpus with its metrics
// (g2p: WER / PER against all references; translate: BLEU / chrF).
// Batches: src (B, S) right-padded with 0 and src_len (B); tgt_in = <s> y and tgt_out = y </s>
// (B, T), right-padded with 0 (the loss ignores it).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "focus/models/seq2seq_search.hpp"
#include "focus/tensor/tensor.hpp"
#include "focus/text/parallel.hpp"
#include "focus/text/tokenizer.hpp"

namespace focus {

class Seq2Seq;
struct TrainConfig;

// One split: every (source, reference) pair for training, references grouped for evaluation.
struct Seq2SeqSplit {
  std::vector<TextPair> pairs;
  std::vector<RefGroup> groups;
};

struct Seq2SeqTaskData {
  Seq2SeqSplit train, dev, test;  // test may be empty (translate without --test)
};

// g2p: CMUdict at cfg.cmudict (or the data cache), spellings lower-cased, stress stripped unless
// cfg.keep_stress; translate: cfg.train_file / valid_file / test_file. cfg.limit_train keeps the
// first N training pairs.
Seq2SeqTaskData load_seq2seq_data(const TrainConfig& cfg);
// The source side as the model sees it: g2p spellings are lower-cased.
std::string normalize_source(const std::string& task, const std::string& text);

struct EncodedPairs {
  std::vector<std::vector<int64_t>> src, tgt;  // without <s> / </s>
  int64_t skipped = 0;                         // pairs dropped: empty or longer than max_len
};
// Encodes pairs; drops those with an empty side, a source longer than max_len or a target longer
// than max_len - 1 (room for <s> / </s>).
EncodedPairs encode_pairs(const std::vector<TextPair>& pairs, const Tokenizer& src,
                          const Tokenizer& tgt, int64_t max_len);

struct Seq2SeqBatch {
  Tensor src, src_len, tgt_in, tgt_out;  // (B, S), (B), (B, T), (B, T)
  int64_t tgt_tokens = 0;                // non-padding target tokens (y and </s>)
  int64_t src_tokens = 0;
};
Seq2SeqBatch make_batch(const EncodedPairs& data, const std::vector<int64_t>& index);
// Sources only: src (B, S) and src_len (B).
void make_source_batch(const std::vector<std::vector<int64_t>>& src,
                       const std::vector<int64_t>& index, Tensor& src_out, Tensor& len_out);

// Decodes every source (sorted by length into batches of about max_tokens, results in input
// order) with greedy search (beam 1) or beam search.
std::vector<std::vector<Hypothesis>> decode_corpus(Seq2Seq& model,
                                                   const std::vector<std::vector<int64_t>>& src,
                                                   const SearchOptions& opt,
                                                   int64_t max_tokens = 4096);

struct CorpusScore {
  // g2p: wer, per (%) and counts; translate: bleu, chrf. primary = the one to select models on
  // (lower is better: WER for g2p, 100 - BLEU for translate).
  double wer = 0, per = 0, bleu = 0, chrf = 0, primary = 0;
  int64_t sentences = 0, errors = 0;
  double seconds = 0;  // decoding time
  std::vector<std::string> hyps;  // top hypothesis per group, decoded text
};
struct HypothesisError {
  int64_t edits = 0;  // whitespace-token edits to the closest reference
  size_t index = 0;   // into the hypotheses / groups
};
// The at most `n` hypotheses farthest from their closest reference (edits > 0), most edits first
// (ties in input order). hyps[i] answers groups[i].
std::vector<HypothesisError> worst_errors(const std::vector<std::string>& hyps,
                                          const std::vector<RefGroup>& groups, size_t n);

// Decodes the groups' sources and scores them; limit > 0 takes the first `limit` groups.
CorpusScore score_corpus(Seq2Seq& model, const std::string& task, const Tokenizer& src_tok,
                         const Tokenizer& tgt_tok, const std::vector<RefGroup>& groups,
                         const SearchOptions& opt, int64_t limit = 0);

}  // namespace focus
