// The n-gram branch's data side (models/text_transformer.hpp, "n-gram branch"): hashing n-grams
// of token ids into buckets, the per-slot weights (sqrt-normalised counts, or sublinear TF-IDF),
// and what is learned from the training rows before training: NB log-count ratios (NBSVM), IDF,
// and the table itself fitted to convergence as an L2-regularised logistic regression (L-BFGS,
// optim/lbfgs.hpp), the convex problem a bag-of-n-grams baseline solves.
// Letters: N rows, L ids per row, S = L * order slots per row, B buckets, K classes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "focus/optim/lbfgs.hpp"

namespace focus {

// The bucket in [0, buckets) of the n-gram ids[0..n) (n >= 1, buckets >= 1): a fixed 64-bit
// mix (splitmix64's finaliser over the order and each id), the same on every platform: saved
// models depend on it.
int64_t text_ngram_bucket(const int64_t* ids, int64_t n, int64_t buckets);

// The n-gram features of ids (N, L), row-major: slot (row r, position l, order n) at
// r * L * order + l * order + (n - 1) gets the bucket of ids[l..l+n) when those n ids are all
// non-padding (inside the row), else bucket 0 and weight 0. The weights of a row's slots:
//   idf null: 1 / sqrt(the row's number of such n-grams) each (an L2-normalised bag when no
//     n-gram repeats);
//   idf (B) given: scikit-learn's TfidfVectorizer(sublinear_tf=True, norm="l2") on the buckets:
//     a bucket occurring c times in the row has the value (1 + ln c) idf[b], the row's values are
//     divided by their L2 norm, and each of the c slots carries value / c (so a row's slots sum,
//     per bucket, to its TF-IDF value).
// boundary >= 0 (a word-ending id, the char tokenizer's space): n-grams stay within words, as
// scikit-learn's char_wb analyzer: an n-gram holding the boundary anywhere but at its ends is not
// counted (slot weight 0). -1: every n-gram counts.
// A row's non-zero slots do not depend on padding after its last token.
void text_ngram_features(const int64_t* ids, int64_t N, int64_t L, int64_t order, int64_t buckets,
                         int64_t* bucket, double* weight, const float* idf = nullptr,
                         int64_t boundary = -1);

// The distinct buckets of one row's n-grams (ids with no padding inside; a 0 id ends nothing, it
// is skipped like padding) and their summed slot weights (text_ngram_features), sorted by bucket.
struct NgramRow {
  std::vector<int32_t> bucket;
  std::vector<float> value;
};
NgramRow text_ngram_row(const std::vector<int64_t>& ids, int64_t order, int64_t buckets,
                        const float* idf = nullptr, int64_t boundary = -1);

// NB log-count ratios of the n-grams of `rows` with labels in [0, K): each row counts each
// bucket once (binary features, as NBSVM). For class k against the rest, with c_k(b) the number
// of class-k rows holding bucket b and c_rest(b) that of the other rows, over the buckets B+
// seen in any row:
//   r[b, k] = log( (c_k(b) + alpha) / sum_{B+} (c_k + alpha) ) - log( (c_rest(b) + alpha) / sum_{B+} (c_rest + alpha) )
// and r = 0 on buckets no row holds. Returns (B, K) row-major. alpha > 0.
std::vector<double> text_ngram_nb_ratios(const std::vector<std::vector<int64_t>>& rows,
                                         const std::vector<int64_t>& labels, int64_t K,
                                         int64_t order, int64_t buckets, double alpha,
                                         int64_t boundary = -1);

// Smooth IDF of the buckets over `rows` (n rows; df(b) = rows holding b), as scikit-learn's:
// idf[b] = ln((1 + n) / (1 + df(b))) + 1. Returns (B).
std::vector<float> text_ngram_idf(const std::vector<std::vector<int64_t>>& rows, int64_t order,
                                  int64_t buckets, int64_t boundary = -1);

// The branch fitted alone, to convergence: with x_i the row's bucket values (text_ngram_row),
// logits z_ik = sum_b x_ib f[b, k] w[b, k] + c_k (f = the NB ratios, or 1), minimise
//   sum_i s_i loss(z_i, y_i) + |w|^2 / (2 C)
// over w (B, K) and the unpenalised intercepts c (K); s_i = the class weight of y_i (1 without).
// loss: "logistic", the multinomial cross-entropy (with two classes a binary logistic
// regression of C' = 2 C, w_1 = -w_0); or "squared_hinge", one-vs-rest, per class
// max(0, 1 - t_ik z_ik)^2 with t_ik = +1 for the row's class and -1 for the others (with two
// classes, per class scikit-learn's LinearSVC objective of the same C, except that LinearSVC
// also penalises its intercept; its logits are margins).
// Only buckets some row holds are variables (the others stay 0).
struct NgramFitOptions {
  double C = 1.0;                      // > 0
  std::string loss = "logistic";       // or "squared_hinge"
  const double* nb = nullptr;          // (B, K) NB ratios f, or null
  const float* idf = nullptr;          // (B) IDF for the features, or null
  int64_t boundary = -1;               // text_ngram_features's word boundary
  std::vector<double> class_weights;   // (K) or empty
  LbfgsOptions lbfgs{.memory = 7, .max_iter = 1000, .tol_grad = 1e-5, .tol_value = 1e-10};
};
struct NgramFit {
  std::vector<double> w;          // (B, K)
  std::vector<double> intercept;  // (K)
  LbfgsResult solver;
  double train_accuracy = 0;      // of the fitted branch alone, unweighted
};
// ValueError for mismatched sizes, an empty row, a label outside [0, K), C <= 0, another loss.
NgramFit text_ngram_fit(const std::vector<std::vector<int64_t>>& rows,
                        const std::vector<int64_t>& labels, int64_t K, int64_t order,
                        int64_t buckets, const NgramFitOptions& opt);

}  // namespace focus
