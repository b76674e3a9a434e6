// The durable human-review queue: one small interface (QueueStore) with two implementations,
// SQLite (queue_sqlite.cpp: one file, WAL, synchronous=FULL; the default) and PostgreSQL
// (queue_postgres.cpp: libpq, claims with SELECT ... FOR UPDATE SKIP LOCKED; for several servers
// sharing one queue). Both keep the same schema, versioned (table review_meta, key
// 'schema_version') and brought up to date by a migration step when the store is opened; a store
// written by a newer focus is refused. Every operation is one transaction, committed (durable)
// before the call returns: a process killed with SIGKILL after a call returned loses nothing.
//
//   auto q = open_queue_store("sqlite:///var/lib/focus/review.db");  // or postgresql://...
//   q->enqueue({.request_id = "req-1", .model = "cnn-se", .model_version = "sha256:ab..",
//               .content_type = "image/png", .input = png, .prediction = "Coat", .priority = 0.4});
//   if (auto item = q->claim("alice", 300'000)) q->label(item->id, "alice", "Pullover");
//   for (const QueueItem& it : q->labelled_since(0, 100).items) ...
//
// Semantics (the same for both backends, tests/review/queue_store_test.cpp):
// - enqueue is idempotent by request_id: a second call returns the first item's id and
//   created = false, and changes nothing (not even when the other fields differ).
// - claim(reviewer, lease) hands out the waiting item of highest priority, oldest first among
//   equal priorities (then lowest id), and holds it for `lease_ms`. Waiting = pending, or claimed
//   with an expired lease (an unanswered claim returns to the queue by itself; no sweeper runs).
//   A reviewer may hold several claims; a claim is work distribution, not an authorisation.
// - label(id, reviewer, label): the first label of an item wins and is final. It is accepted
//   whatever the item's claim state, so a reviewer whose lease ran out (or who never claimed it)
//   still gets the answer recorded if nobody labelled the item first: human work is not thrown
//   away. Repeating the same (reviewer, label) is a no-op (recorded = false); a different label,
//   or any label from another reviewer, on a labelled item is a QueueConflictError naming who
//   labelled it with what. An unknown id is a ValueError.
// - undo_label(id, reviewer, window_ms, lease_ms) withdraws a label: only the reviewer who gave
//   it, and only within window_ms of giving it (the reviewer page's U key). The item is claimed
//   by that reviewer again (a fresh lease; if the reviewer leaves, it returns to the queue like
//   any claim) and has no label until the next one, which gets a new label_seq. An export that
//   already listed the withdrawn label lists the item again with its next label: a later line
//   for the same id supersedes an earlier one (reviewed_labels.hpp reads them so).
// - release(id, reviewer) returns the reviewer's live claim to the queue (false if the reviewer
//   does not hold one on that item: not claimed, claimed by another, expired or labelled).
// - labelled_since(cursor, limit) lists labelled items in the order they were labelled, after the
//   cursor (0 = from the start); each item's label_seq is the next cursor. Labels are numbered in
//   commit order, so paging never skips a label committed while an export runs.
// - An item enqueued with a TTL expires when unlabelled at created + ttl: it stops waiting (claim
//   skips it, counts list it apart) and its ticket reports the model's answer; a label given
//   later is still recorded.
// - Times are milliseconds since the Unix epoch from QueueStoreOptions::now_ms (injectable, for
//   tests); the stored times are the clock of the process that did the operation.
// Errors: a database failure is a QueueStoreError (an IOError) naming the operation and the
// database's message; bad arguments are ValueErrors; nothing aborts.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "focus/tensor/error.hpp"

namespace focus::review {

// A database failure (cannot open, disk full, connection lost...), naming the operation.
struct QueueStoreError : IOError {
  using IOError::IOError;
};
// A label that contradicts the item's recorded label (another reviewer or another answer).
struct QueueConflictError : StateError {
  using StateError::StateError;
};

enum class ItemState { Pending, Claimed, Done };
std::string item_state_name(ItemState s);  // "pending" | "claimed" | "done"

// What the server (or `focus review enqueue`) queues.
struct NewItem {
  std::string request_id;     // idempotency key: non-empty, at most 256 bytes
  std::string model;          // model name, e.g. "cnn-se"
  std::string model_version;  // e.g. the model file's SHA-256
  std::string content_type;   // of `input`, e.g. "image/png"; non-empty
  std::string input;          // the input's bytes
  std::string prediction;     // the model's answer (class name)
  std::string scores = "{}";  // the model's top-k / probabilities / explanation, a JSON text
  double uncertainty = 0;     // the error score (review/scores.hpp), finite
  double priority = 0;        // higher is claimed first, finite
  int64_t ttl_ms = 0;         // > 0: unlabelled after this long, the item expires (0 = never)
};

struct QueueItem {
  int64_t id = 0;
  NewItem data;
  ItemState state = ItemState::Pending;  // as stored: an expired claim still reads Claimed
  int64_t created_ms = 0;
  std::string reviewer;            // the last claimant, then the labeller ("" = none)
  int64_t claimed_ms = 0;          // 0 = never claimed
  int64_t lease_until_ms = 0;      // 0 = no claim
  std::string label;               // "" until labelled
  int64_t labelled_ms = 0;         // 0 until labelled
  int64_t label_seq = 0;           // export cursor of this label (0 until labelled)
  int64_t time_spent_ms = 0;       // labelled - claimed when the labeller held the claim, else 0
  int64_t expires_ms = 0;          // created + ttl (0 = never)
  // Expired: not labelled by expires_ms. It is no longer handed out (the model's answer stands),
  // but a late label is still recorded (human work is not thrown away).
  bool expired(int64_t now_ms) const {
    return state != ItemState::Done && expires_ms > 0 && now_ms >= expires_ms;
  }
};

struct EnqueueResult {
  int64_t id = 0;
  bool created = false;  // false: the request id was already queued (id is that item's)
};

struct QueueCounts {
  int64_t pending = 0;  // waiting: never claimed, released, or claimed with an expired lease
  int64_t claimed = 0;  // under a live lease
  int64_t done = 0;     // labelled
  int64_t expired = 0;  // unlabelled past their TTL (not waiting any more)
};

// What a capacity controller (review/capacity.hpp) and the metrics need.
struct QueueCapacity {
  int64_t waiting = 0;        // = QueueCounts::pending
  double oldest_age_s = 0;    // age of the oldest waiting item (0 when none waits)
  double labels_last_hour = 0;  // labels committed in the hour before now (labels per hour)
};

struct ExportPage {
  std::vector<QueueItem> items;  // labelled, in label order
  int64_t next_cursor = 0;       // pass to the next call (== the cursor given when empty)
};

struct QueueStoreOptions {
  std::function<int64_t()> now_ms;  // the clock; empty = the system clock
  int busy_timeout_ms = 30000;      // SQLite: how long (at least) to wait for another writer's lock
};

class QueueStore {
 public:
  virtual ~QueueStore() = default;
  virtual EnqueueResult enqueue(const NewItem& item) = 0;
  // The next waiting item, now claimed by `reviewer` until now + lease_ms; nullopt when none.
  virtual std::optional<QueueItem> claim(const std::string& reviewer, int64_t lease_ms) = 0;
  // True when this call recorded the label; false when the same label by the same reviewer was
  // already there. QueueConflictError / ValueError: see the file comment.
  virtual bool label(int64_t id, const std::string& reviewer, const std::string& label) = 0;
  virtual bool release(int64_t id, const std::string& reviewer) = 0;
  // The item, claimed by `reviewer` again. QueueConflictError when it is not labelled, another
  // reviewer labelled it, or its label is older than window_ms; ValueError for an unknown id.
  virtual QueueItem undo_label(int64_t id, const std::string& reviewer, int64_t window_ms,
                               int64_t lease_ms) = 0;
  virtual std::optional<QueueItem> get(int64_t id) = 0;
  virtual std::optional<QueueItem> find(const std::string& request_id) = 0;
  virtual QueueCounts counts() = 0;
  virtual QueueCapacity capacity() = 0;
  virtual ExportPage labelled_since(int64_t cursor, int64_t limit) = 0;
  virtual int schema_version() = 0;
  virtual std::string backend() const = 0;  // "sqlite" | "postgresql"
};

// The schema version this build writes (and migrates older stores to).
inline constexpr int kQueueSchemaVersion = 2;  // 2: expires_ms (item TTL)

// Opens (creating when missing) the store at `url`:
//   sqlite:///absolute/path.db, sqlite://relative/path.db, or a plain path (SQLite);
//   postgresql://user@host:port/db?... or postgres://... (any libpq connection URI).
// ValueError for another scheme; QueueStoreError when the database cannot be opened or migrated;
// FormatError when its schema is newer than this build's.
std::unique_ptr<QueueStore> open_queue_store(const std::string& url, QueueStoreOptions opt = {});
std::unique_ptr<QueueStore> open_sqlite_queue(const std::string& path, QueueStoreOptions opt);
std::unique_ptr<QueueStore> open_postgres_queue(const std::string& conninfo, QueueStoreOptions opt);

// ---- shared by the implementations -------------------------------------------------------------
// The columns a QueueItem is read from, in the order both backends decode them.
inline constexpr const char* kQueueColumns =
    "id, request_id, model, model_version, content_type, input, prediction, scores, uncertainty,"
    " priority, state, created_ms, reviewer, claimed_ms, lease_until_ms, label, labelled_ms,"
    " coalesce(label_seq, 0), time_spent_ms, expires_ms";
int64_t system_now_ms();
// Throws ValueError naming the field for an empty request id / content type, a request id over
// 256 bytes, a non-finite uncertainty or priority, or scores that are not JSON.
void check_new_item(const NewItem& item);
void check_reviewer(const std::string& reviewer);           // non-empty, at most 256 bytes
void check_label(const std::string& label);                 // non-empty, at most 256 bytes
void check_lease(int64_t lease_ms);                          // > 0
ItemState parse_item_state(const std::string& s, const std::string& where);  // FormatError
// The label decision for an item already labelled: false for the same (reviewer, label),
// QueueConflictError otherwise.
bool repeat_label_or_conflict(const QueueItem& item, const std::string& reviewer,
                              const std::string& label);
// Throws QueueConflictError unless `item` was labelled by `reviewer` at most window_ms before now.
void check_undo(const QueueItem& item, const std::string& reviewer, int64_t window_ms, int64_t now_ms);

}  // namespace focus::review
