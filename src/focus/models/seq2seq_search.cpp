// Greedy and beam search for Seq2Seq (see seq2seq_search.hpp).
#include "focus/models/seq2seq_search.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "focus/autograd/node.hpp"
#include "focus/models/seq2seq.hpp"

namespace focus {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

int64_t checked_max_len(const Seq2Seq& model, const SearchOptions& opt, const char* who) {
  FOCUS_CHECK(!model.is_training(), StateError, "{}: call eval() on the model first", who);
  FOCUS_CHECK(opt.beam >= 1 && opt.nbest >= 1 && opt.nbest <= opt.beam, ValueError,
              "{}: beam {} and nbest {} must satisfy 1 <= nbest <= beam", who, opt.beam,
              opt.nbest);
  FOCUS_CHECK(opt.length_penalty >= 0.0, ValueError, "{}: length_penalty {} must be >= 0", who,
              opt.length_penalty);
  const int64_t limit = model.config().max_len;
  FOCUS_CHECK(opt.max_len >= 0 && opt.max_len <= limit, ValueError,
              "{}: max_len {} must be in [0, model max_len {}]", who, opt.max_len, limit);
  return opt.max_len > 0 ? opt.max_len : limit;
}

double length_score(double log_prob, size_t len, double alpha) {
  return alpha == 0.0 ? log_prob : log_prob / std::pow(double(len), alpha);
}

// logits (N, 1, V) -> log-softmax rows (N x V) in double.
std::vector<double> log_softmax_rows(const Tensor& logits) {
  const Tensor l = logits.contiguous();
  const int64_t N = l.size(0), V = l.size(2);
  std::vector<double> out(static_cast<size_t>(N * V));
  dispatch_float(l.dtype(), "search log_softmax", [&]<class T>() {
    const T* p = l.data<T>();
    for (int64_t r = 0; r < N; ++r) {
      const T* row = p + r * V;
      double* o = out.data() + r * V;
      double mx = double(row[0]);
      for (int64_t v = 1; v < V; ++v) mx = std::max(mx, double(row[v]));
      double sum = 0;
      for (int64_t v = 0; v < V; ++v) sum += std::exp(double(row[v]) - mx);
      const double lse = mx + std::log(sum);
      for (int64_t v = 0; v < V; ++v) o[v] = double(row[v]) - lse;
    }
  });
  return out;
}

struct Beam {
  std::vector<int64_t> tokens;
  double log_prob = 0;
};

}  // namespace

std::vector<std::vector<Hypothesis>> greedy_search(Seq2Seq& model, const Tensor& src,
                                                   const Tensor& src_len,
                                                   const SearchOptions& opt) {
  const int64_t max_len = checked_max_len(model, opt, "greedy_search");
  NoGradGuard no_grad;
  const Tensor memory = model.encode(src, src_len);  // (B, S, E)
  const int64_t B = memory.size(0);
  Seq2SeqDecodeState st = model.start_decoding(memory, src_len, std::min<int64_t>(max_len, 64));
  std::vector<Beam> hyp(static_cast<size_t>(B));
  std::vector<int64_t> rows(static_cast<size_t>(B));  // sentence of each live row
  for (int64_t b = 0; b < B; ++b) rows[size_t(b)] = b;
  std::vector<std::vector<Hypothesis>> out(static_cast<size_t>(B));
  std::vector<int64_t> next(size_t(B), Seq2Seq::kBos);
  for (int64_t t = 0; t < max_len && !rows.empty(); ++t) {
    const int64_t N = int64_t(rows.size()), V = model.config().tgt_vocab;
    const std::vector<double> lp =
        log_softmax_rows(model.decode_step(Tensor::from_vector(next, {N, 1}), st));
    std::vector<int64_t> keep, keep_rows, keep_next;
    for (int64_t r = 0; r < N; ++r) {
      const double* row = lp.data() + r * V;
      const int64_t v = std::max_element(row, row + V) - row;
      Beam& h = hyp[size_t(rows[size_t(r)])];
      h.log_prob += row[v];
      const bool eos = v == Seq2Seq::kEos;
      if (!eos) h.tokens.push_back(v);
      if (eos || t + 1 == max_len) {
        out[size_t(rows[size_t(r)])].push_back(
            {h.tokens, h.log_prob, length_score(h.log_prob, h.tokens.size() + 1, opt.length_penalty),
             eos});
      } else {
        keep.push_back(r);
        keep_rows.push_back(rows[size_t(r)]);
        keep_next.push_back(v);
      }
    }
    if (int64_t(keep.size()) != N && !keep.empty())
      st.reorder(Tensor::from_vector(keep, {int64_t(keep.size())}));
    rows = std::move(keep_rows);
    next = std::move(keep_next);
  }
  return out;
}

std::vector<std::vector<Hypothesis>> beam_search(Seq2Seq& model, const Tensor& src,
                                                 const Tensor& src_len, const SearchOptions& opt) {
  const int64_t max_len = checked_max_len(model, opt, "beam_search");
  NoGradGuard no_grad;
  const Tensor memory = model.encode(src, src_len);  // (B, S, E)
  const int64_t B = memory.size(0), K = opt.beam, V = model.config().tgt_vocab;
  Seq2SeqDecodeState st = model.start_decoding(memory, src_len, std::min<int64_t>(max_len, 64));
  // Rows are (sentence, beam); at first only beam 0 of each sentence is live.
  std::vector<int64_t> expand(static_cast<size_t>(B * K));
  for (int64_t i = 0; i < B * K; ++i) expand[size_t(i)] = i / K;
  st.reorder(Tensor::from_vector(expand, {B * K}));
  std::vector<int64_t> sent(static_cast<size_t>(B));  // live sentences, in row-group order
  for (int64_t b = 0; b < B; ++b) sent[size_t(b)] = b;
  std::vector<Beam> beams(static_cast<size_t>(B * K));
  std::vector<double> beam_lp(size_t(B * K), kNegInf);
  for (int64_t b = 0; b < B; ++b) beam_lp[size_t(b * K)] = 0.0;
  std::vector<int64_t> next(size_t(B * K), Seq2Seq::kBos);
  std::vector<std::vector<Hypothesis>> fin(static_cast<size_t>(B));
  struct Cand {
    double lp;
    int64_t row, tok;
  };
  std::vector<Cand> cand;
  for (int64_t t = 0; t < max_len && !sent.empty(); ++t) {
    const int64_t N = int64_t(sent.size()) * K;
    const std::vector<double> lp =
        log_softmax_rows(model.decode_step(Tensor::from_vector(next, {N, 1}), st));
    std::vector<int64_t> src_rows, new_sent, new_next;
    std::vector<Beam> new_beams;
    std::vector<double> new_lp;
    for (size_t s = 0; s < sent.size(); ++s) {
      const int64_t b = sent[s];
      cand.clear();
      for (int64_t k = 0; k < K; ++k) {
        const int64_t r = int64_t(s) * K + k;
        if (beam_lp[size_t(r)] == kNegInf) continue;
        for (int64_t v = 0; v < V; ++v) cand.push_back({beam_lp[size_t(r)] + lp[size_t(r * V + v)], r, v});
      }
      const size_t top = std::min(cand.size(), size_t(2 * K));
      std::partial_sort(cand.begin(), cand.begin() + top, cand.end(), [](const Cand& x, const Cand& y) {
        return x.lp > y.lp || (x.lp == y.lp && (x.row < y.row || (x.row == y.row && x.tok < y.tok)));
      });
      std::vector<Cand> live;
      for (size_t i = 0; i < top && int64_t(live.size()) < K; ++i) {
        const Cand& c = cand[i];
        const Beam& from = beams[size_t(c.row)];
        if (c.tok == Seq2Seq::kEos) {
          if (int64_t(fin[size_t(b)].size()) < K)
            fin[size_t(b)].push_back({from.tokens, c.lp,
                                      length_score(c.lp, from.tokens.size() + 1, opt.length_penalty),
                                      true});
        } else {
          live.push_back(c);
        }
      }
      const bool last = t + 1 == max_len;
      if (int64_t(fin[size_t(b)].size()) >= K || last) {
        if (last)  // cut at max_len: the live beams are returned unfinished
          for (const Cand& c : live) {
            std::vector<int64_t> toks = beams[size_t(c.row)].tokens;
            toks.push_back(c.tok);
            fin[size_t(b)].push_back(
                {toks, c.lp, length_score(c.lp, toks.size() + 1, opt.length_penalty), false});
          }
        continue;  // sentence done: its rows leave the batch
      }
      new_sent.push_back(b);
      for (int64_t k = 0; k < K; ++k) {
        if (k < int64_t(live.size())) {
          const Cand& c = live[size_t(k)];
          Beam nb = beams[size_t(c.row)];
          nb.tokens.push_back(c.tok);
          nb.log_prob = c.lp;
          new_beams.push_back(std::move(nb));
          new_lp.push_back(c.lp);
          src_rows.push_back(c.row);
          new_next.push_back(c.tok);
        } else {  // fewer live candidates than beams (tiny vocabularies): a dead row
          new_beams.emplace_back();
          new_lp.push_back(kNegInf);
          src_rows.push_back(int64_t(s) * K);
          new_next.push_back(Seq2Seq::kPad);
        }
      }
    }
    sent = std::move(new_sent);
    if (sent.empty()) break;
    st.reorder(Tensor::from_vector(src_rows, {int64_t(src_rows.size())}));
    beams = std::move(new_beams);
    beam_lp = std::move(new_lp);
    next = std::move(new_next);
  }
  for (auto& f : fin) {
    std::stable_sort(f.begin(), f.end(),
                     [](const Hypothesis& x, const Hypothesis& y) { return x.score > y.score; });
    if (int64_t(f.size()) > opt.nbest) f.resize(size_t(opt.nbest));
  }
  return fin;
}

std::vector<double> sequence_log_prob(Seq2Seq& model, const Tensor& src, const Tensor& src_len,
                                      const std::vector<std::vector<int64_t>>& targets) {
  const int64_t B = int64_t(targets.size());
  FOCUS_CHECK(B == src.size(0), ShapeError, "sequence_log_prob: {} targets for src {}", B,
              to_string(src.shape()));
  int64_t T = 1;
  for (const auto& t : targets) T = std::max<int64_t>(T, int64_t(t.size()) + 1);
  std::vector<int64_t> in(size_t(B * T), Seq2Seq::kPad), out(size_t(B * T), Seq2Seq::kPad);
  for (int64_t b = 0; b < B; ++b) {
    const auto& y = targets[size_t(b)];
    in[size_t(b * T)] = Seq2Seq::kBos;
    for (size_t i = 0; i < y.size(); ++i) {
      in[size_t(b * T) + i + 1] = y[i];
      out[size_t(b * T) + i] = y[i];
    }
    out[size_t(b * T) + y.size()] = Seq2Seq::kEos;
  }
  NoGradGuard no_grad;
  const Tensor logits = model.forward(src, src_len, Tensor::from_vector(in, {B, T}));  // (B, T, V)
  const int64_t V = logits.size(2);
  const std::vector<double> lp = log_softmax_rows(logits.reshape({B * T, 1, V}));
  std::vector<double> total(size_t(B), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      if (out[size_t(b * T + t)] != Seq2Seq::kPad)
        total[size_t(b)] += lp[size_t((b * T + t) * V + out[size_t(b * T + t)])];
  return total;
}

}  // namespace focus
