// Explanations of text-transformer predictions (issue 20): per token of the input,
//   pooling      the attention pooling's weights (head mean; the model's own explanation)
//   rollout      the pooling query carried through attention rollout (Abnar & Zuidema 2020) of
//                the encoder's maps: r = q R, R = prod_l (0.5 mean_h A_l + 0.5 I), rows of R
//                summing to 1, so r sums to 1 over the tokens
//   grad_input   gradient x input on the token embeddings: sum_d (d logit_target / d e_ld) e_ld
//                (signed; the first-order effect of scaling token l's embedding)
//   ngram        with the n-gram branch only (models/text_transformer.hpp): its exact share of
//                the target's logit, centred over the classes (logit_target - mean_k logit_k),
//                each n-gram's term split evenly over its tokens (signed; the tokens' sum is the
//                branch's centred target logit). The other three do not see that branch.
// and deletion faithfulness (explain/image_explain.hpp faithfulness_by_scores): tokens replaced
// by <unk> in the order of a score vs random orders; lower deletion area = more faithful.
// Rendered as a terminal line (ANSI background per token) and an HTML page.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "focus/explain/image_explain.hpp"
#include "focus/tensor/tensor.hpp"

namespace focus {

class TextTransformer;
class Tokenizer;
class Rng;

struct TextExplanation {
  std::vector<int64_t> ids;
  std::vector<std::string> tokens;  // the vocabulary's symbol per id
  int64_t target = 0;               // the explained class (the predicted one by default)
  std::vector<double> probs;        // softmax of the logits (temperature 1)
  std::vector<double> pooling, rollout, grad_input;  // per token (see above)
  std::vector<double> ngram;        // per token; empty without the n-gram branch
  Tensor rollout_matrix;            // (L', L') R over the encoder's tokens, rows summing to 1
};

// Explains `ids` (one non-empty sequence, at most the model's input_len). With ngram_len past
// max_len the encoder reads the first L' = min(L, max_len) tokens: pooling, rollout and
// grad_input are 0 on the tokens after them, which only the n-gram branch reads. The model is put in eval
// mode (and left so). target -1 = the predicted class; ValueError for a target out of range.
TextExplanation explain_text(TextTransformer& model, const Tokenizer& tok,
                             const std::vector<int64_t>& ids, int64_t target = -1);

// Deletion / insertion over the tokens of `ids` in the order of `scores` (highest first) and in
// `repeats` random orders; a removed token becomes <unk>. Tracks p(target).
Faithfulness text_faithfulness(TextTransformer& model, const std::vector<int64_t>& ids,
                               const std::vector<double>& scores, int64_t target, Rng& rng,
                               int64_t repeats = 5);

// The tokens with a background shade per score (scaled by the largest |score|; red for
// negative scores); colour = false: "token(0.42)" plain text.
std::string text_heatmap_line(const std::vector<std::string>& tokens,
                              const std::vector<double>& scores, bool colour);
// A standalone HTML page: the prediction and one shaded row of tokens per method.
std::string text_explanation_html(const TextExplanation& e, const std::vector<std::string>& classes,
                                  const std::string& text);

}  // namespace focus
