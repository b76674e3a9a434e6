// Internal to the report builder (report.cpp): the run as read from its directory, the page being
// assembled, and the task-specific parts (report_image.cpp, report_seq2seq.cpp) that add their
// sections to it. Not a public API.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "focus/explain/report.hpp"
#include "focus/train/config.hpp"

namespace focus::report_detail {

struct RunFiles {
  std::string dir, name;
  nlohmann::json config;                // config.json as written
  TrainConfig cfg;                      // the same, typed
  std::vector<nlohmann::json> history;  // metrics.jsonl, one object per epoch (may be empty)
  std::string model_path;               // "" when the run has no model file
};

struct Section {
  std::string id, title, html;
};

struct Page {
  std::vector<std::pair<std::string, std::string>> facts;  // header rows (already HTML)
  std::vector<Section> sections;
  std::vector<std::string> missing;  // plain text
  nlohmann::json model_config;       // the model's full config, when a model was loaded
};

// Evaluation, examples with explanation overlays, faithfulness (report_image.cpp).
void add_image_sections(const RunFiles& run, const ReportOptions& opt, Page& page);
// Recorded test metrics, decoding with the worst errors, alignments (report_seq2seq.cpp).
void add_seq2seq_sections(const RunFiles& run, const ReportOptions& opt, Page& page);

// HTML helpers. Cells are HTML (escape text with esc).
std::string esc(const std::string& text);
std::string html_table(const std::vector<std::string>& head,
                       const std::vector<std::vector<std::string>>& rows,
                       const std::string& css_class = "");
std::string percent(double fraction, int digits = 2);  // 0.1234 -> "12.34%"
std::string thousands(int64_t n);                     // 139018 -> "139,018"
std::string figure(const std::string& svg, const std::string& caption = "");
// An SVG made for standalone files, without its xmlns attribute (HTML supplies the namespace and
// the page then holds no URL-like text at all).
std::string inline_svg(std::string svg);

}  // namespace focus::report_detail
