// Reverse-mode engine: dependency count over the reachable graph, then a ready-queue walk
// (Kahn's order), gradient accumulation into pending buffers and leaves, and graph freeing.
// A gradient is copied only when something else can still reach its buffer (a node that returned
// one tensor for two inputs, a view, the caller's seed); otherwise the engine keeps the node's
// buffer and adds into it, and nodes may add into it themselves (Node::grad_target).
#include <deque>
#include <unordered_map>

#include "focus/autograd/grad_sink.hpp"
#include "focus/autograd/node.hpp"
#include "focus/autograd/retain.hpp"
#include "focus/tensor/strided.hpp"

namespace focus {

namespace {
thread_local bool g_grad_enabled = true;

// dst += src (same shape; dst owned by the engine, contiguous).
void accumulate_into(Tensor& dst, const Tensor& src) {
  FOCUS_CHECK(dst.shape() == src.shape(), ShapeError,
              "autograd: gradient shape {} does not match {}", to_string(src.shape()),
              to_string(dst.shape()));
  dispatch_float(dst.dtype(), "autograd accumulate", [&]<class T>() {
    Tensor s = src.dtype() == dst.dtype() ? src.contiguous() : src.to(dst.dtype());
    T* d = dst.data<T>();
    const T* p = s.data<T>();
    const int64_t n = dst.numel();
#pragma omp parallel for simd if (parallel : n > 65536)
    for (int64_t i = 0; i < n; ++i) d[i] += p[i];
  });
}

// g itself when nothing else reaches its buffer, else a private contiguous copy, so later
// accumulation never writes into a tensor someone else holds.
bool ownable(const Tensor& g) { return g.is_sole_owner() && g.is_contiguous() && !g.requires_grad(); }
Tensor own(Tensor g) { return ownable(g) ? std::move(g) : g.clone(); }

// The gradients waiting for the rest of their node's inputs.
using PendingGrads = std::unordered_map<Node*, Tensor>;
// What Node::grad_target looks at: the node whose backward runs now and the pending gradients;
// a scope sets them for one backward call (nested backwards restore the outer one).
struct Running {
  const Node* node = nullptr;
  PendingGrads* pending = nullptr;
};
thread_local Running g_running;
struct RunningScope {
  explicit RunningScope(Running r) : prev(g_running) { g_running = r; }
  ~RunningScope() { g_running = prev; }
  RunningScope(const RunningScope&) = delete;
  RunningScope& operator=(const RunningScope&) = delete;
  Running prev;
};

// retain_grad registrations: node -> the tensor's meta (both weak).
struct Retained {
  std::weak_ptr<Node> node;
  std::weak_ptr<AutogradMeta> meta;
};
thread_local std::vector<Retained> g_retained;
thread_local LeafGradSink* g_sink = nullptr;
thread_local LeafReadyScope::Callbacks* g_leaf_ready = nullptr;

// The leaf's gradient slot of this backward: in the sink when one is installed, else the leaf's.
Tensor* leaf_grad_slot(AutogradMeta& leaf) {
  if (g_sink) return g_sink->find(&leaf);
  return leaf.grad.defined() ? &leaf.grad : nullptr;
}

// A leaf's gradient: into this thread's sink when one is installed, else into the leaf.
void add_to_leaf(const std::shared_ptr<AutogradMeta>& leaf, Tensor g) {
  if (g_sink) return g_sink->add(leaf, std::move(g));
  if (leaf->grad.defined()) accumulate_into(leaf->grad, g);
  else leaf->grad = own(std::move(g));
}

void store_retained(Node* n, const Tensor& dout) {
  for (auto it = g_retained.begin(); it != g_retained.end();) {
    const auto node = it->node.lock();
    const auto meta = it->meta.lock();
    if (!node || !meta) {
      it = g_retained.erase(it);
      continue;
    }
    if (node.get() == n) {
      if (meta->grad.defined()) accumulate_into(meta->grad, dout);
      else meta->grad = own(dout);
    }
    ++it;
  }
}
}  // namespace

void LeafGradSink::add(const std::shared_ptr<AutogradMeta>& leaf, Tensor g) {
  const auto [it, fresh] = index_.try_emplace(leaf.get(), grads_.size());
  Tensor& mine = fresh ? grads_.emplace_back(leaf, Tensor()).second : grads_[it->second].second;
  if (mine.defined()) accumulate_into(mine, g);
  else mine = own(std::move(g));  // first, or after a LeafReadyScope's callback took it
}

Tensor* LeafGradSink::find(const AutogradMeta* leaf) {
  const auto it = index_.find(leaf);
  return it == index_.end() ? nullptr : &grads_[it->second].second;
}

void LeafGradSink::flush() {
  for (auto& [leaf, g] : grads_) {
    if (!g.defined()) continue;  // taken by a LeafReadyScope's callback
    if (leaf->grad.defined()) accumulate_into(leaf->grad, g);
    else leaf->grad = std::move(g);
  }
  grads_.clear();
  index_.clear();
}

LeafGradSinkScope::LeafGradSinkScope(LeafGradSink& sink) : prev_(g_sink) { g_sink = &sink; }
LeafGradSinkScope::~LeafGradSinkScope() { g_sink = prev_; }

LeafReadyScope::LeafReadyScope(LeafReadyFn ready, LeafSetFn reached)
    : prev_(g_leaf_ready), fns_{std::move(ready), std::move(reached)} {
  g_leaf_ready = &fns_;
}
LeafReadyScope::~LeafReadyScope() { g_leaf_ready = prev_; }

void retain_grad(const Tensor& t) {
  FOCUS_CHECK(t.defined() && t.requires_grad(), StateError,
              "retain_grad: the tensor does not require grad (nothing will flow into it)");
  if (t.is_leaf()) return;
  g_retained.push_back({t.grad_fn(), t.impl()->autograd});
}

Tensor* Node::grad_target(size_t i, DType dtype) const {
  if (g_running.node != this || i >= next.size()) return nullptr;
  const Edge& e = next[i];
  Tensor* t = nullptr;
  if (e.fn) {
    const auto it = g_running.pending->find(e.fn.get());
    if (it == g_running.pending->end()) return nullptr;
    it->second = own(std::move(it->second));
    t = &it->second;
  } else if (e.leaf) {
    t = g_sink ? g_sink->find(e.leaf.get()) : (e.leaf->grad.defined() ? &e.leaf->grad : nullptr);
  }
  return t && t->dtype() == dtype && t->is_contiguous() ? t : nullptr;
}

bool grad_enabled() { return g_grad_enabled; }
void set_grad_enabled(bool on) { g_grad_enabled = on; }

bool needs_graph(std::initializer_list<const Tensor*> inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}
bool needs_graph(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

static Edge edge_of(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return {};
  if (t.grad_fn()) return Edge{t.grad_fn(), nullptr};
  return Edge{nullptr, t.impl()->autograd};
}

void attach(Tensor& out, std::shared_ptr<Node> node, std::initializer_list<const Tensor*> inputs) {
  node->next.clear();
  for (const Tensor* t : inputs) node->next.push_back(t ? edge_of(*t) : Edge{});
  out.set_grad_fn(std::move(node));
}

void attach(Tensor& out, std::shared_ptr<Node> node, const std::vector<Tensor>& inputs) {
  node->next.clear();
  for (const Tensor& t : inputs) node->next.push_back(edge_of(t));
  out.set_grad_fn(std::move(node));
}

void run_backward(const Tensor& root, const Tensor& grad) {
  NoGradGuard no_grad;
  if (!root.grad_fn()) {  // a leaf: the gradient is the seed itself
    AutogradMeta& leaf = *root.impl()->autograd;
    add_to_leaf(root.impl()->autograd, grad);
    if (g_leaf_ready) {
      if (g_leaf_ready->reached) g_leaf_ready->reached({&leaf});
      g_leaf_ready->ready(leaf, leaf_grad_slot(leaf));
    }
    return;
  }
  Node* start = root.grad_fn().get();
  FOCUS_CHECK(!start->released, StateError,
              "backward: the graph behind this tensor was already freed by an earlier backward");

  // Count, for every reachable node, how many edges point at it (and, for a LeafReadyScope, for
  // every leaf: its gradient is final when the last of them has run).
  std::unordered_map<Node*, int> deps;
  std::unordered_map<AutogradMeta*, int> leaf_uses;
  LeafReadyScope::Callbacks* const leaf_ready = g_leaf_ready;
  std::vector<Node*> stack{start};
  deps[start] = 0;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next) {
      if (leaf_ready && e.leaf) ++leaf_uses[e.leaf.get()];
      if (!e.fn) continue;
      auto [it, fresh] = deps.try_emplace(e.fn.get(), 0);
      ++it->second;
      if (fresh) stack.push_back(e.fn.get());
    }
  }

  if (leaf_ready && leaf_ready->reached) {
    std::vector<const AutogradMeta*> reached;
    reached.reserve(leaf_uses.size());
    for (const auto& [leaf, uses] : leaf_uses) reached.push_back(leaf);
    leaf_ready->reached(reached);
  }

  PendingGrads pending;
  pending[start] = grad;
  std::deque<Node*> ready{start};
  // Keep nodes alive while we run, even if a tensor holding them dies meanwhile.
  std::vector<std::shared_ptr<Node>> keep{root.grad_fn()};
  while (!ready.empty()) {
    Node* n = ready.front();
    ready.pop_front();
    FOCUS_CHECK(!n->released, StateError,
                "backward: node {} was already freed by an earlier backward", n->name());
    auto it = pending.find(n);
    std::vector<Tensor> grads(n->next.size());
    if (it != pending.end()) {  // nodes no gradient reached still run, to free and to count down
      Tensor dout = std::move(it->second);
      pending.erase(it);
      if (!g_retained.empty()) store_retained(n, dout);
      {
        const RunningScope running({n, &pending});
        grads = n->backward(dout);
      }
      FOCUS_CHECK(grads.size() == n->next.size(), StateError,
                  "autograd: {} returned {} gradients for {} inputs", n->name(), grads.size(),
                  n->next.size());
    }
    for (size_t i = 0; i < grads.size(); ++i) {
      const Edge& e = n->next[i];
      if (e.fn) {
        Node* m = e.fn.get();
        if (grads[i].defined()) {
          const auto pit = pending.find(m);
          if (pit == pending.end()) {
            pending.emplace(m, std::move(grads[i]));
          } else {
            Tensor& p = pit->second;
            // Add into whichever of the two buffers is ours alone: no copy when either is.
            if (!ownable(p) && ownable(grads[i]) && grads[i].dtype() == p.dtype())
              std::swap(p, grads[i]);
            p = own(std::move(p));
            accumulate_into(p, grads[i]);
          }
        }
        keep.push_back(e.fn);
        if (--deps[m] == 0) ready.push_back(m);
      } else if (e.leaf) {
        if (grads[i].defined()) add_to_leaf(e.leaf, std::move(grads[i]));
        if (leaf_ready && --leaf_uses[e.leaf.get()] == 0) leaf_ready->ready(*e.leaf, leaf_grad_slot(*e.leaf));
      }
    }
    n->release();
    n->released = true;
    n->next.clear();
  }
}

}  // namespace focus
