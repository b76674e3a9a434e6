// The text half of `focus explain` (explain/text_explain.hpp): for a text-transformer model file
// and --input TEXT, the prediction and per-token pooling, rollout, gradient x input (and the
// n-gram branch's share, when the model has one) as shaded
// terminal lines (or JSON), an HTML page with --out, deletion faithfulness with --faithfulness.
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "focus/apps/commands.hpp"
#include "focus/explain/text_explain.hpp"
#include "focus/infer/model_file.hpp"
#include "focus/io/atomic_file.hpp"
#include "focus/models/text_transformer.hpp"
#include "focus/tensor/rng.hpp"
#include "focus/text/labelled.hpp"
#include "focus/text/tokenizer.hpp"

namespace focus {

int explain_text_model(const std::string& model_path, const std::string& text, int64_t target,
                       const std::string& out, bool faithfulness, bool json) {
  FOCUS_CHECK(!text.empty(), ValueError, "focus explain: a text model explains --input TEXT");
  LoadedClassifier lc = load_classifier(model_path);
  auto* model = dynamic_cast<TextTransformer*>(lc.model.get());
  FOCUS_CHECK(model != nullptr, FormatError, "'{}' holds a {} model, not text_transformer",
              model_path, lc.model->name());
  const auto tok = tokenizer_from_json(nlohmann::json::parse(lc.info.tokenizer));
  const auto ids = encode_for_classification(*tok, text, model->cfg().input_len());
  const TextExplanation e = explain_text(*model, *tok, ids, target);
  const auto& names = lc.info.class_names;
  nlohmann::json j = {{"text", text},
                      {"tokens", e.tokens},
                      {"target", e.target},
                      {"class", names.at(size_t(e.target))},
                      {"probs", e.probs},
                      {"pooling", e.pooling},
                      {"rollout", e.rollout},
                      {"grad_input", e.grad_input}};
  std::vector<std::pair<const char*, const std::vector<double>*>> methods = {
      {"pooling", &e.pooling}, {"rollout", &e.rollout}, {"grad_input", &e.grad_input}};
  if (!e.ngram.empty()) {
    j["ngram"] = e.ngram;
    methods.push_back({"ngram", &e.ngram});
  }
  if (faithfulness) {
    Rng rng(1);
    for (const auto& [name, scores] : methods)
      j["faithfulness"][name] = faithfulness_to_json(text_faithfulness(*model, ids, *scores, e.target, rng, 5));
  }
  if (!out.empty()) {
    std::filesystem::create_directories(out);
    write_file_atomic(out + "/explain.html", text_explanation_html(e, names, text));
    write_file_atomic(out + "/explain.json", j.dump(2) + "\n");
  }
  if (json) {
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  const bool colour = isatty(1) != 0;
  std::printf("%s: %s (p = %.3f)\n", model_path.c_str(), names.at(size_t(e.target)).c_str(),
              e.probs[size_t(e.target)]);
  std::printf("pooling     %s\n", text_heatmap_line(e.tokens, e.pooling, colour).c_str());
  std::printf("rollout     %s\n", text_heatmap_line(e.tokens, e.rollout, colour).c_str());
  std::printf("grad*input  %s\n", text_heatmap_line(e.tokens, e.grad_input, colour).c_str());
  if (!e.ngram.empty()) std::printf("n-grams     %s\n", text_heatmap_line(e.tokens, e.ngram, colour).c_str());
  if (faithfulness)
    for (const auto& [m, scores] : methods)
      std::printf("deletion area %-10s %.4f  (random order %.4f; lower = more faithful)\n", m,
                  j["faithfulness"][m]["deletion_area"].get<double>(),
                  j["faithfulness"][m]["deletion_area_random"].get<double>());
  if (!out.empty()) std::printf("wrote %s/explain.html, %s/explain.json\n", out.c_str(), out.c_str());
  return 0;
}

}  // namespace focus
