// The review queue in one SQLite file (queue_store.hpp): WAL journal, synchronous=FULL (a commit
// is on disk when the call returns, so SIGKILL or a power cut loses no acknowledged label),
// a busy handler (1 ms retries) for other writers, one transaction per operation (BEGIN IMMEDIATE for
// writes, so two processes never deadlock upgrading read locks). One connection per store; its
// operations are serialised by a mutex, so threads may share a store.
#include <sqlite3.h>

#include <chrono>
#include <mutex>
#include <thread>

#include "focus/review/queue_store.hpp"

namespace focus::review {

namespace {

// Schema migrations: kMigrations[v - 1] takes a store from version v - 1 to v.
const char* const kMigrations[] = {
    // 1: the items and the label counter.
    "CREATE TABLE review_items("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " request_id TEXT NOT NULL UNIQUE,"
    " model TEXT NOT NULL, model_version TEXT NOT NULL, content_type TEXT NOT NULL,"
    " input BLOB NOT NULL, prediction TEXT NOT NULL, scores TEXT NOT NULL,"
    " uncertainty REAL NOT NULL, priority REAL NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN ('pending', 'claimed', 'done')),"
    " created_ms INTEGER NOT NULL,"
    " reviewer TEXT NOT NULL DEFAULT '', claimed_ms INTEGER NOT NULL DEFAULT 0,"
    " lease_until_ms INTEGER NOT NULL DEFAULT 0, label TEXT NOT NULL DEFAULT '',"
    " labelled_ms INTEGER NOT NULL DEFAULT 0, label_seq INTEGER UNIQUE,"
    " time_spent_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX review_items_waiting ON review_items(priority DESC, created_ms, id)"
    " WHERE state <> 'done';"  // claims walk it in order
    "CREATE INDEX review_items_labelled ON review_items(labelled_ms) WHERE state = 'done';"
    "INSERT INTO review_meta(key, value) VALUES ('label_seq', 0);",
    // 2: item TTL.
    "ALTER TABLE review_items ADD COLUMN expires_ms INTEGER NOT NULL DEFAULT 0;",
};
static_assert(std::size(kMigrations) == kQueueSchemaVersion);

const char* const kColumns = kQueueColumns;
// Waiting items; the `state <> 'done'` term lets the planner use the partial index.
const char* const kWaiting =
    "(state <> 'done' AND (state = 'pending' OR lease_until_ms <= ?1) AND (expires_ms = 0 OR expires_ms > ?1))";
// Expired: unlabelled past the TTL.
const char* const kExpired = "(state <> 'done' AND expires_ms > 0 AND expires_ms <= ?1)";

class SqliteQueue;

// A prepared statement; finalised on destruction.
class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql, const SqliteQueue& q, const char* op);
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt& bind(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); return *this; }
  Stmt& bind(int i, double v) { sqlite3_bind_double(s_, i, v); return *this; }
  Stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), int(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind_blob(int i, const std::string& v) {
    sqlite3_bind_blob(s_, i, v.data(), int(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  bool step();  // true: a row is ready; false: done. QueueStoreError on failure.
  int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  double f64(int c) const { return sqlite3_column_double(s_, c); }
  std::string text(int c) const {
    const void* p = sqlite3_column_blob(s_, c);
    return p ? std::string(static_cast<const char*>(p), size_t(sqlite3_column_bytes(s_, c))) : "";
  }
  QueueItem item() const;  // a row of kColumns

 private:
  sqlite3_stmt* s_ = nullptr;
  const SqliteQueue& q_;
  const char* op_;
};

class SqliteQueue final : public QueueStore {
 public:
  SqliteQueue(std::string path, QueueStoreOptions opt) : path_(std::move(path)), opt_(std::move(opt)) {
    if (!opt_.now_ms) opt_.now_ms = system_now_ms;
    const int rc = sqlite3_open_v2(path_.c_str(), &db_,
                                   SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      const std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
      sqlite3_close(db_);
      db_ = nullptr;
      throw QueueStoreError(fmt::format("review queue (sqlite '{}'): open: {}", path_, msg));
    }
    try {
      sqlite3_busy_handler(db_, &SqliteQueue::busy_wait, this);
      exec("open", "PRAGMA journal_mode=WAL");
      exec("open", "PRAGMA synchronous=FULL");
      exec("open", "PRAGMA foreign_keys=ON");
      migrate();
    } catch (...) {
      sqlite3_close(db_);
      db_ = nullptr;
      throw;
    }
  }
  ~SqliteQueue() override { sqlite3_close(db_); }

  [[noreturn]] void fail(const char* op, const std::string& detail = "") const {
    throw QueueStoreError(fmt::format("review queue (sqlite '{}'): {}: {}", path_, op,
                                      detail.empty() ? sqlite3_errmsg(db_) : detail));
  }
  sqlite3* db() const { return db_; }

  EnqueueResult enqueue(const NewItem& in) override {
    check_new_item(in);
    const int64_t now = opt_.now_ms();
    return tx("enqueue", [&] {
      Stmt ins(db_, "INSERT INTO review_items(request_id, model, model_version, content_type, input,"
                    " prediction, scores, uncertainty, priority, state, created_ms, expires_ms) VALUES"
                    " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', ?10, ?11)"
                    " ON CONFLICT(request_id) DO NOTHING", *this, "enqueue");
      ins.bind(1, in.request_id).bind(2, in.model).bind(3, in.model_version).bind(4, in.content_type)
          .bind_blob(5, in.input).bind(6, in.prediction).bind(7, in.scores).bind(8, in.uncertainty)
          .bind(9, in.priority).bind(10, now).bind(11, in.ttl_ms > 0 ? now + in.ttl_ms : int64_t(0));
      ins.step();
      const bool created = sqlite3_changes(db_) == 1;
      Stmt sel(db_, "SELECT id FROM review_items WHERE request_id = ?1", *this, "enqueue");
      sel.bind(1, in.request_id);
      if (!sel.step()) fail("enqueue", "the item vanished after its insert");
      return EnqueueResult{sel.i64(0), created};
    });
  }

  std::optional<QueueItem> claim(const std::string& reviewer, int64_t lease_ms) override {
    check_reviewer(reviewer);
    check_lease(lease_ms);
    return tx("claim", [&]() -> std::optional<QueueItem> {
      const int64_t now = opt_.now_ms();
      Stmt up(db_, fmt::format("UPDATE review_items SET state = 'claimed', reviewer = ?2,"
                               " claimed_ms = ?1, lease_until_ms = ?3 WHERE id = (SELECT id FROM"
                               " review_items WHERE {} ORDER BY priority DESC, created_ms, id LIMIT 1)"
                               " RETURNING {}", kWaiting, kColumns),
              *this, "claim");
      up.bind(1, now).bind(2, reviewer).bind(3, now + lease_ms);
      if (!up.step()) return std::nullopt;
      QueueItem item = up.item();
      while (up.step()) {}
      return item;
    });
  }

  bool label(int64_t id, const std::string& reviewer, const std::string& label) override {
    check_reviewer(reviewer);
    check_label(label);
    return tx("label", [&] {
      std::optional<QueueItem> item = get_locked(id, "label");
      FOCUS_CHECK(item, ValueError, "review queue: label: no item {}", id);
      if (item->state == ItemState::Done) return repeat_label_or_conflict(*item, reviewer, label);
      const int64_t now = opt_.now_ms();
      Stmt seq(db_, "UPDATE review_meta SET value = value + 1 WHERE key = 'label_seq' RETURNING value",
               *this, "label");
      if (!seq.step()) fail("label", "the label counter is missing");
      const int64_t n = seq.i64(0);
      while (seq.step()) {}
      const int64_t spent = item->reviewer == reviewer && item->claimed_ms > 0 ? now - item->claimed_ms : 0;
      Stmt up(db_, "UPDATE review_items SET state = 'done', reviewer = ?2, label = ?3,"
                   " labelled_ms = ?4, label_seq = ?5, time_spent_ms = ?6, lease_until_ms = 0"
                   " WHERE id = ?1", *this, "label");
      up.bind(1, id).bind(2, reviewer).bind(3, label).bind(4, now).bind(5, n).bind(6, spent);
      up.step();
      return true;
    });
  }

  bool release(int64_t id, const std::string& reviewer) override {
    check_reviewer(reviewer);
    return tx("release", [&] {
      Stmt up(db_, "UPDATE review_items SET state = 'pending', lease_until_ms = 0 WHERE id = ?1"
                   " AND state = 'claimed' AND reviewer = ?2 AND lease_until_ms > ?3", *this, "release");
      up.bind(1, id).bind(2, reviewer).bind(3, opt_.now_ms());
      up.step();
      return sqlite3_changes(db_) == 1;
    });
  }

  QueueItem undo_label(int64_t id, const std::string& reviewer, int64_t window_ms, int64_t lease_ms) override {
    check_reviewer(reviewer);
    check_lease(lease_ms);
    return tx("undo", [&] {
      std::optional<QueueItem> item = get_locked(id, "undo");
      FOCUS_CHECK(item, ValueError, "review queue: undo: no item {}", id);
      const int64_t now = opt_.now_ms();
      check_undo(*item, reviewer, window_ms, now);
      Stmt up(db_, fmt::format("UPDATE review_items SET state = 'claimed', claimed_ms = ?2, lease_until_ms = ?3,"
                               " label = '', labelled_ms = 0, label_seq = NULL, time_spent_ms = 0"
                               " WHERE id = ?1 RETURNING {}", kColumns), *this, "undo");
      up.bind(1, id).bind(2, now).bind(3, now + lease_ms);
      if (!up.step()) fail("undo", "the item vanished");
      QueueItem out = up.item();
      while (up.step()) {}
      return out;
    });
  }

  std::optional<QueueItem> get(int64_t id) override {
    return tx("get", [&] { return get_locked(id, "get"); }, false);
  }

  std::optional<QueueItem> find(const std::string& request_id) override {
    return tx("find", [&]() -> std::optional<QueueItem> {
      Stmt s(db_, fmt::format("SELECT {} FROM review_items WHERE request_id = ?1", kColumns), *this, "find");
      s.bind(1, request_id);
      if (!s.step()) return std::nullopt;
      return s.item();
    }, false);
  }

  QueueCounts counts() override {
    return tx("counts", [&] {
      Stmt s(db_, fmt::format("SELECT coalesce(sum({0}), 0), coalesce(sum(state = 'claimed' AND NOT {0} AND NOT {1}), 0),"
                              " coalesce(sum(state = 'done'), 0), coalesce(sum({1}), 0) FROM review_items",
                              kWaiting, kExpired),
             *this, "counts");
      s.bind(1, opt_.now_ms());
      s.step();
      return QueueCounts{s.i64(0), s.i64(1), s.i64(2), s.i64(3)};
    }, false);
  }

  QueueCapacity capacity() override {
    return tx("capacity", [&] {
      const int64_t now = opt_.now_ms();
      Stmt s(db_, fmt::format("SELECT count(*), coalesce(min(created_ms), 0) FROM review_items WHERE {}", kWaiting),
             *this, "capacity");
      s.bind(1, now);
      s.step();
      QueueCapacity c;
      c.waiting = s.i64(0);
      c.oldest_age_s = c.waiting > 0 ? double(now - s.i64(1)) / 1000.0 : 0.0;
      Stmt h(db_, "SELECT count(*) FROM review_items WHERE state = 'done' AND labelled_ms > ?1", *this, "capacity");
      h.bind(1, now - 3600 * 1000);
      h.step();
      c.labels_last_hour = double(h.i64(0));
      return c;
    }, false);
  }

  ExportPage labelled_since(int64_t cursor, int64_t limit) override {
    FOCUS_CHECK(limit > 0, ValueError, "review queue: export limit must be positive, got {}", limit);
    return tx("export", [&] {
      Stmt s(db_, fmt::format("SELECT {} FROM review_items WHERE label_seq > ?1 ORDER BY label_seq LIMIT ?2", kColumns),
             *this, "export");
      s.bind(1, cursor).bind(2, limit);
      ExportPage page;
      page.next_cursor = cursor;
      while (s.step()) {
        page.items.push_back(s.item());
        page.next_cursor = page.items.back().label_seq;
      }
      return page;
    }, false);
  }

  int schema_version() override {
    return tx("schema version", [&] { return read_version("schema version"); }, false);
  }
  std::string backend() const override { return "sqlite"; }

 private:
  // Another connection holds the write lock: retry every millisecond for busy_timeout_ms.
  // (sqlite3_busy_timeout backs off to 100 ms sleeps, and a connection waiting that way starved
  // behind three busy writers for over 10 s in bench/review_queue_bench.cpp.)
  static int busy_wait(void* self, int count) {
    if (count >= static_cast<SqliteQueue*>(self)->opt_.busy_timeout_ms) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return 1;
  }

  void exec(const char* op, const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      const std::string msg = err ? err : sqlite3_errmsg(db_);
      sqlite3_free(err);
      fail(op, msg);
    }
  }

  // Runs f in one transaction (BEGIN IMMEDIATE for writers), committed before returning; rolled
  // back when f throws.
  template <class F>
  auto tx(const char* op, F&& f, bool write = true) -> decltype(f()) {
    std::lock_guard<std::mutex> lock(mu_);
    exec(op, write ? "BEGIN IMMEDIATE" : "BEGIN");
    try {
      auto r = f();
      exec(op, "COMMIT");
      return r;
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  std::optional<QueueItem> get_locked(int64_t id, const char* op) {
    Stmt s(db_, fmt::format("SELECT {} FROM review_items WHERE id = ?1", kColumns), *this, op);
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return s.item();
  }

  int read_version(const char* op) {
    Stmt s(db_, "SELECT value FROM review_meta WHERE key = 'schema_version'", *this, op);
    return s.step() ? int(s.i64(0)) : 0;
  }

  void migrate() {
    tx("migrate", [&] {
      exec("migrate", "CREATE TABLE IF NOT EXISTS review_meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL)");
      const int v = read_version("migrate");
      FOCUS_CHECK(v <= kQueueSchemaVersion, FormatError,
                  "review queue (sqlite '{}'): schema version {} is newer than this focus knows ({}); "
                  "use a newer focus", path_, v, kQueueSchemaVersion);
      for (int to = v + 1; to <= kQueueSchemaVersion; ++to) {
        exec("migrate", kMigrations[to - 1]);
        Stmt s(db_, "INSERT INTO review_meta(key, value) VALUES ('schema_version', ?1)"
                    " ON CONFLICT(key) DO UPDATE SET value = excluded.value", *this, "migrate");
        s.bind(1, int64_t(to));
        s.step();
      }
      return 0;
    });
  }

  std::string path_;
  QueueStoreOptions opt_;
  sqlite3* db_ = nullptr;
  std::mutex mu_;
};

Stmt::Stmt(sqlite3* db, const std::string& sql, const SqliteQueue& q, const char* op) : q_(q), op_(op) {
  if (sqlite3_prepare_v2(db, sql.c_str(), int(sql.size()), &s_, nullptr) != SQLITE_OK) q.fail(op);
}

bool Stmt::step() {
  const int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  q_.fail(op_);
}

QueueItem Stmt::item() const {
  QueueItem it;
  it.id = i64(0);
  it.data.request_id = text(1);
  it.data.model = text(2);
  it.data.model_version = text(3);
  it.data.content_type = text(4);
  it.data.input = text(5);
  it.data.prediction = text(6);
  it.data.scores = text(7);
  it.data.uncertainty = f64(8);
  it.data.priority = f64(9);
  it.state = parse_item_state(text(10), fmt::format("review queue item {}", it.id));
  it.created_ms = i64(11);
  it.reviewer = text(12);
  it.claimed_ms = i64(13);
  it.lease_until_ms = i64(14);
  it.label = text(15);
  it.labelled_ms = i64(16);
  it.label_seq = i64(17);
  it.time_spent_ms = i64(18);
  it.expires_ms = i64(19);
  return it;
}

}  // namespace

std::unique_ptr<QueueStore> open_sqlite_queue(const std::string& path, QueueStoreOptions opt) {
  return std::make_unique<SqliteQueue>(path, std::move(opt));
}

}  // namespace focus::review
