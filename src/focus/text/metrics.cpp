// Metrics (see metrics.hpp). BLEU and chrF follow sacrebleu 2.x's corpus computations
// (BLEU: compute_bleu with smooth_method="exp"; chrF: _compute_f_score with eps_smoothing off).
#include "focus/text/metrics.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <unordered_map>

#include "focus/tensor/error.hpp"
#include "focus/text/strings.hpp"

namespace focus {

int64_t edit_distance(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<int64_t> row(b.size() + 1);  // row[j]: distance between a[:i] and b[:j]
  for (size_t j = 0; j <= b.size(); ++j) row[j] = static_cast<int64_t>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    int64_t diag = row[0];  // a[:i-1] vs b[:j-1]
    row[0] = static_cast<int64_t>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      const int64_t up = row[j];
      row[j] = std::min({up + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

int64_t closest_reference(const std::vector<std::string>& hyp,
                          const std::vector<std::vector<std::string>>& refs, int64_t* edits) {
  FOCUS_CHECK(!refs.empty(), ValueError, "closest_reference: no references");
  int64_t best = 0, best_d = edit_distance(hyp, refs[0]);
  for (size_t r = 1; r < refs.size(); ++r) {
    const int64_t d = edit_distance(hyp, refs[r]);
    if (d < best_d || (d == best_d && refs[r].size() < refs[best].size())) {
      best = static_cast<int64_t>(r);
      best_d = d;
    }
  }
  if (edits) *edits = best_d;
  return best;
}

double G2PScore::wer() const {
  return words > 0 ? static_cast<double>(word_errors) / static_cast<double>(words) : 0.0;
}

double G2PScore::per() const {
  return ref_tokens > 0 ? static_cast<double>(edits) / static_cast<double>(ref_tokens) : 0.0;
}

G2PScore score_g2p(const std::vector<std::string>& hyps,
                   const std::vector<std::vector<std::string>>& refs) {
  FOCUS_CHECK(hyps.size() == refs.size(), ValueError, "score_g2p: {} hypotheses vs {} reference sets",
              hyps.size(), refs.size());
  G2PScore s;
  for (size_t i = 0; i < hyps.size(); ++i) {
    FOCUS_CHECK(!refs[i].empty(), ValueError, "score_g2p: word {} ('{}') has no reference", i,
                hyps[i]);
    const auto hyp = split_whitespace(hyps[i]);
    std::vector<std::vector<std::string>> rs;
    rs.reserve(refs[i].size());
    for (const auto& r : refs[i]) rs.push_back(split_whitespace(r));
    int64_t d = 0;
    const int64_t best = closest_reference(hyp, rs, &d);
    s.words += 1;
    s.word_errors += d == 0 ? 0 : 1;  // d == 0 exactly when hyp equals some reference
    s.edits += d;
    s.ref_tokens += static_cast<int64_t>(rs[best].size());
  }
  return s;
}

namespace {

constexpr int kBleuOrder = 4;
constexpr int kChrOrder = 6;
constexpr double kChrBeta = 2.0;

using Counts = std::unordered_map<std::string, int64_t>;

// n-gram counts of `toks` for n = 1..N, the n-grams keyed by their pieces joined with `sep`
// (" " for whitespace tokens, which never hold one; "" for code points).
template <int N>
std::array<Counts, N> ngram_counts(const std::vector<std::string>& toks, const char* sep) {
  std::array<Counts, N> out;
  for (size_t i = 0; i < toks.size(); ++i) {
    std::string key;
    for (int n = 1; n <= N && i + n <= toks.size(); ++n) {
      if (n > 1) key += sep;
      key += toks[i + n - 1];
      ++out[n - 1][key];
    }
  }
  return out;
}

void check_corpus(const char* name, const std::vector<std::string>& hyps,
                  const std::vector<std::vector<std::string>>& refs) {
  FOCUS_CHECK(hyps.size() == refs.size(), ValueError, "{}: {} hypotheses vs {} reference sets",
              name, hyps.size(), refs.size());
  for (size_t i = 0; i < refs.size(); ++i)
    FOCUS_CHECK(!refs[i].empty(), ValueError, "{}: sentence {} has no reference", name, i);
}

// Per order: hypothesis n-grams, reference n-grams, matches.
using ChrStats = std::array<std::array<int64_t, 3>, kChrOrder>;

double chrf_of(const ChrStats& st) {
  double prec = 0, rec = 0;
  int effective = 0;
  for (const auto& [n_hyp, n_ref, n_match] : st) {
    if (n_hyp == 0 || n_ref == 0) continue;
    prec += static_cast<double>(n_match) / static_cast<double>(n_hyp);
    rec += static_cast<double>(n_match) / static_cast<double>(n_ref);
    ++effective;
  }
  if (effective == 0) return 0.0;
  prec /= effective;
  rec /= effective;
  if (prec + rec == 0) return 0.0;
  const double b2 = kChrBeta * kChrBeta;
  return 100.0 * (1 + b2) * prec * rec / (b2 * prec + rec);
}

std::vector<std::string> chars_without_space(const std::string& s) {
  std::string joined;
  for (const auto& w : split_whitespace(s)) joined += w;
  return split_utf8(joined);
}

}  // namespace

double corpus_bleu(const std::vector<std::string>& hyps,
                   const std::vector<std::vector<std::string>>& refs) {
  check_corpus("corpus_bleu", hyps, refs);
  std::array<int64_t, kBleuOrder> correct{}, total{};
  int64_t sys_len = 0, ref_len = 0;
  for (size_t i = 0; i < hyps.size(); ++i) {
    const auto hyp = split_whitespace(hyps[i]);
    const int64_t hl = static_cast<int64_t>(hyp.size());
    std::array<Counts, kBleuOrder> max_ref;
    int64_t closest = -1;
    for (const auto& r : refs[i]) {
      const auto toks = split_whitespace(r);
      const int64_t rl = static_cast<int64_t>(toks.size());
      if (closest < 0 || std::abs(rl - hl) < std::abs(closest - hl) ||
          (std::abs(rl - hl) == std::abs(closest - hl) && rl < closest))
        closest = rl;
      const auto c = ngram_counts<kBleuOrder>(toks, " ");
      for (int n = 0; n < kBleuOrder; ++n)
        for (const auto& [g, k] : c[n]) max_ref[n][g] = std::max(max_ref[n][g], k);
    }
    sys_len += hl;
    ref_len += closest;
    const auto hc = ngram_counts<kBleuOrder>(hyp, " ");
    for (int n = 0; n < kBleuOrder; ++n) {
      total[n] += std::max<int64_t>(0, hl - n);
      for (const auto& [g, k] : hc[n]) {
        const auto it = max_ref[n].find(g);
        if (it != max_ref[n].end()) correct[n] += std::min(k, it->second);
      }
    }
  }
  if (sys_len == 0) return 0.0;
  double log_sum = 0, smooth = 1;
  for (int n = 0; n < kBleuOrder; ++n) {
    if (total[n] == 0) return 0.0;  // sacrebleu: log(0) for this and higher orders
    double p;
    if (correct[n] == 0) {
      smooth *= 2;
      p = 1.0 / (smooth * static_cast<double>(total[n]));
    } else {
      p = static_cast<double>(correct[n]) / static_cast<double>(total[n]);
    }
    log_sum += std::log(p);
  }
  const double bp =
      sys_len < ref_len ? std::exp(1.0 - static_cast<double>(ref_len) / sys_len) : 1.0;
  return 100.0 * bp * std::exp(log_sum / kBleuOrder);
}

double corpus_chrf(const std::vector<std::string>& hyps,
                   const std::vector<std::vector<std::string>>& refs) {
  check_corpus("corpus_chrf", hyps, refs);
  ChrStats corpus{};
  for (size_t i = 0; i < hyps.size(); ++i) {
    const auto hc = ngram_counts<kChrOrder>(chars_without_space(hyps[i]), "");
    ChrStats best{};
    double best_f = -1;
    for (const auto& r : refs[i]) {
      const auto rc = ngram_counts<kChrOrder>(chars_without_space(r), "");
      ChrStats st{};
      for (int n = 0; n < kChrOrder; ++n) {
        for (const auto& [g, k] : hc[n]) {
          st[n][0] += k;
          const auto it = rc[n].find(g);
          if (it != rc[n].end()) st[n][2] += std::min(k, it->second);
        }
        for (const auto& [g, k] : rc[n]) st[n][1] += k;
      }
      const double f = chrf_of(st);
      if (f > best_f) {
        best_f = f;
        best = st;
      }
    }
    for (int n = 0; n < kChrOrder; ++n)
      for (int k = 0; k < 3; ++k) corpus[n][k] += best[n][k];
  }
  return chrf_of(corpus);
}

}  // namespace focus
