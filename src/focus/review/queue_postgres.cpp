// The review queue in PostgreSQL through libpq (queue_store.hpp), for several servers sharing one
// queue: the same schema and semantics as the SQLite store. Claims take the next waiting row with
// SELECT ... FOR UPDATE SKIP LOCKED (concurrent claimers never wait on each other or get the same
// item); a label locks its row (FOR UPDATE) and numbers itself from a counter row, which serialises
// labellers so label numbers follow commit order (the export cursor never skips a label); the
// migration holds a transaction-scoped advisory lock so servers starting together migrate once.
// Durability is the server's (synchronous_commit, on by default). One connection per store,
// serialised by a mutex; a broken connection is reset at the next operation.
#include <libpq-fe.h>

#include <mutex>

#include "focus/review/queue_store.hpp"

namespace focus::review {

namespace {

const char* const kMigrations[] = {
    // 1: the items and the label counter.
    "CREATE TABLE review_items("
    " id BIGSERIAL PRIMARY KEY,"
    " request_id TEXT NOT NULL UNIQUE,"
    " model TEXT NOT NULL, model_version TEXT NOT NULL, content_type TEXT NOT NULL,"
    " input BYTEA NOT NULL, prediction TEXT NOT NULL, scores TEXT NOT NULL,"
    " uncertainty DOUBLE PRECISION NOT NULL, priority DOUBLE PRECISION NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN ('pending', 'claimed', 'done')),"
    " created_ms BIGINT NOT NULL,"
    " reviewer TEXT NOT NULL DEFAULT '', claimed_ms BIGINT NOT NULL DEFAULT 0,"
    " lease_until_ms BIGINT NOT NULL DEFAULT 0, label TEXT NOT NULL DEFAULT '',"
    " labelled_ms BIGINT NOT NULL DEFAULT 0, label_seq BIGINT UNIQUE,"
    " time_spent_ms BIGINT NOT NULL DEFAULT 0);"
    "CREATE INDEX review_items_waiting ON review_items(priority DESC, created_ms, id)"
    " WHERE state <> 'done';"  // claims walk it in order
    "CREATE INDEX review_items_labelled ON review_items(labelled_ms) WHERE state = 'done';"
    "INSERT INTO review_meta(key, value) VALUES ('label_seq', 0);",
    // 2: item TTL.
    "ALTER TABLE review_items ADD COLUMN expires_ms BIGINT NOT NULL DEFAULT 0;",
};
static_assert(std::size(kMigrations) == kQueueSchemaVersion);

const char* const kColumns = kQueueColumns;
// Waiting items; the `state <> 'done'` term lets the planner use the partial index.
const char* const kWaiting =
    "(state <> 'done' AND (state = 'pending' OR lease_until_ms <= $1) AND (expires_ms = 0 OR expires_ms > $1))";
// Expired: unlabelled past the TTL.
const char* const kExpired = "(state <> 'done' AND expires_ms > 0 AND expires_ms <= $1)";

// A parameter: text, or bytes sent in binary (bytea).
struct Param {
  std::string value;
  bool binary = false;
  Param(std::string v, bool b = false) : value(std::move(v)), binary(b) {}
  Param(const char* v) : value(v) {}
  Param(int64_t v) : value(std::to_string(v)) {}
  Param(double v) : value(fmt::format("{:.17g}", v)) {}
};

class Result {
 public:
  explicit Result(PGresult* r) : r_(r) {}
  ~Result() { PQclear(r_); }
  Result(Result&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  const PGresult* get() const { return r_; }
  int rows() const { return PQntuples(r_); }
  std::string text(int row, int c) const { return std::string(PQgetvalue(r_, row, c), size_t(PQgetlength(r_, row, c))); }
  int64_t i64(int row, int c) const { return std::stoll(text(row, c)); }
  double f64(int row, int c) const { return std::stod(text(row, c)); }
  std::string bytea(int row, int c) const {
    size_t n = 0;
    unsigned char* p = PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(r_, row, c)), &n);
    if (!p) throw QueueStoreError("review queue (postgresql): cannot decode a bytea value");
    std::string s(reinterpret_cast<const char*>(p), n);
    PQfreemem(p);
    return s;
  }
  QueueItem item(int row) const {
    QueueItem it;
    it.id = i64(row, 0);
    it.data.request_id = text(row, 1);
    it.data.model = text(row, 2);
    it.data.model_version = text(row, 3);
    it.data.content_type = text(row, 4);
    it.data.input = bytea(row, 5);
    it.data.prediction = text(row, 6);
    it.data.scores = text(row, 7);
    it.data.uncertainty = f64(row, 8);
    it.data.priority = f64(row, 9);
    it.state = parse_item_state(text(row, 10), fmt::format("review queue item {}", it.id));
    it.created_ms = i64(row, 11);
    it.reviewer = text(row, 12);
    it.claimed_ms = i64(row, 13);
    it.lease_until_ms = i64(row, 14);
    it.label = text(row, 15);
    it.labelled_ms = i64(row, 16);
    it.label_seq = i64(row, 17);
    it.time_spent_ms = i64(row, 18);
    it.expires_ms = i64(row, 19);
    return it;
  }

 private:
  PGresult* r_;
};

// The connection URI without a password, for messages.
std::string redact(const std::string& url) {
  const auto scheme = url.find("://");
  const auto at = url.find('@');
  if (scheme == std::string::npos || at == std::string::npos) return url;
  const auto colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon) + ":***" + url.substr(at);
}

class PostgresQueue final : public QueueStore {
 public:
  PostgresQueue(const std::string& conninfo, QueueStoreOptions opt) : where_(redact(conninfo)), opt_(std::move(opt)) {
    if (!opt_.now_ms) opt_.now_ms = system_now_ms;
    conn_ = PQconnectdb(conninfo.c_str());
    if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
      const std::string msg = conn_ ? PQerrorMessage(conn_) : "out of memory";
      PQfinish(conn_);
      conn_ = nullptr;
      throw QueueStoreError(fmt::format("review queue (postgresql '{}'): connect: {}", where_, trim(msg)));
    }
    try {
      exec("open", "SET client_min_messages = warning", {});
      migrate();
    } catch (...) {
      PQfinish(conn_);
      conn_ = nullptr;
      throw;
    }
  }
  ~PostgresQueue() override { PQfinish(conn_); }

  EnqueueResult enqueue(const NewItem& in) override {
    check_new_item(in);
    const int64_t now = opt_.now_ms();
    return tx("enqueue", [&] {
      Result r = exec("enqueue",
                      "INSERT INTO review_items(request_id, model, model_version, content_type, input,"
                      " prediction, scores, uncertainty, priority, state, created_ms, expires_ms) VALUES"
                      " ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $11)"
                      " ON CONFLICT (request_id) DO NOTHING RETURNING id",
                      {in.request_id, in.model, in.model_version, in.content_type, Param(in.input, true),
                       in.prediction, in.scores, in.uncertainty, in.priority, now,
                       in.ttl_ms > 0 ? now + in.ttl_ms : int64_t(0)});
      if (r.rows() == 1) return EnqueueResult{r.i64(0, 0), true};
      Result s = exec("enqueue", "SELECT id FROM review_items WHERE request_id = $1", {in.request_id});
      if (s.rows() != 1) fail("enqueue", "the item vanished after its insert");
      return EnqueueResult{s.i64(0, 0), false};
    });
  }

  std::optional<QueueItem> claim(const std::string& reviewer, int64_t lease_ms) override {
    check_reviewer(reviewer);
    check_lease(lease_ms);
    return tx("claim", [&]() -> std::optional<QueueItem> {
      const int64_t now = opt_.now_ms();
      Result r = exec("claim",
                      fmt::format("UPDATE review_items SET state = 'claimed', reviewer = $2, claimed_ms = $1,"
                                  " lease_until_ms = $3 WHERE id = (SELECT id FROM review_items WHERE {}"
                                  " ORDER BY priority DESC, created_ms, id LIMIT 1 FOR UPDATE SKIP LOCKED)"
                                  " RETURNING {}", kWaiting, kColumns),
                      {now, reviewer, now + lease_ms});
      if (r.rows() == 0) return std::nullopt;
      return r.item(0);
    });
  }

  bool label(int64_t id, const std::string& reviewer, const std::string& label) override {
    check_reviewer(reviewer);
    check_label(label);
    return tx("label", [&] {
      Result cur = exec("label", fmt::format("SELECT {} FROM review_items WHERE id = $1 FOR UPDATE", kColumns), {id});
      FOCUS_CHECK(cur.rows() == 1, ValueError, "review queue: label: no item {}", id);
      const QueueItem item = cur.item(0);
      if (item.state == ItemState::Done) return repeat_label_or_conflict(item, reviewer, label);
      const int64_t now = opt_.now_ms();
      Result seq = exec("label", "UPDATE review_meta SET value = value + 1 WHERE key = 'label_seq' RETURNING value", {});
      if (seq.rows() != 1) fail("label", "the label counter is missing");
      const int64_t spent = item.reviewer == reviewer && item.claimed_ms > 0 ? now - item.claimed_ms : 0;
      exec("label", "UPDATE review_items SET state = 'done', reviewer = $2, label = $3, labelled_ms = $4,"
                    " label_seq = $5, time_spent_ms = $6, lease_until_ms = 0 WHERE id = $1",
           {id, reviewer, label, now, seq.i64(0, 0), spent});
      return true;
    });
  }

  bool release(int64_t id, const std::string& reviewer) override {
    check_reviewer(reviewer);
    return tx("release", [&] {
      Result r = exec("release", "UPDATE review_items SET state = 'pending', lease_until_ms = 0 WHERE id = $1"
                                 " AND state = 'claimed' AND reviewer = $2 AND lease_until_ms > $3 RETURNING id",
                      {id, reviewer, opt_.now_ms()});
      return r.rows() == 1;
    });
  }

  QueueItem undo_label(int64_t id, const std::string& reviewer, int64_t window_ms, int64_t lease_ms) override {
    check_reviewer(reviewer);
    check_lease(lease_ms);
    return tx("undo", [&] {
      Result cur = exec("undo", fmt::format("SELECT {} FROM review_items WHERE id = $1 FOR UPDATE", kColumns), {id});
      FOCUS_CHECK(cur.rows() == 1, ValueError, "review queue: undo: no item {}", id);
      const int64_t now = opt_.now_ms();
      check_undo(cur.item(0), reviewer, window_ms, now);
      Result r = exec("undo", fmt::format("UPDATE review_items SET state = 'claimed', claimed_ms = $2,"
                                          " lease_until_ms = $3, label = '', labelled_ms = 0, label_seq = NULL,"
                                          " time_spent_ms = 0 WHERE id = $1 RETURNING {}", kColumns),
                      {id, now, now + lease_ms});
      if (r.rows() != 1) fail("undo", "the item vanished");
      return r.item(0);
    });
  }

  std::optional<QueueItem> get(int64_t id) override {
    return tx("get", [&]() -> std::optional<QueueItem> {
      Result r = exec("get", fmt::format("SELECT {} FROM review_items WHERE id = $1", kColumns), {id});
      if (r.rows() == 0) return std::nullopt;
      return r.item(0);
    });
  }

  std::optional<QueueItem> find(const std::string& request_id) override {
    return tx("find", [&]() -> std::optional<QueueItem> {
      Result r = exec("find", fmt::format("SELECT {} FROM review_items WHERE request_id = $1", kColumns), {request_id});
      if (r.rows() == 0) return std::nullopt;
      return r.item(0);
    });
  }

  QueueCounts counts() override {
    return tx("counts", [&] {
      Result r = exec("counts", fmt::format("SELECT count(*) FILTER (WHERE {0}), count(*) FILTER (WHERE state = 'claimed'"
                                            " AND NOT {0} AND NOT {1}), count(*) FILTER (WHERE state = 'done'),"
                                            " count(*) FILTER (WHERE {1}) FROM review_items", kWaiting, kExpired),
                      {opt_.now_ms()});
      return QueueCounts{r.i64(0, 0), r.i64(0, 1), r.i64(0, 2), r.i64(0, 3)};
    });
  }

  QueueCapacity capacity() override {
    return tx("capacity", [&] {
      const int64_t now = opt_.now_ms();
      Result r = exec("capacity", fmt::format("SELECT count(*), coalesce(min(created_ms), 0) FROM review_items WHERE {}", kWaiting),
                      {now});
      QueueCapacity c;
      c.waiting = r.i64(0, 0);
      c.oldest_age_s = c.waiting > 0 ? double(now - r.i64(0, 1)) / 1000.0 : 0.0;
      Result h = exec("capacity", "SELECT count(*) FROM review_items WHERE state = 'done' AND labelled_ms > $1",
                      {now - 3600 * 1000});
      c.labels_last_hour = double(h.i64(0, 0));
      return c;
    });
  }

  ExportPage labelled_since(int64_t cursor, int64_t limit) override {
    FOCUS_CHECK(limit > 0, ValueError, "review queue: export limit must be positive, got {}", limit);
    return tx("export", [&] {
      Result r = exec("export", fmt::format("SELECT {} FROM review_items WHERE label_seq > $1 ORDER BY label_seq LIMIT $2", kColumns),
                      {cursor, limit});
      ExportPage page;
      page.next_cursor = cursor;
      for (int i = 0; i < r.rows(); ++i) {
        page.items.push_back(r.item(i));
        page.next_cursor = page.items.back().label_seq;
      }
      return page;
    });
  }

  int schema_version() override {
    return tx("schema version", [&] { return read_version("schema version"); });
  }
  std::string backend() const override { return "postgresql"; }

 private:
  static std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  }
  [[noreturn]] void fail(const char* op, const std::string& detail) const {
    throw QueueStoreError(fmt::format("review queue (postgresql '{}'): {}: {}", where_, op, trim(detail)));
  }

  Result exec(const char* op, const std::string& sql, const std::vector<Param>& params) {
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    for (const Param& p : params) {
      values.push_back(p.value.data());
      lengths.push_back(int(p.value.size()));
      formats.push_back(p.binary ? 1 : 0);
    }
    Result r(params.empty() ? PQexec(conn_, sql.c_str())
                            : PQexecParams(conn_, sql.c_str(), int(params.size()), nullptr, values.data(),
                                           lengths.data(), formats.data(), 0));
    const ExecStatusType st = PQresultStatus(r.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) fail(op, PQerrorMessage(conn_));
    return r;
  }

  template <class F>
  auto tx(const char* op, F&& f) -> decltype(f()) {
    std::lock_guard<std::mutex> lock(mu_);
    if (PQstatus(conn_) != CONNECTION_OK) {
      PQreset(conn_);
      if (PQstatus(conn_) != CONNECTION_OK) fail(op, std::string("reconnect: ") + PQerrorMessage(conn_));
    }
    exec(op, "BEGIN", {});
    try {
      auto r = f();
      exec(op, "COMMIT", {});
      return r;
    } catch (...) {
      PQclear(PQexec(conn_, "ROLLBACK"));
      throw;
    }
  }

  int read_version(const char* op) {
    Result r = exec(op, "SELECT value FROM review_meta WHERE key = 'schema_version'", {});
    return r.rows() == 1 ? int(r.i64(0, 0)) : 0;
  }

  void migrate() {
    tx("migrate", [&] {
      exec("migrate", "SELECT pg_advisory_xact_lock(7210019)", {});  // one migrator at a time
      exec("migrate", "CREATE TABLE IF NOT EXISTS review_meta(key TEXT PRIMARY KEY, value BIGINT NOT NULL)", {});
      const int v = read_version("migrate");
      FOCUS_CHECK(v <= kQueueSchemaVersion, FormatError,
                  "review queue (postgresql '{}'): schema version {} is newer than this focus knows ({}); "
                  "use a newer focus", where_, v, kQueueSchemaVersion);
      for (int to = v + 1; to <= kQueueSchemaVersion; ++to) {
        exec("migrate", kMigrations[to - 1], {});
        exec("migrate", "INSERT INTO review_meta(key, value) VALUES ('schema_version', $1)"
                        " ON CONFLICT (key) DO UPDATE SET value = excluded.value", {int64_t(to)});
      }
      return 0;
    });
  }

  std::string where_;
  QueueStoreOptions opt_;
  PGconn* conn_ = nullptr;
  std::mutex mu_;
};

}  // namespace

std::unique_ptr<QueueStore> open_postgres_queue(const std::string& conninfo, QueueStoreOptions opt) {
  return std::make_unique<PostgresQueue>(conninfo, std::move(opt));
}

}  // namespace focus::review
