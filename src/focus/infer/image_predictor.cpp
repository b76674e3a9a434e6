// The image-classifier predictor (see image_predictor.hpp).
#include "focus/infer/image_predictor.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <nlohmann/json.hpp>

#include "focus/autograd/node.hpp"
#include "focus/infer/quantize.hpp"
#include "focus/kernels/cpu.hpp"
#include "focus/ops/softmax.hpp"

namespace focus {

int inference_threads(int64_t batch) { return batch <= 8 ? 1 : num_threads(); }

ImagePredictor::ImagePredictor(const std::string& path, const ImagePredictorOptions& opt)
    : ImagePredictor(load_model(path), opt) {}

ImagePredictor::ImagePredictor(LoadedModel loaded, const ImagePredictorOptions& opt)
    : loaded_(std::move(loaded)), opt_(opt) {
  FOCUS_CHECK(loaded_.model, ValueError, "ImagePredictor: no model");
  FOCUS_CHECK(opt_.max_batch >= 1, ValueError, "ImagePredictor: max_batch {} must be >= 1",
              opt_.max_batch);
  FOCUS_CHECK(loaded_.info.norm.std > 0.f, ValueError, "ImagePredictor: normalisation std {} must be positive",
              loaded_.info.norm.std);
  loaded_.model->eval();
  FOCUS_CHECK(opt_.weights == "f32" || opt_.weights == "bf16" || opt_.weights == "int8" ||
                  opt_.weights == "auto",
              ValueError, "ImagePredictor: weights '{}' must be f32, bf16, int8 or auto", opt_.weights);
  weights_ = opt_.weights == "auto" ? (loaded_.info.quantized ? "int8" : "f32") : opt_.weights;
  if (weights_ == "int8") {
    const std::vector<std::string> layers = int8_plan(*loaded_.model, loaded_.info);
    set_int8_layers(*loaded_.model, layers, "ImagePredictor");  // checks the names
    if (opt_.compiled)
      plan_ = compile_image_plan(*loaded_.model, DType::I8, layers, loaded_.info.activation_ranges);
  } else if (weights_ == "bf16") {
    plan_ = compile_image_plan(*loaded_.model, DType::BF16);  // refused without AVX512-BF16
    if (!plan_) loaded_.model->set_inference_dtype(DType::BF16);  // vit: bf16 Linear weights
  } else if (opt_.compiled) {
    plan_ = compile_image_plan(*loaded_.model);
  }
  const nlohmann::json cfg = loaded_.model->config();
  channels_ = cfg.value("in_channels", int64_t(1));
  size_ = cfg.value("image_size", int64_t(28));  // cnn_se takes any size: Fashion-MNIST's
  classes_ = cfg.value("num_classes", int64_t(0));
  FOCUS_CHECK(classes_ > 0, ValueError, "ImagePredictor: the model config has no num_classes");
}

Tensor ImagePredictor::logits(const Tensor& pixels) const {
  FOCUS_CHECK(pixels.dtype() == DType::F32, DTypeError, "predict: pixels are {}, need F32",
              dtype_name(pixels.dtype()));
  FOCUS_CHECK(pixels.dim() == 4 && pixels.size(1) == channels_ && pixels.size(2) == size_ &&
                  pixels.size(3) == size_,
              ShapeError, "predict: pixels {} must be (N, {}, {}, {})", to_string(pixels.shape()),
              channels_, size_, size_);
  const Tensor x = pixels.contiguous();
  const int64_t N = x.size(0), D = channels_ * size_ * size_;
  const float* p = x.data<float>();
  for (int64_t i = 0; i < N * D; ++i)
    if (!std::isfinite(p[i]))
      throw InputError(size_t(i / D), fmt::format("pixel {} is {}", i % D, p[i]));
  NoGradGuard no_grad;
  std::vector<float> out(size_t(N * classes_));  // (N, K)
  const float mean = loaded_.info.norm.mean, inv = 1.f / loaded_.info.norm.std;
  for (int64_t lo = 0; lo < N; lo += opt_.max_batch) {
    const int64_t B = std::min(opt_.max_batch, N - lo);
    Tensor batch = Tensor::empty({B, channels_, size_, size_});  // (B, C, S, S), normalised
    float* dst = batch.data<float>();
    for (int64_t i = 0; i < B * D; ++i) dst[i] = (p[lo * D + i] - mean) * inv;
    std::vector<float> z;  // (B, K)
    if (plan_) {
      z = plan_->forward(batch).contiguous().to_vector<float>();
    } else {
      ScopedThreads threads(inference_threads(B));
      z = loaded_.model->forward(batch).contiguous().to_vector<float>();
    }
    std::copy(z.begin(), z.end(), out.begin() + lo * classes_);
  }
  return Tensor::from_vector(out, {N, classes_});
}

std::string ImagePredictor::engine() const { return plan_ ? plan_->describe() : "native"; }

std::vector<int64_t> ImagePredictor::warm_up() const {
  std::vector<int64_t> sizes;
  for (int64_t b = 1; b <= opt_.max_batch; b *= 2) sizes.push_back(b);
  if (sizes.back() != opt_.max_batch) sizes.push_back(opt_.max_batch);  // the native path's largest
  for (int64_t b : sizes) logits(Tensor::zeros({b, channels_, size_, size_}));  // (b, C, S, S)
  return sizes;
}

Tensor ImagePredictor::probabilities(const Tensor& pixels) const {
  Tensor z = logits(pixels);  // (N, K)
  const double t = temperature();
  if (t != 1.0) {
    float* v = z.data<float>();
    const float inv = float(1 / t);
    for (int64_t i = 0; i < z.numel(); ++i) v[i] *= inv;
  }
  NoGradGuard no_grad;
  return softmax(z, 1);
}

std::vector<ImagePrediction> ImagePredictor::predict(const Tensor& pixels, int64_t k) const {
  FOCUS_CHECK(k >= 1, ValueError, "predict: top k {} must be >= 1", k);
  const std::vector<float> probs = probabilities(pixels).to_vector<float>();  // (N, K)
  const size_t K = size_t(classes_), top = std::min(K, size_t(k));
  std::vector<ImagePrediction> out(probs.size() / K);
  for (size_t n = 0; n < out.size(); ++n) {
    ImagePrediction& r = out[n];
    r.probs.assign(probs.begin() + n * K, probs.begin() + (n + 1) * K);
    std::vector<size_t> order(K);
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return r.probs[a] > r.probs[b]; });
    for (size_t i = 0; i < top; ++i) {
      const size_t c = order[i];
      const auto& names = loaded_.info.class_names;
      r.top.push_back({int64_t(c), c < names.size() ? names[c] : std::to_string(c), r.probs[c]});
    }
  }
  return out;
}

Tensor ImagePredictor::pixels(const std::vector<Image>& images) const {
  const int64_t N = int64_t(images.size()), D = channels_ * size_ * size_;
  Tensor pixels = Tensor::empty({N, channels_, size_, size_});  // (N, C, S, S)
  float* dst = pixels.data<float>();
  for (size_t i = 0; i < images.size(); ++i) {
    const Image& img = images[i];
    if (img.channels < 1 || img.height < 1 || img.width < 1 ||
        img.data.size() != size_t(img.channels * img.height * img.width))
      throw InputError(i, fmt::format("malformed image (C={}, H={}, W={}, {} values)", img.channels,
                                      img.height, img.width, img.data.size()));
    if (img.channels != 1 && img.channels != 3)
      throw InputError(i, fmt::format("{} channels (gray or RGB images only)", img.channels));
    if (channels_ == 3 && img.channels != 3)
      throw InputError(i, "a gray image for a model of RGB images");
    const Image x = resize(channels_ == 1 ? to_gray(img) : img, size_, size_);  // (C, S, S)
    std::copy(x.data.begin(), x.data.end(), dst + int64_t(i) * D);
  }
  return pixels;
}

Tensor ImagePredictor::normalized(const Tensor& pixels) const {
  const Tensor x = pixels.contiguous();
  Tensor out = Tensor::empty(x.shape());  // (N, C, S, S)
  const float mean = loaded_.info.norm.mean, inv = 1.f / loaded_.info.norm.std;
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) dst[i] = (src[i] - mean) * inv;
  return out;
}

std::vector<ImagePrediction> ImagePredictor::predict(const std::vector<Image>& images,
                                                     int64_t k) const {
  return predict(pixels(images), k);
}

}  // namespace focus
