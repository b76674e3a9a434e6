// Metrics: the exposition text holds every family with the right values, histograms are
// cumulative with +Inf equal to the count, label values are escaped, and Prometheus's own
// checker (promtool check metrics, Debian `prometheus`) accepts the output.
#include "focus/serve/metrics.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace focus {
namespace {

bool contains(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }

std::string sample() {
  Metrics m;
  m.request("cnn", 200, "alice");
  m.request("cnn", 200, "alice");
  m.request("cnn", 429, "bob");
  m.rejection("queue_full");
  m.observe_queue("cnn", 0.0007);
  m.observe_queue("cnn", 0.3);
  m.observe_batch("cnn", 5);
  m.set_queue_depth("cnn", 3);
  m.add_in_flight("cnn", 2);
  m.add_in_flight("cnn", -1);
  m.model_loaded("cnn", "abc", 0.25);
  m.model_loaded("cnn", "def", 0.5);  // replaces the version
  m.model_reload("cnn", true);
  m.request("we\"ird\n", 400, "x\\y");
  return m.render();
}

TEST(Metrics, RenderHoldsTheValues) {
  const std::string t = sample();
  EXPECT_TRUE(contains(t, "focus_requests_total{model=\"cnn\",status=\"200\",key=\"alice\"} 2\n"));
  EXPECT_TRUE(contains(t, "focus_rejections_total{reason=\"queue_full\"} 1\n"));
  EXPECT_TRUE(contains(t, "focus_queue_seconds_bucket{model=\"cnn\",le=\"0.0005\"} 0\n"));
  EXPECT_TRUE(contains(t, "focus_queue_seconds_bucket{model=\"cnn\",le=\"0.001\"} 1\n"));
  EXPECT_TRUE(contains(t, "focus_queue_seconds_bucket{model=\"cnn\",le=\"0.2\"} 1\n"));
  EXPECT_TRUE(contains(t, "focus_queue_seconds_bucket{model=\"cnn\",le=\"+Inf\"} 2\n"));
  EXPECT_TRUE(contains(t, "focus_queue_seconds_count{model=\"cnn\"} 2\n"));
  EXPECT_TRUE(contains(t, "focus_batch_size_bucket{model=\"cnn\",le=\"4\"} 0\n"));
  EXPECT_TRUE(contains(t, "focus_batch_size_bucket{model=\"cnn\",le=\"8\"} 1\n"));
  EXPECT_TRUE(contains(t, "focus_queue_depth{model=\"cnn\"} 3\n"));
  EXPECT_TRUE(contains(t, "focus_in_flight{model=\"cnn\"} 1\n"));
  EXPECT_TRUE(contains(t, "focus_model_info{model=\"cnn\",version=\"def\"} 1\n"));
  EXPECT_FALSE(contains(t, "version=\"abc\""));
  EXPECT_TRUE(contains(t, "focus_model_reloads_total{model=\"cnn\",result=\"ok\"} 1\n"));
  EXPECT_TRUE(contains(t, "model=\"we\\\"ird\\n\""));
  EXPECT_TRUE(contains(t, "key=\"x\\\\y\""));
  EXPECT_TRUE(contains(t, "process_resident_memory_bytes "));
  EXPECT_GT(process_rss_bytes(), 1 << 20);
}

TEST(Metrics, PromtoolAcceptsTheExposition) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "promtool not installed (Debian prometheus; tools/install-deps.sh installs it)";
  const auto path = std::filesystem::path(::testing::TempDir()) / "metrics_test.prom";
  std::ofstream(path) << sample();
  const std::string cmd = "promtool check metrics < " + path.string() + " > " + path.string() + ".out 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream out(path.string() + ".out");
  const std::string text((std::istreambuf_iterator<char>(out)), std::istreambuf_iterator<char>());
  // promtool lints too (exit 3 = lint warnings only); errors in the format give exit 1.
  EXPECT_TRUE(rc == 0 || WEXITSTATUS(rc) == 3) << text;
  EXPECT_FALSE(contains(text, "error")) << text;
}

}  // namespace
}  // namespace focus
