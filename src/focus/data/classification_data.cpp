// Class counts, the stratified split and folds, and the seeded shuffle (see classification_data.hpp).
#include "focus/data/classification_data.hpp"

#include <algorithm>

#include "focus/data/augment.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {
namespace {
constexpr uint32_t kSplitTag = 0x5B1u;
constexpr uint32_t kFoldTag = 0xF01Du;
}  // namespace

// Fisher-Yates with a sequential counter-based stream: a pure function of (v, seed).
void shuffle_indices(std::vector<int64_t>& v, uint64_t seed) {
  Rng rng(seed);
  for (int64_t i = static_cast<int64_t>(v.size()) - 1; i > 0; --i)
    std::swap(v[i], v[rng.randint(i + 1)]);
}

std::vector<int64_t> class_counts(const std::vector<int64_t>& labels, int64_t num_classes) {
  FOCUS_CHECK(num_classes >= 1, ValueError, "class_counts: {} classes", num_classes);
  std::vector<int64_t> counts(static_cast<size_t>(num_classes), 0);
  for (size_t i = 0; i < labels.size(); ++i) {
    FOCUS_CHECK(labels[i] >= 0 && labels[i] < num_classes, ValueError,
                "label {} at index {} not in [0, {})", labels[i], i, num_classes);
    ++counts[size_t(labels[i])];
  }
  return counts;
}

TrainValSplit split_train_val(const std::vector<int64_t>& labels, int64_t k, int64_t val_size,
                              uint64_t seed) {
  const int64_t n = int64_t(labels.size());
  FOCUS_CHECK(val_size >= 0 && val_size < n, ValueError,
              "split_train_val: val_size {} not in [0, {}) for a dataset of {} samples", val_size,
              n, n);
  // Quotas: floor of the proportional share, then one more for the largest remainders
  // (ties to the lower class index).
  const std::vector<int64_t> counts = class_counts(labels, k);
  std::vector<int64_t> quota(static_cast<size_t>(k));
  std::vector<std::pair<int64_t, int64_t>> remainders;  // (-remainder * n, class)
  int64_t given = 0;
  for (int64_t c = 0; c < k; ++c) {
    quota[c] = val_size * counts[c] / n;
    given += quota[c];
    remainders.push_back({-(val_size * counts[c] % n), c});
  }
  std::sort(remainders.begin(), remainders.end());
  for (int64_t i = 0; given < val_size; ++i, ++given) ++quota[remainders[i].second];

  std::vector<std::vector<int64_t>> members(static_cast<size_t>(k));
  for (int64_t i = 0; i < n; ++i) members[labels[i]].push_back(i);
  TrainValSplit out;
  for (int64_t c = 0; c < k; ++c) {
    shuffle_indices(members[c], derive_seed(seed, kSplitTag, 0, static_cast<uint64_t>(c)));
    out.val.insert(out.val.end(), members[c].begin(), members[c].begin() + quota[c]);
    out.train.insert(out.train.end(), members[c].begin() + quota[c], members[c].end());
  }
  std::sort(out.train.begin(), out.train.end());
  std::sort(out.val.begin(), out.val.end());
  return out;
}

std::vector<int64_t> stratified_folds(const std::vector<int64_t>& labels, int64_t k,
                                      int64_t folds, uint64_t seed) {
  const int64_t n = int64_t(labels.size());
  FOCUS_CHECK(folds >= 2 && folds <= n, ValueError,
              "stratified_folds: {} folds for {} samples (need 2 <= folds <= samples)", folds, n);
  class_counts(labels, k);  // validates the labels
  std::vector<std::vector<int64_t>> members(static_cast<size_t>(k));
  for (int64_t i = 0; i < n; ++i) members[labels[i]].push_back(i);
  std::vector<int64_t> fold(static_cast<size_t>(n), 0);
  int64_t next = 0;
  for (int64_t c = 0; c < k; ++c) {
    shuffle_indices(members[c], derive_seed(seed, kFoldTag, 0, static_cast<uint64_t>(c)));
    for (int64_t i : members[c]) {
      fold[size_t(i)] = next;
      next = (next + 1) % folds;
    }
  }
  return fold;
}

}  // namespace focus
