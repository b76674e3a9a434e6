// Request-body decoders (see decode.hpp).
#include "focus/serve/decode.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>

#include "focus/data/png.hpp"
#include "focus/io/base64.hpp"

namespace focus {
namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& msg) { throw RequestError(400, msg); }

json parse_json(std::string_view body) {
  if (body.empty()) bad("empty body (expected a JSON object)");
  const json::parser_callback_t limit_depth = [](int depth, json::parse_event_t, json&) {
    if (depth > kMaxJsonDepth)
      bad(fmt::format("JSON nested deeper than {} levels", kMaxJsonDepth));
    return true;
  };
  try {
    json j = json::parse(body.begin(), body.end(), limit_depth);
    if (!j.is_object()) bad(fmt::format("the body is a JSON {}, expected an object", j.type_name()));
    return j;
  } catch (const json::exception& e) {
    bad(fmt::format("malformed JSON: {}", e.what()));
  }
}

// The media type without parameters, lower-cased: "application/json; charset=utf-8" -> "application/json".
std::string media_type(std::string_view content_type) {
  std::string t(content_type.substr(0, content_type.find(';')));
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
  size_t i = 0;
  while (i < t.size() && std::isspace(static_cast<unsigned char>(t[i]))) ++i;
  t = t.substr(i);
  for (char& c : t) c = char(std::tolower(static_cast<unsigned char>(c)));
  return t;
}

int64_t get_int(const json& j, const char* key, int64_t fallback, int64_t lo, int64_t hi) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number_integer()) bad(fmt::format("\"{}\" must be an integer, got {}", key, it->dump()));
  if (it->is_number_unsigned() && it->get<uint64_t>() > uint64_t(hi))
    bad(fmt::format("\"{}\" is {}, must be in [{}, {}]", key, it->get<uint64_t>(), lo, hi));
  const int64_t v = it->get<int64_t>();
  if (v < lo || v > hi) bad(fmt::format("\"{}\" is {}, must be in [{}, {}]", key, v, lo, hi));
  return v;
}

// The size a PNG's header claims (IHDR is the first chunk: width and height big-endian at bytes
// 16 and 20), checked before anything is decoded or allocated: a small body of zeros may claim
// 16384 x 16384 pixels (1 GiB as floats).
// `total` accumulates the pixels of a request's images: the limit holds for their sum.
void check_png_dimensions(std::string_view b, const std::string& what, const DecodeLimits& lim,
                          int64_t* total) {
  if (b.size() < 24 || b.substr(12, 4) != "IHDR") return;  // decode_png names the problem
  const auto be32 = [&](size_t at) {
    return uint32_t(uint8_t(b[at])) << 24 | uint32_t(uint8_t(b[at + 1])) << 16 |
           uint32_t(uint8_t(b[at + 2])) << 8 | uint32_t(uint8_t(b[at + 3]));
  };
  const uint64_t w = be32(16), h = be32(20);  // the product of two 32-bit values fits 64 bits
  if (w * h > uint64_t(lim.max_image_pixels))
    throw RequestError(413, fmt::format("{}: {}x{} pixels, over the limit of {} pixels", what, w, h,
                                        lim.max_image_pixels));
  *total += int64_t(w * h);  // <= max_image_pixels each: no overflow
  if (*total > lim.max_image_pixels)
    throw RequestError(413, fmt::format("{}: the request's images hold {} pixels, over the limit "
                                        "of {} pixels", what, *total, lim.max_image_pixels));
}

Image decode_image(std::string_view bytes, const std::string& what, const DecodeLimits& lim,
                   int64_t* total_pixels) {
  check_png_dimensions(bytes, what, lim, total_pixels);
  Image img;
  try {
    img = decode_png(bytes, what, lim.max_image_pixels);  // libpng's header, checked again
  } catch (const ImageTooLargeError& e) {
    throw RequestError(413, e.what());
  } catch (const FormatError& e) {
    bad(e.what());
  }
  return img;
}

std::string get_base64_png_field(const json& v, const std::string& what) {
  if (!v.is_string()) bad(fmt::format("{} must be a base64 string, got {}", what, v.type_name()));
  try {
    return base64_decode(v.get_ref<const std::string&>(), what);
  } catch (const FormatError& e) {
    bad(e.what());
  }
}

int64_t parse_top(std::string_view s) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < 1 || v > 1000)
    bad(fmt::format("query parameter top={} must be an integer in [1, 1000]", s));
  return v;
}

void push_number(const json& e, const std::string& what, std::vector<float>& out) {
  if (!e.is_number()) bad(fmt::format("{}: data holds {}, expected numbers", what, e.type_name()));
  const double v = e.get<double>();
  if (!std::isfinite(float(v))) bad(fmt::format("{}: value {} does not fit FP32", what, v));
  out.push_back(float(v));
}

// Appends the numbers of the nested array `a` (dimension `dim` of `shape`) to out, checking that
// every level has the length the shape gives.
void flatten_nested(const json& a, const std::vector<int64_t>& shape, size_t dim,
                    const std::string& what, std::vector<float>& out) {
  if (!a.is_array() || int64_t(a.size()) != shape[dim])
    bad(fmt::format("{}: nested data does not match the shape at dimension {}", what, dim));
  for (const json& e : a) {
    if (dim + 1 < shape.size())
      flatten_nested(e, shape, dim + 1, what, out);
    else
      push_number(e, what, out);
  }
}

// The fast reader of decode_v2_infer_fast: a cursor over the body that reads the JSON of the
// common V2 form and answers false (decline) on anything else.
struct FastReader {
  const char* p;
  const char* end;
  void ws() {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) ++p;
  }
  bool eat(char c) {
    ws();
    if (p >= end || *p != c) return false;
    ++p;
    return true;
  }
  static bool digit(char c) { return c >= '0' && c <= '9'; }
  // A string of printable ASCII without escapes (the others: decline).
  bool str(std::string_view& s) {
    if (!eat('"')) return false;
    const char* b = p;
    while (p < end && *p != '"') {
      const unsigned char c = static_cast<unsigned char>(*p);
      if (c == '\\' || c < 0x20 || c >= 0x80) return false;
      ++p;
    }
    if (p >= end) return false;
    s = std::string_view(b, size_t(p - b));
    ++p;
    return true;
  }
  // A JSON number, as the DOM parser's value read as double: integers of up to 18 digits exactly
  // (longer ones: decline), the others correctly rounded (from_chars, as strtod); `integer` says
  // which it was.
  bool number(double& v, bool& integer) {
    ws();
    const char* b = p;
    if (p < end && *p == '-') ++p;
    if (p >= end || !digit(*p)) return false;
    if (*p == '0') {
      ++p;
    } else {
      while (p < end && digit(*p)) ++p;
    }
    integer = true;
    if (p < end && *p == '.') {
      ++p, integer = false;
      if (p >= end || !digit(*p)) return false;
      while (p < end && digit(*p)) ++p;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
      ++p, integer = false;
      if (p < end && (*p == '+' || *p == '-')) ++p;
      if (p >= end || !digit(*p)) return false;
      while (p < end && digit(*p)) ++p;
    }
    if (integer) {
      if (p - b > 18) return false;
      int64_t i = 0;
      if (std::from_chars(b, p, i).ec != std::errc()) return false;
      v = double(i);
      return true;
    }
    return std::from_chars(b, p, v).ec == std::errc();
  }
  // One input tensor {"name", "datatype", "shape", "data"} (each once, no other key; data flat).
  bool tensor(V2Tensor& t, const DecodeLimits& lim) {
    if (!eat('{')) return false;
    bool name = false, dtype = false, shape = false, data = false;
    do {
      std::string_view key, s;
      if (!str(key) || !eat(':')) return false;
      if (key == "name" && !name) {
        if (!str(s)) return false;
        t.name = s, name = true;
      } else if (key == "datatype" && !dtype) {
        if (!str(s)) return false;
        t.datatype = s, dtype = true;
      } else if (key == "shape" && !shape) {
        if (!eat('[')) return false;
        do {
          double d = 0;
          bool integer = false;
          if (!number(d, integer) || !integer || d < 0 || t.shape.size() >= 8) return false;
          t.shape.push_back(int64_t(d));
        } while (eat(','));
        if (!eat(']')) return false;
        shape = true;
      } else if (key == "data" && !data) {
        if (!eat('[')) return false;
        if (shape) t.data.reserve(std::min(size_t(count_of(t.shape, lim)), size_t(end - p) / 2 + 1));
        ws();
        if (p < end && *p != ']') {
          do {
            double v = 0;
            bool integer = false;
            if (!number(v, integer) || !std::isfinite(float(v))) return false;
            t.data.push_back(float(v));
          } while (eat(','));
        }
        if (!eat(']')) return false;
        data = true;
      } else {
        return false;
      }
    } while (eat(','));
    if (!eat('}') || !name || !dtype || !shape || !data) return false;
    if (t.datatype != "FP32" && t.datatype != "FP64" && t.datatype != "INT32" && t.datatype != "INT64")
      return false;
    const int64_t count = count_of(t.shape, lim);
    return count >= 0 && t.shape[0] <= lim.max_items && int64_t(t.data.size()) == count;
  }
  // The values a shape holds; -1 past lim.max_values (the general path's 413).
  static int64_t count_of(const std::vector<int64_t>& shape, const DecodeLimits& lim) {
    int64_t count = 1;
    for (const int64_t n : shape) {
      if (n > 0 && count > lim.max_values / n) return -1;
      count *= n;
    }
    return count;
  }
};

}  // namespace

std::optional<V2InferRequest> decode_v2_infer_fast(std::string_view body, const DecodeLimits& lim) {
  FastReader in{body.data(), body.data() + body.size()};
  V2InferRequest r;
  bool id = false, inputs = false;
  if (!in.eat('{')) return std::nullopt;
  do {
    std::string_view key, s;
    if (!in.str(key) || !in.eat(':')) return std::nullopt;
    if (key == "id" && !id) {
      if (!in.str(s)) return std::nullopt;
      r.id = s, id = true;
    } else if (key == "inputs" && !inputs) {
      if (!in.eat('[')) return std::nullopt;
      int64_t total = 0;
      do {
        V2Tensor t;
        if (!in.tensor(t, lim)) return std::nullopt;
        total += int64_t(t.data.size());
        if (total > lim.max_values) return std::nullopt;
        r.inputs.push_back(std::move(t));
      } while (in.eat(','));
      if (!in.eat(']')) return std::nullopt;
      inputs = true;
    } else {
      return std::nullopt;
    }
  } while (in.eat(','));
  if (!in.eat('}') || !inputs) return std::nullopt;
  in.ws();
  if (in.p != in.end) return std::nullopt;
  return r;
}

V2InferRequest decode_v2_infer(std::string_view body, const DecodeLimits& lim) {
  if (auto fast = decode_v2_infer_fast(body, lim)) return std::move(*fast);
  const json j = parse_json(body);
  V2InferRequest r;
  if (const auto id = j.find("id"); id != j.end()) {
    if (!id->is_string()) bad("\"id\" must be a string");
    r.id = id->get<std::string>();
  }
  const auto inputs = j.find("inputs");
  if (inputs == j.end() || !inputs->is_array() || inputs->empty())
    bad("\"inputs\" must be a non-empty array of tensors");
  int64_t total = 0;
  for (size_t i = 0; i < inputs->size(); ++i) {
    const json& t = (*inputs)[i];
    const std::string what = fmt::format("inputs[{}]", i);
    if (!t.is_object()) bad(what + " must be an object");
    V2Tensor v;
    const auto name = t.find("name"), dtype = t.find("datatype"), shape = t.find("shape"),
               data = t.find("data");
    if (name == t.end() || !name->is_string()) bad(what + ".name must be a string");
    v.name = name->get<std::string>();
    if (dtype == t.end() || !dtype->is_string()) bad(what + ".datatype must be a string");
    v.datatype = dtype->get<std::string>();
    if (v.datatype != "FP32" && v.datatype != "FP64" && v.datatype != "INT32" && v.datatype != "INT64")
      bad(fmt::format("{}.datatype {} is not supported (FP32, FP64, INT32, INT64)", what, v.datatype));
    if (shape == t.end() || !shape->is_array() || shape->empty() || shape->size() > 8)
      bad(what + ".shape must be an array of 1 to 8 dimensions");
    int64_t count = 1;
    for (const json& d : *shape) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0)
        bad(fmt::format("{}.shape {} must hold non-negative integers", what, shape->dump()));
      const int64_t n = d.get<int64_t>();
      if (n > 0 && count > lim.max_values / n)
        throw RequestError(413, fmt::format("{}.shape {} is over the limit of {} values", what,
                                            shape->dump(), lim.max_values));
      count *= n;
      v.shape.push_back(n);
    }
    if (v.shape[0] > lim.max_items)
      throw RequestError(413, fmt::format("{}: {} items, over the limit of {} per request", what,
                                          v.shape[0], lim.max_items));
    total += count;
    if (total > lim.max_values)
      throw RequestError(413, fmt::format("{} values in the request, over the limit of {}", total,
                                          lim.max_values));
    if (data == t.end() || !data->is_array()) bad(what + ".data must be an array");
    // Reserved for what the body holds, not what the shape claims: [256,3,224,224] with no data
    // must not allocate 154 MB before the count check refuses it (found by fuzz/v2_infer_fuzz).
    v.data.reserve(std::min(size_t(count), data->size()));
    if (!data->empty() && (*data)[0].is_array())  // nested [N][C][H][W]
      flatten_nested(*data, v.shape, 0, what, v.data);
    else
      for (const json& e : *data) push_number(e, what, v.data);
    if (int64_t(v.data.size()) != count)
      bad(fmt::format("{}: data holds {} values, shape {} needs {}", what, v.data.size(),
                      shape->dump(), count));
    r.inputs.push_back(std::move(v));
  }
  return r;
}

ClassifyRequest decode_classify(std::string_view body, std::string_view content_type,
                                std::string_view top_param, const DecodeLimits& lim) {
  ClassifyRequest r;
  int64_t pixels = 0;
  const std::string type = media_type(content_type);
  if (type == "image/png") {
    r.images.push_back(decode_image(body, "the body", lim, &pixels));
    r.pngs.emplace_back(body);
  } else if (type == "application/json") {
    const json j = parse_json(body);
    r.top = get_int(j, "top", r.top, 1, 1000);
    const auto one = j.find("png"), many = j.find("pngs");
    if ((one == j.end()) == (many == j.end())) bad("give exactly one of \"png\" or \"pngs\"");
    if (one != j.end()) {
      r.pngs.push_back(get_base64_png_field(*one, "\"png\""));
      r.images.push_back(decode_image(r.pngs.back(), "\"png\"", lim, &pixels));
    } else {
      if (!many->is_array() || many->empty()) bad("\"pngs\" must be a non-empty array");
      if (int64_t(many->size()) > lim.max_items)
        throw RequestError(413, fmt::format("{} images, over the limit of {} per request",
                                            many->size(), lim.max_items));
      for (size_t i = 0; i < many->size(); ++i) {
        const std::string what = fmt::format("\"pngs\"[{}]", i);
        r.pngs.push_back(get_base64_png_field((*many)[i], what));
        r.images.push_back(decode_image(r.pngs.back(), what, lim, &pixels));
      }
    }
  } else {
    throw RequestError(415, fmt::format("Content-Type '{}' is not supported: send image/png or "
                                        "application/json", content_type));
  }
  if (!top_param.empty()) r.top = parse_top(top_param);
  return r;
}

ClassifyTextRequest decode_classify_text(std::string_view body, std::string_view top_param,
                                         const DecodeLimits& lim) {
  const json j = parse_json(body);  // invalid UTF-8 in a string is a parse error
  ClassifyTextRequest r;
  r.top = get_int(j, "top", r.top, 1, 1000);
  const auto one = j.find("text"), many = j.find("texts");
  if ((one == j.end()) == (many == j.end())) bad("give exactly one of \"text\" or \"texts\"");
  std::vector<std::pair<const json*, std::string>> items;
  if (one != j.end()) {
    items.emplace_back(&*one, "\"text\"");
  } else {
    if (!many->is_array() || many->empty()) bad("\"texts\" must be a non-empty array of strings");
    if (int64_t(many->size()) > lim.max_items)
      throw RequestError(413, fmt::format("{} texts, over the limit of {} per request", many->size(), lim.max_items));
    for (size_t i = 0; i < many->size(); ++i) items.emplace_back(&(*many)[i], fmt::format("\"texts\"[{}]", i));
  }
  for (const auto& [v, what] : items) {
    if (!v->is_string()) bad(fmt::format("{} must be a string, got {}", what, v->type_name()));
    const std::string& text = v->get_ref<const std::string&>();
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) bad(fmt::format("{} is empty", what));
    if (int64_t(text.size()) > lim.max_text_bytes)
      throw RequestError(413, fmt::format("{}: {} bytes, over the limit of {}", what, text.size(), lim.max_text_bytes));
    r.texts.push_back(text);
  }
  if (!top_param.empty()) r.top = parse_top(top_param);
  return r;
}

TranslateRequest decode_translate(std::string_view body, const DecodeLimits& lim) {
  const json j = parse_json(body);
  TranslateRequest r;
  const auto inputs = j.find("inputs");
  if (inputs == j.end() || !inputs->is_array() || inputs->empty())
    bad("\"inputs\" must be a non-empty array of strings");
  if (int64_t(inputs->size()) > lim.max_items)
    throw RequestError(413, fmt::format("{} inputs, over the limit of {} per request",
                                        inputs->size(), lim.max_items));
  for (size_t i = 0; i < inputs->size(); ++i) {
    const json& s = (*inputs)[i];
    if (!s.is_string()) bad(fmt::format("inputs[{}] must be a string, got {}", i, s.type_name()));
    const std::string& text = s.get_ref<const std::string&>();
    if (int64_t(text.size()) > lim.max_text_bytes)
      throw RequestError(413, fmt::format("inputs[{}]: {} bytes, over the limit of {}", i,
                                          text.size(), lim.max_text_bytes));
    r.inputs.push_back(text);
  }
  r.search.beam = get_int(j, "beam", 1, 1, 16);
  r.search.nbest = get_int(j, "nbest", 1, 1, r.search.beam);
  r.search.max_len = get_int(j, "max_len", 0, 0, 4096);
  if (const auto lp = j.find("length_penalty"); lp != j.end()) {
    if (!lp->is_number() || lp->get<double>() < 0 || lp->get<double>() > 10)
      bad("\"length_penalty\" must be a number in [0, 10]");
    r.search.length_penalty = lp->get<double>();
  }
  return r;
}

RecommendRequest decode_recommend(std::string_view body, const DecodeLimits& lim) {
  const json j = parse_json(body);
  RecommendRequest r;
  const auto h = j.find("history");
  if (h == j.end() || !h->is_array() || h->empty())
    bad("\"history\" must be a non-empty array of item ids (strings or integers)");
  if (int64_t(h->size()) > lim.max_items)
    throw RequestError(413, fmt::format("{} history items, over the limit of {} per request", h->size(), lim.max_items));
  for (size_t i = 0; i < h->size(); ++i) {
    const json& v = (*h)[i];
    if (v.is_string() && !v.get_ref<const std::string&>().empty() &&
        int64_t(v.get_ref<const std::string&>().size()) <= lim.max_text_bytes)
      r.history.push_back(v.get<std::string>());
    else if (v.is_number_integer())
      r.history.push_back(v.dump());
    else
      bad(fmt::format("history[{}] must be an item id (a non-empty string or an integer), got {}", i, v.dump().substr(0, 64)));
  }
  r.k = get_int(j, "k", 10, 1, 1000);
  return r;
}

ExplainRequest decode_explain(std::string_view body, std::string_view content_type,
                              bool image_model, const DecodeLimits& lim) {
  ExplainRequest r;
  int64_t pixels = 0;
  const std::string type = media_type(content_type);
  if (type == "image/png") {
    if (!image_model) bad("this model takes text: send JSON {\"input\": \"...\"}");
    r.image = decode_image(body, "the body", lim, &pixels);
    return r;
  }
  if (type != "application/json")
    throw RequestError(415, fmt::format("Content-Type '{}' is not supported: send image/png or "
                                        "application/json", content_type));
  const json j = parse_json(body);
  if (image_model) {
    const auto png = j.find("png");
    if (png == j.end()) bad("\"png\" (a base64 PNG) is required");
    r.image = decode_image(get_base64_png_field(*png, "\"png\""), "\"png\"", lim, &pixels);
  } else {
    const auto in = j.find("input");
    if (in == j.end() || !in->is_string()) bad("\"input\" (a string) is required");
    r.text = in->get<std::string>();
    if (int64_t(r.text.size()) > lim.max_text_bytes)
      throw RequestError(413, fmt::format("\"input\": {} bytes, over the limit of {}",
                                          r.text.size(), lim.max_text_bytes));
  }
  if (const auto m = j.find("method"); m != j.end()) {
    if (!m->is_string()) bad("\"method\" must be a string");
    r.method = m->get<std::string>();
  }
  r.layer = get_int(j, "layer", -1, -1, 1024);
  r.head = get_int(j, "head", -1, -1, 1024);
  r.target = get_int(j, "target", -1, -1, 1 << 20);
  if (const auto m = j.find("maps"); m != j.end()) {
    if (!m->is_boolean()) bad("\"maps\" must be true or false");
    r.maps = m->get<bool>();
  }
  return r;
}

}  // namespace focus
