// The endpoints of focus serve (docs/SERVING.md): health, V2 metadata and inference, the /v1
// classify / translate / explain endpoints, the model list, repository reload and /metrics.
// Every handler runs inside guarded(): a caller's mistake becomes a 4xx naming it, anything else
// a 500 with the message; the process survives.
#include <algorithm>
#include <string_view>

#include "focus/data/png.hpp"
#include "focus/explain/image_explain.hpp"
#include "focus/explain/render.hpp"
#include "focus/explain/seq2seq_explain.hpp"
#include "focus/io/base64.hpp"
#include "focus/serve/server_impl.hpp"

namespace focus {
namespace {

// Matches `path` against a pattern of segments where `*` takes one non-empty segment; the taken
// segments go to `captures` after the whole path (so captures[1] is the first `*`, as a regex
// group would be). No regex: this runs on the event thread for every request.
bool match_path(std::string_view pattern, std::string_view path, std::vector<std::string>& captures) {
  captures.assign(1, std::string(path));
  size_t p = 0, q = 0;
  while (p < pattern.size() && q < path.size()) {
    if (pattern[p] == '*') {
      const size_t end = path.find('/', q);
      const size_t stop = end == std::string_view::npos ? path.size() : end;
      if (stop == q) return false;
      captures.emplace_back(path.substr(q, stop - q));
      q = stop, ++p;
    } else {
      if (pattern[p] != path[q]) return false;
      ++p, ++q;
    }
  }
  return p == pattern.size() && q == path.size();
}

}  // namespace

void Server::Impl::routes() {
  // A route's patterns (match_path: `*` is one segment, the model's name first).
  const auto add = [this](const char* method, std::vector<std::string> patterns, std::function<void(Ctx&)> fn,
                          unsigned work_role = 0) {
    route_table.push_back({method, std::move(patterns), work_role, std::move(fn)});
  };
  add("GET", {"/v2/health/live"}, [this](Ctx& c) { reply(c, 200, {{"live", true}}); });
  add("GET", {"/v2/health/ready"}, [this](Ctx& c) {
    const bool ok = ready && !draining;
    reply(c, ok ? 200 : 503, {{"ready", ok}});
  });
  add("GET", {"/v2"}, [this](Ctx& c) {
    reply(c, 200, {{"name", "focus"}, {"version", FOCUS_VERSION}, {"extensions", json::array()}});
  });
  add("GET", {"/v2/models/*", "/v2/models/*/versions/*"}, [this](Ctx& c) {
    if (!authorize(c, 0)) return;
    if (auto m = find_model(c, c.req.matches[1])) reply(c, 200, m->metadata());
  });
  add("GET", {"/v2/models/*/ready", "/v2/models/*/versions/*/ready"}, [this](Ctx& c) {
    if (!authorize(c, 0)) return;
    if (auto m = find_model(c, c.req.matches[1]))
      reply(c, ready && !draining ? 200 : 503, {{"name", m->name}, {"ready", ready && !draining}});
  });
  add("POST", {"/v2/models/*/infer", "/v2/models/*/versions/*/infer"}, [this](Ctx& c) { infer_v2(c, c.req.matches[1]); },
      kRoleInfer);
  add("POST", {"/v1/models/*/classify"}, [this](Ctx& c) { classify(c, c.req.matches[1]); }, kRoleInfer);
  add("POST", {"/v1/models/*/translate"}, [this](Ctx& c) { translate(c, c.req.matches[1]); }, kRoleInfer);
  add("POST", {"/v1/models/*/recommend"}, [this](Ctx& c) { recommend(c, c.req.matches[1]); }, kRoleInfer);
  add("POST", {"/v1/models/*/explain"}, [this](Ctx& c) { explain(c, c.req.matches[1]); }, kRoleExplain);
  add("GET", {"/v1/models"}, [this](Ctx& c) {
    if (!authorize(c, 0)) return;
    json list = json::array();
    std::lock_guard<std::mutex> lock(models_mu);
    for (const auto& [name, m] : models) list.push_back(m->summary());
    reply(c, 200, {{"models", list}});
  });
  add("POST", {"/v2/repository/models/*/load"}, [this](Ctx& c) { repository_load(c, c.req.matches[1]); });
  add("POST", {"/v2/repository/index"}, [this](Ctx& c) {
    if (!authorize(c, kRoleAdmin)) return;
    json list = json::array();
    std::lock_guard<std::mutex> lock(models_mu);
    for (const auto& [name, m] : models)
      list.push_back({{"name", name}, {"version", m->version}, {"state", "READY"}});
    reply(c, 200, list);
  });
  add("GET", {"/metrics"}, [this](Ctx& c) {
    if (!authorize(c, kRoleMetrics)) return;
    if (review) review->refresh_metrics();
    finish(c, 200, metrics.render(), "text/plain; version=0.0.4");
  });
  if (review) review_routes();
}

// On the event thread, before the body is read: the route, the drain, the size limit, and for
// work routes the key, the model and admission. True when it has answered.
bool Server::Impl::screen(Req& req, Res& res) {
  Ctx c(req, res);
  bool path_known = false;
  for (size_t i = 0; i < route_table.size() && req.route < 0; ++i) {
    for (const std::string& pattern : route_table[i].patterns) {
      if (!match_path(pattern, req.path, req.matches)) continue;
      path_known = true;
      if (route_table[i].method == req.method) req.route = int(i);
      break;
    }
  }
  if (req.route < 0) {
    if (path_known) {
      refuse(c, 405, "bad_request", fmt::format("{} does not take {} (see docs/SERVING.md)", req.path, req.method));
    } else {
      refuse(c, 404, "not_found", fmt::format("no endpoint {} {} (see docs/SERVING.md)", req.method, req.path));
    }
    return true;
  }
  // While draining, new work is refused before its body is read.
  if (draining && req.method != "GET") {
    refuse(c, 503, "draining", "the server is shutting down");
    return true;
  }
  if (req.too_large) {
    refuse(c, 413, "too_large", fmt::format("request body over the limit of {} bytes", opt.max_body_bytes));
    return true;
  }
  const Route& r = route_table[size_t(req.route)];
  if (!r.work_role) return false;
  std::shared_ptr<Admitted> a;
  guarded(c, [&](Ctx& cc) { a = screen_work(cc, req.matches[1], r.work_role); });
  if (!a) return true;
  req.state = std::move(a);
  return false;
}

// On a handler thread, with the body: the route's function.
void Server::Impl::handle(Req& req, Res& res) {
  Ctx c(req, res);
  if (req.too_large) {  // a body without Content-Length that grew past the limit
    refuse(c, 413, "too_large", fmt::format("request body over the limit of {} bytes", opt.max_body_bytes));
    return;
  }
  c.rec.bytes_in = int64_t(req.body.size());
  guarded(c, route_table[size_t(req.route)].fn);
}

void Server::Impl::infer_v2(Ctx& c, const std::string& name) {
  SteadyClock::time_point deadline;
  Place* place = nullptr;
  const auto m = begin_work(c, deadline, place);
  if (!m) return;
  if (m->kind != ModelKind::Image)
    throw RequestError(400, fmt::format("model '{}' is {}: use POST /v1/models/{}/{}", name,
                                        model_kind_phrase(m->kind), name, model_kind_endpoint(m->kind)));
  V2InferRequest r = decode_v2_infer(c.req.body, limits);
  if (r.inputs.size() != 1)
    throw RequestError(400, fmt::format("the model takes one input tensor (\"pixels\"), got {}", r.inputs.size()));
  const V2Tensor& t = r.inputs[0];
  const ImagePredictor& p = *m->image;
  const std::vector<int64_t> want = {p.channels(), p.image_size(), p.image_size()};
  if (t.shape.size() != 4 || !std::equal(want.begin(), want.end(), t.shape.begin() + 1) || t.shape[0] < 1)
    throw RequestError(400, fmt::format("inputs[0].shape {} must be [N, {}, {}, {}] with N >= 1",
                                        json(t.shape).dump(), want[0], want[1], want[2]));
  auto job = make_job(c, m, deadline);
  job->batch_key = "image";
  job->items = t.shape[0];
  job->pixels = Tensor::from_vector(t.data, t.shape);  // (N, C, S, S)
  place->decoded();
  // No thread waits for the batch: its executor writes the answer (a few microseconds).
  run_job_deferred(c, job, [this, name, version = m->version, id = std::move(r.id)](Ctx& cc, Job& j) {
    const int64_t K = j.probs.size(1);
    json out = {{"model_name", name},
                {"model_version", version},
                {"outputs", {{{"name", "probabilities"}, {"datatype", "FP32"}, {"shape", {j.items, K}},
                              {"data", j.probs.to_vector<float>()}}}}};
    if (!id.empty()) out["id"] = id;
    reply(cc, 200, out);
  });
}

namespace {

// The explanation drawn over the image the model saw, as a PNG data URL. pixels (1, C, S, S).
std::string overlay_data_url(const ImagePredictor& p, const Tensor& pixels, const Tensor& relevance) {
  Image shown = make_image(p.channels(), p.image_size(), p.image_size());
  const std::vector<float> px = pixels.to_vector<float>();
  shown.data.assign(px.begin(), px.end());
  return "data:image/png;base64," + base64_encode(encode_png(heatmap_overlay(shown, relevance)));
}

// What a classification answer says of its routing: the model's answer, or a ticket.
void route_answer(json& pred, const ReviewDesk::Routed& rt) {
  pred["error_score"] = rt.score;
  if (rt.ticket) {
    pred["status"] = "pending_review";
    pred["ticket"] = rt.ticket;
    pred["decided_by"] = "model_provisional";
    if (rt.decision == ReviewDesk::Decision::Audit) pred["audit"] = true;
  } else {
    pred["status"] = "done";
    pred["decided_by"] = "model";
    if (rt.decision == ReviewDesk::Decision::QueueFull) pred["review"] = "queue_full";
  }
}

}  // namespace

void Server::Impl::classify(Ctx& c, const std::string& name) {
  SteadyClock::time_point deadline;
  Place* place = nullptr;
  const auto m = begin_work(c, deadline, place);
  if (!m) return;
  const std::string top_param = c.req.has_param("top") ? c.req.get_param_value("top") : "";
  if (m->kind == ModelKind::Text) return classify_text(c, m, deadline, place, top_param);
  if (m->kind != ModelKind::Image)
    throw RequestError(400, fmt::format("model '{}' is {}: use POST /v1/models/{}/{}", name,
                                        model_kind_phrase(m->kind), name, model_kind_endpoint(m->kind)));
  ClassifyRequest r = decode_classify(c.req.body, header(c.req, "Content-Type"), top_param, limits);
  auto job = make_job(c, m, deadline);
  job->batch_key = "image";
  job->items = int64_t(r.images.size());
  job->pixels = m->image->pixels(r.images);  // (N, C, S, S)
  place->decoded();
  if (!run_job(c, job)) return;
  const std::vector<std::string>& names = m->image->info().class_names;
  const int64_t K = job->probs.size(1), top = std::min<int64_t>(r.top, K);
  const std::vector<float> probs = job->probs.to_vector<float>();  // (N, K)
  const std::string request_id = header(c.req, "X-Request-Id");
  json preds = json::array();
  for (int64_t n = 0; n < job->items; ++n) {
    std::vector<int64_t> order(static_cast<size_t>(K));
    for (int64_t k = 0; k < K; ++k) order[size_t(k)] = k;
    const float* row = probs.data() + n * K;
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return row[a] > row[b]; });
    json t = json::array();
    for (int64_t i = 0; i < top; ++i) {
      const int64_t k = order[size_t(i)];
      t.push_back({{"index", k}, {"name", size_t(k) < names.size() ? names[size_t(k)] : std::to_string(k)},
                   {"prob", row[k]}});
    }
    json pred = {{"top", t}};
    if (review) {  // the model answers, or people do (a ticket, the model's answer provisional)
      const std::string id = request_id.empty() ? random_request_id() : fmt::format("{}#{}", request_id, n);
      ReviewDesk::Evidence ev;
      if (opt.review_evidence) ev = [this, &m, &r, n] { return evidence(m, r.images[size_t(n)]); };
      const ReviewDesk::Routed rt = review->route(name, m->version, id, {r.pngs[size_t(n)], "image/png"},
                                                  std::span<const float>(row, size_t(K)), names, ev);
      route_answer(pred, rt);
    }
    preds.push_back(std::move(pred));
  }
  reply(c, 200, {{"model", name}, {"model_version", m->version}, {"predictions", preds}});
}

// The explanation a deferred item is queued with (the reviewer page's evidence): the image's
// attention rollout (ViT) or Grad-CAM (CNN) overlay, computed through the scheduler like any
// explain request. Throws when it cannot run within 5 s (the item is then queued without it).
json Server::Impl::evidence(const std::shared_ptr<const ServedModel>& m, const Image& image) {
  auto job = std::make_shared<Job>();  // no request of its own: runs alone, outside the SLO
  job->model = m;
  job->deadline = SteadyClock::now() + std::chrono::seconds(5);
  job->batch_key = "explain";
  const Tensor pixels = m->image->pixels({image});  // (1, C, S, S)
  json result;
  job->run_alone = [&result, pixels](Job& j) {
    const ImagePredictor& p = *j.model->image;
    const Tensor x = p.normalized(pixels);
    const auto methods = image_methods_for(p.model(), x);
    ImageExplainOptions o;  // rollout where the model has attention maps
    if (std::find(methods.begin(), methods.end(), o.method) == methods.end()) o.method = methods.front();
    const ImageExplanation e = explain_image(p.model(), x, o);
    result = {{"method", image_method_name(e.method)}, {"png", overlay_data_url(p, pixels, e.relevance)}};
  };
  job->admitted = SteadyClock::now();
  if (sched->submit(job) != Admit::Ok) throw StateError("the model's queue is full or draining");
  if (!job->wait_until(job->deadline) && job->cancel()) throw StateError("it did not start within 5 s");
  job->wait_until(SteadyClock::time_point::max());
  if (job->status != 0) throw StateError(job->error);
  return result;
}

// A text classifier's answer: per text its top classes (calibrated probabilities), its tokens and
// the attention-pooling weight of each token (the model's own account of what it read). With a
// review queue, texts are routed as images are, queued with their tokens and pooling weights.
void Server::Impl::classify_text(Ctx& c, const std::shared_ptr<const ServedModel>& m,
                                 SteadyClock::time_point deadline, Place* place, const std::string& top_param) {
  ClassifyTextRequest r = decode_classify_text(c.req.body, top_param, limits);
  if (log.log_inputs()) c.rec.inputs = r.texts;
  auto job = make_job(c, m, deadline);
  job->batch_key = "text";
  job->items = int64_t(r.texts.size());
  job->texts = r.texts;
  const std::vector<std::string>& texts = r.texts;
  const std::string request_id = header(c.req, "X-Request-Id");
  place->decoded();
  if (!run_job(c, job)) return;
  const std::vector<std::string>& names = m->text->info().class_names;
  json preds = json::array();
  for (const TextPrediction& p : job->text_predictions) {
    std::vector<size_t> order(p.probs.size());
    for (size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p.probs[a] > p.probs[b]; });
    json top = json::array();
    for (size_t i = 0; i < std::min<size_t>(size_t(r.top), order.size()); ++i)
      top.push_back({{"index", order[i]}, {"name", order[i] < names.size() ? names[order[i]] : std::to_string(order[i])},
                     {"prob", p.probs[order[i]]}});
    json pred = {{"top", top}, {"tokens", p.tokens}, {"pooling", p.pooling}};
    if (review) {  // as for images: the model answers, or people do; the evidence is the pooling
      const size_t n = size_t(preds.size());
      const std::string id = request_id.empty() ? random_request_id() : fmt::format("{}#{}", request_id, n);
      const std::vector<float> row(p.probs.begin(), p.probs.end());
      const json evidence = {{"method", "pooling"}, {"tokens", p.tokens}, {"weights", p.pooling}};
      const ReviewDesk::Routed rt = review->route(m->name, m->version, id, {texts[n], "text/plain; charset=utf-8"},
                                                  row, names, [&evidence] { return evidence; });
      route_answer(pred, rt);
    }
    preds.push_back(std::move(pred));
  }
  reply(c, 200, {{"model", m->name}, {"model_version", m->version}, {"predictions", preds}});
}

void Server::Impl::translate(Ctx& c, const std::string& name) {
  SteadyClock::time_point deadline;
  Place* place = nullptr;
  const auto m = begin_work(c, deadline, place);
  if (!m) return;
  if (m->kind != ModelKind::Seq2Seq)
    throw RequestError(400, fmt::format("model '{}' is {}: use POST /v1/models/{}/{}", name,
                                        model_kind_phrase(m->kind), name, model_kind_endpoint(m->kind)));
  TranslateRequest r = decode_translate(c.req.body, limits);
  if (log.log_inputs()) c.rec.inputs = r.inputs;
  auto job = make_job(c, m, deadline);
  job->items = int64_t(r.inputs.size());
  for (size_t i = 0; i < r.inputs.size(); ++i) job->sources.push_back(m->translator->encode(r.inputs[i], i));
  job->texts = std::move(r.inputs);
  job->search = r.search;
  job->batch_key = fmt::format("beam={} nbest={} lp={} max_len={}", r.search.beam, r.search.nbest,
                               r.search.length_penalty, r.search.max_len);
  place->decoded();
  if (!run_job(c, job)) return;
  json outs = json::array();
  for (const Translation& t : job->translations) {
    json nbest = json::array();
    for (const TranslationHypothesis& h : t.nbest)
      nbest.push_back({{"text", h.text}, {"score", h.score}, {"log_prob", h.log_prob}, {"finished", h.finished}});
    outs.push_back({{"input", t.input}, {"output", t.nbest.empty() ? "" : t.nbest[0].text}, {"nbest", nbest}});
  }
  reply(c, 200, {{"model", name}, {"model_version", m->version}, {"translations", outs}});
}

void Server::Impl::explain(Ctx& c, const std::string& name) {
  SteadyClock::time_point deadline;
  Place* place = nullptr;
  const auto m = begin_work(c, deadline, place);
  if (!m) return;
  if (m->kind == ModelKind::Recsys)
    throw RequestError(400, fmt::format("model '{}' is a recsys model: it has no explanations; use POST /v1/models/{}/recommend", name, name));
  const bool image = m->kind == ModelKind::Image;
  ExplainRequest r = decode_explain(c.req.body, header(c.req, "Content-Type"), image, limits);
  if (m->kind == ModelKind::Text) {  // token importance from the attention pooling
    if (r.text.find_first_not_of(" \t\r\n") == std::string::npos) throw RequestError(400, "\"input\" is empty");
    if (log.log_inputs()) c.rec.inputs = {r.text};
    auto job = make_job(c, m, deadline);
    job->batch_key = "text";
    job->texts = {r.text};
    place->decoded();
    if (!run_job(c, job)) return;
    const TextPrediction& p = job->text_predictions.at(0);
    const std::vector<std::string>& names = m->text->info().class_names;
    const size_t best = size_t(p.label);
    reply(c, 200, {{"model", name}, {"model_version", m->version}, {"method", "pooling"},
                   {"predicted", p.label}, {"target_name", best < names.size() ? names[best] : std::to_string(best)},
                   {"probabilities", p.probs}, {"tokens", p.tokens}, {"relevance", p.pooling}});
    return;
  }
  auto job = make_job(c, m, deadline);
  json result;
  if (image) {
    ImageExplainOptions eo;
    if (!r.method.empty()) eo.method = parse_image_method(r.method);
    eo.layer = r.layer, eo.head = r.head, eo.target = r.target;
    const Tensor pixels = m->image->pixels({r.image});  // (1, C, S, S)
    job->run_alone = [&result, &r, eo, pixels](Job& j) {
      const ImagePredictor& p = *j.model->image;
      const Tensor x = p.normalized(pixels);
      const auto methods = image_methods_for(p.model(), x);
      ImageExplainOptions o = eo;
      if (std::find(methods.begin(), methods.end(), o.method) == methods.end()) o.method = methods.front();
      const ImageExplanation e = explain_image(p.model(), x, o);
      json j2 = {{"method", image_method_name(e.method)}, {"target", e.target}, {"predicted", e.predicted},
                 {"probabilities", e.probs}, {"relevance", json::array()}};
      const int64_t gh = e.relevance.size(0), gw = e.relevance.size(1);
      const std::vector<float> rel = e.relevance.contiguous().to_vector<float>();
      for (int64_t y = 0; y < gh; ++y) j2["relevance"].push_back(std::vector<float>(rel.begin() + y * gw, rel.begin() + (y + 1) * gw));
      const std::vector<std::string>& names = p.info().class_names;
      if (size_t(e.target) < names.size()) j2["target_name"] = names[size_t(e.target)];
      j2["png"] = overlay_data_url(p, pixels, e.relevance);
      if (r.maps) j2["maps"] = attention_maps_json(e.maps);
      result = std::move(j2);
    };
  } else {
    if (log.log_inputs()) c.rec.inputs = {r.text};
    m->translator->encode(r.text, 0);  // InputError now, before queueing
    job->run_alone = [&result, &r](Job& j) {
      SearchOptions so;
      const AlignmentExplanation e = explain_translation(*j.model->translator, r.text, so);
      json j2 = alignment_to_json(e);
      if (!r.maps) {
        j2.erase("cross");
        j2.erase("decoder_self");
        j2.erase("encoder_self");
      }
      const Tensor map = pick_map(e.cross, r.layer, r.head);  // (T, S)
      j2["alignment"] = json::array();
      const std::vector<float> v = map.contiguous().to_vector<float>();
      for (int64_t t = 0; t < map.size(0); ++t)
        j2["alignment"].push_back(std::vector<float>(v.begin() + t * map.size(1), v.begin() + (t + 1) * map.size(1)));
      result = std::move(j2);
    };
  }
  job->batch_key = "explain";
  place->decoded();
  if (!run_job(c, job)) return;
  result["model"] = name;
  result["model_version"] = m->version;
  reply(c, 200, result);
}

// A recommender's answer: the top k items after the history, its own items excluded. The model
// runs the job alone (one history, one forward).
void Server::Impl::recommend(Ctx& c, const std::string& name) {
  SteadyClock::time_point deadline;
  Place* place = nullptr;
  const auto m = begin_work(c, deadline, place);
  if (!m) return;
  if (m->kind != ModelKind::Recsys)
    throw RequestError(400, fmt::format("model '{}' is {}: use POST /v1/models/{}/{}", name,
                                        model_kind_phrase(m->kind), name, model_kind_endpoint(m->kind)));
  RecommendRequest r = decode_recommend(c.req.body, limits);
  if (log.log_inputs()) c.rec.inputs = r.history;
  m->recsys->item_indices(r.history);  // InputError (an unknown item: 400) now, before queueing
  auto job = make_job(c, m, deadline);
  std::vector<Recommendation> out;
  job->run_alone = [&out, &r](Job& j) { out = j.model->recsys->recommend(r.history, r.k); };
  place->decoded();
  if (!run_job(c, job)) return;
  json items = json::array();
  for (const Recommendation& x : out)
    items.push_back({{"item", x.item}, {"score", x.score}, {"probability", x.probability}});
  reply(c, 200, {{"model", name}, {"model_version", m->version}, {"k", r.k},
                 {"history_length", r.history.size()}, {"items", items}});
}

}  // namespace focus
