// The fixture of the review-queue tests, parameterised by backend ("sqlite" | "postgresql"): a
// fresh SQLite file or a fresh database on one private PostgreSQL server per test process
// (started on first use, stopped by a gtest environment at the end, also after failures), and a
// store with an injected clock (now_, milliseconds).
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <string>

#include "focus/review/queue_store.hpp"
#include "support/expect_error.hpp"
#include "support/postgres_server.hpp"

namespace focus::review {

// One private server per process, created by the first test that needs it.
class PostgresEnvironment : public ::testing::Environment {
 public:
  static PostgresEnvironment& get() {
    static PostgresEnvironment* env =
        static_cast<PostgresEnvironment*>(::testing::AddGlobalTestEnvironment(new PostgresEnvironment));
    return *env;
  }
  // The server, or nullptr with error() saying why it could not start.
  focus::testing::PostgresServer* server() {
    if (!tried_) {
      tried_ = true;
      try {
        server_ = std::make_unique<focus::testing::PostgresServer>();
      } catch (const std::exception& e) {
        error_ = e.what();
      }
    }
    return server_.get();
  }
  const std::string& error() const { return error_; }
  void TearDown() override { server_.reset(); }

 private:
  std::unique_ptr<focus::testing::PostgresServer> server_;
  std::string error_;
  bool tried_ = false;
};

class QueueBackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  static constexpr int64_t kStart = 1'700'000'000'000;  // ms since the epoch, Nov 2023

  void SetUp() override {
    static int counter = 0;
    const std::string name = "q" + std::to_string(getpid()) + "_" + std::to_string(++counter);
    if (GetParam() == "sqlite") {
      url_ = "sqlite://" + ::testing::TempDir() + name + ".db";
    } else {
      focus::testing::PostgresServer* pg = PostgresEnvironment::get().server();
      ASSERT_TRUE(pg) << PostgresEnvironment::get().error();
      pg->create_database(name);
      url_ = pg->url(name);
    }
  }
  std::unique_ptr<QueueStore> open() {
    QueueStoreOptions o;
    o.now_ms = [this] { return now_; };
    return open_queue_store(url_, o);
  }

  int64_t now_ = kStart;
  std::string url_;
};

}  // namespace focus::review
