// The report builder (see report.hpp): reads the run directory, draws the per-epoch curves and
// the configuration table, lets the task's part add its sections (report_image.cpp,
// report_seq2seq.cpp) and assembles the page.
#include "focus/explain/report.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <fmt/format.h>

#include "focus/explain/render.hpp"
#include "focus/explain/report_parts.hpp"
#include "focus/explain/svg_chart.hpp"
#include "focus/infer/file_metadata.hpp"
#include "focus/io/atomic_file.hpp"
#include "focus/tensor/error.hpp"

namespace focus {

namespace fs = std::filesystem;
using namespace report_detail;

namespace report_detail {

std::string esc(const std::string& text) { return xml_escape(text); }

std::string html_table(const std::vector<std::string>& head,
                       const std::vector<std::vector<std::string>>& rows,
                       const std::string& css_class) {
  std::string s = css_class.empty() ? "<table>" : "<table class=\"" + css_class + "\">";
  if (!head.empty()) {
    s += "<thead><tr>";
    for (const std::string& h : head) s += "<th>" + h + "</th>";
    s += "</tr></thead>";
  }
  s += "<tbody>";
  for (const auto& row : rows) {
    s += "<tr>";
    for (const std::string& c : row) s += "<td>" + c + "</td>";
    s += "</tr>";
  }
  return s + "</tbody></table>";
}

std::string percent(double fraction, int digits) {
  return fmt::format("{:.{}f}%", 100 * fraction, digits);
}

std::string thousands(int64_t n) {
  std::string d = std::to_string(n < 0 ? -n : n), s;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i > 0 && (d.size() - i) % 3 == 0) s += ',';
    s += d[i];
  }
  return (n < 0 ? "-" : "") + s;
}

std::string figure(const std::string& svg, const std::string& caption) {
  return "<figure>" + svg + (caption.empty() ? "" : "<figcaption>" + caption + "</figcaption>") +
         "</figure>";
}

std::string inline_svg(std::string svg) {
  const std::string ns = " xmlns=\"http://www.w3.org/2000/svg\"";
  for (size_t at = svg.find(ns); at != std::string::npos; at = svg.find(ns, at)) svg.erase(at, ns.size());
  return svg;
}

}  // namespace report_detail

namespace {

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  FOCUS_CHECK(f.good(), IOError, "report: cannot read '{}'", path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

RunFiles read_run(const std::string& dir, const ReportOptions& opt) {
  FOCUS_CHECK(fs::is_directory(dir), IOError, "report: run directory '{}' does not exist", dir);
  RunFiles run;
  run.dir = dir;
  fs::path abs = fs::absolute(fs::path(dir)).lexically_normal();
  if (abs.filename().empty()) abs = abs.parent_path();  // "runs/vit/" or "."
  run.name = abs.filename().string();
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  FOCUS_CHECK(fs::exists(cfg_path), IOError,
              "report: '{}' is missing (is '{}' a focus training run directory?)", cfg_path, dir);
  try {
    run.config = nlohmann::json::parse(read_text(cfg_path));
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(fmt::format("report: '{}' is not valid JSON: {}", cfg_path, e.what()));
  }
  FOCUS_CHECK(run.config.is_object(), FormatError, "report: '{}' is not a JSON object", cfg_path);
  try {
    apply_json(run.cfg, run.config, cfg_path);
  } catch (const ValueError& e) {
    throw FormatError(fmt::format("report: {}", e.what()));
  }
  const std::string metrics = (fs::path(dir) / "metrics.jsonl").string();
  if (fs::exists(metrics)) {
    std::istringstream in(read_text(metrics));
    std::string line;
    for (int64_t n = 1; std::getline(in, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      try {
        run.history.push_back(nlohmann::json::parse(line));
      } catch (const nlohmann::json::exception& e) {
        throw FormatError(fmt::format("report: '{}' line {} is not valid JSON: {}", metrics, n, e.what()));
      }
      FOCUS_CHECK(run.history.back().is_object(), FormatError,
                  "report: '{}' line {} is not a JSON object", metrics, n);
    }
  }
  if (!opt.model.empty()) {
    FOCUS_CHECK(fs::exists(opt.model), IOError, "report: model file '{}' does not exist", opt.model);
    run.model_path = opt.model;
  } else {
    for (const char* name : {"model_best.safetensors", "model_last.safetensors"})
      if (fs::exists(fs::path(dir) / name)) {
        run.model_path = (fs::path(dir) / name).string();
        break;
      }
  }
  return run;
}

double number(const nlohmann::json& rec, const char* key) {
  const auto it = rec.find(key);
  return it != rec.end() && it->is_number() ? it->get<double>()
                                            : std::numeric_limits<double>::quiet_NaN();
}

bool has_key(const std::vector<nlohmann::json>& history, const char* key) {
  return std::any_of(history.begin(), history.end(),
                     [&](const nlohmann::json& r) { return std::isfinite(number(r, key)); });
}

double epoch_of(const std::vector<nlohmann::json>& history, size_t i) {
  const double e = number(history[i], "epoch");
  return std::isfinite(e) ? e : static_cast<double>(i + 1);
}

Series series(const std::vector<nlohmann::json>& history, const char* key, const std::string& name,
              double scale = 1.0) {
  Series s;
  s.name = name;
  for (size_t i = 0; i < history.size(); ++i) {
    s.x.push_back(epoch_of(history, i));
    s.y.push_back(number(history[i], key) * scale);
  }
  return s;
}

// The headline facts from the history: epochs, training time, best validation score.
void history_facts(const RunFiles& run, Page& page) {
  const auto& h = run.history;
  page.facts.push_back({"epochs", fmt::format("{} of {}", h.size(), run.cfg.epochs)});
  if (h.empty()) return;
  const double train_s = number(h.back(), "train_seconds_total");
  if (std::isfinite(train_s)) page.facts.push_back({"training time", fmt::format("{:.1f} min", train_s / 60)});
  struct Best {
    const char* key;
    const char* label;
    bool higher;
    double scale;
  };
  const Best best = run.cfg.task == "g2p"         ? Best{"val_wer", "best validation WER", false, 1}
                    : run.cfg.task == "translate" ? Best{"val_bleu", "best validation BLEU", true, 1}
                                                  : Best{"val_acc", "best validation accuracy", true, 100};
  size_t at = h.size();
  for (size_t i = 0; i < h.size(); ++i) {
    const double v = number(h[i], best.key);
    if (!std::isfinite(v)) continue;
    if (at == h.size() || (best.higher ? v > number(h[at], best.key) : v < number(h[at], best.key))) at = i;
  }
  if (at < h.size())
    page.facts.push_back({best.label, fmt::format("{:.2f}{} (epoch {})", best.scale * number(h[at], best.key),
                                                  best.scale == 100 || !best.higher ? "%" : "",
                                                  format_number(epoch_of(h, at)))});
}

void curves_section(const RunFiles& run, Page& page) {
  const auto& h = run.history;
  if (h.empty()) {
    page.missing.push_back("metrics.jsonl is missing or empty: no training curves");
    return;
  }
  std::string html = "<div class=\"charts\">";
  ChartOptions o;  // three to a row
  o.width = 350;
  o.x_label = "epoch";
  o.title = "Loss";
  o.y_label = "cross-entropy";
  html += figure(svg_line_chart({series(h, "train_loss", "train"), series(h, "val_loss", "validation")}, o));
  if (has_key(h, "train_acc") || has_key(h, "val_acc")) {
    o.title = "Accuracy";
    o.y_label = "accuracy (%)";
    html += figure(svg_line_chart({series(h, "train_acc", "train", 100),
                                   series(h, "val_acc", "validation", 100)}, o));
  }
  if (has_key(h, "val_wer") || has_key(h, "val_per")) {
    o.title = "Validation WER / PER";
    o.y_label = "error rate (%)";
    html += figure(svg_line_chart({series(h, "val_wer", "WER"), series(h, "val_per", "PER")}, o));
  }
  if (has_key(h, "val_bleu") || has_key(h, "val_chrf")) {
    o.title = "Validation BLEU / chrF";
    o.y_label = "score";
    html += figure(svg_line_chart({series(h, "val_bleu", "BLEU"), series(h, "val_chrf", "chrF")}, o));
  }
  if (has_key(h, "lr")) {
    const Series lr = series(h, "lr", "learning rate");
    double lo = std::numeric_limits<double>::infinity(), hi = 0;
    for (double v : lr.y)
      if (std::isfinite(v) && v > 0) lo = std::min(lo, v), hi = std::max(hi, v);
    o.title = "Learning rate";
    o.y_label = "learning rate (end of epoch)";
    o.log_y = hi > 20 * lo;
    html += figure(svg_line_chart({lr}, o), o.log_y ? "log scale" : "");
  }
  page.sections.push_back({"curves", "Training curves", html + "</div>"});
}

std::string config_value(const nlohmann::json& v) {
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (!s.empty() && s.front() == '{') {  // a JSON object given as text (model-config)
      try {
        return "<code>" + esc(nlohmann::json::parse(s).dump()) + "</code>";
      } catch (const nlohmann::json::exception&) {
      }
    }
    return s.empty() ? "<span class=\"dim\">(empty)</span>" : esc(s);
  }
  return "<code>" + esc(v.dump()) + "</code>";
}

void config_section(const RunFiles& run, Page& page) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& [key, value] : run.config.items()) rows.push_back({esc(key), config_value(value)});
  std::string html = "<p>config.json, as the run recorded it (defaults filled in).</p>" +
                     html_table({"option", "value"}, rows, "config");
  if (!page.model_config.is_null()) {
    std::vector<std::vector<std::string>> mrows;
    for (const auto& [key, value] : page.model_config.items()) mrows.push_back({esc(key), config_value(value)});
    html += "<h3>Model (full config, from the model file)</h3>" + html_table({"field", "value"}, mrows, "config");
  }
  page.sections.push_back({"config", "Effective configuration", html});
}

constexpr const char* kStyle = R"css(
body{font:14px/1.45 sans-serif;color:#222;background:#f6f6f4;margin:0}
main{max-width:1180px;margin:0 auto;padding:16px 24px 40px}
header h1{font-size:24px;margin:8px 0 2px}
.sub{color:#555;margin:0 0 12px}
nav{margin:8px 0 16px}nav a{margin-right:14px;color:#0b5cad;text-decoration:none}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 18px 16px;margin:14px 0}
h2{font-size:18px;margin:8px 0 10px}h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;margin:6px 0}
th,td{border-bottom:1px solid #e4e4e4;padding:3px 10px;text-align:left;vertical-align:top}
th{background:#f0f0ee}td.num,th.num{text-align:right}
table.config td:first-child{white-space:nowrap;font-family:monospace}
code{font-family:monospace;font-size:12px;word-break:break-all}
.charts,.examples{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:4px 0}figcaption{font-size:12px;color:#555;max-width:460px}
.example{width:min-content;border:1px solid #e4e4e4;border-radius:4px;padding:6px;background:#fafafa}
.example img{image-rendering:pixelated;display:block}
.ok{color:#176b2c}.bad{color:#b01e1e}.dim{color:#888}
.missing{background:#fff6dd;border:1px solid #e8d48a;border-radius:6px;padding:6px 14px}
.scroll{overflow-x:auto}
footer{color:#777;font-size:12px;margin-top:20px}
)css";

std::string assemble(const RunFiles& run, const Page& page, double seconds) {
  std::string task = run.cfg.task, model = run.cfg.model.empty() ? "" : run.cfg.model;
  std::string s =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
      "style-src 'unsafe-inline'\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<link rel=\"icon\" href=\"data:,\">"
      "<title>focus report: " + esc(run.name) + "</title><style>" + kStyle + "</style></head><body><main>";
  s += "<header><h1>Training report: " + esc(run.name) + "</h1><p class=\"sub\">" + esc(task) +
       (model.empty() ? "" : " &middot; " + esc(model)) + " &middot; " + esc(run.dir) + "</p></header>";
  s += "<nav>";
  for (const Section& sec : page.sections) s += "<a href=\"#" + sec.id + "\">" + esc(sec.title) + "</a>";
  s += "</nav>";
  std::vector<std::vector<std::string>> facts;
  for (const auto& [k, v] : page.facts) facts.push_back({esc(k), v});
  s += "<section id=\"summary\"><h2>Summary</h2>" + html_table({}, facts, "facts");
  if (!page.missing.empty()) {
    s += "<div class=\"missing\"><b>Not in this report:</b><ul>";
    for (const std::string& m : page.missing) s += "<li>" + esc(m) + "</li>";
    s += "</ul></div>";
  }
  s += "</section>";
  for (const Section& sec : page.sections)
    s += "<section id=\"" + sec.id + "\"><h2>" + esc(sec.title) + "</h2>" + sec.html + "</section>";
  s += fmt::format("<footer>Generated by focus {} in {:.1f} s. Self-contained: every figure is "
                   "inline SVG or an embedded PNG; no scripts, no network.</footer>",
                   FOCUS_VERSION, seconds);
  return s + "</main></body></html>\n";
}

int64_t count_charts(const std::string& html) {
  int64_t n = 0;
  for (size_t at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 4)) ++n;
  return n;
}

}  // namespace

Report build_report(const std::string& run_dir, const ReportOptions& opt) {
  FOCUS_CHECK(opt.limit >= 0 && opt.examples >= 0 && opt.faithfulness_images >= 0 &&
                  opt.alignments >= 0 && opt.worst >= 0,
              ValueError, "report: negative count (limit {}, examples {}, faithfulness images {}, "
              "alignments {}, worst {})", opt.limit, opt.examples, opt.faithfulness_images,
              opt.alignments, opt.worst);
  const auto t0 = std::chrono::steady_clock::now();
  const RunFiles run = read_run(run_dir, opt);
  Page page;
  page.facts.push_back({"task", esc(run.cfg.task)});
  history_facts(run, page);
  curves_section(run, page);
  const bool seq2seq = is_seq2seq_task(run.cfg.task);
  if (run.model_path.empty()) {
    page.missing.push_back("no model file (model_best.safetensors or model_last.safetensors): no "
                           "evaluation, examples or explanations");
  } else {
    const std::string format = model_file_format(run.model_path);
    const bool s2s_file = format.rfind("focus-seq2seq", 0) == 0;
    FOCUS_CHECK(s2s_file == seq2seq, FormatError,
                "report: '{}' is a{} model file but the run's task is {}", run.model_path,
                s2s_file ? " seq2seq" : "n image-classifier", run.cfg.task);
    page.facts.push_back({"model file", esc(run.model_path)});
    if (seq2seq)
      add_seq2seq_sections(run, opt, page);
    else
      add_image_sections(run, opt, page);
  }
  config_section(run, page);
  Report r;
  r.missing = page.missing;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.html = assemble(run, page, r.seconds);
  r.charts = count_charts(r.html);
  return r;
}

Report write_report(const std::string& run_dir, const std::string& out, const ReportOptions& opt) {
  Report r = build_report(run_dir, opt);
  write_file_atomic(out.empty() ? (fs::path(run_dir) / "report.html").string() : out, r.html);
  return r;
}

}  // namespace focus
