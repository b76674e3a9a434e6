// Seq2seq model files (see seq2seq_file.hpp).
#include "focus/infer/seq2seq_file.hpp"

#include "focus/infer/file_metadata.hpp"
#include "focus/io/safetensors.hpp"
#include "focus/tensor/rng.hpp"

namespace focus {

namespace {
constexpr const char* kFormat = "focus-seq2seq/1";

const std::string& need(const std::map<std::string, std::string>& meta, const std::string& key,
                        const std::string& path) {
  return metadata_field(meta, key, path, "focus seq2seq model file");
}
}  // namespace

void save_seq2seq(const std::string& path, const Seq2Seq& model, const Tokenizer& src_tok,
                  const Tokenizer& tgt_tok, const std::string& task, const nlohmann::json& extra) {
  std::map<std::string, std::string> meta;
  meta["format"] = kFormat;
  meta["focus_version"] = FOCUS_VERSION;
  meta["task"] = task;
  meta["model"] = "transformer";
  meta["model_config"] = to_json(model.config()).dump();
  meta["src_tokenizer"] = src_tok.to_json().dump();
  meta["tgt_tokenizer"] = tgt_tok.to_json().dump();
  meta["extra"] = extra.dump();
  save_safetensors(path, model.state_dict(), meta);
}

Seq2SeqModelFile load_seq2seq(const std::string& path) {
  SafetensorsFile f = load_safetensors(path);
  const std::string& format = need(f.metadata, "format", path);
  FOCUS_CHECK(format == kFormat, FormatError,
              "'{}' is a '{}' model, not a sequence-to-sequence model ({})", path, format, kFormat);
  Seq2SeqModelFile out;
  read_model_metadata(path, [&] {
    out.task = need(f.metadata, "task", path);
    const Seq2SeqConfig cfg =
        seq2seq_config_from_json(nlohmann::json::parse(need(f.metadata, "model_config", path)));
    out.src_tok = tokenizer_from_json(nlohmann::json::parse(need(f.metadata, "src_tokenizer", path)));
    out.tgt_tok = tokenizer_from_json(nlohmann::json::parse(need(f.metadata, "tgt_tokenizer", path)));
    out.extra = nlohmann::json::parse(need(f.metadata, "extra", path));
    FOCUS_CHECK(out.src_tok->vocab().size() == cfg.src_vocab &&
                    out.tgt_tok->vocab().size() == cfg.tgt_vocab,
                FormatError, "'{}': tokenizers of {} / {} symbols for a model of {} / {}", path,
                out.src_tok->vocab().size(), out.tgt_tok->vocab().size(), cfg.src_vocab,
                cfg.tgt_vocab);
    Rng rng(0);
    out.model = std::make_unique<Seq2Seq>(cfg, rng);
  });
  load_state_checked(*out.model, f.tensors, path);
  out.model->eval();
  return out;
}

}  // namespace focus
