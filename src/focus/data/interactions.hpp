// User-item interaction sequences for the sequential recommender (task recsys): the readers of
// MovieLens `ratings.dat` (`UserID::MovieID::Rating::Timestamp`, every rating an implicit
// interaction, as SASRec) and of a plain `user,item,timestamp` CSV (an optional header line), a
// CSV writer, and the leave-one-out split.
//   Items are numbered 1..V-1 in order of first appearance; 0 is padding. Each user's items are
//   ordered by timestamp (ties keep the file's order).
//   Leave-one-out (n >= 3 items per user): the last item tests (history: all before it), the one
//   before validates (history: all before it), the first n - 2 train.
// Malformed input (a wrong field count, a non-integer id/timestamp, a rating outside 1..5) is a
// FormatError naming the file and line. Users with fewer than `min_items` interactions are
// dropped and counted (skipped_users).
//
//   Interactions d = read_interactions("ml-1m/ratings.dat");  // format from the first line
//   auto h = leave_one_out_history(d.sequences[u], Fold::Test);  // (n - 1) items
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace focus {

struct Interactions {
  std::vector<std::string> item_names;              // [0] = "<pad>", then the file's item ids
  std::vector<std::string> user_names;              // per kept user
  std::vector<std::vector<int64_t>> sequences;      // per kept user: item indices in time order
  int64_t skipped_users = 0;                        // fewer than min_items interactions
  int64_t lines = 0;                                // interaction lines read
  int64_t num_items() const { return int64_t(item_names.size()); }  // V, padding included
  int64_t num_users() const { return int64_t(sequences.size()); }
  int64_t num_interactions() const;
};

// MovieLens ratings.dat. IOError when unreadable, FormatError (file:line) on a malformed line.
Interactions read_movielens_ratings(const std::string& path, int64_t min_items = 3);
// `user,item,timestamp` lines (ids: any non-empty text without commas; timestamp: an integer);
// a first line `user,item,timestamp` is a header. Empty lines are skipped.
Interactions read_interactions_csv(const std::string& path, int64_t min_items = 3);
// ratings.dat when the first non-empty line holds "::", else the CSV reader.
Interactions read_interactions(const std::string& path, int64_t min_items = 3);
// The CSV form (header, then each user's items with timestamps 0, 1, ...), written atomically.
void write_interactions_csv(const std::string& path, const Interactions& d);

enum class Fold { Train, Valid, Test };
// The history a fold's target follows: Train: the first n - 2 items (the training sequence
// itself), Valid: the first n - 2, Test: the first n - 1. ValueError when n < 3.
std::span<const int64_t> leave_one_out_history(const std::vector<int64_t>& seq, Fold fold);
// The fold's target: Valid: item n - 2, Test: item n - 1 (ValueError for Train or n < 3).
int64_t leave_one_out_target(const std::vector<int64_t>& seq, Fold fold);

}  // namespace focus
