// Helpers for the report tests: substring counts, the self-containment check (no URL of any
// kind: every src / href is a data: URI or a #fragment), running a command, and loading a page in
// headless Chromium with what a page must not do made visible:
//   console messages  --enable-logging=stderr --v=0 logs every console message (console.log /
//                     error, uncaught exceptions, CSP violations) as an "INFO:CONSOLE" line
//   network requests  --log-net-log records every URL request; those of the page carry its
//                     origin (a file:// page's is "null") as initiator, unlike the browser's own
//                     background requests ("not an origin"). --host-resolver-rules makes every
//                     host unresolvable, so nothing leaves the machine either way.
//   rendering         --dump-dom (the parsed DOM) and --screenshot (a PNG of the viewport)
// Chromium: $FOCUS_CHROMIUM, else /usr/bin/chromium (Debian's package; tools/install-deps.sh).
#pragma once
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "focus/data/png.hpp"
#include "support/run_command.hpp"

namespace focus::report_test {

inline int64_t count(const std::string& s, const std::string& what) {
  int64_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + what.size())) ++n;
  return n;
}

inline std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// No reference that could reach a network: no scheme-relative or absolute URL anywhere (the SVG
// namespace name is not a reference, but focus does not write it either), no scripts, frames,
// objects, stylesheet links or CSS url()/@import; every src / href a data: URI or a fragment.
inline void expect_self_contained(const std::string& html) {
  for (const char* bad : {"http://", "https://", "ftp://", "src=\"//", "href=\"//", "url(", "@import",
                          "<script", "<iframe", "<object", "<embed", "<base", "srcset"})
    EXPECT_EQ(html.find(bad), std::string::npos) << "the report contains '" << bad << "'";
  const std::regex ref("(src|href)=\"([^\"]*)\"");
  int64_t refs = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), ref); it != std::sregex_iterator(); ++it) {
    const std::string v = (*it)[2];
    EXPECT_TRUE(v.rfind("data:", 0) == 0 || v.rfind("#", 0) == 0) << (*it)[0];
    ++refs;
  }
  EXPECT_GT(refs, 0);  // the check saw the favicon and the nav links at least
}

using Cmd = focus::testing::CommandResult;
using focus::testing::run_command;

inline std::string chromium_path() {
  if (const char* env = std::getenv("FOCUS_CHROMIUM"); env && *env) return env;
  return std::filesystem::exists("/usr/bin/chromium") ? "/usr/bin/chromium" : "";
}

inline bool skip_browser_tests() {
  const char* env = std::getenv("FOCUS_SKIP_BROWSER_TESTS");
  return env && std::string(env) == "1";
}

struct BrowserCheck {
  bool ran = false;
  std::string log;       // the commands and Chromium's stderr, for failure messages
  std::string console;   // console messages, one a line
  std::string requests;  // URLs the page requested (other than file: and data:), one a line
  std::string dom;       // the DOM after loading
  int64_t screenshot_colors = 0;   // distinct RGB colours in the screenshot
  double screenshot_variance = 0;  // variance of its values in [0, 1]
};

// The page's own requests in a net log (see the header comment).
inline std::string page_requests(const std::string& net_log_path) {
  nlohmann::json log;
  try {
    log = nlohmann::json::parse(read_text(net_log_path));
  } catch (const nlohmann::json::exception& e) {
    return fmt::format("(the net log {} is unreadable: {})\n", net_log_path, e.what());
  }
  std::set<std::string> urls;
  for (const auto& ev : log.value("events", nlohmann::json::array())) {
    const auto p = ev.find("params");
    if (p == ev.end() || !p->is_object() || !p->contains("url") || !(*p)["url"].is_string()) continue;
    const std::string url = (*p)["url"];
    const bool from_page =
        (p->contains("initiator") && (*p)["initiator"] != "not an origin") ||
        (p->contains("network_isolation_key") &&
         (*p)["network_isolation_key"].get<std::string>().find("file://") != std::string::npos);
    if (from_page && url.rfind("file:", 0) != 0 && url.rfind("data:", 0) != 0) urls.insert(url);
  }
  std::string out;
  for (const std::string& u : urls) out += u + "\n";
  return out;
}

inline BrowserCheck load_in_chromium(const std::string& browser, const std::string& page,
                                     const std::string& work) {
  namespace fs = std::filesystem;
  fs::remove_all(work);
  fs::create_directories(work);
  const std::string url = "file://" + fs::absolute(page).string();
  const std::string common = fmt::format(
      "timeout 120 {} --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
      "--disable-background-networking --disable-component-update --disable-sync "
      "--host-resolver-rules='MAP * ~NOTFOUND'",
      browser);
  BrowserCheck b;
  const std::string shot = work + "/shot.png", net = work + "/net.json";
  const std::string c1 = fmt::format(
      "{} --user-data-dir={}/profile1 --log-net-log={} --enable-logging=stderr --v=0 "
      "--screenshot={} --window-size=1200,3000 '{}' >{}/out1.txt 2>{}/err1.txt",
      common, work, net, shot, url, work, work);
  const int s1 = std::system(c1.c_str());
  const std::string err = read_text(work + "/err1.txt");
  const std::string c2 = fmt::format("{} --user-data-dir={}/profile2 --dump-dom '{}' >{}/dom.html 2>{}/err2.txt",
                                     common, work, url, work, work);
  const int s2 = std::system(c2.c_str());
  b.dom = read_text(work + "/dom.html");
  b.log = c1 + "\n" + c2 + "\n" + err;
  b.ran = s1 == 0 && s2 == 0 && fs::exists(shot) && fs::exists(net);
  std::istringstream lines(err);
  for (std::string line; std::getline(lines, line);)
    if (line.find(":CONSOLE") != std::string::npos) b.console += line + "\n";
  if (fs::exists(net)) b.requests = page_requests(net);
  if (fs::exists(shot)) {
    const Image img = read_png(shot);
    std::set<uint32_t> colors;
    const size_t plane = static_cast<size_t>(img.height * img.width);
    double sum = 0, sq = 0;
    for (size_t i = 0; i < plane; ++i) {
      uint32_t c = 0;
      for (int64_t ch = 0; ch < img.channels; ++ch) {
        const float v = img.data[ch * plane + i];
        c = c * 256 + static_cast<uint32_t>(v * 255.f + 0.5f);
        sum += v;
        sq += static_cast<double>(v) * v;
      }
      colors.insert(c);
    }
    const double n = static_cast<double>(img.data.size());
    b.screenshot_colors = static_cast<int64_t>(colors.size());
    b.screenshot_variance = sq / n - (sum / n) * (sum / n);
  }
  return b;
}

}  // namespace focus::report_test
