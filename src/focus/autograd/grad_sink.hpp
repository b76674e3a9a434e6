// Leaf-gradient sinks, for data parallelism inside one process: threads that run backward at the
// same time over separate graphs sharing the same parameters must not add into the same .grad.
// While a LeafGradSinkScope is alive on a thread, backward on that thread adds leaf gradients into
// the scope's sink instead of the leaves; flush() then adds a sink into the leaves. Flushing the
// sinks from one thread in a fixed order makes the summed gradients independent of timing.
// A LeafReadyScope installs a callback that backward calls, on its own thread, as soon as a leaf's
// gradient of this backward is final (the last edge into the leaf has run: a parameter used twice,
// e.g. tied embeddings, is final only after its last use), so that a caller can start sending it
// (the all-reduce of multi-process training, train/distributed.cpp) while backward goes on.
#pragma once
#include <functional>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "focus/tensor/tensor.hpp"

namespace focus {

class LeafGradSink {
 public:
  // leaf.grad += g (leaf.grad = g when it has none) for every leaf reached, in the order the
  // backward first reached them; empties the sink. Call with no backward running on the leaves.
  void flush();
  bool empty() const { return grads_.empty(); }
  // For the engine: add g into this sink's gradient for `leaf`; the sink's gradient so far for
  // `leaf` (nullptr before the first add). A gradient left undefined (taken by a LeafReadyScope's
  // callback) is skipped by flush().
  void add(const std::shared_ptr<AutogradMeta>& leaf, Tensor g);
  Tensor* find(const AutogradMeta* leaf);

 private:
  std::vector<std::pair<std::shared_ptr<AutogradMeta>, Tensor>> grads_;
  std::unordered_map<const AutogradMeta*, size_t> index_;
};

class LeafGradSinkScope {
 public:
  explicit LeafGradSinkScope(LeafGradSink& sink);
  ~LeafGradSinkScope();
  LeafGradSinkScope(const LeafGradSinkScope&) = delete;
  LeafGradSinkScope& operator=(const LeafGradSinkScope&) = delete;

 private:
  LeafGradSink* prev_;
};

// The callback: `leaf` and its gradient slot (this thread's sink's, or the leaf's .grad without a
// sink; nullptr when no gradient reached it in this backward). It may read the gradient or take it
// (std::move: a taken sink gradient is not added to the leaf by flush()). Called once per leaf
// reached, in the order the leaves become final, which depends on the graph only (never on timing).
using LeafReadyFn = std::function<void(const AutogradMeta& leaf, Tensor* grad)>;
// Optional, called first: the leaves this backward reaches (in no particular order), so that a
// caller can treat the others as final at once rather than wait for them.
using LeafSetFn = std::function<void(const std::vector<const AutogradMeta*>& reached)>;

class LeafReadyScope {
 public:
  explicit LeafReadyScope(LeafReadyFn ready, LeafSetFn reached = {});
  ~LeafReadyScope();
  LeafReadyScope(const LeafReadyScope&) = delete;
  LeafReadyScope& operator=(const LeafReadyScope&) = delete;
  struct Callbacks {
    LeafReadyFn ready;
    LeafSetFn reached;
  };

 private:
  Callbacks* prev_;
  Callbacks fns_;
};

}  // namespace focus
