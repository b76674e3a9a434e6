// The autograd graph. Every differentiable op that sees an input requiring grad (while grad mode
// is on) makes one Node: it saves what its backward needs, links to its inputs' Nodes (or leaf
// gradient slots) through `next`, and becomes the output's grad_fn. Tensor::backward() walks the
// graph in reverse topological order, accumulates gradients into leaves, and frees each Node's
// saved tensors as soon as it has run. Gradient buffers the engine alone holds are added into in
// place (never copied first); a node may add into them itself through grad_target().
#pragma once
#include <memory>
#include <vector>

#include "focus/tensor/tensor.hpp"

namespace focus {

struct AutogradMeta {
  bool requires_grad = false;
  Tensor grad;                   // leaves only
  std::shared_ptr<Node> grad_fn; // non-leaves only
};

// Where a gradient flows: into another Node, or into a leaf's grad slot. Both null: nowhere.
struct Edge {
  std::shared_ptr<Node> fn;
  std::shared_ptr<AutogradMeta> leaf;
  bool valid() const { return fn || leaf; }
};

struct Node {
  virtual ~Node() = default;
  virtual const char* name() const = 0;
  // Given d(loss)/d(output), returns d(loss)/d(input_i) for every edge (an undefined Tensor where
  // next[i] is invalid or the input gets no gradient). Each returned grad has its input's shape.
  virtual std::vector<Tensor> backward(const Tensor& dout) = 0;
  // Drops saved tensors; called once the node has run.
  virtual void release() {}
  bool needs_grad(size_t i) const { return i < next.size() && next[i].valid(); }
  // Callable from backward() only. The gradient input i has gathered so far, when the engine
  // holds one that this node may add into in place (contiguous, input i's shape and `dtype`,
  // reachable from nowhere else), else nullptr. A node that adds its gradient for input i into
  // the target returns an undefined Tensor for i. Lets a GEMM accumulate with beta = 1 instead of
  // writing a fresh buffer that the engine then adds (the house rule: backward accumulates).
  Tensor* grad_target(size_t i, DType dtype) const;

  std::vector<Edge> next;
  bool released = false;
};

// Grad mode: thread-local. Ops record graph only when it is on and an input requires grad.
bool grad_enabled();
void set_grad_enabled(bool on);
struct NoGradGuard {
  NoGradGuard() : prev_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// True when grad mode is on and any defined input requires grad.
bool needs_graph(std::initializer_list<const Tensor*> inputs);
bool needs_graph(const std::vector<Tensor>& inputs);

// Links `node` to `inputs` (in order: node->next[i] is inputs[i]) and makes it out's grad_fn.
void attach(Tensor& out, std::shared_ptr<Node> node, std::initializer_list<const Tensor*> inputs);
void attach(Tensor& out, std::shared_ptr<Node> node, const std::vector<Tensor>& inputs);

// Runs reverse-mode from `root` with seed gradient `grad` (same shape as root).
void run_backward(const Tensor& root, const Tensor& grad);

}  // namespace focus
