// The access log: one JSON object per answered request (JSON lines), appended to a file or
// stderr. Fields: time (UTC, ISO 8601 with ms), key (the key's id, never the secret), method,
// path, model, status, queue_ms, compute_ms, total_ms, batch (items in the executed batch),
// bytes_in, bytes_out, error (the message of a 4xx/5xx). Request bodies are never written unless
// the server runs with --log-inputs, and then only the text inputs, masked by mask_pii first:
// e-mail addresses, phone numbers and runs of 6 or more digits (card, account, ID numbers)
// become <email>, <phone> and <digits>. Images are never logged.
// Thread-safe; each record is one write(2) on an O_APPEND descriptor, so lines never interleave.
#pragma once
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace focus {

struct AccessRecord {
  std::string key, method, path, model, error;
  int status = 0;
  double queue_ms = 0, compute_ms = 0, total_ms = 0;
  int64_t batch = 0, bytes_in = 0, bytes_out = 0;
  std::vector<std::string> inputs;  // texts, written only with log_inputs (masked)
};

std::string mask_pii(std::string_view text);

class AccessLog {
 public:
  // path "" = no log, "-" = stderr, else appended to (created 0640). IOError if it cannot open.
  explicit AccessLog(const std::string& path = "", bool log_inputs = false);
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;
  bool enabled() const { return fd_ >= 0; }
  bool log_inputs() const { return log_inputs_; }
  void write(const AccessRecord& r);

 private:
  int fd_ = -1;
  bool own_fd_ = false, log_inputs_ = false;
};

}  // namespace focus
