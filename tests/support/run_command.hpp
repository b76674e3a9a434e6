// Runs a shell command for the end-to-end tests and captures its exit code and output (stdout
// and stderr together).
#pragma once
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace focus::testing {

struct CommandResult {
  int code = -1;    // the exit status; -1 when the command could not run or was killed
  std::string out;  // stdout and stderr together
};

inline CommandResult run_command(const std::string& cmd) {
  CommandResult r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace focus::testing
