// Throughput of the review queue (review/queue_store.hpp) on each backend: N enqueues, then
// N claim + label cycles by R reviewer threads (each with its own connection), every operation one
// durable transaction. SQLite: a fresh file in --dir (WAL, synchronous=FULL). PostgreSQL: the URL
// of --pg, or a private server in /tmp like the tests' (tests/support/postgres_server.hpp;
// default settings, fsync and synchronous_commit on). Verifies before it reports: every item
// labelled once, the export holds N labels in order.
//   build/review_queue_bench --items 2000 --reviewers 1,4
#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>
#include <thread>

#include "../tests/support/postgres_server.hpp"
#include "focus/review/queue_store.hpp"

using namespace focus::review;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Result {
  double enqueue_per_s = 0, cycle_per_s = 0;
};

Result run(const std::string& url, int items, int reviewers) {
  auto q = open_queue_store(url);
  const std::string png(600, 'x');  // about a 28x28 PNG
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < items; ++i) {
    NewItem it;
    it.request_id = "req-" + std::to_string(i);
    it.model = "cnn-se";
    it.content_type = "image/png";
    it.input = png;
    it.prediction = "Coat";
    it.scores = R"({"top":[["Coat",0.55],["Shirt",0.3],["Pullover",0.1]]})";
    it.priority = double((i * 7919) % 1000) / 1000.0;
    q->enqueue(it);
  }
  Result r;
  r.enqueue_per_s = items / seconds_since(t0);
  std::atomic<int> labelled{0};
  std::atomic<bool> failed{false};
  t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < reviewers; ++t)
    threads.emplace_back([&, t] {
      try {
        auto s = open_queue_store(url);
        const std::string who = "reviewer-" + std::to_string(t);
        while (auto it = s->claim(who, 60'000)) {
          s->label(it->id, who, "Shirt");
          ++labelled;
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "review_queue_bench: %s\n", e.what());
        failed = true;
      }
    });
  for (auto& th : threads) th.join();
  r.cycle_per_s = items / seconds_since(t0);
  // Verify: every item labelled exactly once, and the export sees them all in label order.
  const QueueCounts n = q->counts();
  int64_t exported = 0, cursor = 0, last = 0;
  for (;;) {
    const ExportPage p = q->labelled_since(cursor, 1000);
    if (p.items.empty()) break;
    for (const QueueItem& it : p.items) {
      if (it.label_seq <= last) throw std::runtime_error("export out of label order");
      last = it.label_seq;
    }
    exported += int64_t(p.items.size());
    cursor = p.next_cursor;
  }
  if (failed || labelled != items || n.done != items || n.pending != 0 || exported != items)
    throw std::runtime_error("verification failed: labelled " + std::to_string(labelled.load()) + ", done " +
                             std::to_string(n.done) + ", exported " + std::to_string(exported) + " of " +
                             std::to_string(items));
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"review queue throughput: enqueue, then claim + label, per backend"};
  int items = 2000;
  std::string reviewers_list = "1,4", backends = "sqlite,postgresql", dir = "/tmp", pg;
  app.add_option("--items", items, "items per run")->capture_default_str();
  app.add_option("--reviewers", reviewers_list, "reviewer threads, comma-separated runs")->capture_default_str();
  app.add_option("--backends", backends, "sqlite,postgresql")->capture_default_str();
  app.add_option("--dir", dir, "where the SQLite files go (the private postgres: /tmp)")->capture_default_str();
  app.add_option("--pg", pg, "an existing PostgreSQL URL (default: start a private server)");
  CLI11_PARSE(app, argc, argv);
  std::vector<int> reviewers;
  {
    std::stringstream s(reviewers_list);
    for (std::string x; std::getline(s, x, ',');) reviewers.push_back(std::stoi(x));
  }
  try {
    std::unique_ptr<focus::testing::PostgresServer> server;
    std::printf("| backend | reviewers | items | enqueue/s | claim+label/s |\n|---|---|---|---|---|\n");
    int run_id = 0;
    for (const std::string backend : {"sqlite", "postgresql"}) {
      if (backends.find(backend) == std::string::npos) continue;
      for (int r : reviewers) {
        std::string url;
        const std::string name = "bench_" + std::to_string(getpid()) + "_" + std::to_string(++run_id);
        if (backend == "sqlite") {
          url = "sqlite://" + dir + "/" + name + ".db";
        } else if (!pg.empty()) {
          url = pg;  // the caller's database: it must be empty
        } else {
          if (!server) server = std::make_unique<focus::testing::PostgresServer>(/*durable=*/true);
          server->create_database(name);
          url = server->url(name);
        }
        const Result res = run(url, items, r);
        std::printf("| %s | %d | %d | %.0f | %.0f |\n", backend.c_str(), r, items, res.enqueue_per_s, res.cycle_per_s);
        std::fflush(stdout);
        if (backend == "sqlite")
          for (const char* ext : {"", "-wal", "-shm"}) std::filesystem::remove(dir + "/" + name + ".db" + ext);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "review_queue_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
