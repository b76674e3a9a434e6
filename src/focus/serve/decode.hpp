// Decoding HTTP request bodies into predictor inputs: the KServe V2 JSON tensors of
// /v2/models/{m}/infer, the PNG or JSON bodies of /v1/models/{m}/classify and /explain, and the
// JSON of /v1/models/{m}/translate. Everything outside input passes through here first, so every
// refusal is a RequestError with the HTTP status to answer (400 malformed, 413 over a limit,
// 415 an unsupported content type) and a message naming the field and the problem. Decoding
// checks structure and limits only; the predictors check values against the model (shapes,
// symbols, lengths) and throw InputError, which the server also answers with 400.
// Limits: JSON nested deeper than kMaxJsonDepth is refused while parsing (a body of "[[[[..."
// cannot exhaust the stack); numbers must be finite JSON numbers (no NaN or infinity in JSON).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "focus/data/image.hpp"
#include "focus/models/seq2seq_search.hpp"
#include "focus/tensor/error.hpp"

namespace focus {

struct RequestError : ValueError {
  RequestError(int status, std::string message) : ValueError(std::move(message)), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

inline constexpr int kMaxJsonDepth = 12;

struct DecodeLimits {
  int64_t max_items = 256;              // images / texts / tensor rows per request
  int64_t max_values = 256 * 3 * 224 * 224;  // numbers in one V2 request
  int64_t max_image_pixels = 2048 * 2048;    // width x height of a request's PNGs together
  int64_t max_text_bytes = 4096;        // bytes of one text
};

// One V2 input tensor, data flattened row-major (nested JSON arrays are flattened; their shape
// must agree with "shape").
struct V2Tensor {
  std::string name, datatype;    // datatype: FP32, FP64, INT32, INT64 (values kept as float)
  std::vector<int64_t> shape;
  std::vector<float> data;       // prod(shape) values
};
struct V2InferRequest {
  std::string id;                // echoed in the response when given
  std::vector<V2Tensor> inputs;  // at least one
};
V2InferRequest decode_v2_infer(std::string_view body, const DecodeLimits& limits = {});
// decode_v2_infer's first step: a single pass over the common form (one object with "inputs"
// and an optional "id"; each tensor's "name", "datatype", "shape" and flat "data" once each,
// strings of printable ASCII without escapes) that stores numbers as it reads them, without the
// JSON tree the general path builds (22 against 100-118 us for a 28x28 image; that tree of 784
// values was the largest share of the server's CPU under load, docs/BUDGET.md). Its answer is
// the general path's for the same body; nullopt where it declines (another form, or anything
// the general path would refuse), and decode_v2_infer then runs the general path, which names
// the problem.
std::optional<V2InferRequest> decode_v2_infer_fast(std::string_view body, const DecodeLimits& limits = {});

struct ClassifyRequest {
  std::vector<Image> images;       // decoded PNGs, as read_png returns them
  std::vector<std::string> pngs;   // each image's PNG bytes (for the review queue)
  int64_t top = 5;                 // classes returned per image, >= 1
};
// content_type "image/png": the body is one PNG. "application/json": {"png": BASE64} or
// {"pngs": [BASE64, ...]}, optional "top". `top_param` is the query's ?top= ("" = none).
ClassifyRequest decode_classify(std::string_view body, std::string_view content_type,
                                std::string_view top_param = "", const DecodeLimits& limits = {});

struct ClassifyTextRequest {
  std::vector<std::string> texts;
  int64_t top = 5;
};
// Text classifiers: {"text": "..."} or {"texts": ["...", ...]}, optional "top" (or ?top=). 400
// naming the problem for anything else (not JSON, an empty text, invalid UTF-8), 413 for a text
// over max_text_bytes or more than max_items texts.
ClassifyTextRequest decode_classify_text(std::string_view body, std::string_view top_param = "",
                                         const DecodeLimits& limits = {});

struct TranslateRequest {
  std::vector<std::string> inputs;
  SearchOptions search;  // beam (1..16), nbest (1..beam), length_penalty, max_len
};
// {"inputs": ["...", ...], "beam": 5, "nbest": 3, "length_penalty": 1.0}
TranslateRequest decode_translate(std::string_view body, const DecodeLimits& limits = {});

struct ExplainRequest {
  Image image;             // image models: a PNG (body or {"png": BASE64})
  std::string text;        // seq2seq models: {"input": "..."}
  std::string method;      // "" = the model's default (rollout / cross-attention)
  int64_t layer = -1, head = -1, target = -1;
  bool maps = false;       // include the raw attention maps (large)
};
// /v1/models/{m}/recommend: {"history": [ID, ...], "k": 10}; ids are strings or integers (an
// integer means its decimal text, as ratings.dat's MovieIDs); 1 to max_items of them; k in
// [1, 1000], default 10.
struct RecommendRequest {
  std::vector<std::string> history;
  int64_t k = 10;
};
RecommendRequest decode_recommend(std::string_view body, const DecodeLimits& limits = {});

ExplainRequest decode_explain(std::string_view body, std::string_view content_type,
                              bool image_model, const DecodeLimits& limits = {});

}  // namespace focus
