// The seq2seq predictor (see translator.hpp).
#include "focus/infer/translator.hpp"

#include <fmt/ranges.h>

#include "focus/models/seq2seq.hpp"
#include "focus/nn/linear.hpp"
#include "focus/text/vocab.hpp"

namespace focus {

Translator::Translator(const std::string& path, const TranslatorOptions& opt)
    : Translator(load_seq2seq(path), opt) {}

Translator::Translator(Seq2SeqModelFile file, const TranslatorOptions& opt)
    : file_(std::move(file)), opt_(opt) {
  FOCUS_CHECK(file_.model && file_.src_tok && file_.tgt_tok, ValueError,
              "Translator: the model file has no model or tokenizers");
  FOCUS_CHECK(opt_.max_tokens >= 1, ValueError, "Translator: max_tokens {} must be >= 1",
              opt_.max_tokens);
  file_.model->eval();
  FOCUS_CHECK(opt_.weights == DType::F32 || opt_.weights == DType::BF16 || opt_.weights == DType::I8,
              DTypeError, "Translator: inference weights {} not supported (F32, BF16, I8)",
              dtype_name(opt_.weights));
  file_.model->set_inference_dtype(opt_.weights);
  if (opt_.weights == DType::I8 && !opt_.int8_output)
    for (const auto& [name, m] : file_.model->named_modules())
      if (auto* e = dynamic_cast<Embedding*>(m)) e->set_inference_dtype(DType::F32);
}

std::vector<std::string> Translator::int8_layers() const {
  std::vector<std::string> out;
  for (const auto& [name, m] : file_.model->named_modules())
    if (const auto* l = dynamic_cast<const Linear*>(m); l && l->int8_active()) out.push_back(name);
  return out;
}

std::string Translator::normalize(const std::string& text) const {
  return normalize_source(file_.task, text);
}

std::vector<int64_t> Translator::encode(const std::string& text, size_t index) const {
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) throw InputError(index, "empty input");
  const std::string source = normalize(text);
  const auto unknown = file_.src_tok->unknown_symbols(source);
  if (!unknown.empty())
    throw InputError(index, fmt::format("unknown symbols '{}' (the model knows {} symbols)",
                                        fmt::join(unknown, "', '"),
                                        file_.src_tok->vocab().size() - Vocab::kNumSpecial));
  std::vector<int64_t> ids = file_.src_tok->encode(source);
  const int64_t max_src = file_.model->config().max_len;
  if (int64_t(ids.size()) > max_src)
    throw InputError(index, fmt::format("{} tokens, over the maximum length {}", ids.size(), max_src));
  return ids;
}

std::vector<Translation> Translator::translate(const std::vector<std::string>& inputs,
                                               const SearchOptions& search) const {
  std::vector<std::vector<int64_t>> src;
  for (size_t i = 0; i < inputs.size(); ++i) src.push_back(encode(inputs[i], i));
  return translate_encoded(inputs, src, search);
}

std::vector<Translation> Translator::translate_encoded(
    const std::vector<std::string>& inputs, const std::vector<std::vector<int64_t>>& src,
    const SearchOptions& search) const {
  FOCUS_CHECK(search.nbest <= search.beam, ValueError, "translate: nbest {} must not exceed beam {}",
              search.nbest, search.beam);
  FOCUS_CHECK(src.size() == inputs.size(), ValueError,
              "translate: {} encoded sources for {} inputs", src.size(), inputs.size());
  const auto hyps = decode_corpus(*file_.model, src, search, opt_.max_tokens);
  std::vector<Translation> out(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    out[i].input = inputs[i];
    for (const Hypothesis& h : hyps[i])
      out[i].nbest.push_back(
          {file_.tgt_tok->decode(h.tokens), h.tokens, h.log_prob, h.score, h.finished});
  }
  return out;
}

CorpusScore Translator::score(const std::vector<RefGroup>& groups, const SearchOptions& search,
                              int64_t limit) const {
  return score_corpus(*file_.model, file_.task, *file_.src_tok, *file_.tgt_tok, groups, search,
                      limit);
}

}  // namespace focus
