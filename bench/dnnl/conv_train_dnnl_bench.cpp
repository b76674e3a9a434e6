// oneDNN's f32 training convolutions (forward_training, backward_data, backward_weights) at the
// layer shapes of cnn_se at batch 128: the direct algorithm with plain NCHW activations given to
// the primitive as they are (`nchw`), in the primitive's own layout (`any`, usually nChw16c) and
// in NHWC, and Winograd in its own layout; the reorders from and to NCHW are counted in the time.
// For the choice of layout and algorithm in kernels/conv_onednn (focus's side, im2col against
// oneDNN inside focus: `build/conv2d_bench`).
// Standalone, like int8_dnnl_bench.cpp:
//   g++ -O2 -std=c++20 -fopenmp bench/dnnl/conv_train_dnnl_bench.cpp -ldnnl -o /tmp/conv_train_dnnl
//   OMP_NUM_THREADS=2 /tmp/conv_train_dnnl [batch]
// Prints the median ms of 7 calls after 2 warm-ups, and the implementation oneDNN picked.
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {

double median_ms(const std::function<void()>& f) {
  for (int i = 0; i < 2; ++i) f();
  std::vector<double> t;
  for (int i = 0; i < 7; ++i) {
    const auto a = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Reorders `user` into `want` when they differ (a fresh buffer), else returns `user`.
memory to(memory user, const memory::desc& want, engine& eng, stream& s) {
  if (user.get_desc() == want) return user;
  memory m(want, eng);
  reorder(user, m).execute(s, user, m);
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t N = argc > 1 ? std::atoll(argv[1]) : 128;
  engine eng(engine::kind::cpu, 0);
  stream s(eng);
  struct L { int64_t C, O, H; };
  const L layers[] = {{1, 32, 28}, {32, 32, 28}, {32, 64, 14}, {64, 64, 14}, {64, 128, 7}, {128, 128, 7}};
  std::printf("%-16s %-5s %-8s %9s %9s %9s  impl (fwd / bwd data / bwd weights)\n", "layer", "tag", "algo", "fwd",
              "bwd_data", "bwd_w");
  for (const L& l : layers) {
    const memory::dims xd{N, l.C, l.H, l.H}, wd{l.O, l.C, 3, 3}, yd{N, l.O, l.H, l.H}, bd{l.O};
    std::vector<float> x(N * l.C * l.H * l.H, 0.5f), w(l.O * l.C * 9, 0.1f), y(N * l.O * l.H * l.H),
        dy(y.size(), 0.01f), dx(x.size()), dw(w.size()), db(l.O);
    for (size_t i = 0; i < x.size(); ++i) x[i] = float(i % 7) * 0.1f;
    memory ux({xd, dt::f32, tag::nchw}, eng, x.data()), uw({wd, dt::f32, tag::oihw}, eng, w.data()),
        uy({yd, dt::f32, tag::nchw}, eng, y.data()), udy({yd, dt::f32, tag::nchw}, eng, dy.data()),
        udx({xd, dt::f32, tag::nchw}, eng, dx.data()), udw({wd, dt::f32, tag::oihw}, eng, dw.data()),
        udb({bd, dt::f32, tag::x}, eng, db.data());
    for (const auto& [act, alg] : {std::pair{tag::nchw, algorithm::convolution_direct},
                                   std::pair{tag::any, algorithm::convolution_direct},
                                   std::pair{tag::nhwc, algorithm::convolution_direct},
                                   std::pair{tag::any, algorithm::convolution_winograd}}) try {
      const memory::desc xm(xd, dt::f32, act), ym(yd, dt::f32, act), wm(wd, dt::f32, tag::any);
      const convolution_forward::desc fd(prop_kind::forward_training, alg,
                                         xm, wm, ym, {1, 1}, {1, 1}, {1, 1});
      const convolution_forward::primitive_desc fpd(fd, eng);
      const convolution_backward_data::primitive_desc bdpd(
          convolution_backward_data::desc(alg, xm, wm, ym, {1, 1}, {1, 1},
                                          {1, 1}),
          eng, fpd);
      const convolution_backward_weights::primitive_desc bwpd(
          convolution_backward_weights::desc(alg, xm, wm,
                                             memory::desc(bd, dt::f32, tag::any), ym, {1, 1}, {1, 1}, {1, 1}),
          eng, fpd);
      convolution_forward fwd(fpd);
      convolution_backward_data bwd_d(bdpd);
      convolution_backward_weights bwd_w(bwpd);
      const double tf = median_ms([&] {
        memory sx = to(ux, fpd.src_desc(), eng, s), sw = to(uw, fpd.weights_desc(), eng, s);
        memory sy = fpd.dst_desc() == uy.get_desc() ? uy : memory(fpd.dst_desc(), eng);
        fwd.execute(s, {{DNNL_ARG_SRC, sx}, {DNNL_ARG_WEIGHTS, sw}, {DNNL_ARG_DST, sy}});
        if (sy != uy) reorder(sy, uy).execute(s, sy, uy);
        s.wait();
      });
      const double tbd = median_ms([&] {
        memory sdy = to(udy, bdpd.diff_dst_desc(), eng, s), sw = to(uw, bdpd.weights_desc(), eng, s);
        memory sdx = bdpd.diff_src_desc() == udx.get_desc() ? udx : memory(bdpd.diff_src_desc(), eng);
        bwd_d.execute(s, {{DNNL_ARG_DIFF_DST, sdy}, {DNNL_ARG_WEIGHTS, sw}, {DNNL_ARG_DIFF_SRC, sdx}});
        if (sdx != udx) reorder(sdx, udx).execute(s, sdx, udx);
        s.wait();
      });
      const double tbw = median_ms([&] {
        memory sdy = to(udy, bwpd.diff_dst_desc(), eng, s), sx = to(ux, bwpd.src_desc(), eng, s);
        memory sdw = bwpd.diff_weights_desc() == udw.get_desc() ? udw : memory(bwpd.diff_weights_desc(), eng);
        memory sdb = bwpd.diff_bias_desc() == udb.get_desc() ? udb : memory(bwpd.diff_bias_desc(), eng);
        bwd_w.execute(s, {{DNNL_ARG_DIFF_DST, sdy}, {DNNL_ARG_SRC, sx}, {DNNL_ARG_DIFF_WEIGHTS, sdw},
                          {DNNL_ARG_DIFF_BIAS, sdb}});
        if (sdw != udw) reorder(sdw, udw).execute(s, sdw, udw);
        s.wait();
      });
      char name[32];
      std::snprintf(name, sizeof name, "%ldx%ld@%ld", long(l.C), long(l.O), long(l.H));
      std::printf("%-16s %-5s %-8s %9.2f %9.2f %9.2f  %s / %s / %s\n", name,
                  act == tag::nchw ? "nchw" : act == tag::any ? "any" : "nhwc",
                  alg == algorithm::convolution_direct ? "direct" : "winograd", tf, tbd, tbw,
                  fpd.impl_info_str(), bdpd.impl_info_str(), bwpd.impl_info_str());
    } catch (const dnnl::error&) {
      std::printf("%ldx%ld@%ld: no primitive for this layout / algorithm\n", long(l.C), long(l.O), long(l.H));
    }
  }
  return 0;
}
