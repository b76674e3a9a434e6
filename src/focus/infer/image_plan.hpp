// ImagePlan: an image classifier compiled for inference. The model's weights are copied at compile
// time into the form the kernels want (batch norm folded into the convolution before it, weights
// reordered once into the engine's blocked layout) and the forward pass runs as a fixed list of
// fused primitives with no autograd bookkeeping: per cnn_se stage, conv+BN+ReLU, conv+BN+ReLU,
// SE gates (mean, two small fully connected layers), max-pool, then the gates applied to the
// pooled map (max-pooling commutes with a positive per-channel scale, so this equals SE then
// pool, exactly); activations stay in oneDNN's blocked layout between layers.
// Engine: oneDNN (Debian libdnnl-dev, the library PyTorch itself uses for CPU convolutions);
// measured against focus's own im2col + GEMM in docs/BENCHMARKS.md ("Inference engine").
// Switch: FOCUS_INFER_ENGINE=native (or set_image_engine) turns compiling off everywhere: the
// model's own forward (the reference) runs instead. FOCUS_FORCE_ISA=avx2 caps oneDNN at AVX2;
// FOCUS_FORCE_ISA=scalar turns the cnn_se plan off (oneDNN has no scalar path).
// FOCUS_PLAN_LAYOUT=nhwc (or set_plan_layout) keeps every F32 activation in NHWC, reordered around
// each Winograd convolution (the layout before the blocked one; describe() names the layout).
// Batches are split into power-of-two chunks (1, 2, 4, ... up to the largest power <= 256) so
// that at most nine primitive lists exist (per thread count), each built on first use; the
// activations of every chunk live in two buffers shared by all lists (sized by the largest chunk
// seen).
// Models: cnn_se with F32 weights (run in F32, BF16 or int8); the vit in F32 or int8 through its
// own plan (infer/vit_plan.hpp: no oneDNN in it, so it also runs under FOCUS_FORCE_ISA=scalar).
// Anything else compiles to null and runs its own forward.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "focus/tensor/tensor.hpp"

namespace focus {

class ImageClassifier;

enum class ImageEngine { Native, OneDnn };
// FOCUS_INFER_ENGINE=native|onednn (default onednn) unless set_image_engine() was called.
// ValueError naming the variable for another value.
ImageEngine image_engine();
void set_image_engine(ImageEngine engine);

// How the F32 cnn_se plan lays out the activations around its Winograd convolutions (AVX-512):
// Blocked keeps them in the convolutions' own nChw16c (SE mean, pooling and gates read it), Nhwc
// reorders every one to NHWC and back (the layout before; the reference for the change).
// FOCUS_PLAN_LAYOUT=blocked|nhwc (default blocked) unless set_plan_layout() was called; read when
// a plan is compiled. ValueError naming the variable for another value.
enum class PlanLayout { Nhwc, Blocked };
PlanLayout plan_layout();
void set_plan_layout(PlanLayout layout);

class ImagePlan {
 public:
  virtual ~ImagePlan() = default;
  // x (N, C, H, W) F32 (any N >= 1; H, W those the model takes) -> logits (N, K), the values of
  // model.forward(x) in eval mode up to float rounding. ShapeError / DTypeError for another input.
  // Thread-safe: concurrent calls run one at a time (each uses the thread policy's cores).
  virtual Tensor forward(const Tensor& x) = 0;
  // "onednn cnn_se (isa avx512_core)": what runs, for logs and benchmarks.
  virtual std::string describe() const = 0;
  // The (chunk size, threads) whose primitive lists are built so far, ascending (a list is built
  // on first use, which costs that call milliseconds: ImagePredictor::warm_up). Chunks under
  // 150 MFLOP run on one thread, larger ones on the thread policy's count (kernels/cpu.hpp).
  virtual std::vector<std::pair<int64_t, int>> prepared() const = 0;
};

// Compiles `model` as it is now (later writes into its weights are not seen): null when there is
// no compiled path for it (see above). Throws only on an inconsistent model (missing tensors).
// precision BF16: the convolutions and the activations between them in bfloat16 (weights rounded
// once, F32 accumulation and biases, the SE layers, the pooled features and the head in F32);
// ValueError saying why where the CPU has no AVX512-BF16 / AMX (oneDNN's ISA, FOCUS_FORCE_ISA
// included) or the engine is native.
// precision I8: the convolutions named in int8_layers ("stages.S.convK", as
// Module::named_modules names them; others are ignored) in int8: weights s8 per output channel,
// activations u8 with one static step per tensor, range / 255: the range measured on data
// (activation_ranges, from measure_activation_ranges; `focus quantize` stores them in the file),
// else taken from the batch-norm statistics (the folded output's mean + 6 standard deviations,
// the largest over the channels); F32 biases, SE layers, pooled features and head; the first
// convolution (the normalised image's range is not known) in F32.
// On a CPU without VNNI the weights keep 7 bits (oneDNN pairs u8 x s8 products into saturating
// 16-bit sums there). Null where no plan exists (as F32), so the caller runs its own int8 layers.
std::unique_ptr<ImagePlan> compile_image_plan(const ImageClassifier& model,
                                              DType precision = DType::F32,
                                              const std::vector<std::string>& int8_layers = {},
                                              const std::map<std::string, float>& activation_ranges = {});
// The largest output of each convolution (after batch norm and ReLU; named as above) over the
// images x (N, C, H, W), normalised as the model takes them, through the F32 plan: an int8
// plan's calibration. Empty where compile_image_plan(model) has no plan.
std::map<std::string, float> measure_activation_ranges(const ImageClassifier& model, const Tensor& x);
// Whether compile_image_plan(model, BF16) can run here.
bool bf16_plan_supported();

}  // namespace focus
