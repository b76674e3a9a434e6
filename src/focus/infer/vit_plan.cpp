// The vit compiled for inference (see vit_plan.hpp).
#include "focus/infer/vit_plan.hpp"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <set>

#include <nlohmann/json.hpp>
#include <omp.h>

#include "focus/infer/image_predictor.hpp"
#include "focus/kernels/attention.hpp"
#include "focus/kernels/conv.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/kernels/gemm.hpp"
#include "focus/kernels/norm.hpp"
#include "focus/kernels/qconv.hpp"
#include "focus/kernels/qfused.hpp"
#include "focus/kernels/unary.hpp"
#include "focus/models/vit.hpp"
#include "focus/nn/norm.hpp"

namespace focus {

namespace {

constexpr float kNormEps = 1e-5f;  // LayerNorm's and BatchNorm2d's default, which vit uses
// int8: images per chunk run through the whole network at once: its activations (50 tokens x
// (64 + 192 + 64) values x 8 images, ~0.5 MB at dim 64) stay in L2 instead of streaming
// through memory layer by layer.
constexpr int64_t kChunk = 8;  // (4 to 16 measured within 4% on the Zen 5)

template <class T>
T* grow(std::vector<T>& v, int64_t n) {
  if (v.size() < size_t(n)) v.resize(size_t(n));
  return v.data();
}

std::vector<float> values(const Tensor& t) { return t.contiguous().to_vector<float>(); }

// A convolution with its batch norm and ReLU (stem) or alone (patch embedding).
struct Conv {
  int64_t C = 0, O = 0, KS = 0, stride = 1, pad = 0;
  bool relu = false;
  std::vector<float> w, b;  // F32: (O, C, KS, KS) with the batch norm folded in, (O)
  QWeight q;                // int8: (O, KS*KS*C) packed
  std::vector<float> scale; // int8: the batch norm's per-channel factor (empty: 1)
  bool int8 = false;

  ConvGeom geom(int64_t N, int64_t H) const { return {N, C, H, H, O, KS, KS, stride, pad}; }
  // y (N, O, OH, OH) <- x (N, C, H, H).
  void run(float* y, const float* x, int64_t N, int64_t H) const {
    const ConvGeom g = geom(N, H);
    if (int8) {
      conv2d_forward_int8(y, x, q, b.data(), g, relu ? QEpilogue::Relu : QEpilogue::None,
                          scale.empty() ? nullptr : scale.data());
      return;
    }
    conv2d_forward<float>(y, x, w.data(), b.data(), g);
    if (relu) unary_forward<float>(UnaryOp::Relu, y, y, N * O * g.OH() * g.OW(), 0.0);
  }
};

// A Linear in F32 or int8.
struct Lin {
  int64_t O = 0, I = 0;
  std::vector<float> w, b;  // (O, I), (O)
  QWeight q;                // int8 only
};

class VitPlan final : public ImagePlan {
 public:
  VitPlan(const VitConfig& c, const StateDict& sd, bool int8) : int8_(int8) {
    S_ = c.image_size, Cin_ = c.in_channels, D_ = c.dim, H_ = c.heads, K_ = c.num_classes;
    Dh_ = c.dim / c.heads;
    F_ = std::lround(c.mlp_ratio * double(D_));
    side_ = c.image_size / c.patch, P_ = side_ * side_, T_ = P_ + 1;
    auto get = [&](const std::string& name) -> const Tensor& {
      const auto it = sd.find(name);
      FOCUS_CHECK(it != sd.end(), ValueError, "vit plan: the model has no tensor {}", name);
      return it->second;
    };
    int64_t in = Cin_;
    for (int64_t k = c.patch, i = 0; c.stem == "conv" && k > 1; k /= 2, ++i) {  // as Vit's
      const std::string p = "stem." + std::to_string(i);
      const Tensor& w = get(p + ".conv.weight");  // (O, C, 3, 3), no bias
      Conv cv;
      cv.C = in, cv.O = w.size(0), cv.KS = 3, cv.stride = 2, cv.pad = 1, cv.relu = true;
      const std::vector<float> wv = values(w), mean = values(get(p + ".bn.running_mean")),
                               var = values(get(p + ".bn.running_var")),
                               gamma = values(get(p + ".bn.weight")), beta = values(get(p + ".bn.bias"));
      BatchNormFold f = fold_batch_norm(gamma, beta, mean, var, kNormEps);  // as Conv2d::forward_bn
      cv.b = std::move(f.shift);
      finish_conv(cv, wv, f.scale);
      stem_.push_back(std::move(cv));
      in = stem_.back().O;
    }
    {
      const Tensor& w = get("patch_embed.weight");  // (D, C, k, k)
      Conv cv;
      cv.C = in, cv.O = D_, cv.KS = w.size(2), cv.stride = cv.KS, cv.pad = 0;
      cv.b = values(get("patch_embed.bias"));
      finish_conv(cv, values(w), {});
      embed_ = std::move(cv);
    }
    cls_ = values(get("cls_token"));
    pos_ = values(get("pos_embed.weight"));
    FOCUS_CHECK(int64_t(pos_.size()) == T_ * D_ && int64_t(cls_.size()) == D_, ValueError,
                "vit plan: positions / class token of the wrong size");
    for (int64_t i = 0; i < c.depth; ++i) {
      const std::string p = "blocks." + std::to_string(i) + ".";
      const std::string a = p + "self_attn.";
      Block b;
      b.ln1_w = values(get(p + "norm1.weight")), b.ln1_b = values(get(p + "norm1.bias"));
      b.ln2_w = values(get(p + "norm2.weight")), b.ln2_b = values(get(p + "norm2.bias"));
      b.qkv = lin({&get(a + "q_proj.weight"), &get(a + "k_proj.weight"), &get(a + "v_proj.weight")},
                  {&get(a + "q_proj.bias"), &get(a + "k_proj.bias"), &get(a + "v_proj.bias")});
      b.out = lin({&get(a + "out_proj.weight")}, {&get(a + "out_proj.bias")});
      b.l1 = lin({&get(p + "linear1.weight")}, {&get(p + "linear1.bias")});
      b.l2 = lin({&get(p + "linear2.weight")}, {&get(p + "linear2.bias")});
      b.heads = c.heads_in(i);
      b.kv_heads = c.kv_heads == 0 ? b.heads : b.heads * c.kv_heads / c.heads;  // as Vit's
      FOCUS_CHECK(b.qkv.O == (b.heads + 2 * b.kv_heads) * Dh_ && b.qkv.I == D_ && b.out.O == D_ &&
                      b.out.I == b.heads * Dh_ && b.l1.O == F_ &&
                      b.l1.I == D_ && b.l2.O == D_ && b.l2.I == F_,
                  ValueError, "vit plan: block {} has unexpected shapes", i);
      blocks_.push_back(std::move(b));
    }
    norm_w_ = values(get("norm.weight")), norm_b_ = values(get("norm.bias"));
    head_ = lin({&get("head.weight")}, {&get("head.bias")});
  }

  Tensor forward(const Tensor& x) override {
    FOCUS_CHECK(x.dtype() == DType::F32, DTypeError, "vit plan: input is {}, need F32",
                dtype_name(x.dtype()));
    FOCUS_CHECK(x.dim() == 4 && x.size(0) >= 1 && x.size(1) == Cin_ && x.size(2) == S_ &&
                    x.size(3) == S_,
                ShapeError, "vit plan: input {} must be (N, {}, {}, {})", to_string(x.shape()),
                Cin_, S_, S_);
    const Tensor xc = x.contiguous();
    const int64_t N = x.size(0), CSS = Cin_ * S_ * S_;
    std::lock_guard<std::mutex> lock(mu_);
    ScopedThreads threads(inference_threads(N));
    largest_ = std::max(largest_, N);
    threads_ = num_threads();
    Tensor z = Tensor::empty({N, K_});  // (N, K)
    const float* px = xc.data<float>();
    float* pz = z.data<float>();
    if (!int8_) {  // F32: whole-batch products (OpenBLAS threads them)
      if (work_.empty()) work_.resize(1);
      stem(px, N, work_[0]);
      encode(N, work_[0], pz);
      return z;
    }
    // int8: chunks of kChunk images through the whole network, over the threads.
    const int64_t chunks = (N + kChunk - 1) / kChunk;
    const int nt = int(std::min<int64_t>(threads_, chunks));
    if (int64_t(work_.size()) < nt) work_.resize(size_t(nt));
    auto run = [&](int64_t c, Work& w) {
      const int64_t n0 = c * kChunk, n = std::min(kChunk, N - n0);
      stem(px + n0 * CSS, n, w);
      encode(n, w, pz + n0 * K_);
    };
    if (nt <= 1) {
      for (int64_t c = 0; c < chunks; ++c) run(c, work_[0]);
    } else {
#pragma omp parallel for num_threads(nt) schedule(dynamic)
      for (int64_t c = 0; c < chunks; ++c) run(c, work_[size_t(omp_get_thread_num())]);
    }
    return z;
  }

  std::string describe() const override {
    if (!int8_) return "vit plan f32";
    return "vit plan int8 (fused, " + qpath_name(qgemm_path()) + ")";
  }

  std::vector<std::pair<int64_t, int>> prepared() const override {
    const std::lock_guard<std::mutex> lock(mu_);
    if (largest_ == 0) return {};
    return {{largest_, threads_}};
  }

 private:
  // Activations of one run (a whole batch in F32, a chunk in int8), grown to the largest seen.
  struct Work {
    std::vector<float> s0, s1, h, t, mean, rstd, qkv, o, f, c;
  };
  struct Block {
    std::vector<float> ln1_w, ln1_b, ln2_w, ln2_b;
    int64_t heads = 0, kv_heads = 0;  // after pruning, the block's own
    Lin qkv, out, l1, l2;  // qkv: q, k, v stacked ((heads + 2 kv_heads) Dh, D)
  };

  void finish_conv(Conv& cv, const std::vector<float>& w, const std::vector<float>& a) {
    cv.int8 = int8_;
    const int64_t O = cv.O, C = cv.C, KK = cv.KS * cv.KS;
    if (cv.int8) {
      std::vector<float> hwc(size_t(O * KK * C));  // (O, KS, KS, C)
      conv_weight_hwc(hwc.data(), w.data(), O, C, cv.KS, cv.KS);
      cv.q = pack_qweight(hwc.data(), O, KK * C);
      cv.scale = a;
      return;
    }
    cv.w = w;
    if (!a.empty())
      for (int64_t o = 0; o < O; ++o)
        for (int64_t i = 0; i < C * KK; ++i) cv.w[size_t(o * C * KK + i)] *= a[size_t(o)];
  }

  // The tensors' rows stacked: (sum O_i, I) and their biases.
  Lin lin(std::initializer_list<const Tensor*> ws, std::initializer_list<const Tensor*> bs) const {
    Lin l;
    for (const Tensor* t : ws) {
      const std::vector<float> v = values(*t);
      l.w.insert(l.w.end(), v.begin(), v.end());
      l.O += t->size(0), l.I = t->size(1);
    }
    for (const Tensor* t : bs) {
      const std::vector<float> v = values(*t);
      l.b.insert(l.b.end(), v.begin(), v.end());
    }
    if (int8_) {
      l.q = pack_qweight(l.w.data(), l.O, l.I);
      l.w.clear();
    }
    return l;
  }

  // y (R, O) =, or += when accumulate, ep(x (R, I) W^T + b), x through the LayerNorm when given.
  void linear(Work& ws, float* y, const float* x, int64_t R, const Lin& l,
              const std::vector<float>* ln_w, const std::vector<float>* ln_b, bool gelu,
              bool accumulate) const {
    if (int8_) {
      RowNorm norm;
      if (ln_w) norm = {ln_w->data(), ln_b->data(), kNormEps};
      qlinear_fused(y, l.O, x, l.I, R, l.q, l.b.data(), gelu ? QEpilogue::Gelu : QEpilogue::None,
                    norm, accumulate);
      return;
    }
    const float* src = x;
    if (ln_w) {
      float* t = grow(ws.t, R * l.I);
      layer_norm_forward<float>(t, grow(ws.mean, R), grow(ws.rstd, R), x, ln_w->data(), ln_b->data(),
                                R, l.I, double(kNormEps));
      src = t;
    }
    linear_rows(src, R, l.I, l.w.data(), l.b.data(), l.O, y, accumulate);
    if (gelu) unary_forward<float>(UnaryOp::Gelu, y, y, R * l.O, 0.0);
  }

  // h (R, D) += the block's MLP of LayerNorm(h).
  void mlp(Work& ws, float* h, int64_t R, const Block& b) const {
    if (int8_) {
      qmlp_residual(h, D_, R, RowNorm{b.ln2_w.data(), b.ln2_b.data(), kNormEps}, b.l1.q,
                    b.l1.b.data(), b.l2.q, b.l2.b.data());
      return;
    }
    float* f = grow(ws.f, R * F_);
    linear(ws, f, h, R, b.l1, &b.ln2_w, &b.ln2_b, true, false);
    linear(ws, h, f, R, b.l2, nullptr, nullptr, false, true);
  }

  // x (N, C, S, S) -> the tokens (N, T, D) in ws.h: class token and patches, plus the positions.
  void stem(const float* x, int64_t N, Work& ws) const {
    const float* src = x;
    int64_t side = S_;
    int which = 0;
    for (const Conv& cv : stem_) {
      const ConvGeom g = cv.geom(N, side);
      float* y = grow(which ? ws.s1 : ws.s0, N * cv.O * g.OH() * g.OW());
      cv.run(y, src, N, side);
      src = y, side = g.OH(), which ^= 1;
    }
    float* e = grow(which ? ws.s1 : ws.s0, N * D_ * P_);  // (N, D, P)
    embed_.run(e, src, N, side);
    float* h = grow(ws.h, N * T_ * D_);
    for (int64_t n = 0; n < N; ++n) {
      float* hn = h + n * T_ * D_;
      for (int64_t d = 0; d < D_; ++d) hn[d] = cls_[size_t(d)] + pos_[size_t(d)];
      const float* en = e + n * D_ * P_;
      for (int64_t p = 0; p < P_; ++p) {
        float* row = hn + (1 + p) * D_;
        const float* q = pos_.data() + (1 + p) * D_;
        for (int64_t d = 0; d < D_; ++d) row[d] = en[d * P_ + p] + q[d];
      }
    }
  }

  // The blocks, the final norm and the head on the tokens in ws.h: logits z (N, K).
  void encode(int64_t N, Work& ws, float* z) const {
    const int64_t D = D_, Dh = Dh_, T = T_, R = N * T;
    float* h = ws.h.data();
    float* qkv = grow(ws.qkv, R * 3 * D);  // at most: (N, T, (H + 2 Hkv) Dh) per block
    float* o = grow(ws.o, R * D);
    // Block b's attention: H query heads and Hkv K/V heads of Dh (fewer after pruning), Lq queries.
    auto attend = [&](const Block& b, int64_t Lq) {
      const int64_t W = (b.heads + 2 * b.kv_heads) * Dh, Hd = b.heads * Dh;  // qkv row, o row
      AttnProblem<float> ap;
      ap.B = N, ap.H = b.heads, ap.Hkv = b.kv_heads, ap.Lq = Lq, ap.Lk = T, ap.D = Dh, ap.Dv = Dh;
      ap.scale = 1.0 / std::sqrt(double(Dh));
      ap.q = qkv, ap.k = qkv + Hd, ap.v = ap.k + b.kv_heads * Dh;
      ap.q_stride = ap.k_stride = ap.v_stride = AttnLayout{T * W, Dh, W};
      attention_forward<float>(ap, o, AttnLayout{Lq * Hd, Dh, Hd}, nullptr);  // (N, Lq, H, Dh)
    };
    const size_t depth = blocks_.size();
    for (size_t i = 0; i + 1 < depth; ++i) {
      const Block& b = blocks_[i];
      linear(ws, qkv, h, R, b.qkv, &b.ln1_w, &b.ln1_b, false, false);  // (N, T, (H + 2 Hkv) Dh)
      attend(b, T);
      linear(ws, h, o, R, b.out, nullptr, nullptr, false, true);
      mlp(ws, h, R, b);
    }
    // The last block: only the class token's row goes on.
    const Block& b = blocks_.back();
    linear(ws, qkv, h, R, b.qkv, &b.ln1_w, &b.ln1_b, false, false);
    attend(b, 1);  // (N, 1, H, Dh)
    float* c = grow(ws.c, N * D);  // (N, D): the class tokens
    for (int64_t n = 0; n < N; ++n) std::copy(h + n * T * D, h + n * T * D + D, c + n * D);
    linear(ws, c, o, N, b.out, nullptr, nullptr, false, true);
    mlp(ws, c, N, b);
    linear(ws, z, c, N, head_, &norm_w_, &norm_b_, false, false);
  }

  bool int8_ = false;
  int64_t S_ = 0, Cin_ = 0, D_ = 0, H_ = 0, Dh_ = 0, K_ = 0, F_ = 0, side_ = 0, P_ = 0, T_ = 0;
  std::vector<Conv> stem_;
  Conv embed_;
  std::vector<float> cls_, pos_, norm_w_, norm_b_;
  std::vector<Block> blocks_;
  Lin head_;
  // Workspaces (one per thread in int8), guarded by mu_.
  std::vector<Work> work_;
  int64_t largest_ = 0;
  int threads_ = 0;
  mutable std::mutex mu_;
};

// The Conv2d and Linear names the plan runs (all must be int8 for an int8 plan).
std::vector<std::string> plan_layers(const VitConfig& c) {
  std::vector<std::string> names;
  for (int64_t p = c.patch, i = 0; c.stem == "conv" && p > 1; p /= 2, ++i)
    names.push_back("stem." + std::to_string(i) + ".conv");
  names.push_back("patch_embed");
  for (int64_t i = 0; i < c.depth; ++i) {
    const std::string p = "blocks." + std::to_string(i) + ".";
    for (const char* l : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                          "self_attn.out_proj", "linear1", "linear2"})
      names.push_back(p + l);
  }
  names.push_back("head");
  return names;
}

}  // namespace

std::unique_ptr<ImagePlan> compile_vit_plan(const ImageClassifier& model, DType precision,
                                            const std::vector<std::string>& int8_layers) {
  if (model.name() != "vit" || (precision != DType::F32 && precision != DType::I8)) return nullptr;
  const VitConfig c = VitConfig::from_json(model.config());
  if (c.pool != "cls" || (!c.exits.empty() && c.exit_threshold <= 1.0))
    return nullptr;
  const StateDict sd = model.state_dict();
  for (const auto& [name, t] : sd)
    if (t.dtype() != DType::F32) return nullptr;  // e.g. after to(F64)
  if (precision == DType::I8) {
    const std::set<std::string> have(int8_layers.begin(), int8_layers.end());
    for (const std::string& l : plan_layers(c))
      if (!have.count(l)) return nullptr;  // a layer kept in F32: the model's layers run
  }
  return std::make_unique<VitPlan>(c, sd, precision == DType::I8);
}

}  // namespace focus
