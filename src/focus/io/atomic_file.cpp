// Atomic file writes with POSIX calls (see atomic_file.hpp).
#include "focus/io/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "focus/tensor/error.hpp"

namespace focus {

namespace {

std::string os_error() { return std::strerror(errno); }

// Best effort: makes the rename durable. A failure here does not undo the (complete) write.
void fsync_directory_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

std::string file_name(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// FOCUS_TEST_KILL_AT=<name>[#<n>], parsed once; an empty name: no kill point is armed.
struct KillTarget {
  std::string name;
  long nth = 1;
};

const KillTarget& kill_target() {
  static const KillTarget target = [] {
    KillTarget t;
    const char* env = std::getenv("FOCUS_TEST_KILL_AT");
    if (env == nullptr) return t;
    t.name = env;
    const size_t hash = t.name.rfind('#');
    if (hash != std::string::npos) {
      t.nth = std::max(1L, std::strtol(t.name.c_str() + hash + 1, nullptr, 10));
      t.name.resize(hash);
    }
    return t;
  }();
  return target;
}

}  // namespace

void kill_point(std::string_view name) {
  static std::atomic<long> passed{0};
  const KillTarget& t = kill_target();
  if (t.name.empty() || name != t.name) return;
  if (passed.fetch_add(1) + 1 == t.nth) ::raise(SIGKILL);
}

AtomicFile::AtomicFile(std::string path)
    : path_(std::move(path)), temp_(path_ + ".tmp-" + std::to_string(::getpid())) {
  FOCUS_CHECK(!path_.empty(), IOError, "cannot write a file with an empty path");
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  FOCUS_CHECK(fd_ >= 0, IOError, "cannot create '{}' (to write '{}'): {}", temp_, path_,
              os_error());
}

AtomicFile::~AtomicFile() {
  if (committed_) return;
  if (fd_ >= 0) ::close(fd_);
  ::unlink(temp_.c_str());
}

void AtomicFile::write(const void* data, size_t n) {
  FOCUS_CHECK(fd_ >= 0, StateError, "AtomicFile '{}': write after commit", path_);
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    FOCUS_CHECK(w > 0, IOError, "cannot write '{}': {}", temp_, w < 0 ? os_error() : "no progress");
    p += w;
    n -= static_cast<size_t>(w);
  }
  if (!written_) {
    written_ = true;
    kill_point("atomic-partial:" + file_name(path_));
  }
}

void AtomicFile::commit() {
  FOCUS_CHECK(fd_ >= 0, StateError, "AtomicFile '{}': committed twice", path_);
  FOCUS_CHECK(::fsync(fd_) == 0, IOError, "cannot flush '{}': {}", temp_, os_error());
  const int rc = ::close(fd_);
  fd_ = -1;
  FOCUS_CHECK(rc == 0, IOError, "cannot close '{}': {}", temp_, os_error());
  kill_point("atomic-rename:" + file_name(path_));
  FOCUS_CHECK(::rename(temp_.c_str(), path_.c_str()) == 0, IOError, "cannot rename '{}' to '{}': {}",
              temp_, path_, os_error());
  committed_ = true;
  fsync_directory_of(path_);
}

void write_file_atomic(const std::string& path, std::string_view contents) {
  AtomicFile f(path);
  f.write(contents);
  f.commit();
}

}  // namespace focus
