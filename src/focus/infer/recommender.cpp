// Recommender (see recommender.hpp).
#include "focus/infer/recommender.hpp"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "focus/autograd/node.hpp"
#include "focus/infer/input_error.hpp"

namespace focus {

Recommender::Recommender(LoadedClassifier lc, const std::string& path) : lc_(std::move(lc)) {
  FOCUS_CHECK(lc_.model && lc_.model->input_kind() == "items", FormatError,
              "'{}': a {} model, not a recommender over item histories", path,
              lc_.model ? lc_.model->name() : std::string("missing"));
  const auto& names = lc_.info.class_names;
  FOCUS_CHECK(names.size() >= 2, FormatError, "'{}': the recommender names {} items", path, names.size());
  for (size_t i = 1; i < names.size(); ++i) ids_.emplace(names[i], int64_t(i));
  max_len_ = lc_.model->config().value("max_len", int64_t(1));
  lc_.model->eval();
}

std::vector<int64_t> Recommender::item_indices(const std::vector<std::string>& history) const {
  if (history.empty()) throw InputError(0, "the history is empty (give one item id or more)");
  std::vector<int64_t> ids;
  for (size_t i = 0; i < history.size(); ++i) {
    const auto it = ids_.find(history[i]);
    if (it == ids_.end()) throw InputError(i, fmt::format("unknown item id '{}'", history[i]));
    ids.push_back(it->second);
  }
  return ids;
}

std::vector<Recommendation> Recommender::recommend(const std::vector<std::string>& history, int64_t k) const {
  if (k < 1) throw InputError(0, fmt::format("k {} must be >= 1", k));
  const std::vector<int64_t> ids = item_indices(history);
  const int64_t n = std::min<int64_t>(int64_t(ids.size()), max_len_);
  const std::vector<int64_t> last(ids.end() - n, ids.end());
  Tensor scores;
  {
    std::lock_guard<std::mutex> lock(mu_);
    NoGradGuard no_grad;
    scores = lc_.model->forward(Tensor::from_vector(last, {1, n})).to(DType::F64).contiguous();  // (1, V)
  }
  const double* s = scores.data<double>();
  const int64_t V = scores.size(1);
  double mx = -INFINITY, z = 0;
  for (int64_t j = 1; j < V; ++j) mx = std::max(mx, s[j]);
  for (int64_t j = 1; j < V; ++j) z += std::exp(s[j] - mx);
  std::vector<char> seen(size_t(V), 0);
  for (int64_t i : ids) seen[size_t(i)] = 1;
  std::vector<int64_t> cand;
  for (int64_t j = 1; j < V; ++j)
    if (!seen[size_t(j)]) cand.push_back(j);
  const size_t top = std::min(cand.size(), size_t(k));
  std::partial_sort(cand.begin(), cand.begin() + std::ptrdiff_t(top), cand.end(),
                    [&](int64_t a, int64_t b) { return s[a] != s[b] ? s[a] > s[b] : a < b; });
  std::vector<Recommendation> out;
  for (size_t r = 0; r < top; ++r)
    out.push_back({lc_.info.class_names[size_t(cand[r])], s[cand[r]], std::exp(s[cand[r]] - mx) / z});
  return out;
}

}  // namespace focus
