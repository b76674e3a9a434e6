// The n-gram branch's data side (see text_ngram.hpp).
#include "focus/models/text_ngram.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "focus/tensor/error.hpp"

namespace focus {

int64_t text_ngram_bucket(const int64_t* ids, int64_t n, int64_t buckets) {
  auto mix = [](uint64_t x) {  // splitmix64's finaliser
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  };
  uint64_t h = mix(uint64_t(n));
  for (int64_t i = 0; i < n; ++i) h = mix(h ^ uint64_t(ids[i]));
  return int64_t(h % uint64_t(buckets));
}


namespace {
// Slot weights of one row from its valid slots' buckets (weight 1 where valid): sqrt-normalised
// counts without idf, sublinear TF-IDF with it (text_ngram_features).
void weigh_row(const int64_t* b, double* w, int64_t S, int64_t count, const float* idf,
               std::vector<std::pair<int64_t, int64_t>>& order_buf) {
  if (!idf) {
    const double norm = std::sqrt(double(std::max<int64_t>(count, 1)));
    for (int64_t s = 0; s < S; ++s) w[s] /= norm;
    return;
  }
  order_buf.clear();
  for (int64_t s = 0; s < S; ++s)
    if (w[s] != 0) order_buf.emplace_back(b[s], s);
  std::sort(order_buf.begin(), order_buf.end());
  double norm2 = 0;
  for (size_t i = 0; i < order_buf.size();) {
    size_t j = i;
    while (j < order_buf.size() && order_buf[j].first == order_buf[i].first) ++j;
    const double c = double(j - i);
    const double v = (1.0 + std::log(c)) * double(idf[order_buf[i].first]);
    norm2 += v * v;
    for (size_t t = i; t < j; ++t) w[order_buf[t].second] = v / c;
    i = j;
  }
  const double inv = norm2 > 0 ? 1.0 / std::sqrt(norm2) : 0.0;
  for (const auto& [bk, s] : order_buf) w[s] *= inv;
}
}  // namespace

void text_ngram_features(const int64_t* ids, int64_t N, int64_t L, int64_t order, int64_t buckets,
                         int64_t* bucket, double* weight, const float* idf, int64_t boundary) {
  FOCUS_CHECK(order >= 1 && buckets >= 1, ValueError,
              "text_ngram_features: order {} and buckets {} must be >= 1", order, buckets);
  std::vector<std::pair<int64_t, int64_t>> order_buf;
  for (int64_t r = 0; r < N; ++r) {
    const int64_t* row = ids + r * L;
    int64_t* b = bucket + r * L * order;
    double* w = weight + r * L * order;
    int64_t count = 0;
    for (int64_t l = 0; l < L; ++l) {
      int64_t run = 0;  // non-padding ids from l on, up to order (and within a word)
      while (run < order && l + run < L && row[l + run] != 0) {
        ++run;
        if (boundary >= 0 && run >= 2 && row[l + run - 1] == boundary) break;  // ends a word
      }
      for (int64_t n = 1; n <= order; ++n) {
        const bool valid = n <= run;
        b[l * order + n - 1] = valid ? text_ngram_bucket(row + l, n, buckets) : 0;
        w[l * order + n - 1] = valid ? 1.0 : 0.0;
        count += valid;
      }
    }
    weigh_row(b, w, L * order, count, idf, order_buf);
  }
}

NgramRow text_ngram_row(const std::vector<int64_t>& ids, int64_t order, int64_t buckets,
                        const float* idf, int64_t boundary) {
  NgramRow out;
  const int64_t L = int64_t(ids.size());
  if (L == 0) return out;
  std::vector<int64_t> bucket(size_t(L * order));
  std::vector<double> weight(size_t(L * order));
  text_ngram_features(ids.data(), 1, L, order, buckets, bucket.data(), weight.data(), idf, boundary);
  std::vector<std::pair<int64_t, double>> slots;
  slots.reserve(bucket.size());
  for (size_t s = 0; s < bucket.size(); ++s)
    if (weight[s] != 0) slots.emplace_back(bucket[s], weight[s]);
  std::sort(slots.begin(), slots.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 0; i < slots.size();) {
    double v = 0;
    size_t j = i;
    for (; j < slots.size() && slots[j].first == slots[i].first; ++j) v += slots[j].second;
    out.bucket.push_back(int32_t(slots[i].first));
    out.value.push_back(float(v));
    i = j;
  }
  return out;
}

std::vector<double> text_ngram_nb_ratios(const std::vector<std::vector<int64_t>>& rows,
                                         const std::vector<int64_t>& labels, int64_t K,
                                         int64_t order, int64_t buckets, double alpha,
                                         int64_t boundary) {
  FOCUS_CHECK(rows.size() == labels.size(), ValueError,
              "text_ngram_nb_ratios: {} rows but {} labels", rows.size(), labels.size());
  FOCUS_CHECK(K >= 2 && order >= 1 && buckets >= 1 && alpha > 0 && std::isfinite(alpha), ValueError,
              "text_ngram_nb_ratios: K {} (>= 2), order {} (>= 1), buckets {} (>= 1), alpha {} (> 0)",
              K, order, buckets, alpha);
  std::vector<double> count(size_t(buckets * K), 0.0);  // (buckets, K): rows holding the bucket
  std::vector<int64_t> bucket;
  std::vector<double> weight;
  std::vector<int64_t> seen;
  for (size_t i = 0; i < rows.size(); ++i) {
    const int64_t k = labels[i], L = int64_t(rows[i].size());
    FOCUS_CHECK(k >= 0 && k < K, ValueError, "text_ngram_nb_ratios: row {} has label {} not in [0, {})",
                i, k, K);
    if (L == 0) continue;
    bucket.resize(size_t(L * order));
    weight.resize(size_t(L * order));
    text_ngram_features(rows[i].data(), 1, L, order, buckets, bucket.data(), weight.data(), nullptr,
                        boundary);
    seen.clear();
    for (size_t s = 0; s < bucket.size(); ++s)
      if (weight[s] != 0) seen.push_back(bucket[s]);
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    for (int64_t b : seen) count[size_t(b * K + k)] += 1;
  }
  std::vector<double> total(size_t(buckets), 0.0);  // rows of any class holding the bucket
  for (int64_t b = 0; b < buckets; ++b)
    for (int64_t k = 0; k < K; ++k) total[size_t(b)] += count[size_t(b * K + k)];
  std::vector<double> norm_k(size_t(K), 0.0), norm_rest(size_t(K), 0.0);
  for (int64_t b = 0; b < buckets; ++b) {
    if (total[size_t(b)] == 0) continue;
    for (int64_t k = 0; k < K; ++k) {
      norm_k[size_t(k)] += count[size_t(b * K + k)] + alpha;
      norm_rest[size_t(k)] += total[size_t(b)] - count[size_t(b * K + k)] + alpha;
    }
  }
  std::vector<double> r(size_t(buckets * K), 0.0);
  for (int64_t b = 0; b < buckets; ++b) {
    if (total[size_t(b)] == 0) continue;
    for (int64_t k = 0; k < K; ++k) {
      const double ck = count[size_t(b * K + k)], rest = total[size_t(b)] - ck;
      r[size_t(b * K + k)] = std::log((ck + alpha) / norm_k[size_t(k)]) -
                             std::log((rest + alpha) / norm_rest[size_t(k)]);
    }
  }
  return r;
}


std::vector<float> text_ngram_idf(const std::vector<std::vector<int64_t>>& rows, int64_t order,
                                  int64_t buckets, int64_t boundary) {
  FOCUS_CHECK(order >= 1 && buckets >= 1 && buckets <= INT32_MAX, ValueError,
              "text_ngram_idf: order {} (>= 1), buckets {} (1 to 2^31 - 1)", order, buckets);
  std::vector<double> df(size_t(buckets), 0.0);
  for (const auto& r : rows)
    for (int32_t b : text_ngram_row(r, order, buckets, nullptr, boundary).bucket) df[size_t(b)] += 1;
  const double n = double(rows.size());
  std::vector<float> idf(static_cast<size_t>(buckets));
  for (int64_t b = 0; b < buckets; ++b)
    idf[size_t(b)] = float(std::log((1 + n) / (1 + df[size_t(b)])) + 1);
  return idf;
}

NgramFit text_ngram_fit(const std::vector<std::vector<int64_t>>& rows,
                        const std::vector<int64_t>& labels, int64_t K, int64_t order,
                        int64_t buckets, const NgramFitOptions& opt) {
  FOCUS_CHECK(rows.size() == labels.size() && !rows.empty(), ValueError,
              "text_ngram_fit: {} rows and {} labels (equal, not 0)", rows.size(), labels.size());
  FOCUS_CHECK(K >= 2 && order >= 1 && buckets >= 1 && buckets <= INT32_MAX, ValueError,
              "text_ngram_fit: K {} (>= 2), order {} (>= 1), buckets {} (1 to 2^31 - 1)", K, order,
              buckets);
  FOCUS_CHECK(opt.C > 0 && std::isfinite(opt.C), ValueError, "text_ngram_fit: C {} must be positive",
              opt.C);
  const bool hinge = opt.loss == "squared_hinge";
  FOCUS_CHECK(hinge || opt.loss == "logistic", ValueError,
              "text_ngram_fit: loss '{}' (logistic or squared_hinge)", opt.loss);
  FOCUS_CHECK(opt.class_weights.empty() || int64_t(opt.class_weights.size()) == K, ValueError,
              "text_ngram_fit: {} class weights for {} classes", opt.class_weights.size(), K);
  for (double w : opt.class_weights)
    FOCUS_CHECK(w > 0 && std::isfinite(w), ValueError,
                "text_ngram_fit: class weight {} must be positive and finite", w);
  // The rows' features, buckets renumbered densely over those some row holds.
  const size_t n = rows.size();
  std::vector<NgramRow> x(n);
  std::vector<int32_t> dense(size_t(buckets), -1);
  std::vector<int32_t> present;  // dense index -> bucket
  for (size_t i = 0; i < n; ++i) {
    FOCUS_CHECK(!rows[i].empty(), ValueError, "text_ngram_fit: row {} is empty", i);
    FOCUS_CHECK(labels[i] >= 0 && labels[i] < K, ValueError,
                "text_ngram_fit: row {} has label {} not in [0, {})", i, labels[i], K);
    x[i] = text_ngram_row(rows[i], order, buckets, opt.idf, opt.boundary);
    for (int32_t& b : x[i].bucket) {
      if (dense[size_t(b)] < 0) dense[size_t(b)] = int32_t(present.size()), present.push_back(b);
      b = dense[size_t(b)];
    }
  }
  const int64_t P = int64_t(present.size());
  std::vector<double> f;  // (P, K): the NB ratios of the present buckets (empty: 1)
  if (opt.nb) {
    f.resize(size_t(P * K));
    for (int64_t p = 0; p < P; ++p)
      for (int64_t k = 0; k < K; ++k) f[size_t(p * K + k)] = opt.nb[int64_t(present[size_t(p)]) * K + k];
  }
  std::vector<double> s(n, 1.0);  // per row: its class's weight
  if (!opt.class_weights.empty())
    for (size_t i = 0; i < n; ++i) s[i] = opt.class_weights[size_t(labels[i])];
  // Variables: w (P, K) then c (K); the objective divided by n (the same minimiser).
  const double inv_n = 1.0 / double(n), l2 = 1.0 / opt.C;
  std::vector<double> z(static_cast<size_t>(K)), p(static_cast<size_t>(K));
  auto logits = [&](const std::vector<double>& v, size_t i) {
    const double* w = v.data();
    const double* c = v.data() + P * K;
    for (int64_t k = 0; k < K; ++k) z[size_t(k)] = c[k];
    const NgramRow& r = x[i];
    for (size_t j = 0; j < r.bucket.size(); ++j) {
      const int64_t b = r.bucket[j];
      const double xv = r.value[j];
      for (int64_t k = 0; k < K; ++k)
        z[size_t(k)] += xv * (f.empty() ? 1.0 : f[size_t(b * K + k)]) * w[b * K + k];
    }
  };
  auto objective = [&](const std::vector<double>& v, std::vector<double>& g) {
    double loss = 0;
    for (int64_t q = 0; q < P * K; ++q) g[size_t(q)] = l2 * v[size_t(q)], loss += 0.5 * l2 * v[size_t(q)] * v[size_t(q)];
    for (int64_t k = 0; k < K; ++k) g[size_t(P * K + k)] = 0;
    for (size_t i = 0; i < n; ++i) {
      logits(v, i);
      if (hinge) {  // p = d loss / d z
        for (int64_t k = 0; k < K; ++k) {
          const double t = k == labels[i] ? 1.0 : -1.0, m = std::max(0.0, 1.0 - t * z[size_t(k)]);
          loss += s[i] * m * m;
          p[size_t(k)] = -2.0 * s[i] * t * m;
        }
      } else {
        const double m = *std::max_element(z.begin(), z.end());
        double se = 0;
        for (int64_t k = 0; k < K; ++k) se += std::exp(z[size_t(k)] - m);
        const double lse = m + std::log(se);
        loss += s[i] * (lse - z[size_t(labels[i])]);
        for (int64_t k = 0; k < K; ++k)
          p[size_t(k)] = s[i] * (std::exp(z[size_t(k)] - lse) - (k == labels[i] ? 1.0 : 0.0));
      }
      const NgramRow& r = x[i];
      for (size_t j = 0; j < r.bucket.size(); ++j) {
        const int64_t b = r.bucket[j];
        const double xv = r.value[j];
        for (int64_t k = 0; k < K; ++k)
          g[size_t(b * K + k)] += xv * (f.empty() ? 1.0 : f[size_t(b * K + k)]) * p[size_t(k)];
      }
      for (int64_t k = 0; k < K; ++k) g[size_t(P * K + k)] += p[size_t(k)];
    }
    for (double& gv : g) gv *= inv_n;
    return loss * inv_n;
  };
  std::vector<double> v(size_t(P * K + K), 0.0);
  NgramFit out;
  out.solver = lbfgs_minimize(objective, v, opt.lbfgs);
  out.w.assign(size_t(buckets * K), 0.0);
  for (int64_t q = 0; q < P; ++q)
    for (int64_t k = 0; k < K; ++k) out.w[size_t(int64_t(present[size_t(q)]) * K + k)] = v[size_t(q * K + k)];
  out.intercept.assign(v.begin() + P * K, v.end());
  int64_t correct = 0;
  for (size_t i = 0; i < n; ++i) {
    logits(v, i);
    correct += std::max_element(z.begin(), z.end()) - z.begin() == labels[i];
  }
  out.train_accuracy = double(correct) / double(n);
  return out;
}

}  // namespace focus
