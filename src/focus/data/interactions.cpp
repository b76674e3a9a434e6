// Interaction readers and the leave-one-out split (see interactions.hpp).
#include "focus/data/interactions.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <unordered_map>

#include "focus/io/atomic_file.hpp"
#include "focus/tensor/error.hpp"

namespace focus {

namespace {

struct Event {
  int64_t user, item, time, order;
};

std::vector<std::string_view> split_on(std::string_view line, std::string_view sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    const size_t p = line.find(sep, start);
    out.push_back(line.substr(start, p == std::string_view::npos ? std::string_view::npos : p - start));
    if (p == std::string_view::npos) return out;
    start = p + sep.size();
  }
}

bool parse_int(std::string_view s, int64_t& v) {
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

// Collects events, numbering users and items by first appearance, then builds the sequences.
class Builder {
 public:
  int64_t user(std::string_view name) { return id(users_, user_names_, name); }
  int64_t item(std::string_view name) { return id(items_, item_names_, name); }
  void add(int64_t u, int64_t i, int64_t t) { events_.push_back({u, i, t, int64_t(events_.size())}); }

  Interactions finish(int64_t min_items) {
    Interactions d;
    d.lines = int64_t(events_.size());
    std::stable_sort(events_.begin(), events_.end(), [](const Event& a, const Event& b) {
      return a.user != b.user ? a.user < b.user : a.time < b.time;
    });
    std::vector<std::vector<int64_t>> seqs(user_names_.size());
    for (const Event& e : events_) seqs[size_t(e.user)].push_back(e.item);
    // Items are renumbered over the kept users only (by first appearance in the file), so every
    // item index appears in some kept sequence.
    std::vector<int64_t> first_seen(item_names_.size(), -1), remap(item_names_.size(), -1);
    std::vector<bool> keep(seqs.size());
    for (size_t u = 0; u < seqs.size(); ++u) keep[u] = int64_t(seqs[u].size()) >= min_items;
    for (const Event& e : events_)
      if (keep[size_t(e.user)] && (first_seen[size_t(e.item)] < 0 || e.order < first_seen[size_t(e.item)]))
        first_seen[size_t(e.item)] = e.order;
    std::vector<int64_t> order;
    for (size_t i = 0; i < first_seen.size(); ++i)
      if (first_seen[i] >= 0) order.push_back(int64_t(i));
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return first_seen[size_t(a)] < first_seen[size_t(b)]; });
    d.item_names.push_back("<pad>");
    for (int64_t i : order) {
      remap[size_t(i)] = int64_t(d.item_names.size());
      d.item_names.push_back(item_names_[size_t(i)]);
    }
    for (size_t u = 0; u < seqs.size(); ++u) {
      if (!keep[u]) {
        ++d.skipped_users;
        continue;
      }
      for (int64_t& i : seqs[u]) i = remap[size_t(i)];
      d.user_names.push_back(user_names_[u]);
      d.sequences.push_back(std::move(seqs[u]));
    }
    return d;
  }

 private:
  static int64_t id(std::unordered_map<std::string, int64_t>& ids, std::vector<std::string>& names,
                    std::string_view name) {
    auto [it, fresh] = ids.try_emplace(std::string(name), int64_t(names.size()));
    if (fresh) names.emplace_back(name);
    return it->second;
  }
  std::unordered_map<std::string, int64_t> users_, items_;
  std::vector<std::string> user_names_, item_names_;
  std::vector<Event> events_;
};

std::ifstream open(const std::string& path) {
  std::ifstream f(path);
  FOCUS_CHECK(f.good(), IOError, "cannot read interactions file '{}'", path);
  return f;
}

}  // namespace

int64_t Interactions::num_interactions() const {
  int64_t n = 0;
  for (const auto& s : sequences) n += int64_t(s.size());
  return n;
}

Interactions read_movielens_ratings(const std::string& path, int64_t min_items) {
  std::ifstream f = open(path);
  Builder b;
  std::string line;
  for (int64_t no = 1; std::getline(f, line); ++no) {
    const std::string_view l = trim(line);
    if (l.empty()) continue;
    const auto fields = split_on(l, "::");
    FOCUS_CHECK(fields.size() == 4, FormatError,
                "{}:{}: expected UserID::MovieID::Rating::Timestamp, got {} field(s): '{}'", path,
                no, fields.size(), l);
    int64_t user, item, rating, time;
    const char* names[] = {"UserID", "MovieID", "Rating", "Timestamp"};
    int64_t* values[] = {&user, &item, &rating, &time};
    for (int k = 0; k < 4; ++k)
      FOCUS_CHECK(parse_int(fields[size_t(k)], *values[k]), FormatError,
                  "{}:{}: {} '{}' is not an integer", path, no, names[k], fields[size_t(k)]);
    FOCUS_CHECK(rating >= 1 && rating <= 5, FormatError, "{}:{}: Rating {} is not in 1..5", path,
                no, rating);
    b.add(b.user(fields[0]), b.item(fields[1]), time);
  }
  return b.finish(min_items);
}

Interactions read_interactions_csv(const std::string& path, int64_t min_items) {
  std::ifstream f = open(path);
  Builder b;
  std::string line;
  bool first = true;
  for (int64_t no = 1; std::getline(f, line); ++no) {
    const std::string_view l = trim(line);
    if (l.empty()) continue;
    const auto fields = split_on(l, ",");
    const bool header = first && fields.size() == 3 && trim(fields[2]) == "timestamp";
    first = false;
    if (header) continue;
    FOCUS_CHECK(fields.size() == 3, FormatError,
                "{}:{}: expected user,item,timestamp, got {} field(s): '{}'", path, no,
                fields.size(), l);
    const std::string_view user = trim(fields[0]), item = trim(fields[1]);
    FOCUS_CHECK(!user.empty() && !item.empty(), FormatError, "{}:{}: empty user or item id", path, no);
    int64_t time;
    FOCUS_CHECK(parse_int(trim(fields[2]), time), FormatError,
                "{}:{}: timestamp '{}' is not an integer", path, no, trim(fields[2]));
    b.add(b.user(user), b.item(item), time);
  }
  return b.finish(min_items);
}

Interactions read_interactions(const std::string& path, int64_t min_items) {
  std::ifstream f = open(path);
  std::string line;
  while (std::getline(f, line))
    if (!trim(line).empty()) break;
  return line.find("::") != std::string::npos ? read_movielens_ratings(path, min_items)
                                              : read_interactions_csv(path, min_items);
}

void write_interactions_csv(const std::string& path, const Interactions& d) {
  std::string out = "user,item,timestamp\n";
  for (size_t u = 0; u < d.sequences.size(); ++u)
    for (size_t t = 0; t < d.sequences[u].size(); ++t)
      out += fmt::format("{},{},{}\n", d.user_names[u], d.item_names[size_t(d.sequences[u][t])], t);
  write_file_atomic(path, out);
}

std::span<const int64_t> leave_one_out_history(const std::vector<int64_t>& seq, Fold fold) {
  FOCUS_CHECK(seq.size() >= 3, ValueError,
              "leave-one-out needs 3 or more items per user, this one has {}", seq.size());
  const size_t n = seq.size() - (fold == Fold::Test ? 1 : 2);
  return {seq.data(), n};
}

int64_t leave_one_out_target(const std::vector<int64_t>& seq, Fold fold) {
  FOCUS_CHECK(fold != Fold::Train, ValueError, "leave_one_out_target: the training fold has no single target");
  FOCUS_CHECK(seq.size() >= 3, ValueError,
              "leave-one-out needs 3 or more items per user, this one has {}", seq.size());
  return seq[seq.size() - (fold == Fold::Test ? 1 : 2)];
}

}  // namespace focus
