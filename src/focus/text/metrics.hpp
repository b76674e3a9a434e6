// Sequence metrics: token edit distance, G2P word and phone error rates (WER/PER as
// /work/shared/DATA.md defines them), corpus BLEU-4 and chrF.
// Hypotheses and references are strings; BLEU and G2P split them on ASCII whitespace.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace focus {

// Levenshtein distance over tokens (substitution, insertion, deletion each cost 1).
int64_t edit_distance(const std::vector<std::string>& a, const std::vector<std::string>& b);

// The index of the reference closest to `hyp` (fewest edits; ties: the shorter reference, then
// the earlier one); `edits` receives that distance. ValueError when refs is empty.
int64_t closest_reference(const std::vector<std::string>& hyp,
                          const std::vector<std::vector<std::string>>& refs,
                          int64_t* edits = nullptr);

struct G2PScore {
  int64_t words = 0;        // scored words
  int64_t word_errors = 0;  // words whose hypothesis equals none of their references
  int64_t edits = 0;        // sum of edit distances to the closest reference
  int64_t ref_tokens = 0;   // sum of the closest references' lengths (phones)
  double wer() const;       // word_errors / words, a fraction in [0, 1] (0 when no words)
  double per() const;       // edits / ref_tokens, a fraction (0 when no tokens)
};

// hyps[i] is word i's top hypothesis, refs[i] its reference pronunciations (space-separated
// phones; whitespace is normalised before comparing). The closest reference is
// closest_reference's. ValueError on a size mismatch or a word without references.
G2PScore score_g2p(const std::vector<std::string>& hyps,
                   const std::vector<std::vector<std::string>>& refs);

// Corpus BLEU-4 in [0, 100] as sacrebleu computes it with its defaults, on whitespace tokens:
// clipped n-gram counts (the max count over a sentence's references), summed over the corpus;
// brevity penalty exp(1 - r/c) when c < r, with c the hypothesis length and r the sum of the
// closest reference lengths (ties: the shorter); a zero match count at order n gets sacrebleu's
// "exp" smoothing (precision 1 / (2^k * total_n), k counting such orders); no n-grams of order n
// at all gives 0.
double corpus_bleu(const std::vector<std::string>& hyps,
                   const std::vector<std::vector<std::string>>& refs);

// Corpus chrF in [0, 100] (Popovic 2015; sacrebleu's default chrF: character n-grams 1..6 of
// code points, whitespace removed, beta = 2). Per sentence the reference with the best sentence
// chrF (the first on ties) contributes its statistics; the corpus precision and recall of each
// order are averaged over the orders where both hypothesis and reference have n-grams, then
// combined into F_beta.
double corpus_chrf(const std::vector<std::string>& hyps,
                   const std::vector<std::vector<std::string>>& refs);

}  // namespace focus
