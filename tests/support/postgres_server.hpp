// A private PostgreSQL server for the review-queue tests and bench: initdb into a fresh directory
// (mkdtemp under /tmp, which any user can traverse), postgres on 127.0.0.1 and a free port (unix
// socket in that directory), trust authentication, stopped (SIGINT, then SIGKILL) and its
// directory removed on destruction, also when a test fails; if the test process dies without
// cleaning up, the server gets SIGINT (PR_SET_PDEATHSIG) and shuts down by itself.
// Debian's server binaries (package postgresql: /usr/lib/postgresql/<version>/bin) are required:
// a missing one is an error, never a skip (tools/install-deps.sh installs them).
// PostgreSQL refuses to run as root: as root (CI), initdb and postgres run as the `postgres`
// system user the package creates (or `nobody`), in a directory that user owns.
#pragma once
#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace focus::testing {

class PostgresServer {
 public:
  // The server's directory is a new /tmp/focus-pg-XXXXXX, removed at the end. durable = false
  // runs it with fsync=off (the tests: they kill clients, never the server; commits are still
  // acknowledged only once the server has them); true keeps PostgreSQL's defaults (the bench).
  explicit PostgresServer(bool durable = false) {
    const std::string bin = find_bin();
    char tmpl[] = "/tmp/focus-pg-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("postgres test server: mkdtemp failed");
    dir_ = tmpl;
    if (geteuid() == 0) {
      const passwd* pw = getpwnam("postgres");
      if (!pw) pw = getpwnam("nobody");
      if (!pw) throw std::runtime_error("postgres test server: no 'postgres' or 'nobody' user to run as");
      uid_ = pw->pw_uid;
      gid_ = pw->pw_gid;
      // The directory (under /tmp, 1777) becomes the user's.
      if (chown(dir_.c_str(), uid_, gid_) != 0) throw std::runtime_error("postgres test server: chown " + dir_);
    }
    const std::string data = dir_ + "/data";
    const int rc = run_as({bin + "/initdb", "-D", data, "-A", "trust", "-U", "focus", "--no-sync",
                           "-E", "UTF8", "--no-locale"},
                          dir_ + "/initdb.log", /*wait=*/true);
    if (rc != 0) throw std::runtime_error("postgres test server: initdb failed (" + std::to_string(rc) +
                                          "): " + read(dir_ + "/initdb.log"));
    port_ = free_port();
    std::vector<std::string> argv = {bin + "/postgres", "-D", data, "-h", "127.0.0.1", "-p", std::to_string(port_),
                                     "-k", dir_, "-c", "max_connections=40", "-c", "shared_buffers=32MB",
                                     "-c", "logging_collector=off"};
    if (!durable) argv.insert(argv.end(), {"-c", "fsync=off"});
    pid_ = run_as(argv, dir_ + "/server.log", /*wait=*/false);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < until) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("postgres test server exited at start: " + read(dir_ + "/server.log"));
      }
      if (read(dir_ + "/server.log").find("ready to accept connections") != std::string::npos) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    stop();
    throw std::runtime_error("postgres test server: not ready after 20 s: " + read(dir_ + "/server.log"));
  }
  ~PostgresServer() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }
  std::string url(const std::string& db = "postgres") const {
    return "postgresql://focus@127.0.0.1:" + std::to_string(port_) + "/" + db;
  }
  std::string log() const { return read(dir_ + "/server.log"); }

  // Creates a database (a fresh one per test keeps tests independent).
  void create_database(const std::string& name) const {
    const int rc = run_as({find_bin() + "/psql", "-h", "127.0.0.1", "-p", std::to_string(port_),
                           "-U", "focus", "-d", "postgres", "-q", "-c", "CREATE DATABASE " + name},
                          dir_ + "/psql.log", true);
    if (rc != 0) throw std::runtime_error("postgres test server: CREATE DATABASE " + name + ": " + read(dir_ + "/psql.log"));
  }

  static std::string find_bin() {
    namespace fs = std::filesystem;
    std::string best;
    int best_version = -1;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", ec)) {
      const std::string v = e.path().filename().string();
      if (v.empty() || !std::isdigit(static_cast<unsigned char>(v[0]))) continue;
      if (fs::exists(e.path() / "bin" / "postgres") && std::stoi(v) > best_version) {
        best_version = std::stoi(v);
        best = (e.path() / "bin").string();
      }
    }
    if (best.empty())
      throw std::runtime_error("postgres test server: no /usr/lib/postgresql/<version>/bin/postgres; "
                               "install Debian's postgresql package (tools/install-deps.sh)");
    return best;
  }

 private:
  static std::string read(const std::string& path) {
    std::ifstream f(path);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  }
  static int free_port() {
    const int s = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    if (s < 0 || bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      if (s >= 0) close(s);
      throw std::runtime_error("postgres test server: no free port");
    }
    close(s);
    return ntohs(a.sin_port);
  }
  // Runs argv (as the unprivileged user when root) with stdout and stderr to `log`; with `wait`,
  // its exit code, else its pid.
  int run_as(std::vector<std::string> argv, const std::string& log, bool wait) const {
    const pid_t pid = fork();
    if (pid == 0) {
      if (uid_ != 0) {
        if (setgroups(0, nullptr) != 0 || setgid(gid_) != 0 || setuid(uid_) != 0) _exit(126);
      }
      prctl(PR_SET_PDEATHSIG, SIGINT);  // after setuid, which clears it
      std::FILE* f = std::fopen(log.c_str(), "w");
      if (f) {
        dup2(fileno(f), STDOUT_FILENO);
        dup2(fileno(f), STDERR_FILENO);
      }
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    if (pid < 0) throw std::runtime_error("postgres test server: fork failed");
    if (!wait) return pid;
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGINT);  // fast shutdown: ends the sessions, checkpoints, exits
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    int status = 0;
    while (std::chrono::steady_clock::now() < until) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  std::string dir_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace focus::testing
