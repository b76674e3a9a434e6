// The review queue of `focus serve` as people use it: the reviewer page driven in headless
// Chromium (playwright-core, tests/apps/browser/review_page.mjs) labels five items by keyboard,
// sees the model's evidence, undoes the last label (U) and gives another, and the standing labels
// are in the database and the tickets final; and `kill -9` of the server during
// reviews loses no acknowledged label, while an unanswered claim returns to the queue.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "focus/data/png.hpp"
#include "focus/review/queue_store.hpp"
#include "infer/infer_fixtures.hpp"
#include "serve/serve_fixture.hpp"
#include "support/process.hpp"
#include "support/run_command.hpp"

namespace focus {
namespace {

using nlohmann::json;
using testing::Process;
using testing::run_command;

std::string bin() { return FOCUS_BINARY; }

// A focus serve process with a review queue in a SQLite file; keys: "client" (infer) and
// "reviewer" (review).
struct ReviewServer {
  std::filesystem::path dir;
  std::string client, reviewer, store;
  std::unique_ptr<Process> proc;
  int port = 0, starts = 0;
  explicit ReviewServer(const std::string& name) {
    dir = std::filesystem::path(::testing::TempDir()) / ("serve_review_" + name);
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    testing::save_tiny_image_model((dir / "cnn.safetensors").string());
    const auto key = [&](const std::string& id, const std::string& roles) {
      const auto r = run_command("(" + bin() + " keys create --file " + (dir / "keys.json").string() + " --id " + id +
                                 " --roles " + roles + " 2>/dev/null)");
      return r.out.substr(0, r.out.find('\n'));
    };
    client = key("client", "infer,metrics");
    reviewer = key("reviewer", "review");
    store = "sqlite://" + (dir / "review.db").string();
  }
  void start(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {bin(), "serve", "--model", "cnn=" + (dir / "cnn.safetensors").string(),
                                     "--keys", (dir / "keys.json").string(), "--port", "0", "--threads", "1",
                                     "--review-store", store, "--review-threshold", "0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    // A log file per start: a restart must not read the killed process's "listening on" line.
    proc = std::make_unique<Process>(argv, (dir / ("serve" + std::to_string(++starts) + ".log")).string());
    port = proc->wait_for_port();
  }
  httplib::Headers auth(const std::string& secret) const { return {{"Authorization", "Bearer " + secret}}; }
  // Classifies n images (all deferred: threshold 0); their tickets.
  std::vector<int64_t> classify(int n, uint64_t seed) const {
    httplib::Client c("127.0.0.1", port);
    std::vector<int64_t> tickets;
    for (int i = 0; i < n; ++i) {
      const auto r = c.Post("/v1/models/cnn/classify", auth(client), testing::tiny_png(seed + uint64_t(i)), "image/png");
      if (!r || r->status != 200) return {};
      tickets.push_back(json::parse(r->body)["predictions"][0]["ticket"].get<int64_t>());
    }
    return tickets;
  }
};

TEST(ServeReviewCli, Kill9LosesNoAcknowledgedLabelAndUnansweredClaimsReturn) {
  ReviewServer s("kill9");
  s.start({"--review-lease-ms", "1500"});
  ASSERT_GT(s.port, 0) << s.proc->output();
  const std::vector<int64_t> tickets = s.classify(6, 100);
  ASSERT_EQ(tickets.size(), 6u) << s.proc->output();
  httplib::Client c("127.0.0.1", s.port);
  std::map<int64_t, std::string> acknowledged;
  for (int i = 0; i < 3; ++i) {
    const auto n = c.Post("/v1/review/next", s.auth(s.reviewer), "", "application/json");
    ASSERT_TRUE(n && n->status == 200);
    const json it = json::parse(n->body);
    const std::string label = it["classes"][size_t(i)];
    const auto l = c.Post("/v1/review/items/" + std::to_string(it["id"].get<int64_t>()) + "/label", s.auth(s.reviewer),
                          json{{"label", label}}.dump(), "application/json");
    ASSERT_TRUE(l && l->status == 200);  // acknowledged
    acknowledged[it["id"].get<int64_t>()] = label;
  }
  const auto held = c.Post("/v1/review/next", s.auth(s.reviewer), "", "application/json");  // claimed, unanswered
  ASSERT_TRUE(held && held->status == 200);
  const int64_t held_id = json::parse(held->body)["id"].get<int64_t>();
  s.proc->signal(SIGKILL);
  s.proc->wait();

  s.start({"--review-lease-ms", "1500"});
  ASSERT_GT(s.port, 0) << s.proc->output();
  httplib::Client c2("127.0.0.1", s.port);
  for (const auto& [id, label] : acknowledged) {
    const auto t = c2.Get("/v1/review/tickets/" + std::to_string(id), s.auth(s.client));
    ASSERT_TRUE(t) << s.proc->output();
    ASSERT_EQ(t->status, 200) << t->body;
    EXPECT_EQ(json::parse(t->body)["status"], "done");
    EXPECT_EQ(json::parse(t->body)["label"], label);
  }
  // The unanswered claim comes back once its lease ends: every waiting item, it included, is
  // handed out again.
  std::this_thread::sleep_for(std::chrono::milliseconds(1700));
  std::set<int64_t> handed;
  for (;;) {
    const auto n = c2.Post("/v1/review/next", s.auth(s.reviewer), "", "application/json");
    ASSERT_TRUE(n);
    if (n->status == 204) break;
    handed.insert(json::parse(n->body)["id"].get<int64_t>());
  }
  EXPECT_EQ(handed.size(), 3u);
  EXPECT_EQ(handed.count(held_id), 1u);
  s.proc->signal(SIGTERM);
  EXPECT_EQ(s.proc->wait(), 0);
}

TEST(ServeReviewCli, TheReviewerPageLabelsFiveItemsByKeyboard) {
  const char* skip = std::getenv("FOCUS_SKIP_BROWSER_TESTS");
  const std::string tools = FOCUS_NODE_TOOLS;
  if (!std::filesystem::exists("/usr/bin/chromium") || !std::filesystem::exists(tools + "/playwright-core")) {
    if (skip && std::string(skip) == "1") GTEST_SKIP() << "FOCUS_SKIP_BROWSER_TESTS=1";
    FAIL() << "needs Debian's chromium and playwright-core in " << tools
           << " (make deps: tools/install-node-tools.sh), or FOCUS_SKIP_BROWSER_TESTS=1";
  }
  ReviewServer s("page");
  s.start();
  ASSERT_GT(s.port, 0) << s.proc->output();
  const std::vector<int64_t> tickets = s.classify(6, 200);
  ASSERT_EQ(tickets.size(), 6u) << s.proc->output();
  const std::string shot = (s.dir / "review_page.png").string();
  const std::string script = std::string(FOCUS_SOURCE_DIR) + "/tests/apps/browser/review_page.mjs";
  const auto r = run_command("node " + script + " " + tools + "/playwright-core /usr/bin/chromium http://127.0.0.1:" +
                             std::to_string(s.port) + "/review " + s.reviewer + " 5 " + shot + " 2>&1");
  ASSERT_EQ(r.code, 0) << r.out;
  const json out = json::parse(r.out.substr(r.out.rfind("{\"labelled\"")), nullptr, false);
  ASSERT_TRUE(out.is_object()) << r.out;
  EXPECT_TRUE(out["error"].is_null()) << out.dump();
  EXPECT_TRUE(out["console_errors"].empty()) << out.dump();
  EXPECT_TRUE(out["bad_requests"].empty()) << out.dump();
  ASSERT_EQ(out["labelled"].size(), 5u) << out.dump();
  EXPECT_EQ(out["evidence_shown"], true) << out.dump();
  ASSERT_TRUE(out["undone_id"].is_number_integer()) << out.dump();
  s.proc->signal(SIGTERM);
  EXPECT_EQ(s.proc->wait(), 0);

  // The five labels are in the database, as sent, and five tickets are final.
  auto store = review::open_queue_store(s.store);
  EXPECT_EQ(store->counts().done, 5);
  std::multiset<std::string> sent, stored;
  for (const auto& l : out["labelled"]) sent.insert(l.get<std::string>());
  for (const review::QueueItem& it : store->labelled_since(0, 100).items) {
    stored.insert(it.label);
    EXPECT_EQ(it.reviewer, "reviewer");
  }
  EXPECT_EQ(sent, stored);
  // The undone item holds its second label, not the first.
  EXPECT_EQ(store->get(out["undone_id"].get<int64_t>())->label, out["relabelled"].get<std::string>());
  int done = 0;
  for (int64_t t : tickets) done += store->get(t)->state == review::ItemState::Done;
  EXPECT_EQ(done, 5);
  // A screenshot that is not blank: the page's pixels vary.
  std::ifstream f(shot, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const Image img = decode_png(bytes);
  float lo = 1, hi = 0;
  for (float v : img.data) lo = std::min(lo, v), hi = std::max(hi, v);
  EXPECT_GT(hi - lo, 0.5f);
}

}  // namespace
}  // namespace focus
