// Loading a model for serving (see served_model.hpp).
#include "focus/serve/served_model.hpp"

#include <chrono>
#include <fstream>
#include <iterator>
#include <optional>

#include "focus/infer/file_metadata.hpp"
#include "focus/io/sha256.hpp"
#include "focus/kernels/cpu.hpp"

namespace focus {

std::shared_ptr<const ServedModel> load_served_model(const std::string& name,
                                                     const std::string& path,
                                                     const ServedModelOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  auto m = std::make_shared<ServedModel>();
  m->name = name;
  m->path = path;
  const std::string format = model_file_format(path);  // IOError / FormatError for bad files
  if (format.rfind("focus-seq2seq/", 0) == 0) {
    m->kind = ModelKind::Seq2Seq;
    TranslatorOptions to;
    to.weights = opt.weights;
    m->translator = std::make_unique<Translator>(path, to);
  } else if (LoadedClassifier lc = load_classifier(path); lc.model->input_kind() == "text") {
    m->kind = ModelKind::Text;
    m->text = std::make_unique<TextPredictor>(std::move(lc));
  } else if (lc.model->input_kind() == "items") {
    m->kind = ModelKind::Recsys;
    m->recsys = std::make_unique<Recommender>(std::move(lc), path);
  } else {
    m->kind = ModelKind::Image;
    ImagePredictorOptions io;
    io.max_batch = opt.max_batch;
    io.weights = opt.image_ladder.empty() ? opt.image_weights : opt.image_ladder[0];
    m->image = std::make_unique<ImagePredictor>(as_image_model(std::move(lc), path), io);
    for (size_t i = 1; i < opt.image_ladder.size(); ++i) {
      io.weights = opt.image_ladder[i];
      m->faster.push_back(std::make_unique<ImagePredictor>(path, io));
    }
    for (int r = 1; r < opt.replicas; ++r)
      for (int k = 0; k < m->rungs(); ++k) {
        io.weights = opt.image_ladder.empty() ? opt.image_weights : opt.image_ladder[size_t(k)];
        m->copies.push_back(std::make_unique<ImagePredictor>(path, io));
      }
    // Every batch size built now, on the threads the batches will run on: no request waits for
    // a compilation, memory does not grow under load (the load time includes it).
    std::optional<ScopedThreads> threads;
    if (opt.replica_threads > 0) threads.emplace(opt.replica_threads);
    for (int r = 0; r < m->replicas(); ++r)
      for (int k = 0; k < m->rungs(); ++k) m->image_rung(k, r).warm_up();
  }
  {
    std::ifstream f(path, std::ios::binary);
    FOCUS_CHECK(f, IOError, "{}: cannot reopen to hash it", path);
    Sha256 h;
    char buf[1 << 16];
    while (f.read(buf, sizeof(buf)) || f.gcount() > 0) h.update(buf, size_t(f.gcount()));
    m->file_sha256 = h.hex();
  }
  m->version = m->file_sha256.substr(0, 12);
  m->load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return m;
}

const char* model_kind_name(ModelKind k) {
  return k == ModelKind::Image ? "image" : k == ModelKind::Text ? "text" : k == ModelKind::Seq2Seq ? "seq2seq" : "recsys";
}

const char* model_kind_phrase(ModelKind k) {
  return k == ModelKind::Image ? "an image classifier" : k == ModelKind::Text ? "a text classifier"
         : k == ModelKind::Seq2Seq ? "a seq2seq model" : "a recommender";
}

const char* model_kind_endpoint(ModelKind k) {
  return k == ModelKind::Seq2Seq ? "translate" : k == ModelKind::Recsys ? "recommend" : "classify";
}

nlohmann::json ServedModel::metadata() const {
  nlohmann::json j = {{"name", name}, {"versions", {version}}, {"platform", "focus"}};
  if (kind == ModelKind::Image) {
    j["inputs"] = {{{"name", "pixels"}, {"datatype", "FP32"},
                    {"shape", {-1, image->channels(), image->image_size(), image->image_size()}}}};
    j["outputs"] = {{{"name", "probabilities"}, {"datatype", "FP32"}, {"shape", {-1, image->num_classes()}}}};
  } else if (kind == ModelKind::Recsys) {
    j["inputs"] = {{{"name", "history"}, {"datatype", "BYTES"}, {"shape", {-1}}}};
    j["outputs"] = {{{"name", "items"}, {"datatype", "BYTES"}, {"shape", {-1}}}};
  } else if (kind == ModelKind::Text) {
    j["inputs"] = {{{"name", "text"}, {"datatype", "BYTES"}, {"shape", {-1}}}};
    j["outputs"] = {{{"name", "probabilities"}, {"datatype", "FP32"}, {"shape", {-1, text->num_classes()}}}};
  } else {
    j["inputs"] = {{{"name", "text"}, {"datatype", "BYTES"}, {"shape", {-1}}}};
    j["outputs"] = {{{"name", "text"}, {"datatype", "BYTES"}, {"shape", {-1}}}};
  }
  return j;
}

nlohmann::json ServedModel::summary() const {
  nlohmann::json j = {{"name", name}, {"version", version}, {"sha256", file_sha256},
                      {"load_seconds", load_seconds}};
  if (kind == ModelKind::Image) {
    j["kind"] = "image-classifier";
    j["endpoints"] = {"classify", "explain", "v2-infer"};
    j["classes"] = image->info().class_names;
    j["input"] = {image->channels(), image->image_size(), image->image_size()};
    j["weights"] = image->weights();
    if (!faster.empty()) {
      j["slo_ladder"] = {image->weights()};
      for (const auto& f : faster) j["slo_ladder"].push_back(f->weights());
    }
  } else if (kind == ModelKind::Recsys) {
    j["kind"] = "recommender";
    j["endpoints"] = {"recommend"};
    j["items"] = recsys->num_items();
    j["max_history"] = recsys->max_len();
  } else if (kind == ModelKind::Text) {
    j["kind"] = "text-classifier";
    j["endpoints"] = {"classify", "explain"};
    j["classes"] = text->info().class_names;
    j["max_tokens"] = text->max_len();
  } else {
    j["kind"] = "seq2seq";
    j["task"] = translator->task();
    j["endpoints"] = {"translate", "explain"};
    const DType w = translator->weights();
    j["weights"] = w == DType::I8 ? "int8" : w == DType::BF16 ? "bf16" : "f32";
  }
  return j;
}

}  // namespace focus
