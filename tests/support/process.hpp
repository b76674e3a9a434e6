// A child process for the end-to-end server tests: started with fork/exec, its stderr captured
// to a file, waited for a line ("listening on http://host:PORT"), signalled, and reaped with a
// timeout (killed if it overstays, so a hung server fails the test instead of hanging CTest).
#pragma once
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace focus::testing {

class Process {
 public:
  // argv[0] is the program's path; stderr (and stdout) go to `log`.
  Process(std::vector<std::string> argv, std::string log) : log_(std::move(log)) {
    pid_ = fork();
    if (pid_ == 0) {
      std::FILE* f = std::fopen(log_.c_str(), "w");
      if (f) {
        dup2(fileno(f), STDERR_FILENO);
        dup2(fileno(f), STDOUT_FILENO);
      }
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~Process() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  std::string output() const {
    std::ifstream f(log_);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  }
  // The first match of `re`'s group 1 in the output, waiting up to `timeout`; "" if none.
  std::string wait_for(const std::string& re, std::chrono::milliseconds timeout) const {
    const std::regex r(re);
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      std::smatch m;
      const std::string out = output();
      if (std::regex_search(out, m, r)) return m.size() > 1 ? m[1].str() : m[0].str();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return "";
  }
  // The port a focus server prints when listening; 0 after `timeout`.
  int wait_for_port(std::chrono::milliseconds timeout = std::chrono::seconds(60)) const {
    const std::string p = wait_for(R"(listening on https?://[^:]+:(\d+))", timeout);
    return p.empty() ? 0 : std::stoi(p);
  }
  void signal(int sig) const { ::kill(pid_, sig); }
  // The exit status, or -1 if it was killed by a signal or had to be killed after `timeout`.
  int wait(std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (std::chrono::steady_clock::now() < until) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        reaped_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
    reaped_ = true;
    return -1;
  }

 private:
  pid_t pid_ = -1;
  std::string log_;
  bool reaped_ = false;
};

}  // namespace focus::testing
