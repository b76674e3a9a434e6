// The communicator of data-parallel training across processes (and machines): rank, size, sums of
// float / double buffers over all ranks (in buckets, in a fixed order; blocking, or started
// now and waited for later, to overlap with the backward pass), broadcast, barrier, a
// value compared across ranks (parameter checksums) and abort-with-message. Two implementations:
// OpenMPI (dist/mpi_communicator.cpp, built when CMake finds MPI: FOCUS_MPI) and a single-process
// stub (rank 0 of 1; every collective is the identity), used without MPI or when the process was
// not started by mpirun.
// Layer: beside kernels; it includes nothing above tensor/ (train/ uses it, never the reverse).
// Failure: with MPI, every call checks its status (MPI_ERRORS_RETURN) and throws CommError naming
// the operation; a watchdog thread ends the process (exit status 70, after one line on stderr
// naming the rank and the operation) when a collective has waited longer than the timeout
// (FOCUS_DIST_TIMEOUT seconds, default 600) for a rank that hangs; mpirun then ends the other
// ranks. A rank that dies is seen by mpirun itself, which ends the job (see docs/DISTRIBUTED.md).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "focus/tensor/error.hpp"

namespace focus {

// A collective failed (a peer vanished, the network broke) or ranks disagree.
struct CommError : Error { using Error::Error; };

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "local" or "mpi"
  // data[i] = the sum over ranks of data[i], in place, every rank the same result.
  virtual void allreduce_sum(float* data, int64_t n) = 0;
  virtual void allreduce_sum(double* data, int64_t n) = 0;
  // Non-blocking data[i] = the sum over ranks of data[i]: starts the sum and returns its request;
  // `data` must stay untouched until wait() returned. Every rank must start its sums in the same
  // order (MPI's rule for collectives). test() lets it progress (with one thread per rank MPI
  // moves data only inside MPI calls) and says whether it is done; wait() blocks until it is and
  // frees the request. This default sums at once (blocking) and returns a finished request.
  using Request = int64_t;
  virtual Request start_allreduce_sum(float* data, int64_t n) {
    allreduce_sum(data, n);
    return -1;
  }
  virtual bool test(Request r) { (void)r; return true; }
  virtual void wait(Request r) { (void)r; }
  // bytes from `root` to every rank, in place.
  virtual void broadcast(void* data, int64_t bytes, int root) = 0;
  virtual void barrier() = 0;
  // Every rank's value, by rank.
  virtual std::vector<uint64_t> allgather(uint64_t value) = 0;
  // Prints "focus: rank R/N: <message>" on stderr and ends every rank of the job with `code`
  // (the stub: this process). For the application's last resort, never for a caller's mistake.
  [[noreturn]] virtual void abort(const std::string& message, int code) = 0;
  // Names what the next collectives are for ("all-reduce of the gradients at step 12"), for the
  // watchdog's message.
  virtual void set_activity(const std::string& what) { (void)what; }
};

// Sums n floats over all ranks in buckets of at most `bucket` elements, first to last (the same
// order on every rank, so a run is reproducible). bucket <= 0: one call.
void allreduce_sum_buckets(Communicator& comm, float* data, int64_t n, int64_t bucket);
void broadcast_buckets(Communicator& comm, float* data, int64_t n, int64_t bucket, int root);

// The ranks whose `value` differs from rank 0's (empty: all agree). Collective.
std::vector<int> ranks_differing(Communicator& comm, uint64_t value);

// A 64-bit checksum of bytes (order-sensitive; the same bits give the same value on every machine
// of the same endianness). `seed` chains calls.
uint64_t checksum_bytes(const void* data, size_t bytes, uint64_t seed = 0x9E3779B97F4A7C15ull);

// The single-process stub: rank 0 of 1.
std::unique_ptr<Communicator> make_local_communicator();

// True when focus was built with MPI; true when this process was started by mpirun (OpenMPI's or
// a PMI launcher's environment variables).
bool mpi_built();
bool launched_by_mpirun();

// The process-wide communicator: MPI's world when built with MPI and launched by mpirun
// (MPI is initialised on the first call and finalised at exit), else the stub. A launch by mpirun
// of a build without MPI with more than one process is a CommError (each process would train
// alone).
Communicator& world();
// world() if it was created, else nullptr (the CLI's error handler: does not start MPI).
Communicator* world_if_started();

}  // namespace focus
