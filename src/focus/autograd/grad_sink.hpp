// Leaf-gradient sinks, for data parallelism inside one process: threads that run backward at the
// same time over separate graphs sharing the same parameters must not add into the same .grad.
// While a LeafGradSinkScope is alive on a thread, backward on that thread adds leaf gradients into
// the scope's sink instead of the leaves; flush() then adds a sink into the leaves. Flushing the
// sinks from one thread in a fixed order makes the summed gradients independent of timing.
#pragma once
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
  // `leaf` (nullptr before the first add).
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

}  // namespace focus
