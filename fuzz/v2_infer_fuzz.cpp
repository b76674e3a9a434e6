// Fuzz target: the KServe V2 request decoder (serve/decode.hpp decode_v2_infer, the body of
// POST /v2/models/{m}/infer). A body either decodes to 1+ tensors whose data holds prod(shape)
// finite values within the limits, or is a RequestError (400/413); the largest allocation stays
// proportional to the body; and limits only ever narrow: what small limits accept, the defaults
// accept identically. Seeds: fuzz/corpus/v2_infer_fuzz/; dictionary json.dict.
#include <cmath>
#include <cstdint>

#include "serve_input.hpp"

using namespace focus;

namespace {

void check(const V2InferRequest& r, const DecodeLimits& lim) {
  FUZZ_ASSERT(!r.inputs.empty(), "no inputs");
  int64_t total = 0;
  for (const V2Tensor& t : r.inputs) {
    FUZZ_ASSERT(t.shape.size() >= 1 && t.shape.size() <= 8, "%zu dimensions", t.shape.size());
    int64_t count = 1;
    for (int64_t d : t.shape) {
      FUZZ_ASSERT(d >= 0, "dimension %lld", static_cast<long long>(d));
      count *= d;
    }
    FUZZ_ASSERT(static_cast<int64_t>(t.data.size()) == count, "%zu values for %lld",
                t.data.size(), static_cast<long long>(count));
    FUZZ_ASSERT(t.shape[0] <= lim.max_items, "%lld items", static_cast<long long>(t.shape[0]));
    for (float v : t.data) FUZZ_ASSERT(std::isfinite(v), "value %g", v);
    FUZZ_ASSERT(t.datatype == "FP32" || t.datatype == "FP64" || t.datatype == "INT32" ||
                    t.datatype == "INT64", "datatype %s", t.datatype.c_str());
    total += count;
  }
  FUZZ_ASSERT(total <= lim.max_values, "%lld values", static_cast<long long>(total));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::AllocPeak::install();
  const fuzz::ServeInput in = fuzz::split_serve_input(data, size);
  const DecodeLimits small = fuzz::small_limits(), def;
  V2InferRequest a, b;
  fuzz::AllocPeak::reset();
  const bool ok_default = fuzz::serve_accepts([&] { a = decode_v2_infer(in.body, def); });
  fuzz::check_alloc_proportional(in.body.size(), 64, "decode_v2_infer");
  if (ok_default) check(a, def);
  if (fuzz::serve_accepts([&] { b = decode_v2_infer(in.body, small); })) {
    check(b, small);
    FUZZ_ASSERT(ok_default, "accepted under small limits, refused under the defaults");
    FUZZ_ASSERT(a.id == b.id && a.inputs.size() == b.inputs.size(), "results differ");
    for (size_t i = 0; i < a.inputs.size(); ++i)
      FUZZ_ASSERT(a.inputs[i].shape == b.inputs[i].shape && a.inputs[i].data == b.inputs[i].data &&
                      a.inputs[i].name == b.inputs[i].name, "inputs[%zu] differ", i);
  }
  return 0;
}
