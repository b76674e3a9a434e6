// Fuzz target: the recommender's data readers (data/interactions.hpp: MovieLens ratings.dat and
// the user,item,timestamp CSV, `focus train --task recsys --interactions FILE`). Bytes are written
// to a file (the readers take a path) and read by both readers and by the sniffing one: each
// either throws a FormatError naming the file (the line with it) or returns interactions that hold
// together: item 0 is padding, every kept user has >= min_items items, every index in 1..V-1,
// kept + skipped users <= lines read, interactions <= lines. Seeds: fuzz/corpus/interactions_fuzz/.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "focus/data/interactions.hpp"
#include "focus/tensor/error.hpp"
#include "fuzz_check.hpp"

using namespace focus;

namespace {

void check(const Interactions& d, int64_t min_items) {
  FUZZ_ASSERT(!d.item_names.empty() && d.item_names[0] == "<pad>", "item 0 is not padding");
  FUZZ_ASSERT(d.user_names.size() == d.sequences.size(), "%zu users, %zu sequences",
              d.user_names.size(), d.sequences.size());
  for (const auto& s : d.sequences) {
    FUZZ_ASSERT(int64_t(s.size()) >= min_items, "a kept user with %zu items", s.size());
    for (int64_t i : s) FUZZ_ASSERT(i >= 1 && i < d.num_items(), "item index %lld", (long long)i);
  }
  FUZZ_ASSERT(d.num_interactions() <= d.lines, "%lld interactions from %lld lines",
              (long long)d.num_interactions(), (long long)d.lines);
  FUZZ_ASSERT(d.num_users() + d.skipped_users <= d.lines, "more users than lines");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/focus-interactions-fuzz-" + std::to_string(getpid());
  FILE* f = std::fopen(path.c_str(), "wb");
  FUZZ_ASSERT(f, "cannot write %s", path.c_str());
  if (size) std::fwrite(data, 1, size, f);
  std::fclose(f);
  for (int64_t min_items : {int64_t(1), int64_t(3)}) {
    Interactions d;
    if (fuzz::accepts<FormatError>([&] { d = read_movielens_ratings(path, min_items); }, path)) check(d, min_items);
    if (fuzz::accepts<FormatError>([&] { d = read_interactions_csv(path, min_items); }, path)) check(d, min_items);
    if (fuzz::accepts<FormatError>([&] { d = read_interactions(path, min_items); }, path)) check(d, min_items);
  }
  return 0;
}
