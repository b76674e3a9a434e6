// The OpenMPI communicator (see communicator.hpp): MPI_COMM_WORLD with MPI_ERRORS_RETURN, every
// status checked (CommError naming the call), and a watchdog thread that ends this process when a
// collective has waited longer than FOCUS_DIST_TIMEOUT seconds (default 600): a peer that hangs
// (stopped, deadlocked, a network partition that TCP does not report) cannot hang the job; the
// process exits with status 70 without MPI_Finalize, which makes mpirun end every other rank.
// MPI is initialised with MPI_THREAD_FUNNELED (only the thread that made the communicator calls
// MPI; OpenMP threads never do) and finalised at exit. Compiled to nothing without MPI.
#if FOCUS_HAVE_MPI
#define OMPI_SKIP_MPICXX 1  // the C interface only (the C++ bindings need libmpi_cxx)
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <csignal>
#include <cstring>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "focus/dist/communicator.hpp"

namespace focus {

namespace {

std::string mpi_error(int code) {
  char buf[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, buf, &len);
  return std::string(buf, size_t(len));
}

double timeout_from_env() {
  const char* v = std::getenv("FOCUS_DIST_TIMEOUT");
  if (!v || !*v) return 600;
  char* end = nullptr;
  const double t = std::strtod(v, &end);
  FOCUS_CHECK(end && *end == '\0' && t > 0, ValueError,
              "FOCUS_DIST_TIMEOUT='{}': need a positive number of seconds", v);
  return t;
}

// SIGTERM (mpirun ending the job after another rank failed, or a cancel): one line naming this
// rank, then exit 143. Only async-signal-safe calls; the text is made before the handler is set.
char g_term_message[256];
size_t g_term_length = 0;

extern "C" void on_sigterm(int) {
  [[maybe_unused]] ssize_t w = ::write(2, g_term_message, g_term_length);
  ::_exit(143);
}

void install_sigterm_message(int rank, int size) {
  const int n = std::snprintf(g_term_message, sizeof g_term_message,
                              "focus: rank %d/%d: terminated by SIGTERM (mpirun ends the job when "
                              "another rank fails; see that rank's message)\n",
                              rank, size);
  g_term_length = n > 0 ? std::min(size_t(n), sizeof g_term_message - 1) : 0;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigterm;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() : timeout_(timeout_from_env()) {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
      int provided = 0;
      const int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
      FOCUS_CHECK(rc == MPI_SUCCESS, CommError, "MPI_Init_thread failed: {}", mpi_error(rc));
      owns_ = true;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    if (size_ > 1) install_sigterm_message(rank_, size_);
    watchdog_ = std::thread([this] { watch(); });
  }

  ~MpiCommunicator() override {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    if (watchdog_.joinable()) watchdog_.join();
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owns_ && !finalized) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }

  void allreduce_sum(float* data, int64_t n) override { allreduce(data, n, MPI_FLOAT); }
  void allreduce_sum(double* data, int64_t n) override { allreduce(data, n, MPI_DOUBLE); }

  Request start_allreduce_sum(float* data, int64_t n) override {
    FOCUS_CHECK(n >= 0 && n <= INT_MAX, ValueError, "allreduce: {} elements (at most {} a call)", n,
                INT_MAX);
    if (n == 0) return -1;
    MPI_Request req = MPI_REQUEST_NULL;
    check(MPI_Iallreduce(MPI_IN_PLACE, data, int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req),
          "MPI_Iallreduce");
    const Request id = next_request_++;
    requests_.emplace(id, req);
    return id;
  }

  bool test(Request r) override {
    const auto it = requests_.find(r);
    if (it == requests_.end()) return true;
    int done = 0;
    check(MPI_Test(&it->second, &done, MPI_STATUS_IGNORE), "MPI_Test");
    return done != 0;  // MPI_Test freed a finished request (MPI_REQUEST_NULL); wait() drops it
  }

  void wait(Request r) override {
    const auto it = requests_.find(r);
    if (it == requests_.end()) return;
    MPI_Request req = it->second;
    requests_.erase(it);
    Busy busy(*this, "all-reduce");
    check(MPI_Wait(&req, MPI_STATUS_IGNORE), "MPI_Wait");
  }

  void broadcast(void* data, int64_t bytes, int root) override {
    FOCUS_CHECK(root >= 0 && root < size_, ValueError, "broadcast: root {} of {} ranks", root, size_);
    FOCUS_CHECK(bytes >= 0 && bytes <= INT_MAX, ValueError, "broadcast: {} bytes (at most {} a call)",
                bytes, INT_MAX);
    Busy busy(*this, "broadcast");
    check(MPI_Bcast(data, int(bytes), MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
  }

  void barrier() override {
    Busy busy(*this, "barrier");
    check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
  }

  std::vector<uint64_t> allgather(uint64_t value) override {
    std::vector<uint64_t> all(size_t(size_), 0);
    Busy busy(*this, "all-gather");
    check(MPI_Allgather(&value, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD),
          "MPI_Allgather");
    return all;
  }

  [[noreturn]] void abort(const std::string& message, int code) override {
    std::fprintf(stderr, "focus: rank %d/%d: %s\n", rank_, size_, message.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; in case it does
  }

  void set_activity(const std::string& what) override {
    std::lock_guard<std::mutex> lock(m_);
    activity_ = what;
  }

 private:
  // Marks a collective in progress for the watchdog.
  struct Busy {
    Busy(MpiCommunicator& c, const char* op) : c_(c) {
      std::lock_guard<std::mutex> lock(c_.m_);
      c_.op_ = op;
      c_.since_ = std::chrono::steady_clock::now();
      c_.busy_ = true;
    }
    ~Busy() {
      std::lock_guard<std::mutex> lock(c_.m_);
      c_.busy_ = false;
    }
    MpiCommunicator& c_;
  };

  void allreduce(void* data, int64_t n, MPI_Datatype type) {
    FOCUS_CHECK(n >= 0 && n <= INT_MAX, ValueError, "allreduce: {} elements (at most {} a call)", n,
                INT_MAX);
    if (n == 0) return;
    Busy busy(*this, "all-reduce");
    check(MPI_Allreduce(MPI_IN_PLACE, data, int(n), type, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
  }

  void check(int rc, const char* call) const {
    FOCUS_CHECK(rc == MPI_SUCCESS, CommError, "rank {}/{}: {} failed during {}: {} (a rank died or the network failed)",
                rank_, size_, call, activity_, mpi_error(rc));
  }

  void watch() {
    std::unique_lock<std::mutex> lock(m_);
    while (!stop_) {
      cv_.wait_for(lock, std::chrono::milliseconds(250));
      if (stop_ || !busy_) continue;
      const double waited =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - since_).count();
      if (waited < timeout_) continue;
      std::fprintf(stderr,
                   "focus: rank %d/%d: %s (%s) has waited %.0f s for the other ranks "
                   "(FOCUS_DIST_TIMEOUT=%g): a rank hangs or the network is down; ending the job\n",
                   rank_, size_, op_, activity_.c_str(), waited, timeout_);
      std::fflush(stderr);
      std::_Exit(70);  // without MPI_Finalize: mpirun ends the other ranks
    }
  }

  int rank_ = 0, size_ = 1;
  bool owns_ = false;
  std::unordered_map<Request, MPI_Request> requests_;  // started, not waited for
  Request next_request_ = 0;
  double timeout_;
  std::mutex m_;
  std::condition_variable cv_;
  bool stop_ = false, busy_ = false;
  const char* op_ = "";
  std::string activity_ = "start-up";
  std::chrono::steady_clock::time_point since_;
  std::thread watchdog_;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator() { return std::make_unique<MpiCommunicator>(); }

}  // namespace focus
#endif
