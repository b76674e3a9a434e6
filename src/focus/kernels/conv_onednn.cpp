// conv2d on oneDNN's training primitives (see conv_onednn.hpp).
// Letters: N images, C input channels, O output channels, KH x KW kernel, OH x OW output.
#include "focus/kernels/conv_onednn.hpp"

#include <oneapi/dnnl/dnnl.hpp>
#include <omp.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_map>

#include "focus/kernels/cpu.hpp"
#include "focus/kernels/onednn.hpp"
#include "focus/kernels/onednn_common.hpp"

namespace focus {

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::engine& engine() { return onednn_engine(); }

// Per-thread scratch for the blocked copies: slot i holds one argument of one call, 0..5 the
// arguments, 6 the primitives' scratchpad.
thread_local ScratchSlots<7> t_scratch;

// The argument a primitive wants laid out as `want`: the caller's buffer itself where `want` is
// its plain layout, else scratch slot `slot`.
memory bind(const memory::desc& want, const memory::desc& plain, const void* user, int slot) {
  void* p = want == plain ? const_cast<void*>(user) : t_scratch.get(slot, want.get_size());
  return memory(want, engine(), p);
}

// Runs `prim` with `args` and its scratchpad (scratch slot 6) on stream s.
void run(const dnnl::primitive& prim, const dnnl::primitive_desc_base& pd, dnnl::stream& s,
         std::unordered_map<int, memory> args) {
  const memory::desc pad = pd.scratchpad_desc();
  if (pad.get_size() > 0)
    args.emplace(DNNL_ARG_SCRATCHPAD, memory(pad, engine(), t_scratch.get(6, pad.get_size())));
  prim.execute(s, args);
}

// A reorder from one layout to another, or nothing where the two agree.
struct Move {
  bool needed = false;
  dnnl::reorder::primitive_desc pd;
  dnnl::reorder prim;
  Move() = default;
  Move(const memory::desc& from, const memory::desc& to) : needed(from != to) {
    if (!needed) return;
    pd = dnnl::reorder::primitive_desc(engine(), from, engine(), to, user_scratchpad());
    prim = dnnl::reorder(pd);
  }
  void run(dnnl::stream& s, memory& from, memory& to) const {
    if (needed) focus::run(prim, pd, s, {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}});
  }
};

// Everything one geometry needs, made once: the three primitives and the reorders between
// focus's plain layouts and theirs. `bias`: the forward adds b / backward_weights writes db.
struct Prims {
  memory::desc x, w, y, b;  // plain: (N, C, H, W) nchw, (O, C, KH, KW) oihw, (N, O, OH, OW) nchw, (O)
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::convolution_backward_data::primitive_desc bd_pd;
  dnnl::convolution_backward_weights::primitive_desc bw_pd;
  dnnl::convolution_forward fwd;
  dnnl::convolution_backward_data bd;
  dnnl::convolution_backward_weights bw;
  Move x_fwd, w_fwd, y_fwd;             // into the forward, out of it
  Move dy_bd, w_bd, dx_bd;              // backward data
  Move x_bw, dy_bw, dw_bw, db_bw;       // backward weights
  bool reference = false;               // some primitive is oneDNN's reference loop

  Prims(const ConvGeom& g, bool bias, const OneDnnConvOptions& opt) {
    const memory::dims strides{g.stride, g.stride}, pad{g.padding, g.padding};
    x = memory::desc({g.N, g.C, g.H, g.W}, dt::f32, tag::nchw);
    w = memory::desc({g.O, g.C, g.KH, g.KW}, dt::f32, tag::oihw);
    y = memory::desc({g.N, g.O, g.OH(), g.OW()}, dt::f32, tag::nchw);
    b = memory::desc({g.O}, dt::f32, tag::x);
    // The primitives' side: at bf16 the products' inputs (x, w, dy) are bf16, their outputs
    // (y, dx, dw, db) F32; the reorders from the plain F32 buffers round.
    const dt lo = opt.bf16 ? dt::bf16 : dt::f32;
    const memory::desc xa(x.dims(), dt::f32, tag::any), wa(w.dims(), dt::f32, tag::any),
        ya(y.dims(), dt::f32, tag::any), ba(b.dims(), dt::f32, tag::any);
    const memory::desc xl(x.dims(), lo, tag::any), wl(w.dims(), lo, tag::any),
        yl(y.dims(), lo, tag::any);
    // Each pass tries Winograd first where asked, and falls back to direct where oneDNN has none.
    auto first_of = [](bool wino, auto make) {
      if (wino) try {
          return make(dnnl::algorithm::convolution_winograd);
        } catch (const dnnl::error&) {
        }
      return make(dnnl::algorithm::convolution_direct);
    };
    fwd_pd = first_of(opt.winograd, [&](dnnl::algorithm alg) {
      const auto fd = bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, alg,
                                                             xl, wl, ba, ya, strides, pad, pad)
                           : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, alg,
                                                             xl, wl, ya, strides, pad, pad);
      return dnnl::convolution_forward::primitive_desc(fd, user_scratchpad(), engine());
    });
    bd_pd = first_of(opt.winograd, [&](dnnl::algorithm alg) {
      return dnnl::convolution_backward_data::primitive_desc(
          dnnl::convolution_backward_data::desc(alg, xa, wl, yl, strides, pad, pad), user_scratchpad(),
          engine(), fwd_pd);
    });
    bw_pd = first_of(opt.winograd, [&](dnnl::algorithm alg) {
      const auto bwd = bias ? dnnl::convolution_backward_weights::desc(alg, xl, wa, ba, yl, strides, pad, pad)
                            : dnnl::convolution_backward_weights::desc(alg, xl, wa, yl, strides, pad, pad);
      return dnnl::convolution_backward_weights::primitive_desc(bwd, user_scratchpad(), engine(), fwd_pd);
    });
    for (const char* impl : {fwd_pd.impl_info_str(), bd_pd.impl_info_str(), bw_pd.impl_info_str()})
      reference = reference || std::string(impl).rfind("ref", 0) == 0;
    fwd = dnnl::convolution_forward(fwd_pd);
    bd = dnnl::convolution_backward_data(bd_pd);
    bw = dnnl::convolution_backward_weights(bw_pd);
    x_fwd = Move(x, fwd_pd.src_desc());
    w_fwd = Move(w, fwd_pd.weights_desc());
    y_fwd = Move(fwd_pd.dst_desc(), y);
    dy_bd = Move(y, bd_pd.diff_dst_desc());
    w_bd = Move(w, bd_pd.weights_desc());
    dx_bd = Move(bd_pd.diff_src_desc(), x);
    x_bw = Move(x, bw_pd.src_desc());
    dy_bw = Move(y, bw_pd.diff_dst_desc());
    dw_bw = Move(bw_pd.diff_weights_desc(), w);
    if (bias) db_bw = Move(bw_pd.diff_bias_desc(), b);
  }
};

using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                       int64_t, bool, bool, bool, int>;

// The cached primitives for (g, bias, Winograd or not, bf16 or not, the thread count), made on first use
// (oneDNN's kernels size their work and scratch for the thread count they were created with, so
// a call under another count gets its own); null where oneDNN has none (or only its reference
// loop and the caller does not allow it). Entries are never evicted: a process sees a handful of
// geometries (its layers at its batch sizes).
std::shared_ptr<const Prims> prims(const ConvGeom& g, bool bias, const OneDnnConvOptions& opt) {
  if (!onednn_enabled()) return nullptr;
  static std::mutex mu;
  static std::map<Key, std::shared_ptr<const Prims>> cache;  // null: oneDNN cannot
  const Key key{g.N,         g.C,       g.H,    g.W, g.O, g.KH, g.KW, g.stride, g.padding,
                bias, opt.winograd, opt.bf16, omp_get_max_threads()};
  std::shared_ptr<const Prims> p;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(key);
    if (it == cache.end()) {
      try {
        p = std::make_shared<const Prims>(g, bias, opt);
      } catch (const dnnl::error&) {
        p = nullptr;  // no implementation for this geometry
      }
      it = cache.emplace(key, p).first;
    }
    p = it->second;
  }
  if (p && p->reference && !opt.allow_reference) return nullptr;
  return p;
}

dnnl::stream& stream() {
  thread_local dnnl::stream s(engine());
  return s;
}

}  // namespace

// Scratch slots: 0 x, 1 w, 2 y.
bool conv2d_forward_onednn(float* y, const float* x, const float* w, const float* b,
                           const ConvGeom& g, const OneDnnConvOptions& opt) {
  const ScopedThreads threads(num_threads());  // the policy's count on any calling thread
  const auto p = prims(g, b != nullptr, opt);
  if (!p) return false;
  dnnl::stream& s = stream();
  memory ux(p->x, engine(), const_cast<float*>(x)), uw(p->w, engine(), const_cast<float*>(w)),
      uy(p->y, engine(), y);
  memory sx = bind(p->fwd_pd.src_desc(), p->x, x, 0), sw = bind(p->fwd_pd.weights_desc(), p->w, w, 1),
         sy = bind(p->fwd_pd.dst_desc(), p->y, y, 2);
  p->x_fwd.run(s, ux, sx);
  p->w_fwd.run(s, uw, sw);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, sx}, {DNNL_ARG_WEIGHTS, sw}, {DNNL_ARG_DST, sy}};
  if (b) args.emplace(DNNL_ARG_BIAS, memory(p->fwd_pd.bias_desc(), engine(), const_cast<float*>(b)));
  run(p->fwd, p->fwd_pd, s, std::move(args));
  p->y_fwd.run(s, sy, uy);
  s.wait();
  return true;
}

// Scratch slots: 0 dy (backward data), 1 w, 2 dx, 3 x, 4 dy (backward weights, where its layout
// differs from backward data's), 5 dw (or its stand-in when only db is asked for).
bool conv2d_backward_onednn(float* dx, float* dw, float* db, const float* dy, const float* x,
                            const float* w, const ConvGeom& g, const OneDnnConvOptions& opt) {
  const ScopedThreads threads(num_threads());  // the policy's count on any calling thread
  const auto p = prims(g, db != nullptr, opt);
  if (!p) return false;
  dnnl::stream& s = stream();
  memory udy(p->y, engine(), const_cast<float*>(dy));
  memory sdy = bind(p->bd_pd.diff_dst_desc(), p->y, dy, 0);
  if (dx) {
    memory uw(p->w, engine(), const_cast<float*>(w)), udx(p->x, engine(), dx);
    memory sw = bind(p->bd_pd.weights_desc(), p->w, w, 1), sdx = bind(p->bd_pd.diff_src_desc(), p->x, dx, 2);
    p->dy_bd.run(s, udy, sdy);
    p->w_bd.run(s, uw, sw);
    run(p->bd, p->bd_pd, s, {{DNNL_ARG_DIFF_DST, sdy}, {DNNL_ARG_WEIGHTS, sw}, {DNNL_ARG_DIFF_SRC, sdx}});
    p->dx_bd.run(s, sdx, udx);
  }
  if (dw || db) {
    memory ux(p->x, engine(), const_cast<float*>(x));
    memory sx = bind(p->bw_pd.src_desc(), p->x, x, 3);
    p->x_bw.run(s, ux, sx);
    // The diff_dst reordered for backward data serves here too where the layouts agree.
    memory bdy = sdy;
    if (!dx || p->bw_pd.diff_dst_desc() != p->bd_pd.diff_dst_desc()) {
      bdy = bind(p->bw_pd.diff_dst_desc(), p->y, dy, 4);
      p->dy_bw.run(s, udy, bdy);
    }
    // Without dw, the weights' gradient still has to go somewhere: scratch slot 5.
    memory sdw = dw ? bind(p->bw_pd.diff_weights_desc(), p->w, dw, 5)
                    : memory(p->bw_pd.diff_weights_desc(), engine(),
                             t_scratch.get(5, p->bw_pd.diff_weights_desc().get_size()));
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, sx}, {DNNL_ARG_DIFF_DST, bdy}, {DNNL_ARG_DIFF_WEIGHTS, sdw}};
    memory udb, sdb;
    if (db) {
      udb = memory(p->b, engine(), db);
      sdb = p->db_bw.needed ? memory(p->bw_pd.diff_bias_desc(), engine()) : udb;
      args.emplace(DNNL_ARG_DIFF_BIAS, sdb);
    }
    run(p->bw, p->bw_pd, s, std::move(args));
    if (dw) {
      memory udw(p->w, engine(), dw);
      p->dw_bw.run(s, sdw, udw);
    }
    if (db) p->db_bw.run(s, sdb, udb);
  }
  s.wait();
  return true;
}

}  // namespace focus
