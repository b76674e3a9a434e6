// Data for the sequence-to-sequence tasks: loading (g2p: CMUdict split by a stable hash of the
// word; translate: the user's TSV files), tokenizers trained on the training side, encoding to
// id sequences and padded training batches. Decoding and scoring a corpus (and normalize_source)
// are inference: infer/seq2seq_decode.hpp.
// Batches: src (B, S) right-padded with 0 and src_len (B) (make_source_batch); tgt_in = <s> y and
// tgt_out = y </s> (B, T), right-padded with 0 (the loss ignores it).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "focus/infer/seq2seq_decode.hpp"
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

}  // namespace focus
