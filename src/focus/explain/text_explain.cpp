// Text explanations (see text_explain.hpp).
#include "focus/explain/text_explain.hpp"

#include <algorithm>
#include <cmath>

#include "focus/autograd/node.hpp"
#include "focus/autograd/retain.hpp"
#include "focus/explain/render.hpp"
#include "focus/models/text_transformer.hpp"
#include "focus/ops/reduce.hpp"
#include "focus/ops/softmax.hpp"
#include "focus/ops/view.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/text/tokenizer.hpp"
#include "focus/text/vocab.hpp"

namespace focus {

namespace {

Tensor ids_tensor(const std::vector<int64_t>& ids) {
  return Tensor::from_vector(ids, {1, int64_t(ids.size())});  // (1, L)
}

std::vector<double> to_doubles(const Tensor& t) {
  const Tensor c = t.detach().to(DType::F64).contiguous();
  return std::vector<double>(c.data<double>(), c.data<double>() + c.numel());
}

}  // namespace

TextExplanation explain_text(TextTransformer& model, const Tokenizer& tok,
                             const std::vector<int64_t>& ids, int64_t target) {
  FOCUS_CHECK(!ids.empty() && int64_t(ids.size()) <= model.cfg().input_len(), ValueError,
              "explain_text: {} tokens; the model takes 1 to {}", ids.size(), model.cfg().input_len());
  model.eval();
  TextExplanation e;
  e.ids = ids;
  for (int64_t id : ids) e.tokens.push_back(tok.vocab().token(id));
  const int64_t Lall = int64_t(ids.size());
  // The encoder's tokens: the first max_len (the n-gram branch reads all Lall).
  const int64_t L = std::min(Lall, model.cfg().max_len);
  ForwardTrace trace;
  Tensor logits;
  {
    NoGradGuard ng;
    logits = model.forward_traced(ids_tensor(ids), trace);  // (1, K)
  }
  e.probs = to_doubles(softmax(logits, 1));
  const int64_t K = int64_t(e.probs.size());
  if (target < 0) target = int64_t(std::max_element(e.probs.begin(), e.probs.end()) - e.probs.begin());
  FOCUS_CHECK(target < K, ValueError, "explain_text: target {} not in [0, {})", target, K);
  e.target = target;
  // Pooling: the last map (1, H, 1, L), head mean.
  const Tensor& pm = trace.attention.back();
  e.pooling = to_doubles(mean(reshape(pm, {pm.size(1), L}), {0}));
  // Rollout of the encoder maps (1, H, L, L) each; none (depth 0): R = I.
  std::vector<Tensor> maps;
  for (size_t l = 0; l + 1 < trace.attention.size(); ++l)
    maps.push_back(reshape(trace.attention[l], {trace.attention[l].size(1), L, L}));
  std::vector<double> R(size_t(L * L), 0.0);
  if (maps.empty()) {
    for (int64_t i = 0; i < L; ++i) R[size_t(i * L + i)] = 1.0;
    e.rollout_matrix = Tensor::from_vector(R, {L, L}).to(DType::F32);
  } else {
    e.rollout_matrix = attention_rollout(maps);
    R = to_doubles(e.rollout_matrix);
  }
  e.rollout.assign(size_t(L), 0.0);
  for (int64_t i = 0; i < L; ++i)
    for (int64_t j = 0; j < L; ++j) e.rollout[size_t(j)] += e.pooling[size_t(i)] * R[size_t(i * L + j)];
  // Gradient x input on the token embeddings.
  Tensor emb;
  const Tensor z = model.forward_embedded(ids_tensor(ids), emb);  // (1, K), emb (1, L, D)
  retain_grad(emb);
  sum(select(z, 1, target)).backward();
  const std::vector<double> g = to_doubles(emb.grad()), x = to_doubles(emb);
  const int64_t D = emb.size(2);
  e.grad_input.assign(size_t(L), 0.0);
  for (int64_t l = 0; l < L; ++l)
    for (int64_t d = 0; d < D; ++d) e.grad_input[size_t(l)] += g[size_t(l * D + d)] * x[size_t(l * D + d)];
  model.zero_grad();
  for (auto* v : {&e.pooling, &e.rollout, &e.grad_input}) v->resize(size_t(Lall), 0.0);
  // The n-gram branch's share of the centred target logit, split over each n-gram's tokens.
  if (model.ngram_table().defined()) {
    const TextTransformerConfig& c = model.cfg();
    const Tensor table = model.ngram_effective_table();  // (B, K) F64, NB ratios applied
    const double* t = table.data<double>();
    const int64_t S = Lall * c.ngram_order;
    std::vector<int64_t> bucket(static_cast<size_t>(S));
    std::vector<double> w(static_cast<size_t>(S));
    const Tensor idf = model.ngram_idf().defined() ? model.ngram_idf().to(DType::F32).contiguous() : Tensor();
    text_ngram_features(ids.data(), 1, Lall, c.ngram_order, c.ngram_buckets, bucket.data(), w.data(),
                        idf.defined() ? idf.data<float>() : nullptr, c.ngram_boundary);
    e.ngram.assign(size_t(Lall), 0.0);
    for (int64_t l = 0; l < Lall; ++l)
      for (int64_t n = 1; n <= c.ngram_order; ++n) {
        const int64_t s = l * c.ngram_order + n - 1;
        if (w[size_t(s)] == 0) continue;
        const double* row = t + bucket[size_t(s)] * K;
        double mean_k = 0;
        for (int64_t k = 0; k < K; ++k) mean_k += row[k] / double(K);
        const double v = c.ngram_scale * w[size_t(s)] * (row[target] - mean_k) / double(n);
        for (int64_t i = l; i < l + n; ++i) e.ngram[size_t(i)] += v;
      }
  }
  return e;
}

Faithfulness text_faithfulness(TextTransformer& model, const std::vector<int64_t>& ids,
                               const std::vector<double>& scores, int64_t target, Rng& rng,
                               int64_t repeats) {
  FOCUS_CHECK(scores.size() == ids.size(), ShapeError, "text_faithfulness: {} scores for {} tokens",
              scores.size(), ids.size());
  model.eval();
  const int64_t L = int64_t(ids.size());
  return faithfulness_by_scores(
      scores,
      [&](const std::vector<std::vector<uint8_t>>& keep) {
        NoGradGuard ng;
        const int64_t B = int64_t(keep.size());
        std::vector<int64_t> rows;
        for (const auto& k : keep)
          for (int64_t l = 0; l < L; ++l) rows.push_back(k[size_t(l)] ? ids[size_t(l)] : Vocab::kUnk);
        const std::vector<double> p =
            to_doubles(softmax(model.forward(Tensor::from_vector(rows, {B, L})), 1));
        const int64_t K = int64_t(p.size()) / B;
        std::vector<double> out;
        for (int64_t b = 0; b < B; ++b) out.push_back(p[size_t(b * K + target)]);
        return out;
      },
      rng, repeats);
}

std::string text_heatmap_line(const std::vector<std::string>& tokens,
                              const std::vector<double>& scores, bool colour) {
  double top = 0;
  for (double s : scores) top = std::max(top, std::abs(s));
  std::string out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const double v = top > 0 ? scores[i] / top : 0;
    if (!colour) {
      out += fmt::format("{}{}({:.2f})", i ? " " : "", tokens[i], scores[i]);
      continue;
    }
    // 24-bit background from white to yellow/orange (positive) or to blue (negative).
    const int a = int(std::lround(std::abs(v) * 200));
    const int r = v >= 0 ? 255 : 255 - a, g = v >= 0 ? 255 - a / 2 : 255 - a / 2, b = 255 - a;
    out += fmt::format("{}\x1b[48;2;{};{};{}m\x1b[38;2;0;0;0m{}\x1b[0m", i ? " " : "", r, g, b, tokens[i]);
  }
  return out;
}

std::string text_explanation_html(const TextExplanation& e, const std::vector<std::string>& classes,
                                  const std::string& text) {
  auto row = [&](const char* name, const std::vector<double>& s) {
    double top = 0;
    for (double v : s) top = std::max(top, std::abs(v));
    std::string h = fmt::format("<tr><th>{}</th><td>", name);
    for (size_t i = 0; i < e.tokens.size(); ++i) {
      const double v = top > 0 ? s[i] / top : 0;
      h += fmt::format("<span title=\"{:.4f}\" style=\"background:rgba({},{},0,{:.3f})\">{}</span> ", s[i],
                       v >= 0 ? 255 : 0, v >= 0 ? 140 : 90, std::abs(v), xml_escape(e.tokens[i]));
    }
    return h + "</td></tr>\n";
  };
  std::string cls = e.target < int64_t(classes.size()) ? classes[size_t(e.target)] : std::to_string(e.target);
  return "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>focus explain</title>"
         "<style>body{font-family:sans-serif}td span{padding:2px 3px;border-radius:3px;"
         "line-height:2}th{text-align:right;padding-right:1em}</style></head><body>\n" +
         fmt::format("<p>{}</p>\n<p>class <b>{}</b>, p = {:.3f}</p>\n<table>\n", xml_escape(text),
                     xml_escape(cls), e.probs[size_t(e.target)]) +
         row("pooling", e.pooling) + row("rollout", e.rollout) + row("gradient x input", e.grad_input) +
         (e.ngram.empty() ? std::string() : row("n-grams", e.ngram)) + "</table></body></html>\n";
}

}  // namespace focus
