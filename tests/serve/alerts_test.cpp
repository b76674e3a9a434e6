// The alert rules shipped in docs/serving/alerts.yml are valid Prometheus rules and fire as
// intended: `promtool check rules` and `promtool test rules` on docs/serving/alerts_test.yml
// (series that break each rule, and healthy ones that must not alert).
#include <gtest/gtest.h>

#include <string>

#include "support/run_command.hpp"

namespace focus {
namespace {

TEST(Alerts, RulesAreValidAndFireAsTested) {
  if (testing::run_command("command -v promtool").code != 0)
    GTEST_SKIP() << "promtool not installed (Debian prometheus; tools/install-deps.sh installs it)";
  const std::string dir = std::string(FOCUS_SOURCE_DIR) + "/docs/serving";
  const auto check = testing::run_command("promtool check rules " + dir + "/alerts.yml");
  EXPECT_EQ(check.code, 0) << check.out;
  EXPECT_NE(check.out.find("SUCCESS: 7 rules found"), std::string::npos) << check.out;
  const auto test = testing::run_command("cd " + dir + " && promtool test rules alerts_test.yml");
  EXPECT_EQ(test.code, 0) << test.out;
  EXPECT_NE(test.out.find("SUCCESS"), std::string::npos) << test.out;
}

}  // namespace
}  // namespace focus
