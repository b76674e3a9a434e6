// Data parallelism inside one process: the micro-batches of a step run their forward and backward
// at the same time, one OpenMP thread each, every op inside single-threaded (nested parallel
// regions run on one thread, and OpenBLAS called inside a parallel region runs on one). For small
// layers on few cores (the g2p model, d_model 192, on 2 cores) this beats threading each op:
// OpenBLAS's threads and short parallel regions spend much of a step waiting for each other.
// Deterministic: micro-batch i collects its parameter gradients in its own LeafGradSink and draws
// its dropout masks from CounterStreamScope(salt mixed with i); after all have run, the sinks are
// added into the parameters in the order i = 0, 1, ... So the result depends on (salt, n), never on
// timing, nor on the number of workers beyond what the ops' own thread count changes (with one
// thread per op, workers = 1 and workers = 2 give the same bits).
// Memory: one gradient copy per micro-batch on top of the graphs.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace focus {

// Runs fn(i) for i in [0, n) on `workers` threads (i goes to thread i % workers; workers is capped
// at n; 1 runs them in turn on the calling thread, with the same sinks and streams). fn runs one
// micro-batch's forward and backward and returns its loss. Returns the n losses in order. An
// exception thrown by fn is rethrown (the lowest i's) after all threads stop; no gradient from the
// step is then added. Micro-batch i draws dropout from stream (salt, first + i): a caller running
// a step's micro-batches in several calls (or several processes) passes each call's first index,
// and every micro-batch gets the masks it gets in one call.
std::vector<double> run_micro_batches(int64_t n, int workers, uint64_t salt,
                                      const std::function<double(int64_t)>& fn, int64_t first = 0);

}  // namespace focus
