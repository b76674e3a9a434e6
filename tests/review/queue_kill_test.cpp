// kill -9 durability of the review queue, both backends: a child process (a fork of this test)
// enqueues, claims and labels items in a loop and writes a line for each operation only after the
// store returned (the commit is acknowledged); the parent kills it with SIGKILL at several points
// (after 1, 25 and 120 acknowledged operations), reopens the store each time and checks that every
// acknowledged item and label is there, that the store opens clean and keeps working, and that the
// items the child had claimed return to the queue once their lease is over.
#include "review/queue_test_common.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace focus::review {
namespace {

// The child: loops until killed. "E <request> <id>" after each enqueue, "L <id> <label>" after
// each label; every other item is left claimed (lease 60 s).
[[noreturn]] void child_loop(const std::string& url, const std::string& log, int round) {
  try {
    auto q = open_queue_store(url);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    for (int i = 0;; ++i) {
      NewItem it;
      it.request_id = "r" + std::to_string(round) + "-" + std::to_string(i);
      it.content_type = "image/png";
      it.input = std::string(64, char(i));
      it.priority = double(i % 7);
      const int64_t id = q->enqueue(it).id;
      std::string line = "E " + it.request_id + " " + std::to_string(id) + "\n";
      if (::write(fd, line.data(), line.size()) < 0) _exit(3);
      const auto c = q->claim("killer", 60'000);
      if (c && i % 2 == 0) {
        const std::string label = "L" + std::to_string(c->id);
        q->label(c->id, "killer", label);
        line = "L " + std::to_string(c->id) + " " + label + "\n";
        if (::write(fd, line.data(), line.size()) < 0) _exit(3);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "queue kill child: %s\n", e.what());
    _exit(2);
  }
}

size_t count_lines(const std::string& path) {
  std::ifstream f(path);
  size_t n = 0;
  for (std::string line; std::getline(f, line);) ++n;
  return n;
}

class QueueKillTest : public QueueBackendTest {};

TEST_P(QueueKillTest, AcknowledgedWorkSurvivesSigkill) {
  std::map<std::string, int64_t> enqueued;  // acknowledged across all rounds
  std::map<int64_t, std::string> labelled;
  const size_t points[] = {1, 25, 120};
  for (int round = 0; round < 3; ++round) {
    const std::string log = ::testing::TempDir() + "kill_" + GetParam() + std::to_string(round) + ".log";
    std::filesystem::remove(log);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) child_loop(url_, log, round);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    int status = 0;
    bool exited = false;
    while (count_lines(log) < points[round] && std::chrono::steady_clock::now() < until) {
      if (waitpid(pid, &status, WNOHANG) == pid) {
        exited = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (!exited) {
      ::kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
    }
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the child exited by itself: status " << status;
    std::ifstream f(log);
    size_t lines = 0;
    for (std::string line; std::getline(f, line); ++lines) {
      std::istringstream in(line);
      std::string kind, a, b;
      in >> kind >> a >> b;
      if (kind == "E") enqueued[a] = std::stoll(b);
      else if (kind == "L") labelled[std::stoll(a)] = b;
      else if (!line.empty()) ADD_FAILURE() << "bad line '" << line << "'";
    }
    EXPECT_GE(lines, points[round]);

    // Reopen (a lease-expired clock): everything acknowledged is there.
    QueueStoreOptions o;
    o.now_ms = [] { return system_now_ms() + 61'000; };
    auto q = open_queue_store(url_, o);
    EXPECT_EQ(q->schema_version(), kQueueSchemaVersion);
    for (const auto& [req, id] : enqueued) {
      const auto it = q->find(req);
      ASSERT_TRUE(it) << "acknowledged enqueue of " << req << " lost (round " << round << ")";
      EXPECT_EQ(it->id, id);
      EXPECT_EQ(it->data.input.size(), 64u);
    }
    for (const auto& [id, label] : labelled) {
      const auto it = q->get(id);
      ASSERT_TRUE(it) << "labelled item " << id << " lost";
      EXPECT_EQ(it->state, ItemState::Done);
      EXPECT_EQ(it->label, label);
    }
    const QueueCounts n = q->counts();
    EXPECT_GE(n.done, int64_t(labelled.size()));
    EXPECT_EQ(n.claimed, 0) << "claims of the killed child must return once their lease is over";
    EXPECT_GE(n.pending + n.done, int64_t(enqueued.size()));
    // The store still works.
    NewItem probe;
    probe.request_id = "probe-" + std::to_string(round);
    probe.content_type = "text/plain";
    probe.priority = 100;
    const int64_t pid_probe = q->enqueue(probe).id;
    const auto c = q->claim("checker", 1000);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->id, pid_probe);
    EXPECT_TRUE(q->label(c->id, "checker", "ok"));
  }
  EXPECT_GE(labelled.size(), 10u);
  if (GetParam() == "sqlite") {  // and the file passes SQLite's own check
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(url_.substr(9).c_str(), &db), SQLITE_OK);
    std::string result;
    sqlite3_exec(db, "PRAGMA integrity_check", [](void* r, int, char** v, char**) {
      *static_cast<std::string*>(r) += v[0] ? v[0] : "";
      return 0;
    }, &result, nullptr);
    sqlite3_close(db);
    EXPECT_EQ(result, "ok");
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, QueueKillTest, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace focus::review
