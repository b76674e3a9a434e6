// Request-body decoders: every refusal is a RequestError with the right status and a message
// naming the field; good bodies decode to exactly the values sent (flat and nested V2 data).
#include "focus/serve/decode.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>

#include "focus/data/png.hpp"
#include "focus/io/base64.hpp"

namespace focus {
namespace {

using nlohmann::json;

// Expects decode() to throw RequestError with `status` and a message containing `needle`.
template <class F>
void expect_refused(F decode, int status, const std::string& needle) {
  try {
    decode();
    ADD_FAILURE() << "accepted; expected " << status << " naming '" << needle << "'";
  } catch (const RequestError& e) {
    EXPECT_EQ(e.status(), status) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

std::string png_bytes(int64_t c, int64_t h, int64_t w) {
  Image img = make_image(c, h, w);
  for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = float(i % 7) / 6;
  return encode_png(img);
}

TEST(DecodeV2, FlatAndNestedDataGiveTheSameTensor) {
  const json flat = {{"id", "r1"}, {"inputs", {{{"name", "pixels"}, {"datatype", "FP32"}, {"shape", {2, 1, 2, 2}},
                                                {"data", {0, 1, 2, 3, 4, 5, 6, 7}}}}}};
  const json nested = {{"inputs", {{{"name", "pixels"}, {"datatype", "FP32"}, {"shape", {2, 1, 2, 2}},
                                    {"data", {{{{0, 1}, {2, 3}}}, {{{4, 5}, {6, 7}}}}}}}}};
  const V2InferRequest a = decode_v2_infer(flat.dump()), b = decode_v2_infer(nested.dump());
  EXPECT_EQ(a.id, "r1");
  ASSERT_EQ(a.inputs.size(), 1u);
  EXPECT_EQ(a.inputs[0].shape, (std::vector<int64_t>{2, 1, 2, 2}));
  EXPECT_EQ(a.inputs[0].data, (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(b.inputs[0].data, a.inputs[0].data);
}

TEST(DecodeV2, MalformedBodiesNameTheProblem) {
  const auto v2 = [](const std::string& body) { return [body] { decode_v2_infer(body); }; };
  expect_refused(v2(""), 400, "empty body");
  expect_refused(v2("{\"inputs\": [1,"), 400, "malformed JSON");
  expect_refused(v2("[1, 2]"), 400, "expected an object");
  expect_refused(v2("{}"), 400, "\"inputs\"");
  expect_refused(v2(R"({"inputs":[{"name":"x","datatype":"FP16","shape":[1],"data":[1]}]})"), 400, "FP16");
  expect_refused(v2(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[2],"data":[1]}]})"), 400,
                 "data holds 1 values, shape [2] needs 2");
  expect_refused(v2(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":["a"]}]})"), 400,
                 "expected numbers");
  expect_refused(v2(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[-1],"data":[]}]})"), 400,
                 "non-negative");
  expect_refused(v2(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1e39]}]})"), 400,
                 "does not fit FP32");
  expect_refused(v2(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[2,2],"data":[[1,2],[3]]}]})"), 400,
                 "does not match the shape");
  expect_refused(v2(std::string(1000, '[') + std::string(1000, ']')), 400, "nested deeper");
}

TEST(DecodeV2, LimitsAre413) {
  DecodeLimits lim;
  lim.max_items = 4;
  lim.max_values = 100;
  expect_refused([&] { decode_v2_infer(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[5,1],"data":[1,2,3,4,5]}]})", lim); },
                 413, "5 items");
  expect_refused([&] { decode_v2_infer(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1,1000000000000],"data":[]}]})", lim); },
                 413, "limit of 100 values");
}

// The fast path reads the common form itself (it must not decline it: that is its point) and
// gives what the JSON tree gives: every value as the tree's double rounded to float.
TEST(DecodeV2, FastPathReadsTheCommonFormAsTheJsonTreeDoes) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(-3, 3);
  for (int round = 0; round < 50; ++round) {
    const int n = 1 + round % 7;
    std::string data;
    for (int i = 0; i < 2 * n; ++i) {
      const double v = u(rng) * std::pow(10.0, double(int(rng() % 9) - 4));
      switch ((round + i) % 5) {  // what clients print: %g, full precision, integers, exponents, zero
        case 0: data += fmt::format("{:.6g}", v); break;
        case 1: data += fmt::format("{:.17g}", v); break;
        case 2: data += fmt::format("{}", int64_t(v * 1000)); break;
        case 3: data += fmt::format("{:.3e}", v); break;
        default: data += (round % 2 ? "-0" : "0"); break;
      }
      data += i + 1 < 2 * n ? (i % 3 ? "," : " ,\n ") : "";
    }
    const std::string body = fmt::format(
        R"({{ "id" : "r{}", "inputs":[{{"name":"pixels","shape":[{}, 2],"datatype":"FP32","data":[{}]}}] }})", round, n, data);
    const std::optional<V2InferRequest> fast = decode_v2_infer_fast(body);
    ASSERT_TRUE(fast.has_value()) << body;
    const json tree = json::parse(body);
    EXPECT_EQ(fast->id, tree["id"].get<std::string>());
    ASSERT_EQ(fast->inputs.size(), 1u);
    EXPECT_EQ(fast->inputs[0].name, "pixels");
    EXPECT_EQ(fast->inputs[0].shape, (std::vector<int64_t>{n, 2}));
    std::vector<float> want;
    for (const json& e : tree["inputs"][0]["data"]) want.push_back(float(e.get<double>()));
    EXPECT_EQ(fast->inputs[0].data, want) << body;
  }
}

// Anything outside the common form, and every body the general path refuses, is declined: the
// general path then decodes it or names the problem.
TEST(DecodeV2, FastPathDeclinesOtherFormsAndErrors) {
  const auto t = [](const std::string& tensor) { return R"({"inputs":[)" + tensor + "]}"; };
  for (const std::string& body : {
           t(R"({"name":"x\u0041","datatype":"FP32","shape":[1],"data":[1]})"),  // an escape
           t(R"({"name":"x","datatype":"FP32","shape":[1,2],"data":[[1,2]]})"),    // nested data
           t(R"({"name":"x","datatype":"FP32","shape":[1],"data":[1],"parameters":{}})"),
           t(R"({"name":"x","name":"y","datatype":"FP32","shape":[1],"data":[1]})"),  // twice
           t(R"({"name":"x","datatype":"FP32","shape":[1],"data":[1]})") + " x",       // trailing
           t(R"({"name":"x","datatype":"FP32","shape":[1],"data":[1e400]})"),
           t(R"({"name":"x","datatype":"FP32","shape":[1],"data":[1e39]})"),
           t(R"({"name":"x","datatype":"FP32","shape":[1],"data":[01]})"),
           t(R"({"name":"x","datatype":"FP32","shape":[1],"data":[1.]})"),
           t(R"({"name":"x","datatype":"FP32","shape":[1],"data":[1234567890123456789]})"),
           t(R"({"name":"x","datatype":"FP32","shape":[1.0],"data":[1]})"),
           t(R"({"name":"x","datatype":"FP32","shape":[],"data":[]})"),
           t(R"({"name":"x","datatype":"FP16","shape":[1],"data":[1]})"),
           t(R"({"name":"x","datatype":"FP32","shape":[2],"data":[1]})"),
           t(R"({"name":"x","datatype":"FP32","shape":[-1],"data":[]})"),
           t(R"({"name":"x","datatype":"FP32","shape":[1],"data":["a"]})"),
           t(R"({"name":"x","datatype":"FP32","shape":[1]})"),
           t(R"({"name":"x","datatype":"FP32","shape":[9],"data":[1,2,3,4,5,6,7,8,9]})"),  // 9 items > 8
           std::string(R"({"inputs":[]})"), std::string("{}"), std::string(""), std::string("[1]"),
           std::string("{\"inputs\": [1,")}) {
    DecodeLimits lim;
    lim.max_items = 8;
    EXPECT_FALSE(decode_v2_infer_fast(body, lim).has_value()) << body;
  }
  // A declined form the general path accepts still decodes, to the same values.
  EXPECT_EQ(decode_v2_infer(t(R"({"name":"x","datatype":"FP32","shape":[1,2],"data":[[1,2]]})")).inputs[0].data,
            (std::vector<float>{1, 2}));
}

TEST(DecodeClassify, PngBodyAndBase64JsonDecodeTheSameImage) {
  const std::string png = png_bytes(1, 5, 6);
  const ClassifyRequest a = decode_classify(png, "image/png", "3");
  const ClassifyRequest b = decode_classify(json{{"png", base64_encode(png)}, {"top", 2}}.dump(),
                                            "application/json; charset=utf-8");
  ASSERT_EQ(a.images.size(), 1u);
  EXPECT_EQ(a.top, 3);
  EXPECT_EQ(b.top, 2);
  EXPECT_EQ(a.images[0].height, 5);
  EXPECT_EQ(a.images[0].width, 6);
  EXPECT_EQ(a.images[0].data, b.images[0].data);
  const ClassifyRequest c = decode_classify(json{{"pngs", {base64_encode(png), base64_encode(png)}}}.dump(), "application/json");
  EXPECT_EQ(c.images.size(), 2u);
}

TEST(DecodeClassify, BadImagesAndTypesAreRefused) {
  const std::string png = png_bytes(3, 8, 8);
  expect_refused([&] { decode_classify(png.substr(0, png.size() / 2), "image/png"); }, 400, "corrupt or truncated");
  expect_refused([&] { decode_classify("GIF89a", "image/png"); }, 400, "not a PNG");
  expect_refused([&] { decode_classify(png, "image/gif"); }, 415, "image/gif");
  expect_refused([&] { decode_classify(png, "image/png", "0"); }, 400, "top=0");
  expect_refused([&] { decode_classify(png, "image/png", "3x"); }, 400, "top=3x");
  expect_refused([&] { decode_classify(R"({"png": "", "top": 18446744073709551615})", "application/json"); }, 400,
                 "\"top\" is 18446744073709551615");
  expect_refused([&] { decode_classify(R"({"png": "!!!!"})", "application/json"); }, 400, "not base64");
  expect_refused([&] { decode_classify(R"({"png": 5})", "application/json"); }, 400, "base64 string");
  expect_refused([&] { decode_classify(R"({"png": "", "pngs": []})", "application/json"); }, 400, "exactly one");
  DecodeLimits lim;
  lim.max_image_pixels = 63;
  expect_refused([&] { decode_classify(png, "image/png", "", lim); }, 413, "8x8 pixels");
  std::string huge = png;  // a header claiming 2^32-1 pixels on each side
  for (int i = 16; i < 24; ++i) huge[size_t(i)] = char(0xff);
  expect_refused([&] { decode_classify(huge, "image/png", "", lim); }, 413, "4294967295x4294967295 pixels");
  lim.max_image_pixels = 100;  // one 8x8 image fits, two do not: the limit is per request
  EXPECT_EQ(decode_classify(png, "image/png", "", lim).images.size(), 1u);
  const std::string two = json{{"pngs", {base64_encode(png), base64_encode(png)}}}.dump();
  expect_refused([&] { decode_classify(two, "application/json", "", lim); }, 413, "hold 128 pixels");
}

TEST(DecodeTranslate, OptionsAndLimits) {
  const TranslateRequest r = decode_translate(R"({"inputs": ["abc", "b"], "beam": 4, "nbest": 2, "length_penalty": 0.5})");
  EXPECT_EQ(r.inputs, (std::vector<std::string>{"abc", "b"}));
  EXPECT_EQ(r.search.beam, 4);
  EXPECT_EQ(r.search.nbest, 2);
  EXPECT_DOUBLE_EQ(r.search.length_penalty, 0.5);
  const auto tr = [](const std::string& b) { return [b] { decode_translate(b); }; };
  expect_refused(tr(R"({"inputs": []})"), 400, "non-empty");
  expect_refused(tr(R"({"inputs": [3]})"), 400, "inputs[0] must be a string");
  expect_refused(tr(R"({"inputs": ["a"], "beam": 0})"), 400, "\"beam\" is 0");
  expect_refused(tr(R"({"inputs": ["a"], "beam": 2, "nbest": 3})"), 400, "\"nbest\" is 3");
  expect_refused(tr(R"({"inputs": ["a"], "beam": "5"})"), 400, "must be an integer");
  DecodeLimits lim;
  lim.max_text_bytes = 3;
  expect_refused([&] { decode_translate(R"({"inputs": ["abcd"]})", lim); }, 413, "4 bytes");
}

TEST(Base64, RoundTripAndStrictness) {
  for (const std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"})
    EXPECT_EQ(base64_decode(base64_encode(s)), s);
  EXPECT_EQ(base64_decode("Zm9vYg=="), "foob");
  EXPECT_THROW(base64_decode("Zm9vYg="), FormatError);     // length
  EXPECT_THROW(base64_decode("Zm9v\nYg=="), FormatError);  // whitespace
  EXPECT_THROW(base64_decode("Zm=vYg=="), FormatError);    // '=' inside
}

}  // namespace
}  // namespace focus
