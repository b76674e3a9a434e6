// Image explanations: attention maps, rollout, gradient-weighted rollout, Grad-CAM and the
// deletion / insertion faithfulness curves (see image_explain.hpp). The maps are tiny (T ~ 50),
// so the algebra here runs on plain double matrices; the models run through focus as usual.
#include "focus/explain/image_explain.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <nlohmann/json.hpp>

#include "focus/autograd/node.hpp"
#include "focus/autograd/retain.hpp"
#include "focus/models/image_classifier.hpp"
#include "focus/ops/attention.hpp"
#include "focus/ops/view.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {

namespace {

using Mat = std::vector<double>;  // row-major square (T, T) or vector

struct KernelScope {  // runs a block with the given attention kernel, restores the switch after
  explicit KernelScope(AttentionKernel k) : prev(attention_kernel()) { set_attention_kernel(k); }
  ~KernelScope() { set_attention_kernel(prev); }
  AttentionKernel prev;
};

// The token layout the models record: blocks (1, H, T, T), then optionally a pooling map
// (1, H, 1, T); without a pooling map, token 0 is the class token.
struct Layout {
  int64_t blocks = 0, T = 0, offset = 0, grid = 0;
  bool pooled = false;
};

Layout layout_of(const std::vector<Tensor>& maps) {
  FOCUS_CHECK(!maps.empty(), ValueError, "explain: the model recorded no attention maps");
  Layout l;
  l.pooled = maps.back().size(2) == 1;
  l.blocks = static_cast<int64_t>(maps.size()) - (l.pooled ? 1 : 0);
  l.T = maps.back().size(3);
  l.offset = l.pooled ? 0 : 1;
  const int64_t P = l.T - l.offset;
  l.grid = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(P))));
  FOCUS_CHECK(l.grid * l.grid == P, ValueError,
              "explain: {} patch tokens do not form a square grid", P);
  return l;
}

// (1, H, Lq, Lk) -> head h's (Lq, Lk) map, or the head mean for h < 0.
Mat head_map(const Tensor& map, int64_t h) {
  const int64_t H = map.size(1), n = map.size(2) * map.size(3);
  const std::vector<double> v = map.to_vector<double>();
  Mat m(n, 0.0);
  for (int64_t k = 0; k < H; ++k) {
    if (h >= 0 && k != h) continue;
    for (int64_t i = 0; i < n; ++i) m[i] += v[k * n + i];
  }
  if (h < 0)
    for (double& x : m) x /= static_cast<double>(H);
  return m;
}

Mat matmul(const Mat& a, const Mat& b, int64_t rows, int64_t inner, int64_t cols) {
  Mat c(rows * cols, 0.0);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t k = 0; k < inner; ++k) {
      const double aik = a[i * inner + k];
      if (aik == 0.0) continue;
      for (int64_t j = 0; j < cols; ++j) c[i * cols + j] += aik * b[k * cols + j];
    }
  return c;
}

Mat identity(int64_t T) {
  Mat m(T * T, 0.0);
  for (int64_t i = 0; i < T; ++i) m[i * T + i] = 1.0;
  return m;
}

// (gh, gw) F32 grid from a token row, the patches starting at `offset`; scaled to max 1.
Tensor grid_from_row(const double* row, const Layout& l) {
  const int64_t P = l.grid * l.grid;
  std::vector<float> g(P);
  double mx = 0.0;
  for (int64_t p = 0; p < P; ++p) mx = std::max(mx, std::max(0.0, row[l.offset + p]));
  for (int64_t p = 0; p < P; ++p)
    g[p] = mx > 0.0 ? static_cast<float>(std::max(0.0, row[l.offset + p]) / mx) : 0.f;
  return Tensor::from_vector(g, {l.grid, l.grid});
}

Tensor normalized(const Tensor& grid) {
  std::vector<float> v = grid.to_vector<float>();
  float mx = 0.f;
  for (float& x : v) mx = std::max(mx, x = std::max(0.f, x));
  if (mx > 0.f)
    for (float& x : v) x /= mx;
  return Tensor::from_vector(v, grid.shape());
}

std::vector<double> softmax_row(const Tensor& logits) {  // (1, classes)
  std::vector<double> p = logits.to_vector<double>();
  const double mx = *std::max_element(p.begin(), p.end());
  double s = 0.0;
  for (double& x : p) s += (x = std::exp(x - mx));
  for (double& x : p) x /= s;
  return p;
}

// The rows (H, Lq, Lk) of every map of sample 0, detached.
std::vector<Tensor> raw_maps(const std::vector<Tensor>& maps) {
  std::vector<Tensor> out;
  for (const Tensor& m : maps) out.push_back(select(m.detach(), 0, 0).contiguous());
  return out;
}

int64_t checked_target(int64_t target, int64_t predicted, int64_t classes) {
  if (target < 0) return predicted;
  FOCUS_CHECK(target < classes, ValueError, "explain: target class {} is outside [0, {})",
              target, classes);
  return target;
}

// Runs the model with gradients and back-propagates the target logit; trace keeps the maps and
// features, with retained gradients. The model's parameter gradients are cleared afterwards.
Tensor forward_backward(ImageClassifier& model, const Tensor& x, int64_t target,
                        ForwardTrace& trace, bool maps, int64_t* predicted) {
  Tensor xin = x.detach().clone();
  xin.requires_grad_(true);  // a graph even when the parameters are frozen
  Tensor logits = model.forward_traced(xin, trace);  // (1, classes)
  if (maps)
    for (const Tensor& m : trace.attention) retain_grad(m);
  if (trace.features.defined() && !maps) retain_grad(trace.features);
  const std::vector<double> p = logits.to_vector<double>();
  *predicted = std::max_element(p.begin(), p.end()) - p.begin();
  target = checked_target(target, *predicted, logits.size(1));
  Tensor seed = Tensor::zeros(logits.shape(), DType::F64);  // one-hot, in the model's dtype
  seed.data<double>()[target] = 1.0;
  logits.backward(seed.to(logits.dtype()));
  model.zero_grad();
  return logits;
}

}  // namespace

std::string image_method_name(ImageMethod m) {
  switch (m) {
    case ImageMethod::Attention: return "attention";
    case ImageMethod::Rollout: return "rollout";
    case ImageMethod::GradRollout: return "grad-rollout";
    case ImageMethod::GradCam: return "grad-cam";
  }
  return "?";
}

ImageMethod parse_image_method(const std::string& name) {
  for (ImageMethod m : {ImageMethod::Attention, ImageMethod::Rollout, ImageMethod::GradRollout,
                        ImageMethod::GradCam})
    if (image_method_name(m) == name) return m;
  throw ValueError(fmt::format(
      "unknown explanation method '{}' (choose attention, rollout, grad-rollout, grad-cam)",
      name));
}

std::vector<ImageMethod> image_methods_for(ImageClassifier& model, const Tensor& x) {
  NoGradGuard no_grad;
  ForwardTrace trace;
  model.forward_traced(x, trace);
  std::vector<ImageMethod> out;
  if (!trace.attention.empty())
    out = {ImageMethod::Attention, ImageMethod::Rollout, ImageMethod::GradRollout};
  if (trace.features.defined()) out.push_back(ImageMethod::GradCam);
  return out;
}

Tensor attention_rollout(const std::vector<Tensor>& maps, double residual) {
  FOCUS_CHECK(!maps.empty(), ValueError, "attention_rollout: no maps");
  const int64_t T = maps[0].size(-1);
  Mat R = identity(T);
  for (const Tensor& a : maps) {
    FOCUS_CHECK(a.dim() == 3 && a.size(1) == T && a.size(2) == T, ShapeError,
                "attention_rollout: map {} must be (H, {}, {})", to_string(a.shape()), T, T);
    Mat m = head_map(unsqueeze(a, 0), -1);
    for (int64_t i = 0; i < T; ++i) {
      double s = 0.0;
      for (int64_t j = 0; j < T; ++j)
        s += (m[i * T + j] = (1.0 - residual) * m[i * T + j] + (i == j ? residual : 0.0));
      if (s > 0.0)
        for (int64_t j = 0; j < T; ++j) m[i * T + j] /= s;
    }
    R = matmul(m, R, T, T, T);  // later layers on the left
  }
  return Tensor::from_vector(R, {T, T}).to(DType::F32);
}

Tensor gradient_rollout(const std::vector<Tensor>& maps, const std::vector<Tensor>& grads) {
  FOCUS_CHECK(!maps.empty() && maps.size() == grads.size(), ValueError,
              "gradient_rollout: {} maps and {} gradients", maps.size(), grads.size());
  const int64_t T = maps[0].size(-1);
  Mat R = identity(T);
  for (size_t l = 0; l < maps.size(); ++l) {
    FOCUS_CHECK(maps[l].dim() == 3 && maps[l].size(1) == T && maps[l].size(2) == T &&
                    grads[l].shape() == maps[l].shape(),
                ShapeError, "gradient_rollout: map {} and gradient {} must be (H, {}, {})",
                to_string(maps[l].shape()), to_string(grads[l].shape()), T, T);
    const int64_t H = maps[l].size(0);
    const std::vector<double> a = maps[l].to_vector<double>(), g = grads[l].to_vector<double>();
    Mat abar(T * T, 0.0);
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T * T; ++i)
        abar[i] += std::max(0.0, a[h * T * T + i] * g[h * T * T + i]) / static_cast<double>(H);
    const Mat ar = matmul(abar, R, T, T, T);
    for (int64_t i = 0; i < T * T; ++i) R[i] += ar[i];
  }
  return Tensor::from_vector(R, {T, T}).to(DType::F32);
}

Tensor grad_cam(const Tensor& features, const Tensor& dfeatures) {
  FOCUS_CHECK(features.dim() == 3 && dfeatures.shape() == features.shape(), ShapeError,
              "grad_cam: features {} and gradient {} must be the same (C, h, w)",
              to_string(features.shape()), to_string(dfeatures.shape()));
  const int64_t C = features.size(0), n = features.size(1) * features.size(2);
  const std::vector<double> f = features.to_vector<double>(), g = dfeatures.to_vector<double>();
  std::vector<double> cam(n, 0.0);
  for (int64_t c = 0; c < C; ++c) {
    double alpha = 0.0;
    for (int64_t i = 0; i < n; ++i) alpha += g[c * n + i];
    alpha /= static_cast<double>(n);
    for (int64_t i = 0; i < n; ++i) cam[i] += alpha * f[c * n + i];
  }
  for (double& v : cam) v = std::max(0.0, v);
  return Tensor::from_vector(cam, {features.size(1), features.size(2)}).to(DType::F32);
}

ImageExplanation explain_image(ImageClassifier& model, const Tensor& x,
                               const ImageExplainOptions& opt) {
  FOCUS_CHECK(x.dim() == 4 && x.size(0) == 1, ShapeError,
              "explain: input {} must be one image (1, C, S, S)", to_string(x.shape()));
  ImageExplanation e;
  e.method = opt.method;
  ForwardTrace trace;
  Tensor logits;
  const bool grad_method =
      opt.method == ImageMethod::GradRollout || opt.method == ImageMethod::GradCam;
  if (grad_method) {
    std::optional<KernelScope> reference;  // attached maps need the reference kernel
    if (opt.method == ImageMethod::GradRollout) reference.emplace(AttentionKernel::Reference);
    logits = forward_backward(model, x, opt.target, trace,
                              opt.method == ImageMethod::GradRollout, &e.predicted);
  } else {
    NoGradGuard no_grad;
    logits = model.forward_traced(x, trace);
    const std::vector<double> p = logits.to_vector<double>();
    e.predicted = std::max_element(p.begin(), p.end()) - p.begin();
  }
  e.probs = softmax_row(logits.detach());
  e.target = checked_target(opt.target, e.predicted, logits.size(1));
  for (const Tensor& g : trace.channel_gates) e.gates.push_back(select(g.detach(), 0, 0));
  e.maps = raw_maps(trace.attention);

  if (opt.method == ImageMethod::GradCam) {
    FOCUS_CHECK(trace.features.defined() && trace.features.grad().defined(), ValueError,
                "explain: grad-cam needs a convolutional feature map; this {} model has none "
                "(use attention, rollout or grad-rollout)",
                model.name());
    e.relevance = normalized(grad_cam(select(trace.features.detach(), 0, 0),
                                      select(trace.features.grad(), 0, 0)));
    return e;
  }
  FOCUS_CHECK(!trace.attention.empty(), ValueError,
              "explain: {} needs attention maps; this {} model has none (use grad-cam)",
              image_method_name(opt.method), model.name());
  const Layout l = layout_of(trace.attention);
  const int64_t T = l.T, n_maps = static_cast<int64_t>(e.maps.size());
  if (opt.method == ImageMethod::Attention) {
    const int64_t layer = opt.layer < 0 ? n_maps - 1 : opt.layer;
    FOCUS_CHECK(layer < n_maps, ValueError, "explain: layer {} is outside [0, {})", opt.layer,
                n_maps);
    const int64_t H = e.maps[layer].size(0);
    FOCUS_CHECK(opt.head < H, ValueError, "explain: head {} is outside [0, {})", opt.head, H);
    const Tensor& m = trace.attention[layer];
    const Mat a = head_map(m.detach(), opt.head);
    const int64_t Lq = m.size(2);
    if (Lq == 1 || !l.pooled) {  // the pooling query's or the class token's row
      e.relevance = grid_from_row(a.data(), l);
    } else {  // a block of a pooled model: the attention each patch receives, query mean
      std::vector<double> col(T, 0.0);
      for (int64_t i = 0; i < Lq; ++i)
        for (int64_t j = 0; j < T; ++j) col[j] += a[i * T + j] / static_cast<double>(Lq);
      e.relevance = grid_from_row(col.data(), l);
    }
    return e;
  }

  const int64_t upto = opt.layer < 0 ? l.blocks : opt.layer + 1;
  FOCUS_CHECK(upto <= l.blocks, ValueError, "explain: layer {} is outside [0, {})", opt.layer,
              l.blocks);
  std::vector<Tensor> blocks(e.maps.begin(), e.maps.begin() + upto);
  Tensor R;
  Mat readout;  // the pooling query's row mixing the tokens (pooled models)
  if (opt.method == ImageMethod::Rollout) {
    R = attention_rollout(blocks, opt.residual);
    if (l.pooled) readout = head_map(trace.attention.back().detach(), -1);
  } else {
    std::vector<Tensor> grads;
    for (int64_t i = 0; i < upto; ++i) {
      const Tensor g = trace.attention[i].grad();
      grads.push_back(g.defined() ? select(g, 0, 0).contiguous()
                                  : Tensor::zeros(blocks[i].shape()));
    }
    R = gradient_rollout(blocks, grads);
    if (l.pooled) {
      const Tensor& pm = trace.attention.back();
      const std::vector<double> a = pm.to_vector<double>();
      const std::vector<double> g = pm.grad().defined() ? pm.grad().to_vector<double>()
                                                        : std::vector<double>(a.size(), 0.0);
      const int64_t H = pm.size(1);
      readout.assign(T, 0.0);
      for (int64_t h = 0; h < H; ++h)
        for (int64_t j = 0; j < T; ++j)
          readout[j] += std::max(0.0, a[h * T + j] * g[h * T + j]) / static_cast<double>(H);
    }
  }
  const std::vector<double> r = R.to_vector<double>();
  if (l.pooled) {
    const Mat row = matmul(readout, r, 1, T, T);
    e.relevance = grid_from_row(row.data(), l);
  } else {
    e.relevance = grid_from_row(r.data(), l);  // the class token's row
  }
  return e;
}

namespace {

// The target's probability for each of the masks (K, gh, gw): cell kept from x where 1, set to
// baseline where 0.
std::vector<double> probs_for_masks(ImageClassifier& model, const Tensor& x,
                                    const std::vector<std::vector<uint8_t>>& keep, int64_t gh,
                                    int64_t gw, int64_t target, float baseline) {
  NoGradGuard no_grad;
  const int64_t C = x.size(1), S = x.size(2), W = x.size(3);
  const std::vector<float> src = x.to_vector<float>();
  std::vector<int64_t> cell(S * W);  // pixel -> cell
  for (int64_t y = 0; y < S; ++y)
    for (int64_t xx = 0; xx < W; ++xx) cell[y * W + xx] = (y * gh / S) * gw + xx * gw / W;
  std::vector<double> out;
  const int64_t K = static_cast<int64_t>(keep.size()), chunk = 64;
  for (int64_t k0 = 0; k0 < K; k0 += chunk) {
    const int64_t n = std::min(chunk, K - k0);
    Tensor batch = Tensor::empty({n, C, S, W});  // (n, C, S, S)
    float* b = batch.data<float>();
    for (int64_t k = 0; k < n; ++k)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < S * W; ++i)
          b[(k * C + c) * S * W + i] = keep[k0 + k][cell[i]] ? src[c * S * W + i] : baseline;
    const std::vector<double> logits = model.forward(batch).to_vector<double>();
    const int64_t classes = static_cast<int64_t>(logits.size()) / n;
    for (int64_t k = 0; k < n; ++k) {
      const double* l = logits.data() + k * classes;
      const double mx = *std::max_element(l, l + classes);
      double s = 0.0;
      for (int64_t j = 0; j < classes; ++j) s += std::exp(l[j] - mx);
      out.push_back(std::exp(l[target] - mx) / s);
    }
  }
  return out;
}

// Deletion then insertion probabilities for one order: masks with the first k units removed,
// then with only the first k revealed, k = 0..P.
std::pair<std::vector<double>, std::vector<double>> curves(const std::vector<int64_t>& order,
                                                           const KeepProbs& probs) {
  const int64_t P = static_cast<int64_t>(order.size());
  std::vector<std::vector<uint8_t>> keep;
  for (int64_t k = 0; k <= P; ++k) {
    std::vector<uint8_t> m(P, 1);
    for (int64_t i = 0; i < k; ++i) m[order[i]] = 0;
    keep.push_back(m);
  }
  for (int64_t k = 0; k <= P; ++k) {
    std::vector<uint8_t> m(P, 0);
    for (int64_t i = 0; i < k; ++i) m[order[i]] = 1;
    keep.push_back(m);
  }
  const std::vector<double> p = probs(keep);
  return {std::vector<double>(p.begin(), p.begin() + P + 1),
          std::vector<double>(p.begin() + P + 1, p.end())};
}

}  // namespace

FaithfulnessCurve make_faithfulness_curve(std::vector<double> prob) {
  FOCUS_CHECK(prob.size() >= 2, ValueError, "faithfulness: a curve needs at least 2 points");
  FaithfulnessCurve c;
  const size_t n = prob.size() - 1;
  for (size_t k = 0; k < n; ++k) c.area += 0.5 * (prob[k] + prob[k + 1]) / static_cast<double>(n);
  c.prob = std::move(prob);
  return c;
}

Faithfulness faithfulness(ImageClassifier& model, const Tensor& x, const Tensor& relevance,
                          int64_t target, float baseline, Rng& rng, int64_t repeats) {
  FOCUS_CHECK(x.dim() == 4 && x.size(0) == 1 && relevance.dim() == 2, ShapeError,
              "faithfulness: input {} must be (1, C, S, S) and relevance {} (gh, gw)",
              to_string(x.shape()), to_string(relevance.shape()));
  FOCUS_CHECK(repeats >= 1, ValueError, "faithfulness: repeats {} must be >= 1", repeats);
  const int64_t gh = relevance.size(0), gw = relevance.size(1);
  FOCUS_CHECK(gh <= x.size(2) && gw <= x.size(3), ShapeError,
              "faithfulness: grid {} is finer than the image {}", to_string(relevance.shape()),
              to_string(x.shape()));
  const std::vector<float> r = relevance.to_vector<float>();
  return faithfulness_by_scores(
      std::vector<double>(r.begin(), r.end()),
      [&](const std::vector<std::vector<uint8_t>>& keep) {
        return probs_for_masks(model, x, keep, gh, gw, target, baseline);
      },
      rng, repeats);
}

Faithfulness faithfulness_by_scores(const std::vector<double>& scores, const KeepProbs& probs,
                                    Rng& rng, int64_t repeats) {
  FOCUS_CHECK(!scores.empty() && repeats >= 1, ValueError,
              "faithfulness: {} units and {} random orders (need >= 1 of each)", scores.size(),
              repeats);
  const int64_t P = static_cast<int64_t>(scores.size());
  std::vector<int64_t> order(P);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return scores[a] > scores[b]; });
  Faithfulness f;
  auto [del, ins] = curves(order, probs);
  f.deletion = make_faithfulness_curve(del);
  f.insertion = make_faithfulness_curve(ins);
  std::vector<double> rdel(P + 1, 0.0), rins(P + 1, 0.0);
  for (int64_t rep = 0; rep < repeats; ++rep) {
    for (int64_t i = P - 1; i > 0; --i) std::swap(order[i], order[rng.randint(i + 1)]);
    auto [d, n] = curves(order, probs);
    for (int64_t k = 0; k <= P; ++k) {
      rdel[k] += d[k] / static_cast<double>(repeats);
      rins[k] += n[k] / static_cast<double>(repeats);
    }
  }
  f.deletion_random = make_faithfulness_curve(rdel);
  f.insertion_random = make_faithfulness_curve(rins);
  return f;
}

Faithfulness mean_faithfulness(ImageClassifier& model, const std::vector<Tensor>& images,
                               ImageMethod method, float baseline, Rng& rng, int64_t repeats) {
  FOCUS_CHECK(!images.empty(), ValueError, "mean_faithfulness: no images");
  const double n = static_cast<double>(images.size());
  std::vector<double> curves[4];
  for (const Tensor& x : images) {
    ImageExplainOptions opt;
    opt.method = method;
    const ImageExplanation e = explain_image(model, x, opt);
    const Faithfulness f = faithfulness(model, x, e.relevance, e.target, baseline, rng, repeats);
    const FaithfulnessCurve* parts[4] = {&f.deletion, &f.insertion, &f.deletion_random,
                                         &f.insertion_random};
    for (int k = 0; k < 4; ++k) {
      if (curves[k].empty()) curves[k].assign(parts[k]->prob.size(), 0.0);
      FOCUS_CHECK(curves[k].size() == parts[k]->prob.size(), ShapeError,
                  "mean_faithfulness: the images have different relevance grids");
      for (size_t i = 0; i < curves[k].size(); ++i) curves[k][i] += parts[k]->prob[i] / n;
    }
  }
  return {make_faithfulness_curve(curves[0]), make_faithfulness_curve(curves[1]),
          make_faithfulness_curve(curves[2]), make_faithfulness_curve(curves[3])};
}

nlohmann::json faithfulness_to_json(const Faithfulness& f) {
  return {{"deletion_area", f.deletion.area},
          {"insertion_area", f.insertion.area},
          {"deletion_area_random", f.deletion_random.area},
          {"insertion_area_random", f.insertion_random.area},
          {"deletion", f.deletion.prob},
          {"insertion", f.insertion.prob}};
}

nlohmann::json attention_maps_json(const std::vector<Tensor>& maps) {
  nlohmann::json out = nlohmann::json::array();  // [layer][head][query][key]
  for (const Tensor& m : maps) {
    const int64_t H = m.size(0), Lq = m.size(1), Lk = m.size(2);
    const std::vector<float> v = m.to_vector<float>();
    nlohmann::json layer = nlohmann::json::array();
    for (int64_t h = 0; h < H; ++h) {
      nlohmann::json head = nlohmann::json::array();
      for (int64_t i = 0; i < Lq; ++i) {
        const float* row = v.data() + (h * Lq + i) * Lk;
        head.push_back(std::vector<float>(row, row + Lk));
      }
      layer.push_back(std::move(head));
    }
    out.push_back(std::move(layer));
  }
  return out;
}

nlohmann::json explanation_to_json(const ImageExplanation& e) {
  nlohmann::json j;
  j["method"] = image_method_name(e.method);
  j["target"] = e.target;
  j["predicted"] = e.predicted;
  j["probs"] = e.probs;
  const int64_t gh = e.relevance.size(0), gw = e.relevance.size(1);
  const std::vector<float> rel = e.relevance.to_vector<float>();
  nlohmann::json grid = nlohmann::json::array();
  for (int64_t y = 0; y < gh; ++y)
    grid.push_back(std::vector<float>(rel.begin() + y * gw, rel.begin() + (y + 1) * gw));
  j["relevance"] = grid;
  j["attention"] = attention_maps_json(e.maps);
  nlohmann::json gates = nlohmann::json::array();
  for (const Tensor& g : e.gates) gates.push_back(g.to_vector<float>());
  j["channel_gates"] = std::move(gates);
  return j;
}

}  // namespace focus
