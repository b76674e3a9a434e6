// The review queue's behaviour, one suite run against both backends (SQLite in a temporary file,
// PostgreSQL on a private server this test starts: tests/support/postgres_server.hpp): idempotent
// enqueue, claim order (priority, then age), lease expiry with an injected clock, idempotent and
// conflicting labels, release, the export cursor, capacity figures, reopening; plus the URL
// factory and the errors that name the operation.
#include "review/queue_test_common.hpp"

#include <sqlite3.h>

#include <set>
#include <thread>

namespace focus::review {
namespace {

using focus::testing::expect_error;

NewItem item(const std::string& req, double priority, const std::string& input = "png") {
  NewItem it;
  it.request_id = req;
  it.model = "cnn-se";
  it.model_version = "sha256:abc";
  it.content_type = "image/png";
  it.input = input;
  it.prediction = "Coat";
  it.scores = R"({"top":[["Coat",0.6],["Shirt",0.3]]})";
  it.uncertainty = 0.4;
  it.priority = priority;
  return it;
}

class QueueStoreTest : public QueueBackendTest {};

TEST_P(QueueStoreTest, EnqueueIsIdempotentByRequestId) {
  auto q = open();
  const std::string bytes("\x89PNG\0\xff\x01 end", 11);
  const EnqueueResult a = q->enqueue(item("req-1", 0.5, bytes));
  EXPECT_TRUE(a.created);
  EXPECT_GT(a.id, 0);
  now_ += 10;
  NewItem changed = item("req-1", 0.9, "other");
  const EnqueueResult b = q->enqueue(changed);
  EXPECT_FALSE(b.created);
  EXPECT_EQ(b.id, a.id);
  const EnqueueResult c = q->enqueue(item("req-2", 0.1));
  EXPECT_TRUE(c.created);
  EXPECT_NE(c.id, a.id);
  const auto got = q->get(a.id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->data.input, bytes);  // bytes round-trip, NUL and 0xff included
  EXPECT_EQ(got->data.priority, 0.5);  // the second enqueue changed nothing
  EXPECT_EQ(got->data.scores, item("x", 0).scores);
  EXPECT_EQ(got->state, ItemState::Pending);
  EXPECT_EQ(got->created_ms, kStart);
  const auto by_req = q->find("req-2");
  ASSERT_TRUE(by_req);
  EXPECT_EQ(by_req->id, c.id);
  EXPECT_FALSE(q->find("req-3"));
  EXPECT_FALSE(q->get(c.id + 100));
  const QueueCounts n = q->counts();
  EXPECT_EQ(n.pending, 2);
  EXPECT_EQ(n.claimed, 0);
  EXPECT_EQ(n.done, 0);
}

TEST_P(QueueStoreTest, ClaimsByPriorityThenAge) {
  auto q = open();
  struct In { const char* req; double prio; int64_t at; };
  // c and b tie on priority: c is older. d is the oldest of all but less urgent.
  const In ins[] = {{"d", 0.5, 500}, {"a", 0.2, 1000}, {"c", 0.9, 1500}, {"b", 0.9, 2000}};
  for (const In& in : ins) {
    now_ = kStart + in.at;
    q->enqueue(item(in.req, in.prio));
  }
  now_ = kStart + 5000;
  std::string order;
  while (auto it = q->claim("alice", 60000)) {
    order += it->data.request_id;
    EXPECT_EQ(it->state, ItemState::Claimed);
    EXPECT_EQ(it->reviewer, "alice");
    EXPECT_EQ(it->claimed_ms, now_);
    EXPECT_EQ(it->lease_until_ms, now_ + 60000);
  }
  EXPECT_EQ(order, "cbda");
  EXPECT_EQ(q->counts().claimed, 4);
  EXPECT_EQ(q->counts().pending, 0);
}

TEST_P(QueueStoreTest, ExpiredLeaseReturnsTheItem) {
  auto q = open();
  const int64_t id = q->enqueue(item("x", 0.5)).id;
  ASSERT_TRUE(q->claim("alice", 1000));
  EXPECT_FALSE(q->claim("bob", 1000));  // held
  now_ += 999;
  EXPECT_FALSE(q->claim("bob", 1000));
  EXPECT_EQ(q->counts().claimed, 1);
  now_ += 1;  // the lease ends: waiting again
  EXPECT_EQ(q->counts().pending, 1);
  EXPECT_EQ(q->counts().claimed, 0);
  const auto again = q->claim("bob", 1000);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->id, id);
  EXPECT_EQ(again->reviewer, "bob");
  // Alice answers late: nobody labelled it, so her label counts; Bob's then conflicts.
  now_ += 100;
  EXPECT_TRUE(q->label(id, "alice", "Coat"));
  expect_error<QueueConflictError>([&] { q->label(id, "bob", "Shirt"); }, {"alice", "Coat", "bob", "Shirt"});
  const auto done = q->get(id);
  EXPECT_EQ(done->label, "Coat");
  EXPECT_EQ(done->reviewer, "alice");
  EXPECT_EQ(done->time_spent_ms, 0);  // bob held the claim, not alice
  EXPECT_FALSE(q->claim("carol", 1000));
}

TEST_P(QueueStoreTest, LabelIsIdempotentAndConflictsAreErrors) {
  auto q = open();
  const int64_t id = q->enqueue(item("x", 0.5)).id;
  ASSERT_TRUE(q->claim("alice", 60000));
  now_ += 4200;
  EXPECT_TRUE(q->label(id, "alice", "Pullover"));
  now_ += 1000;
  EXPECT_FALSE(q->label(id, "alice", "Pullover"));  // a retry: no change
  auto got = q->get(id);
  EXPECT_EQ(got->state, ItemState::Done);
  EXPECT_EQ(got->labelled_ms, kStart + 4200);
  EXPECT_EQ(got->time_spent_ms, 4200);
  EXPECT_EQ(got->label_seq, 1);
  expect_error<QueueConflictError>([&] { q->label(id, "alice", "Coat"); }, {"already labelled 'Pullover'", "alice"});
  expect_error<QueueConflictError>([&] { q->label(id, "bob", "Pullover"); }, {"'bob'"});
  expect_error<ValueError>([&] { q->label(id + 7, "alice", "Coat"); }, {"no item"});
  expect_error<ValueError>([&] { q->label(id, "alice", ""); }, {"label is empty"});
  expect_error<ValueError>([&] { q->label(id, "", "Coat"); }, {"reviewer is empty"});
  expect_error<ValueError>([&] { q->claim("alice", 0); }, {"lease must be positive"});
  NewItem bad = item("y", 0.5);
  bad.scores = "{not json";
  expect_error<ValueError>([&] { q->enqueue(bad); }, {"'y'", "not JSON"});
  bad = item("", 0.5);
  expect_error<ValueError>([&] { q->enqueue(bad); }, {"request id is empty"});
  bad = item("z", std::nan(""));
  expect_error<ValueError>([&] { q->enqueue(bad); }, {"'z'", "priority"});
  // Unlabelled items were not touched by the failed calls.
  EXPECT_EQ(q->counts().done, 1);
  EXPECT_EQ(q->counts().pending, 0);
  // A label without a claim is accepted too (first label wins).
  const int64_t id2 = q->enqueue(item("w", 0.1)).id;
  EXPECT_TRUE(q->label(id2, "bob", "Bag"));
  EXPECT_EQ(q->get(id2)->label_seq, 2);
}

TEST_P(QueueStoreTest, ReleaseReturnsOnlyTheHoldersLiveClaim) {
  auto q = open();
  const int64_t id = q->enqueue(item("x", 0.5)).id;
  ASSERT_TRUE(q->claim("alice", 1000));
  EXPECT_FALSE(q->release(id, "bob"));
  EXPECT_FALSE(q->claim("bob", 1000));
  EXPECT_TRUE(q->release(id, "alice"));
  EXPECT_FALSE(q->release(id, "alice"));  // no longer claimed
  EXPECT_EQ(q->counts().pending, 1);
  const auto b = q->claim("bob", 1000);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->id, id);
  now_ += 1000;
  EXPECT_FALSE(q->release(id, "bob"));  // expired: it is waiting already
}

TEST_P(QueueStoreTest, UndoTakesBackOnlyTheReviewersRecentLabel) {
  auto q = open();
  const int64_t id = q->enqueue(item("x", 0.5)).id;
  const int64_t other = q->enqueue(item("y", 0.1)).id;
  ASSERT_TRUE(q->claim("alice", 60000));
  now_ += 2000;
  ASSERT_TRUE(q->label(id, "alice", "Pullover"));
  // Not the labeller, an unlabelled item, an unknown id: refused, nothing changes.
  expect_error<QueueConflictError>([&] { q->undo_label(id, "bob", 60000, 60000); }, {"labelled by 'alice'"});
  expect_error<QueueConflictError>([&] { q->undo_label(other, "alice", 60000, 60000); }, {"no label to undo"});
  expect_error<ValueError>([&] { q->undo_label(id + 9, "alice", 60000, 60000); }, {"no item"});
  EXPECT_EQ(q->get(id)->label, "Pullover");
  now_ += 5000;
  const QueueItem back = q->undo_label(id, "alice", 60000, 30000);
  EXPECT_EQ(back.id, id);
  EXPECT_EQ(back.state, ItemState::Claimed);
  EXPECT_EQ(back.reviewer, "alice");
  EXPECT_EQ(back.label, "");
  EXPECT_EQ(back.label_seq, 0);
  EXPECT_EQ(back.lease_until_ms, now_ + 30000);
  EXPECT_EQ(q->counts().done, 0);
  EXPECT_EQ(q->counts().claimed, 1);
  EXPECT_TRUE(q->labelled_since(0, 10).items.empty());  // no standing label to export
  // Labelled again: a new label number, so an export after the first one lists it again.
  now_ += 1000;
  ASSERT_TRUE(q->label(id, "alice", "Coat"));
  EXPECT_EQ(q->get(id)->label_seq, 2);
  EXPECT_EQ(q->get(id)->time_spent_ms, 1000);
  const ExportPage after = q->labelled_since(1, 10);
  ASSERT_EQ(after.items.size(), 1u);
  EXPECT_EQ(after.items[0].label, "Coat");
  // Too late: the window has passed.
  now_ += 61000;
  expect_error<QueueConflictError>([&] { q->undo_label(id, "alice", 60000, 60000); }, {"61 s old", "within 60 s"});
  EXPECT_EQ(q->get(id)->label, "Coat");
  // An undone item that its reviewer leaves returns to the queue when the lease ends.
  ASSERT_TRUE(q->label(other, "bob", "Bag"));
  q->undo_label(other, "bob", 60000, 1000);
  EXPECT_FALSE(q->claim("carol", 1000));
  now_ += 1000;
  const auto again = q->claim("carol", 1000);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->id, other);
}

TEST_P(QueueStoreTest, ItemsPastTheirTtlExpireButStillTakeALateLabel) {
  auto q = open();
  NewItem a = item("ttl", 0.9);
  a.ttl_ms = 1000;
  const int64_t id = q->enqueue(a).id;
  const int64_t keep = q->enqueue(item("forever", 0.1)).id;
  EXPECT_EQ(q->get(id)->expires_ms, kStart + 1000);
  EXPECT_EQ(q->get(keep)->expires_ms, 0);
  now_ += 999;
  EXPECT_FALSE(q->get(id)->expired(now_));
  EXPECT_EQ(q->counts().pending, 2);
  now_ += 1;
  EXPECT_TRUE(q->get(id)->expired(now_));
  const QueueCounts c = q->counts();
  EXPECT_EQ(c.pending, 1);
  EXPECT_EQ(c.expired, 1);
  EXPECT_EQ(q->capacity().waiting, 1);
  const auto next = q->claim("alice", 60000);  // the expired one (higher priority) is passed over
  ASSERT_TRUE(next);
  EXPECT_EQ(next->id, keep);
  EXPECT_FALSE(q->claim("alice", 60000));
  EXPECT_TRUE(q->label(id, "bob", "Shirt"));  // a late label is recorded
  EXPECT_EQ(q->get(id)->state, ItemState::Done);
  EXPECT_FALSE(q->get(id)->expired(now_));
  EXPECT_EQ(q->counts().expired, 0);
}

TEST_P(QueueStoreTest, ExportPagesInLabelOrderFromACursor) {
  auto q = open();
  std::vector<int64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(q->enqueue(item("r" + std::to_string(i), 0.5)).id);
  // Labelled out of id order: 3, 0, 4.
  for (int k : {3, 0, 4}) {
    now_ += 100;
    q->label(ids[size_t(k)], "alice", "L" + std::to_string(k));
  }
  ExportPage p1 = q->labelled_since(0, 2);
  ASSERT_EQ(p1.items.size(), 2u);
  EXPECT_EQ(p1.items[0].id, ids[3]);
  EXPECT_EQ(p1.items[1].id, ids[0]);
  EXPECT_EQ(p1.items[1].label, "L0");
  EXPECT_EQ(p1.next_cursor, 2);
  ExportPage p2 = q->labelled_since(p1.next_cursor, 2);
  ASSERT_EQ(p2.items.size(), 1u);
  EXPECT_EQ(p2.items[0].id, ids[4]);
  EXPECT_EQ(p2.items[0].data.input, "png");
  ExportPage p3 = q->labelled_since(p2.next_cursor, 2);
  EXPECT_TRUE(p3.items.empty());
  EXPECT_EQ(p3.next_cursor, p2.next_cursor);
  q->label(ids[1], "bob", "L1");  // a later label shows after the cursor only
  ExportPage p4 = q->labelled_since(p3.next_cursor, 10);
  ASSERT_EQ(p4.items.size(), 1u);
  EXPECT_EQ(p4.items[0].id, ids[1]);
  EXPECT_EQ(q->labelled_since(0, 100).items.size(), 4u);
  expect_error<ValueError>([&] { q->labelled_since(0, 0); }, {"limit"});
}

TEST_P(QueueStoreTest, CapacityFigures) {
  auto q = open();
  QueueCapacity c = q->capacity();
  EXPECT_EQ(c.waiting, 0);
  EXPECT_EQ(c.oldest_age_s, 0);
  const int64_t a = q->enqueue(item("a", 0.1)).id;
  now_ += 30'000;
  q->enqueue(item("b", 0.9));
  q->enqueue(item("c", 0.5));
  now_ += 10'000;
  c = q->capacity();
  EXPECT_EQ(c.waiting, 3);
  EXPECT_DOUBLE_EQ(c.oldest_age_s, 40.0);
  q->label(a, "alice", "Coat");  // the oldest goes: the next oldest is 10 s old
  const auto b = q->claim("alice", 5000);
  q->label(b->id, "alice", "Bag");
  c = q->capacity();
  EXPECT_EQ(c.waiting, 1);
  EXPECT_DOUBLE_EQ(c.oldest_age_s, 10.0);
  EXPECT_EQ(c.labels_last_hour, 2);
  now_ += 3600 * 1000;  // an hour later both labels are older than the window
  EXPECT_EQ(q->capacity().labels_last_hour, 0);
}

TEST_P(QueueStoreTest, ReopenKeepsEverythingAndTheSchemaVersion) {
  int64_t id = 0;
  {
    auto q = open();
    EXPECT_EQ(q->schema_version(), kQueueSchemaVersion);
    EXPECT_EQ(q->backend(), GetParam());
    id = q->enqueue(item("kept", 0.5)).id;
    q->label(id, "alice", "Dress");
  }
  auto q = open();  // the same database: migration is a no-op
  EXPECT_EQ(q->schema_version(), kQueueSchemaVersion);
  EXPECT_EQ(q->get(id)->label, "Dress");
  EXPECT_FALSE(q->enqueue(item("kept", 0.5)).created);
  const int64_t id2 = q->enqueue(item("next", 0.5)).id;
  q->label(id2, "alice", "Bag");
  EXPECT_EQ(q->get(id2)->label_seq, 2);  // the counter survived
}

// Four reviewers on their own connections drain the queue at once: every item is claimed and
// labelled exactly once (a double claim would make the second label a conflict), nothing fails.
TEST_P(QueueStoreTest, ConcurrentReviewersGetEachItemOnce) {
  {
    auto q = open();
    for (int i = 0; i < 120; ++i) q->enqueue(item("c" + std::to_string(i), double(i % 5)));
  }
  std::vector<std::vector<int64_t>> got(4);
  std::vector<std::string> errors(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      try {
        auto s = open();
        const std::string who = "r" + std::to_string(t);
        while (auto it = s->claim(who, 600'000)) {
          s->label(it->id, who, "Coat");
          got[size_t(t)].push_back(it->id);
        }
      } catch (const std::exception& e) {
        errors[size_t(t)] = e.what();
      }
    });
  for (auto& th : threads) th.join();
  std::set<int64_t> all;
  size_t total = 0;
  for (int t = 0; t < 4; ++t) {
    EXPECT_EQ(errors[size_t(t)], "") << "reviewer " << t;
    total += got[size_t(t)].size();
    all.insert(got[size_t(t)].begin(), got[size_t(t)].end());
  }
  EXPECT_EQ(total, 120u);
  EXPECT_EQ(all.size(), 120u);
  auto q = open();
  EXPECT_EQ(q->counts().done, 120);
  EXPECT_EQ(q->labelled_since(0, 1000).items.size(), 120u);
}

INSTANTIATE_TEST_SUITE_P(Backends, QueueStoreTest, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return std::string(info.param); });

TEST(QueueStoreUrl, SchemesAndErrorsNameTheOperation) {
  const std::string dir = ::testing::TempDir();
  auto q = open_queue_store("sqlite://" + dir + "url.db");
  EXPECT_EQ(q->backend(), "sqlite");
  EXPECT_TRUE(std::filesystem::exists(dir + "url.db"));
  auto plain = open_queue_store(dir + "plain.db");
  EXPECT_EQ(plain->backend(), "sqlite");
  expect_error<ValueError>([] { open_queue_store("mysql://db/x"); }, {"unknown store URL scheme", "mysql://db/x"});
  expect_error<QueueStoreError>([&] { open_queue_store("sqlite://" + dir + "no/such/dir/q.db"); },
                                {"sqlite", "no/such/dir/q.db", "open"});
  // Nothing listens on port 1: the error names the connection (and hides a password).
  expect_error<QueueStoreError>([] { open_queue_store("postgresql://u:secret@127.0.0.1:1/db?connect_timeout=2"); },
                                {"postgresql", "connect", "u:***@127.0.0.1:1"});
}

TEST(QueueStoreUrl, AVersion1StoreIsMigratedKeepingItsItems) {
  const std::string path = ::testing::TempDir() + "v1.db";
  std::filesystem::remove(path);
  int64_t id = 0;
  {
    auto q = open_queue_store(path);
    id = q->enqueue(item("old", 0.5)).id;
    q->label(id, "alice", "Coat");
  }
  sqlite3* db = nullptr;  // make it what version 1 wrote: no expires_ms column, version 1
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "ALTER TABLE review_items DROP COLUMN expires_ms;"
                             "UPDATE review_meta SET value = 1 WHERE key = 'schema_version'",
                         nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto q = open_queue_store(path);
  EXPECT_EQ(q->schema_version(), kQueueSchemaVersion);
  EXPECT_EQ(q->get(id)->label, "Coat");
  EXPECT_EQ(q->get(id)->expires_ms, 0);
  NewItem n = item("new", 0.5);
  n.ttl_ms = 5;
  EXPECT_GT(q->enqueue(n).id, id);
}

TEST(QueueStoreUrl, ANewerSchemaIsRefused) {
  const std::string path = ::testing::TempDir() + "future.db";
  { open_queue_store(path); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE review_meta SET value = 99 WHERE key = 'schema_version'", nullptr, nullptr,
                         nullptr), SQLITE_OK);
  sqlite3_close(db);
  expect_error<FormatError>([&] { open_queue_store(path); }, {"schema version 99", "newer"});
}

}  // namespace
}  // namespace focus::review
