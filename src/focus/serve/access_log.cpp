// JSON-lines access log with masking (see access_log.hpp).
#include "focus/serve/access_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <regex>

#include "focus/tensor/error.hpp"

namespace focus {

namespace {

// Replaces every match of `re` for which keep(match) is false with `label`.
template <class Keep>
std::string replace_matches(const std::string& s, const std::regex& re, const char* label, Keep keep) {
  std::string out;
  auto last = s.cbegin();
  for (std::sregex_iterator it(s.begin(), s.end(), re), end; it != end; ++it) {
    out.append(last, (*it)[0].first);
    out += keep(it->str()) ? it->str() : label;
    last = (*it)[0].second;
  }
  out.append(last, s.cend());
  return out;
}

}  // namespace

std::string mask_pii(std::string_view text) {
  static const std::regex email(R"([A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})");
  // A phone number: digits with spaces, dots, dashes or brackets between them, 8 digits or more
  // (7 after a leading +); shorter runs (years, versions, counts) stay.
  static const std::regex phone(R"([+(]?\d[\d\s().-]{5,}\d)");
  static const std::regex digits(R"(\d{6,})");
  std::string s = std::regex_replace(std::string(text), email, "<email>");
  s = replace_matches(s, phone, "<phone>", [](const std::string& m) {
    const auto n = std::count_if(m.begin(), m.end(), [](char c) { return c >= '0' && c <= '9'; });
    const bool all_digits = n == int64_t(m.size());
    return all_digits || n < (m[0] == '+' ? 7 : 8);  // plain digit runs: the rule below
  });
  return std::regex_replace(s, digits, "<digits>");
}

AccessLog::AccessLog(const std::string& path, bool log_inputs) : log_inputs_(log_inputs) {
  if (path.empty()) return;
  if (path == "-") {
    fd_ = STDERR_FILENO;
    return;
  }
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  FOCUS_CHECK(fd_ >= 0, IOError, "access log {}: cannot open ({})", path, std::strerror(errno));
  own_fd_ = true;
}

AccessLog::~AccessLog() {
  if (own_fd_) ::close(fd_);
}

void AccessLog::write(const AccessRecord& r) {
  if (fd_ < 0) return;
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const int ms = int(std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char when[40];
  std::strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
  const auto round3 = [](double v) { return std::round(v * 1000) / 1000; };
  nlohmann::json j = {{"time", fmt::format("{}.{:03d}Z", when, ms)},
                      {"key", r.key},
                      {"method", r.method},
                      {"path", r.path},
                      {"model", r.model},
                      {"status", r.status},
                      {"queue_ms", round3(r.queue_ms)},
                      {"compute_ms", round3(r.compute_ms)},
                      {"total_ms", round3(r.total_ms)},
                      {"batch", r.batch},
                      {"bytes_in", r.bytes_in},
                      {"bytes_out", r.bytes_out}};
  if (!r.error.empty()) j["error"] = mask_pii(r.error);
  if (log_inputs_ && !r.inputs.empty()) {
    nlohmann::json in = nlohmann::json::array();
    for (const std::string& s : r.inputs) in.push_back(mask_pii(s));
    j["inputs"] = in;
  }
  // Invalid UTF-8 in a client's text is replaced, never an exception.
  const std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  const ssize_t n = ::write(fd_, line.data(), line.size());
  (void)n;  // a full disk must not fail the request; the log is best effort
}

}  // namespace focus
