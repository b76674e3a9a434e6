// The parts of the review queue both backends share: the URL factory, argument checks and the
// decision for a label on an item that already has one (queue_store.hpp).
#include "focus/review/queue_store.hpp"

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

namespace focus::review {

std::string item_state_name(ItemState s) {
  switch (s) {
    case ItemState::Pending: return "pending";
    case ItemState::Claimed: return "claimed";
    case ItemState::Done: return "done";
  }
  return "?";
}

ItemState parse_item_state(const std::string& s, const std::string& where) {
  if (s == "pending") return ItemState::Pending;
  if (s == "claimed") return ItemState::Claimed;
  if (s == "done") return ItemState::Done;
  throw FormatError(fmt::format("{}: unknown item state '{}'", where, s));
}

int64_t system_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

namespace {
void check_text(const std::string& s, const char* what) {
  FOCUS_CHECK(!s.empty(), ValueError, "review queue: the {} is empty", what);
  FOCUS_CHECK(s.size() <= 256, ValueError, "review queue: the {} has {} bytes, more than 256", what,
              s.size());
}
}  // namespace

void check_new_item(const NewItem& item) {
  check_text(item.request_id, "request id");
  check_text(item.content_type, "content type");
  FOCUS_CHECK(std::isfinite(item.uncertainty), ValueError,
              "review queue: request '{}': uncertainty {} is not finite", item.request_id, item.uncertainty);
  FOCUS_CHECK(std::isfinite(item.priority), ValueError,
              "review queue: request '{}': priority {} is not finite", item.request_id, item.priority);
  FOCUS_CHECK(nlohmann::json::accept(item.scores), ValueError,
              "review queue: request '{}': scores are not JSON: '{}'", item.request_id,
              item.scores.substr(0, 80));
}

void check_reviewer(const std::string& reviewer) { check_text(reviewer, "reviewer"); }
void check_label(const std::string& label) { check_text(label, "label"); }
void check_lease(int64_t lease_ms) {
  FOCUS_CHECK(lease_ms > 0, ValueError, "review queue: the lease must be positive, got {} ms", lease_ms);
}

bool repeat_label_or_conflict(const QueueItem& item, const std::string& reviewer,
                              const std::string& label) {
  if (item.reviewer == reviewer && item.label == label) return false;
  throw QueueConflictError(fmt::format(
      "review queue: item {} is already labelled '{}' by '{}'; '{}' cannot label it '{}'", item.id,
      item.label, item.reviewer, reviewer, label));
}

void check_undo(const QueueItem& item, const std::string& reviewer, int64_t window_ms, int64_t now_ms) {
  FOCUS_CHECK(window_ms >= 0, ValueError, "review queue: the undo window must be >= 0 ms, got {}", window_ms);
  if (item.state != ItemState::Done)
    throw QueueConflictError(fmt::format("review queue: item {} has no label to undo", item.id));
  if (item.reviewer != reviewer)
    throw QueueConflictError(fmt::format("review queue: item {} was labelled by '{}'; only they can undo it",
                                         item.id, item.reviewer));
  if (now_ms - item.labelled_ms > window_ms)
    throw QueueConflictError(fmt::format(
        "review queue: item {}'s label is {:.0f} s old; labels can be undone within {:.0f} s", item.id,
        double(now_ms - item.labelled_ms) / 1000.0, double(window_ms) / 1000.0));
}

std::unique_ptr<QueueStore> open_queue_store(const std::string& url, QueueStoreOptions opt) {
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0)
    return open_postgres_queue(url, std::move(opt));
  std::string path = url;
  if (url.rfind("sqlite://", 0) == 0) {
    path = url.substr(9);  // sqlite:///abs -> /abs, sqlite://rel -> rel
  } else {
    const auto colon = url.find("://");
    FOCUS_CHECK(colon == std::string::npos, ValueError,
                "review queue: unknown store URL scheme in '{}' (sqlite:///path.db or postgresql://...)", url);
  }
  FOCUS_CHECK(!path.empty(), ValueError, "review queue: no file in the store URL '{}'", url);
  return open_sqlite_queue(path, std::move(opt));
}

}  // namespace focus::review
