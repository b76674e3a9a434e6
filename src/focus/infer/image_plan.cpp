// ImagePlan on oneDNN (see image_plan.hpp). The only file that includes oneDNN.
// Letters: N images in a chunk, C / O input / output channels, H x W the plane, K classes,
// Cr the SE bottleneck width.
#include "focus/infer/image_plan.hpp"

#include <oneapi/dnnl/dnnl.hpp>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "focus/infer/image_plan_blocked.hpp"
#include "focus/infer/vit_plan.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/kernels/onednn.hpp"
#include "focus/models/cnn_se.hpp"
#include "focus/nn/norm.hpp"
#include "focus/models/image_classifier.hpp"
#include "focus/tensor/error.hpp"

namespace focus {

namespace {

using dnnl::algorithm;
using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;
using Args = std::unordered_map<int, memory>;

constexpr float kBnEps = 1e-5f;  // CnnSe's BatchNorm2d eps
constexpr int64_t kMaxChunk = 256;
// Chunks with less convolution work than this run on one thread: there the parallel regions'
// wake-ups cost more than the second core gives. cnn_se (58 MFLOP an image) on the quiet 2-core
// Zen 5: batch 1 one thread 3,499 images/s, two 1,909; batch 4 3,662 vs 4,289; batch 8 3,631 vs
// 4,992 (docs/BENCHMARKS.md): one thread for batches 1 and 2.
constexpr double kSerialFlops = 150e6;
// Chunks up to this size on the blocked layout run the SE layers and the head as host loops
// (infer/image_plan_blocked.hpp) instead of oneDNN inner products: at batch 1 a primitive's call
// costs about as much as its arithmetic.
constexpr int64_t kHostDenseMax = 4;

std::atomic<int> g_engine{-1};  // -1: not read yet

ImageEngine engine_from_env() {
  const char* v = std::getenv("FOCUS_INFER_ENGINE");
  if (!v || !*v || std::strcmp(v, "onednn") == 0) return ImageEngine::OneDnn;
  if (std::strcmp(v, "native") == 0) return ImageEngine::Native;
  FOCUS_CHECK(false, ValueError, "FOCUS_INFER_ENGINE='{}': must be native or onednn", v);
  return ImageEngine::OneDnn;
}

std::atomic<int> g_layout{-1};  // -1: not read yet

PlanLayout layout_from_env() {
  const char* v = std::getenv("FOCUS_PLAN_LAYOUT");
  if (!v || !*v || std::strcmp(v, "blocked") == 0) return PlanLayout::Blocked;
  if (std::strcmp(v, "nhwc") == 0) return PlanLayout::Nhwc;
  FOCUS_CHECK(false, ValueError, "FOCUS_PLAN_LAYOUT='{}': must be blocked or nhwc", v);
  return PlanLayout::Blocked;
}

// oneDNN's engine and stream, made after its ISA cap (kernels/onednn.hpp).
struct Dnnl {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{eng};
};
Dnnl& dnnl_state() {
  static Dnnl* d = [] {
    onednn_init();
    return new Dnnl();  // leaked on purpose: plans may outlive static destruction order
  }();
  return *d;
}

const char* isa_label() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx2: return "avx2";
    default: return "other";
  }
}

std::vector<float> values(const StateDict& sd, const std::string& name, size_t expect) {
  const auto it = sd.find(name);
  FOCUS_CHECK(it != sd.end(), FormatError, "compile_image_plan: the model has no tensor '{}'", name);
  FOCUS_CHECK(it->second.dtype() == DType::F32 && size_t(it->second.numel()) == expect, FormatError,
              "compile_image_plan: '{}' is {} {}, expected {} F32 values", name,
              dtype_name(it->second.dtype()), to_string(it->second.shape()), expect);
  return it->second.contiguous().to_vector<float>();
}

// A weight in the caller's plain layout and its copies reordered into the layouts primitives
// asked for (one per distinct layout: small and large chunks may pick different ones).
struct Weight {
  memory::dims dims;
  tag plain;
  std::vector<float> data;
  std::vector<memory> reordered;
  std::vector<int8_t> q = {};  // int8 weights (then `data` is unused)
  memory get(const memory::desc& want) {
    Dnnl& d = dnnl_state();
    memory user = q.empty() ? memory({dims, dt::f32, plain}, d.eng, data.data())
                            : memory({dims, dt::s8, plain}, d.eng, q.data());
    if (want == user.get_desc()) return user;
    for (auto& m : reordered)
      if (m.get_desc() == want) return m;
    memory m(want, d.eng);
    dnnl::reorder(user, m).execute(d.stream, user, m);
    d.stream.wait();
    reordered.push_back(m);
    return m;
  }
};

// Where an argument's data lives at run time.
// kScratch: the convolutions' scratchpad (one buffer: the steps run one after another).
enum Slot { kInput, kPing, kPong, kOutput, kScratch };
struct Step {
  dnnl::primitive prim;  // empty for a host step
  Args args;             // every argument, built once (weights, biases, own scratch, activations)
  std::vector<std::pair<memory, Slot>> routed;     // the activations: handles set per call
  // A host step: reads routed[0]'s slot, writes routed[1]'s where there is one (else nullptr).
  std::function<void(void* src, void* dst)> host = {};
};

float to_float(float v) { return v; }
float to_float(uint8_t v) { return float(v); }
float to_float(uint16_t bf16) {  // bfloat16: the high half of a float's bits
  const uint32_t bits = uint32_t(bf16) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// o (N, C) = scale x the mean over the HW positions of x (N, HW, C) (NHWC), in F32 (scale: a
// u8 activation's step).
template <class T>
void plane_mean(float* o, const T* x, int64_t N, int64_t C, int64_t HW, float scale = 1.f) {
  const float inv = scale / float(HW);
#pragma omp parallel for if (N * HW * C >= 65536)
  for (int64_t n = 0; n < N; ++n) {
    float* on = o + n * C;
    for (int64_t c = 0; c < C; ++c) on[c] = 0.f;
    for (int64_t p = 0; p < HW; ++p) {
      const T* xp = x + (n * HW + p) * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) on[c] += to_float(xp[c]);
    }
    for (int64_t c = 0; c < C; ++c) on[c] *= inv;
  }
}

// A convolution with its batch norm folded in. int8: weights per output channel in s8 (`w.q`,
// step s_w[o] = absmax / weight_max), the bias divided by s_in x s_w[o] (oneDNN adds the bias
// before the output scale), out_scales[o] = s_in x s_w[o] / s_out; its input and output are u8
// with the steps s_in = the range of the convolution before / 255 and s_out = range / 255.
struct ConvWeights {
  std::string name;  // "stages.S.convK"
  Weight w, b;
  float range = 0;  // the output's bound after ReLU (batch-norm statistics; see conv_range)
  bool int8 = false;
  std::vector<float> out_scales = {};
};

struct StageWeights {
  int64_t C, O, Cr;
  ConvWeights conv1, conv2;
  Weight fc1_w, fc1_b, fc2_w, fc2_b;
  std::vector<float> fc1_t = {}, fc2_t = {};  // the weights transposed, for the host loops
};

// What a plan is compiled for: the activations' type, the convolutions run in int8, measured
// activation bounds (else the batch-norm statistics' ones), and whether to record each
// convolution's largest output (measure_activation_ranges).
struct PlanOptions {
  dt act = dt::f32;
  std::set<std::string> int8;
  std::map<std::string, float> ranges;
  bool observe = false;
  PlanLayout layout = PlanLayout::Blocked;
};

// Standard deviations above the mean that bound a channel's folded output (see fold).
constexpr float kRangeSigmas = 6.f;

// Whether oneDNN's int8 convolutions here have VNNI (u8 x s8 sums in 32 bits); without it they
// pair products into 16 bits with saturation, so weights keep 7 bits (|q| <= 63).
bool int8_vnni() {
  const unsigned isa = unsigned(dnnl::get_effective_cpu_isa());
  const unsigned v512 = unsigned(dnnl::cpu_isa::avx512_core_vnni), v2 = unsigned(dnnl::cpu_isa::avx2_vnni);
  return (isa & v512) == v512 || (isa & v2) == v2;
}

class CnnSePlan final : public ImagePlan {
 public:
  // opt.int8: the convolutions (named "stages.S.convK") that run int8; any other runs in opt.act.
  CnnSePlan(const CnnSeConfig& cfg, const StateDict& sd, const PlanOptions& opt)
      : cfg_(cfg), act_(opt.act), observe_(opt.observe),
        blocked_(opt.layout == PlanLayout::Blocked && !opt.observe) {
    dnnl_state();  // the ISA cap before int8_vnni() reads it
    int64_t in = cfg.in_channels;
    for (size_t s = 0; s < cfg.channels.size(); ++s) {
      const std::string p = "stages." + std::to_string(s) + ".";
      const int64_t O = cfg.channels[s], Cr = std::max<int64_t>(1, O / cfg.se_reduction);
      StageWeights w{in, O, Cr, {}, {}, {}, {}, {}, {}};
      fold(w.conv1, sd, p + "conv1", p + "bn1", in, O);
      fold(w.conv2, sd, p + "conv2", p + "bn2", O, O);
      for (ConvWeights* c : {&w.conv1, &w.conv2})
        if (auto it = opt.ranges.find(c->name); it != opt.ranges.end()) c->range = std::max(it->second, 1e-6f);
      // The first convolution reads the normalised image, whose range the plan does not know:
      // it stays in F32 (its output is quantised for the next).
      w.conv1.int8 = s > 0 && opt.int8.count(p + "conv1");
      w.conv2.int8 = opt.int8.count(p + "conv2") > 0;
      w.fc1_w = {{Cr, O}, tag::oi, values(sd, p + "se.fc1.weight", size_t(Cr * O)), {}};
      w.fc1_b = {{Cr}, tag::x, values(sd, p + "se.fc1.bias", size_t(Cr)), {}};
      w.fc2_w = {{O, Cr}, tag::oi, values(sd, p + "se.fc2.weight", size_t(O * Cr)), {}};
      w.fc2_b = {{O}, tag::x, values(sd, p + "se.fc2.bias", size_t(O)), {}};
      w.fc1_t = transposed(w.fc1_w.data, Cr, O);
      w.fc2_t = transposed(w.fc2_w.data, O, Cr);
      stages_.push_back(std::move(w));
      flops_per_pixel_ += double(in * O + O * O) / double(int64_t(1) << (2 * s));  // plane / 4^s
      in = O;
    }
    const int64_t K = cfg.num_classes;
    head_w_ = {{K, in}, tag::oi, values(sd, "head.weight", size_t(K * in)), {}};
    head_b_ = {{K}, tag::x, values(sd, "head.bias", size_t(K)), {}};
    head_t_ = transposed(head_w_.data, K, in);
    const int weight_max = int8_vnni() ? 127 : 63;
    const ConvWeights* prev = nullptr;
    for (StageWeights& st : stages_)
      for (ConvWeights* c : {&st.conv1, &st.conv2}) {
        if (c->int8) {
          quantize(*c, prev->range / 255.f, weight_max);
          ++int8_count_;
        }
        prev = c;
      }
  }

  // An observing plan's record (PlanOptions::observe): each convolution's largest output so far.
  std::map<std::string, float> observed() const {
    const std::lock_guard<std::mutex> lock(mu_);
    return observed_;
  }

  std::vector<std::pair<int64_t, int>> prepared() const override {
    const std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::pair<int64_t, int>> out;
    for (const auto& [key, net] : nets_) out.emplace_back(std::get<0>(key), std::get<3>(key));
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }

  std::string describe() const override {
    const std::lock_guard<std::mutex> lock(mu_);  // reference_ grows as chunks are built
    const std::string what =
        int8_count_ > 0 ? "int8 (" + std::to_string(int8_count_) + " of " +
                              std::to_string(2 * stages_.size()) + " convolutions)"
                        : (act_ == dt::bf16 ? "bf16" : "f32");
    std::string slow;
    for (const std::string& r : reference_) slow += (slow.empty() ? "; reference kernels: " : ", ") + r;
    // The layout only differs where a Winograd convolution runs (F32 on AVX-512).
    const std::string layout = blocked_ ? ", layout blocked" : ", layout nhwc";
    return "onednn cnn_se " + what + " (isa " + isa_label() + layout + slow + ")";
  }

  Tensor forward(const Tensor& x_in) override {
    const int64_t min_size = int64_t(1) << cfg_.channels.size();
    FOCUS_CHECK(x_in.dtype() == DType::F32, DTypeError, "cnn_se plan: input is {}, need F32",
                dtype_name(x_in.dtype()));
    FOCUS_CHECK(x_in.dim() == 4 && x_in.size(0) >= 1 && x_in.size(1) == cfg_.in_channels &&
                    x_in.size(2) >= min_size && x_in.size(3) >= min_size,
                ShapeError, "cnn_se: input {} must be (N, {}, H, W) with H, W >= {}",
                to_string(x_in.shape()), cfg_.in_channels, min_size);
    const Tensor x = x_in.contiguous();
    const int64_t N = x.size(0), H = x.size(2), W = x.size(3), K = cfg_.num_classes;
    const std::lock_guard<std::mutex> lock(mu_);  // the buffers and primitive lists are shared
    Tensor y = Tensor::empty({N, K});  // (N, K) logits
    const int64_t per = cfg_.in_channels * H * W;
    for (int64_t lo = 0; lo < N;) {
      int64_t n = kMaxChunk;
      while (n > N - lo) n /= 2;
      run(n, H, W, const_cast<float*>(x.data<float>()) + lo * per, y.data<float>() + lo * K);
      lo += n;
    }
    return y;
  }

 private:
  // conv (O, C, 3, 3) then eval batch norm -> w * a[o], b = beta + a * (0 - mean), a = gamma /
  // sqrt(var + eps) (the convs have no bias).
  // The range: a folded channel's output has, over the data the statistics came from, mean beta
  // and standard deviation |gamma| sqrt(var / (var + eps)); the bound is the largest over the
  // channels of max(beta, 0) + kRangeSigmas deviations (values above it saturate).
  static void fold(ConvWeights& cw, const StateDict& sd, const std::string& conv,
                   const std::string& bn, int64_t C, int64_t O) {
    cw.name = conv;
    Weight& w = cw.w;
    Weight& b = cw.b;
    std::vector<float> wt = values(sd, conv + ".weight", size_t(O * C * 9));
    const std::vector<float> g = values(sd, bn + ".weight", size_t(O)),
                             beta = values(sd, bn + ".bias", size_t(O)),
                             mean = values(sd, bn + ".running_mean", size_t(O)),
                             var = values(sd, bn + ".running_var", size_t(O));
    BatchNormFold f = fold_batch_norm(g, beta, mean, var, kBnEps);
    float range = 1e-6f;
    for (size_t o = 0; o < size_t(O); ++o) {
      for (size_t i = 0; i < size_t(C * 9); ++i) wt[o * size_t(C * 9) + i] *= f.scale[o];
      const float sd_o = std::abs(g[o]) * std::sqrt(std::max(var[o], 0.f) / (var[o] + kBnEps));
      range = std::max(range, std::max(beta[o], 0.f) + kRangeSigmas * sd_o);
    }
    w = {{O, C, 3, 3}, tag::oihw, std::move(wt), {}};
    b = {{O}, tag::x, std::move(f.shift), {}};
    cw.range = range;
  }

  // The folded F32 weights of `cw` to int8 for an input step s_in (see ConvWeights).
  static void quantize(ConvWeights& cw, float s_in, int weight_max) {
    const int64_t O = cw.w.dims[0], per = int64_t(cw.w.data.size()) / O;
    const float s_out = cw.range / 255.f;
    cw.w.q.resize(cw.w.data.size());
    cw.out_scales.resize(size_t(O));
    for (int64_t o = 0; o < O; ++o) {
      const float* wo = cw.w.data.data() + o * per;
      float amax = 0;
      for (int64_t i = 0; i < per; ++i) amax = std::max(amax, std::abs(wo[i]));
      const float s_w = amax > 0 ? amax / float(weight_max) : 1.f;
      for (int64_t i = 0; i < per; ++i)
        cw.w.q[size_t(o * per + i)] = int8_t(std::lround(std::clamp(wo[i] / s_w, -float(weight_max), float(weight_max))));
      cw.b.data[size_t(o)] /= s_in * s_w;
      cw.out_scales[size_t(o)] = s_in * s_w / s_out;
    }
    cw.w.data.clear();
  }

  struct Net {
    std::vector<Step> steps;
    size_t ping_bytes = 0;  // the largest activation routed to a ping-pong slot
    size_t scratch_bytes = 0;  // the largest scratchpad of a step
  };

  // Routes argument `arg` of `st`, an activation laid out as `md`, to `slot` (its handle set per call).
  static void add_routed(Step& st, int arg, const memory::desc& md, Slot slot, Net& net) {
    const memory m(md, dnnl_state().eng, DNNL_MEMORY_NONE);
    st.args.emplace(arg, m);
    st.routed.emplace_back(m, slot);
    if (slot == kPing || slot == kPong) net.ping_bytes = std::max(net.ping_bytes, md.get_size());
    if (slot == kScratch) net.scratch_bytes = std::max(net.scratch_bytes, md.get_size());
  }
  // Every primitive of the plan takes its scratchpad from the plan (kScratch), none from oneDNN:
  // the library's one is thread-local, set up by the thread that made the primitive, and a
  // primitive made in one thread and run in another crashed (Winograd convolutions, measured).
  static dnnl::primitive_attr plan_scratchpad(dnnl::primitive_attr attr = {}) {
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return attr;
  }
  static void add_scratchpad(Step& st, const dnnl::primitive_desc_base& pd, Net& net) {
    if (pd.scratchpad_desc().get_size() > 0)
      add_routed(st, DNNL_ARG_SCRATCHPAD, pd.scratchpad_desc(), kScratch, net);
  }
  // A reorder step cur -> want (attr: output scales) with the plan's scratchpad.
  static Step reorder_step(const memory::desc& from, const memory::desc& to, Net& net,
                           const dnnl::primitive_attr& attr = {}) {
    const dnnl::reorder::primitive_desc rpd(dnnl_state().eng, from, dnnl_state().eng, to,
                                            plan_scratchpad(attr));
    Step r{dnnl::reorder(rpd), {}, {}};
    add_scratchpad(r, rpd, net);
    return r;
  }
  // Whether md is oneDNN's nChw16c (the Winograd convolutions' layout).
  static bool is_blocked16(const memory::desc& md) {
    return md.dims().size() == 4 && md == memory::desc(md.dims(), md.data_type(), tag::nChw16c);
  }
  // Whether a and b lay out the same bytes: one channel in NCHW and NHWC.
  static bool same_bytes(const memory::desc& a, const memory::desc& b) {
    const auto plain = [](const memory::desc& m) {
      return m.dims().size() == 4 && m.dims()[1] == 1 && m.data_type() == dt::f32 &&
             (m == memory::desc(m.dims(), dt::f32, tag::nchw) || m == memory::desc(m.dims(), dt::f32, tag::nhwc));
    };
    return a.dims() == b.dims() && plain(a) && plain(b);
  }
  static memory own(const memory::desc& md) { return memory(md, dnnl_state().eng); }
  static bool is_reference(const dnnl::primitive_desc_base& pd) {
    return std::string(pd.impl_info_str()).rfind("ref", 0) == 0;
  }
  // Remembers a primitive that runs oneDNN's reference loop (10-100x slower than its jit
  // kernels: a layout or ISA it has no kernel for); describe() names them.
  void note(const dnnl::primitive_desc_base& pd, const char* what) {
    if (is_reference(pd)) reference_.insert(what);
  }

  Net build(int64_t N, int64_t H, int64_t W) {
    Dnnl& d = dnnl_state();
    Net net;
    // Activations are NHWC (what oneDNN's brgemm convolutions want on AVX-512 and its jit ones
    // take on AVX2), except after a Winograd convolution on the blocked layout (blocked_): there
    // they stay in its nChw16c up to the head, and the SE layers, pooling and gates run as host
    // loops on it (infer/image_plan_blocked.hpp), the SE layers and head as oneDNN inner products
    // above kHostDenseMax images. One input channel is the same bytes in NCHW and NHWC.
    memory::desc cur({N, cfg_.in_channels, H, W}, dt::f32,
                     cfg_.in_channels == 1 ? tag::nhwc : tag::nchw);
    Slot cur_slot = kInput;
    auto other = [](Slot s) { return s == kPing ? kPong : kPing; };
    dnnl::post_ops relu_ops;
    relu_ops.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f);

    float cur_range = 0;  // a u8 activation's bound: its step is cur_range / 255
    // cur into type `to` (NHWC), value x scale, into the other slot (quantise / dequantise).
    auto convert = [&](dt to, float scale) {
      const memory::desc want(cur.dims(), to, tag::nhwc);
      dnnl::primitive_attr attr;
      attr.set_output_scales(0, {scale});
      Step r = reorder_step(cur, want, net, attr);
      const Slot to_slot = other(cur_slot);
      add_routed(r, DNNL_ARG_FROM, cur, cur_slot, net);
      add_routed(r, DNNL_ARG_TO, want, to_slot, net);
      net.steps.push_back(std::move(r));
      cur = want;
      cur_slot = to_slot;
    };
    auto conv = [&](ConvWeights& cw, int64_t O, bool first) {
      const dt type = cw.int8 ? dt::u8 : act_;  // its input's and output's
      if (cw.int8 && cur.data_type() != dt::u8) convert(dt::u8, 255.f / cur_range);
      if (!cw.int8 && cur.data_type() == dt::u8) convert(act_, cur_range / 255.f);
      const memory::desc nhwc_dst({N, O, H, W}, type, tag::nhwc);
      auto make = [&](tag dst_tag, algorithm alg = algorithm::convolution_direct) {
        const memory::desc any_src(cur.dims(), act_, tag::any);
        const bool own_src = first || alg == algorithm::convolution_winograd || is_blocked16(cur);
        const dnnl::convolution_forward::desc cd(
            dnnl::prop_kind::forward_inference, alg,
            own_src ? any_src : cur, memory::desc(cw.w.dims, cw.int8 ? dt::s8 : act_, tag::any),
            memory::desc(cw.b.dims, dt::f32, tag::x), memory::desc({N, O, H, W}, type, dst_tag),
            {1, 1}, {1, 1}, {1, 1});
        dnnl::primitive_attr attr;  // a fresh one: copies of an attr share its handle
        attr.set_post_ops(relu_ops);
        // The plan's scratchpad (plan_scratchpad; the crash was ImagePlan.ConcurrentCallsRunOneAtATime).
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        if (cw.int8) attr.set_output_scales(1 << 1, cw.out_scales);  // per output channel
        return dnnl::convolution_forward::primitive_desc(cd, attr, d.eng);
      };
      dnnl::convolution_forward::primitive_desc pd = make(tag::nhwc);
      // With AVX2 only, oneDNN has no jit kernel for one input channel into NHWC and falls back
      // to its reference loop (870 ms for 256 images on conv 1x32, measured): let the first
      // layer write the blocked layout its jit kernel wants, reordered to NHWC after.
      if (first && is_reference(pd)) pd = make(tag::any);
      // The blocked layout: the first layer writes nChw16c for the Winograd convolution after it
      // (from 16 channels) with oneDNN's jit direct kernel (batch 1: 6.6 us against brgconv's
      // 7.6 into NHWC and a 2 us reorder).
      if (first && blocked_ && act_ == dt::f32 && O >= 16) {
        const dnnl::convolution_forward::primitive_desc bpd = make(tag::nChw16c);
        if (!is_reference(bpd)) pd = bpd;
      }
      // F32 from 16 input channels on: oneDNN's Winograd (for inference `jit_fp32_wino_2x3`) in
      // its own blocked layout (PlanLayout::Nhwc: with reorders from and to NHWC around it).
      // cnn_se, batch 1, one thread, per call: conv 32->32 at 28x28 0.071 ms against 0.11 direct
      // (brgconv NHWC), 64->64 at 14x14 0.072 against 0.115, 128->128 at 7x7 0.081 against 0.105
      // (DNNL_VERBOSE); the whole batch-1 plan about +28% (docs/BENCHMARKS.md). AVX-512 only;
      // elsewhere it stays direct.
      if (!first && !cw.int8 && act_ == dt::f32 && cur.dims()[1] >= 16) {
        try {
          const dnnl::convolution_forward::primitive_desc wpd =
              make(tag::any, algorithm::convolution_winograd);
          if (!is_reference(wpd)) pd = wpd;
        } catch (const dnnl::error&) {  // no Winograd kernel here: direct
        }
      }
      note(pd, "convolution");
      if (same_bytes(pd.src_desc(), cur)) {  // one input channel: NCHW is NHWC
        cur = pd.src_desc();
      } else if (pd.src_desc() != cur) {  // the first layer, Winograd: the input into its layout
        Step r = reorder_step(cur, pd.src_desc(), net);
        add_routed(r, DNNL_ARG_FROM, cur, cur_slot, net);
        const Slot to = cur_slot == kPing ? kPong : kPing;
        add_routed(r, DNNL_ARG_TO, pd.src_desc(), to, net);
        net.steps.push_back(std::move(r));
        cur = pd.src_desc();
        cur_slot = to;
      }
      Step st{dnnl::convolution_forward(pd),
              {{DNNL_ARG_WEIGHTS, cw.w.get(pd.weights_desc())},
               {DNNL_ARG_BIAS, cw.b.get(pd.bias_desc())}},
              {}};
      const Slot to = other(cur_slot);
      add_routed(st, DNNL_ARG_SRC, cur, cur_slot, net);
      add_routed(st, DNNL_ARG_DST, pd.dst_desc(), to, net);
      add_scratchpad(st, pd, net);
      net.steps.push_back(std::move(st));
      cur = pd.dst_desc();
      cur_slot = to;
      cur_range = cw.range;
      if (cur != nhwc_dst && !(blocked_ && is_blocked16(cur))) {
        Step r = reorder_step(cur, nhwc_dst, net);
        add_routed(r, DNNL_ARG_FROM, cur, cur_slot, net);
        add_routed(r, DNNL_ARG_TO, nhwc_dst, other(cur_slot), net);
        net.steps.push_back(std::move(r));
        cur = nhwc_dst;
        cur_slot = other(cur_slot);
      }
      if (observe_) {  // the largest output so far (cur is F32 here: observing plans are F32)
        float* seen = &observed_[cw.name];
        const size_t count = cur.get_size() / sizeof(float);
        Step st;
        st.host = [seen, count](const void* x, void*) {
          const float* v = static_cast<const float*>(x);
          for (size_t i = 0; i < count; ++i) *seen = std::max(*seen, v[i]);
        };
        add_routed(st, DNNL_ARG_SRC, cur, cur_slot, net);
        net.steps.push_back(std::move(st));
      }
    };
    // (N, C) <- mean over the plane of cur (NHWC), into an own buffer; returns it. A host loop:
    // oneDNN 2.6's reduction has only its reference kernel for this layout (188 ms at
    // 256x32x28x28, measured).
    auto mean = [&](int64_t C) {
      const memory out = own(memory::desc({N, C}, dt::f32, tag::nc));
      float* o = static_cast<float*>(out.get_data_handle());
      const int64_t HW = H * W;
      Step st;
      const float step = cur_range / 255.f;
      if (cur.data_type() == dt::bf16)
        st.host = [o, N, C, HW](const void* x, void*) { plane_mean(o, static_cast<const uint16_t*>(x), N, C, HW); };
      else if (cur.data_type() == dt::u8)
        st.host = [o, N, C, HW, step](const void* x, void*) { plane_mean(o, static_cast<const uint8_t*>(x), N, C, HW, step); };
      else if (is_blocked16(cur))
        st.host = [o, N, C, HW](const void* x, void*) {
          plane_mean_blocked16(o, static_cast<const float*>(x), N, C, HW);
        };
      else
        st.host = [o, N, C, HW](const void* x, void*) { plane_mean(o, static_cast<const float*>(x), N, C, HW); };
      add_routed(st, DNNL_ARG_SRC, cur, cur_slot, net);
      net.steps.push_back(std::move(st));
      return out;
    };
    // (N, O) = act(src (N, I) @ w^T + b), into an own buffer (or the output slot).
    auto dense = [&](const memory& src, Weight& w, Weight& b, algorithm act, bool to_output) {
      const int64_t O = w.dims[0];
      const memory::desc dst({N, O}, dt::f32, tag::nc);
      dnnl::primitive_attr attr;
      if (act != algorithm::undef) {
        dnnl::post_ops po;
        po.append_eltwise(1.f, act, 0.f, 0.f);
        attr.set_post_ops(po);
      }
      const dnnl::inner_product_forward::primitive_desc pd(
          dnnl::inner_product_forward::desc(dnnl::prop_kind::forward_inference, src.get_desc(),
                                            memory::desc(w.dims, dt::f32, tag::any),
                                            memory::desc(b.dims, dt::f32, tag::x), dst),
          plan_scratchpad(attr), d.eng);
      note(pd, "inner product");
      Step st{dnnl::inner_product_forward(pd),
              {{DNNL_ARG_SRC, src},
               {DNNL_ARG_WEIGHTS, w.get(pd.weights_desc())},
               {DNNL_ARG_BIAS, b.get(pd.bias_desc())}},
              {}};
      add_scratchpad(st, pd, net);
      memory out;
      if (to_output) {
        add_routed(st, DNNL_ARG_DST, dst, kOutput, net);
      } else {
        out = own(dst);
        st.args.emplace(DNNL_ARG_DST, out);
      }
      net.steps.push_back(std::move(st));
      return out;
    };

    for (size_t s = 0; s < stages_.size(); ++s) {
      StageWeights& sw = stages_[s];
      conv(sw.conv1, sw.O, s == 0);
      conv(sw.conv2, sw.O, false);
      // SE gates (N, O) from the conv output; the pool runs on the ungated map.
      memory gates;
      if (is_blocked16(cur) && N <= kHostDenseMax) {
        gates = own(memory::desc({N, sw.O}, dt::f32, tag::nc));
        float* g = static_cast<float*>(gates.get_data_handle());
        const StageWeights* w = &sw;
        const int64_t HW = H * W;
        Step st;
        st.host = [g, w, N, HW](void* x, void*) {
          se_gates_blocked16(g, static_cast<const float*>(x), N, w->O, HW, w->fc1_t.data(),
                             w->fc1_b.data.data(), w->Cr, w->fc2_t.data(), w->fc2_b.data.data());
        };
        st.args.emplace(DNNL_ARG_DST, gates);  // keeps the buffer alive: the lambda holds a pointer
        add_routed(st, DNNL_ARG_SRC, cur, cur_slot, net);
        net.steps.push_back(std::move(st));
      } else {
        const memory squeezed = mean(sw.O);
        const memory hidden = dense(squeezed, sw.fc1_w, sw.fc1_b, algorithm::eltwise_relu, false);
        gates = dense(hidden, sw.fc2_w, sw.fc2_b, algorithm::eltwise_logistic, false);
      }
      if (is_blocked16(cur)) {  // pool and gates in one host pass on nChw16c
        const float* g = static_cast<const float*>(gates.get_data_handle());
        const int64_t O = sw.O, Hi = H, Wi = W;
        Step st;
        st.host = [g, N, O, Hi, Wi](void* x, void* y) {
          pool_gate_blocked16(static_cast<float*>(y), static_cast<const float*>(x), g, N, O, Hi, Wi);
        };
        const memory::desc pooled({N, sw.O, H / 2, W / 2}, dt::f32, tag::nChw16c);
        add_routed(st, DNNL_ARG_SRC, cur, cur_slot, net);
        add_routed(st, DNNL_ARG_DST, pooled, other(cur_slot), net);
        net.steps.push_back(std::move(st));
        cur = pooled;
        cur_slot = other(cur_slot);
        H /= 2;
        W /= 2;
        continue;
      }
      H /= 2;
      W /= 2;
      const dnnl::pooling_forward::primitive_desc pp(
          dnnl::pooling_forward::desc(dnnl::prop_kind::forward_inference, algorithm::pooling_max,
                                      cur, memory::desc({N, sw.O, H, W}, cur.data_type(), tag::nhwc),
                                      {2, 2}, {2, 2}, {0, 0}, {0, 0}),
          plan_scratchpad(), d.eng);
      note(pp, "pooling");
      Step ps{dnnl::pooling_forward(pp), {}, {}};
      add_scratchpad(ps, pp, net);
      const Slot to = other(cur_slot);
      add_routed(ps, DNNL_ARG_SRC, cur, cur_slot, net);
      add_routed(ps, DNNL_ARG_DST, pp.dst_desc(), to, net);
      net.steps.push_back(std::move(ps));
      cur = pp.dst_desc();
      cur_slot = to;
      // pooled *= gates (broadcast over the plane), in place.
      const memory g4(memory::desc({N, sw.O, 1, 1}, dt::f32, tag::nchw), d.eng,
                      gates.get_data_handle());
      const dnnl::binary::primitive_desc bp(
          dnnl::binary::desc(algorithm::binary_mul, cur, g4.get_desc(), cur), plan_scratchpad(), d.eng);
      note(bp, "binary");
      Step bs{dnnl::binary(bp), {{DNNL_ARG_SRC_1, g4}}, {}};
      add_scratchpad(bs, bp, net);
      add_routed(bs, DNNL_ARG_SRC_0, cur, cur_slot, net);
      add_routed(bs, DNNL_ARG_DST, cur, cur_slot, net);
      net.steps.push_back(std::move(bs));
    }
    if (is_blocked16(cur) && N <= kHostDenseMax) {  // features and logits in one host step
      const float* w = head_t_.data();
      const float* b = head_b_.data.data();
      const int64_t C = stages_.back().O, HW = H * W, K = cfg_.num_classes;
      Step st;
      st.host = [w, b, N, C, HW, K](void* x, void* y) {
        head_blocked16(static_cast<float*>(y), static_cast<const float*>(x), N, C, HW, w, b, K);
      };
      add_routed(st, DNNL_ARG_SRC, cur, cur_slot, net);
      add_routed(st, DNNL_ARG_DST, memory::desc({N, K}, dt::f32, tag::nc), kOutput, net);
      net.steps.push_back(std::move(st));
      return net;
    }
    const memory pooled = mean(stages_.back().O);  // (N, C_last)
    dense(pooled, head_w_, head_b_, algorithm::undef, true);
    return net;
  }

  // The chunk's primitives are built and run with the same thread count (oneDNN's kernels block
  // their work for the count they were created with): one, or the thread policy's count
  // (kernels/cpu.hpp; not OpenMP's own, which a thread other than the one that set the policy,
  // such as the server's batcher, does not inherit).
  int chunk_threads(int64_t n, int64_t H, int64_t W) const {
    const double per_image = 2.0 * 9 * H * W * flops_per_pixel_;
    return double(n) * per_image < kSerialFlops ? 1 : num_threads();
  }

  void run(int64_t n, int64_t H, int64_t W, float* x, float* y) {
    const int threads = chunk_threads(n, H, W);
    ScopedThreads scope(threads);
    auto key = std::make_tuple(n, H, W, threads);
    auto it = nets_.find(key);
    if (it == nets_.end()) it = nets_.emplace(key, build(n, H, W)).first;
    Net& net = it->second;
    if (scratch_.size() * sizeof(float) < net.scratch_bytes) scratch_.assign(net.scratch_bytes / sizeof(float) + 16, 0.f);
    if (ping_.size() * sizeof(float) < net.ping_bytes) {
      ping_.assign(net.ping_bytes / sizeof(float) + 16, 0.f);
      pong_.assign(net.ping_bytes / sizeof(float) + 16, 0.f);
    }
    Dnnl& d = dnnl_state();
    auto where = [&](Slot slot) {
      return slot == kInput ? static_cast<void*>(x)
             : slot == kPing ? static_cast<void*>(ping_.data())
             : slot == kPong ? static_cast<void*>(pong_.data())
             : slot == kScratch ? static_cast<void*>(scratch_.data())
                             : static_cast<void*>(y);
    };
    for (Step& st : net.steps) {
      if (st.host) {  // oneDNN's CPU stream has finished the steps before (in-order, blocking)
        st.host(where(st.routed[0].second), st.routed.size() > 1 ? where(st.routed[1].second) : nullptr);
        continue;
      }
      for (auto& [m, slot] : st.routed) m.set_data_handle(where(slot));
      st.prim.execute(d.stream, st.args);
    }
    d.stream.wait();
  }

  CnnSeConfig cfg_;
  dt act_;  // the convolutions' and activations' type: f32, or bf16 (F32 accumulation, F32 bias)
  std::vector<StageWeights> stages_;
  int int8_count_ = 0;  // convolutions run in int8
  bool observe_ = false;
  // PlanLayout::Blocked: a Winograd convolution's output stays in its nChw16c (no reorders to
  // NHWC and back; SE mean, pooling and gates read it as it is). Off for observing plans.
  bool blocked_ = false;
  std::map<std::string, float> observed_;  // observe_: each convolution's largest output so far
  std::set<std::string> reference_;  // the kinds of primitive built so far that run a reference loop
  Weight head_w_, head_b_;
  std::vector<float> head_t_;  // head_w_ transposed, for the host loop
  double flops_per_pixel_ = 0;  // multiply-adds per input pixel / 9, summed over the convs
  std::map<std::tuple<int64_t, int64_t, int64_t, int>, Net> nets_;  // (chunk, H, W, threads)
  std::vector<float> ping_, pong_, scratch_;
  mutable std::mutex mu_;
};

}  // namespace

ImageEngine image_engine() {
  int e = g_engine.load();
  if (e < 0) {
    e = int(engine_from_env());
    g_engine.store(e);
  }
  return ImageEngine(e);
}

void set_image_engine(ImageEngine engine) { g_engine.store(int(engine)); }

PlanLayout plan_layout() {
  int l = g_layout.load();
  if (l < 0) {
    l = int(layout_from_env());
    g_layout.store(l);
  }
  return PlanLayout(l);
}

void set_plan_layout(PlanLayout layout) { g_layout.store(int(layout)); }

bool bf16_plan_supported() {
  if (image_engine() != ImageEngine::OneDnn || active_isa() == Isa::Scalar) return false;
  dnnl_state();  // the ISA cap first
  const unsigned want = unsigned(dnnl::cpu_isa::avx512_core_bf16);
  return (unsigned(dnnl::get_effective_cpu_isa()) & want) == want;
}

std::unique_ptr<ImagePlan> compile_image_plan(const ImageClassifier& model, DType precision,
                                              const std::vector<std::string>& int8_layers,
                                              const std::map<std::string, float>& activation_ranges) {
  FOCUS_CHECK(precision == DType::F32 || precision == DType::BF16 || precision == DType::I8,
              DTypeError, "compile_image_plan: precision {} (F32, BF16 or I8)", dtype_name(precision));
  if (precision == DType::BF16)
    FOCUS_CHECK(bf16_plan_supported(), ValueError,
                "bf16 inference needs a CPU with AVX512-BF16 or AMX and the oneDNN engine; here "
                "the engine is {} and oneDNN's ISA is {} (FOCUS_FORCE_ISA={})",
                image_engine() == ImageEngine::OneDnn ? "onednn" : "native",
                active_isa() == Isa::Scalar ? "off" : isa_label(), isa_name(active_isa()));
  if (image_engine() != ImageEngine::OneDnn) return nullptr;
  if (model.name() == "vit") return compile_vit_plan(model, precision, int8_layers);
  if (active_isa() == Isa::Scalar || model.name() != "cnn_se") return nullptr;
  const StateDict sd = model.state_dict();
  const auto w = sd.find("stages.0.conv1.weight");
  if (w == sd.end() || w->second.dtype() != DType::F32) return nullptr;  // e.g. after to(F64)
  PlanOptions opt;
  opt.act = precision == DType::BF16 ? dt::bf16 : dt::f32;
  if (precision == DType::I8) opt.int8.insert(int8_layers.begin(), int8_layers.end());
  opt.ranges = activation_ranges;
  opt.layout = plan_layout();
  return std::make_unique<CnnSePlan>(CnnSeConfig::from_json(model.config()), sd, opt);
}

std::map<std::string, float> measure_activation_ranges(const ImageClassifier& model, const Tensor& x) {
  if (model.name() != "cnn_se" || !compile_image_plan(model)) return {};  // no plan here
  PlanOptions opt;
  opt.observe = true;
  CnnSePlan plan(CnnSeConfig::from_json(model.config()), model.state_dict(), opt);
  plan.forward(x);
  return plan.observed();
}

}  // namespace focus
