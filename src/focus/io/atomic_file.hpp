// Atomic file writes: the data goes to "<path>.tmp-<pid>", which is fsync'ed, closed and renamed
// over `path` (then the directory is fsync'ed), so a reader or a crash sees either the old file or
// the complete new one, never a half-written file. Limits: POSIX only; two threads of one process
// writing the same path at once share the temporary name and must not do so.
// Also the crash-test hook kill_point (for the kill tests of the trainers' run directories).
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace focus {

class AtomicFile {
 public:
  // Creates the temporary file; throws IOError (naming the path and the OS error) if it cannot,
  // e.g. when the directory does not exist.
  explicit AtomicFile(std::string path);
  // Removes the temporary file unless commit() succeeded; `path` is then left untouched.
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);  // IOError on a failed write (disk full...)
  void write(std::string_view s) { write(s.data(), s.size()); }
  // fsync, close and rename onto the final path; IOError on failure (the temp file is removed).
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_; }

 private:
  std::string path_, temp_;
  int fd_ = -1;
  bool committed_ = false;
  bool written_ = false;  // the first write() has passed its kill point
};

// Writes `contents` to `path` atomically (see AtomicFile).
void write_file_atomic(const std::string& path, std::string_view contents);

// Crash-test hook. With FOCUS_TEST_KILL_AT=<name>[#<n>] in the environment (read once), the
// process raises SIGKILL the n-th time (default: the first) it passes the point `name`; without
// it, a no-op. AtomicFile passes "atomic-partial:<file name>" after its first write (the
// temporary file holds part of the data) and "atomic-rename:<file name>" just before the rename
// (complete, not yet in place); the trainers name their commit steps (train/checkpoint.hpp).
void kill_point(std::string_view name);

}  // namespace focus
