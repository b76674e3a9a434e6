// The HTML page of `focus simulate-review` (see review_page.hpp).
#include "focus/apps/review_page.hpp"

#include <fmt/format.h>

#include "focus/explain/render.hpp"
#include "focus/explain/svg_chart.hpp"

namespace focus {

namespace {

using json = nlohmann::json;

std::string esc(const std::string& s) { return xml_escape(s); }
std::string pct(double v, int digits = 2) { return fmt::format("{:.{}f}%", 100 * v, digits); }

std::string table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows) {
  std::string s = "<table><tr>";
  for (const std::string& h : head) s += "<th>" + esc(h) + "</th>";
  s += "</tr>";
  for (const auto& row : rows) {
    s += "<tr>";
    for (const std::string& c : row) s += "<td>" + esc(c) + "</td>";
    s += "</tr>";
  }
  return s + "</table>";
}

std::vector<double> scaled(const json& a, double f) {
  std::vector<double> v;
  for (const json& x : a) v.push_back(f * x.get<double>());
  return v;
}

std::string budget_chart(const json& r) {
  const json& bc = r["budget_curve"];
  const std::vector<double> x = scaled(bc["budgets"], 100);
  std::vector<Series> series;
  for (const char* name : {"random", "least-confidence", "margin", "entropy", "capacity", "capacity+audit"})
    if (bc["accuracy"].contains(name))
      series.push_back({name, x, scaled(bc["accuracy"][name], 100), std::string(name) == "random"});
  Series risk{"risk target (eval part)", {}, {}, false};
  for (const json& p : r["risk_policy"]["points"]) {
    if (!p["found"].get<bool>()) continue;  // nothing passed: everything deferred
    risk.x.push_back(100 * p["deferred_share"].get<double>());
    risk.y.push_back(100 * p["system_accuracy"].get<double>());
  }
  series.push_back(risk);
  ChartOptions o;
  o.title = "system accuracy against review budget";
  o.x_label = "items reviewed (% of the stream)";
  o.y_label = "system accuracy (%)";
  o.width = 560;
  o.height = 340;
  return svg_line_chart(series, o);
}

std::string risk_coverage_chart(const json& r) {
  std::vector<Series> series;
  for (const auto& [name, rc] : r["risk_coverage"].items())
    series.push_back({fmt::format("{} (AURC {:.4f})", name, rc["aurc"].get<double>()),
                      scaled(rc["coverage"], 100), scaled(rc["risk"], 100), false});
  const double base = 1 - r["model_accuracy"].get<double>();
  series.push_back({"random (the base error)", {0, 100}, {100 * base, 100 * base}, true});
  ChartOptions o;
  o.title = "risk-coverage (accept the lowest scores first)";
  o.x_label = "coverage: auto-accepted (%)";
  o.y_label = "error among accepted (%)";
  o.width = 560;
  o.height = 340;
  return svg_line_chart(series, o);
}

std::vector<std::string> capacity_charts(const json& c) {
  Series inflow{"queue inflow / hour", {}, {}, false}, arrivals{"arrivals / hour / 10", {}, {}, false};
  Series queue{"max queue length", {}, {}, false}, overflow{"overflow (model answered, flagged)", {}, {}, false};
  Series thr{"threshold (defer above)", {}, {}, false};
  for (const json& w : c["windows"]) {
    const double t = (w["t0_h"].get<double>() + w["t1_h"].get<double>()) / 2;
    const double h = w["t1_h"].get<double>() - w["t0_h"].get<double>();
    inflow.x.push_back(t);
    inflow.y.push_back(w["inflow_per_hour"].get<double>());
    arrivals.x.push_back(t);
    arrivals.y.push_back(h > 0 ? w["arrivals"].get<double>() / h / 10 : NAN);
    queue.x.push_back(t);
    queue.y.push_back(w["max_queue"].get<double>());
    overflow.x.push_back(t);
    overflow.y.push_back(w["overflow"].get<double>());
    thr.x.push_back(t);
    thr.y.push_back(w["threshold"].get<double>());
  }
  const double cap = c["capacity_per_hour"].get<double>(), end = inflow.x.empty() ? 1 : inflow.x.back();
  const double change = c["change_h"].get<double>();
  ChartOptions o;
  o.width = 460;
  o.title = "inflow against capacity (traffic doubles at the dashed line)";
  o.x_label = "time (hours)";
  o.y_label = "items per hour";
  o.y_from_zero = true;
  const std::string a = svg_line_chart(
      {inflow, arrivals, Series{"capacity", {0, end}, {cap, cap}, true},
       Series{"traffic doubles", {change, change}, {0, 2 * cap}, true}}, o);
  o.title = "queue";
  o.y_label = "items";
  const double qcap = c["queue_cap"].get<double>();
  const std::string b = svg_line_chart({queue, overflow, Series{"queue cap", {0, end}, {qcap, qcap}, true}}, o);
  o.title = "routing threshold";
  o.y_label = "error score";
  o.y_from_zero = false;
  const std::string d = svg_line_chart({thr}, o);
  return {a, b, d};
}

// Accuracy over the stream's windows with and without feedback: the model's answers at arrival
// (solid) and the system's final answers (dashed), x = stream items seen.
std::string feedback_chart(const json& f) {
  std::vector<Series> series;
  for (const auto& [key, name] : {std::pair{"with", "with feedback"}, std::pair{"without", "without feedback"}}) {
    Series model{std::string("model, ") + name, {}, {}, false}, sys{std::string("system, ") + name, {}, {}, true};
    for (const json& w : f[key]["windows"]) {
      const double x = double(w["end_item"].get<int64_t>());
      model.x.push_back(x);
      model.y.push_back(100 * w["model_accuracy"].get<double>());
      sys.x.push_back(x);
      sys.y.push_back(100 * w["system_accuracy"].get<double>());
    }
    series.push_back(model);
    series.push_back(sys);
  }
  ChartOptions o;
  o.title = "accuracy over the shifted stream (windows of " + std::to_string(f["window_items"].get<int64_t>()) + ")";
  o.x_label = "stream items";
  o.y_label = "accuracy (%)";
  o.width = 560;
  return svg_line_chart(series, o);
}

// Evaluation-slice accuracy of the served model against the labels that came back.
std::string feedback_rounds_chart(const json& f) {
  std::vector<Series> series;
  for (const auto& [key, name] : {std::pair{"with", "with feedback"}, std::pair{"without", "without feedback"}}) {
    Series s{name, {}, {}, key == std::string("without")};
    for (const json& r : f[key]["rounds"]) {
      s.x.push_back(double(r["labels"].get<int64_t>()));
      s.y.push_back(100 * r["eval_accuracy"].get<double>());
    }
    if (key == std::string("without") && !f["with"]["rounds"].empty()) {  // flat: the starting model throughout
      s.x.push_back(double(f["with"]["rounds"].back()["labels"].get<int64_t>()));
      s.y.push_back(s.y.front());
    }
    series.push_back(s);
  }
  ChartOptions o;
  o.title = "held-out accuracy against reviewed labels";
  o.x_label = "reviewed labels";
  o.y_label = "evaluation-slice accuracy (%)";
  return svg_line_chart(series, o);
}

std::string feedback_section(const json& f) {
  std::string s = "<section><h2>Feedback on the " + esc(f["shift"].get<std::string>()) +
                  " stream</h2><div class=\"charts\">" + feedback_chart(f) + feedback_rounds_chart(f) + "</div>";
  std::vector<std::vector<std::string>> rows;
  for (const json& r : f["with"]["rounds"])
    if (r.contains("candidate_gate_accuracy"))
      rows.push_back({std::to_string(r["labels"].get<int64_t>()), std::to_string(r["replay_images"].get<int64_t>()),
                      pct(r["served_gate_accuracy"].get<double>()), pct(r["candidate_gate_accuracy"].get<double>()),
                      r["promoted"].get<bool>() ? "promoted" : "kept", pct(r["eval_accuracy"].get<double>())});
  s += table({"labels", "replay images", "gate: served", "gate: candidate", "decision", "evaluation slice"}, rows);
  const json& t = f["after_target"];
  s += "<p class=\"note\">" + esc(fmt::format(
      "Stream {} items, gate slice {}, evaluation slice {} (held out: never trained or gated on); budget {}, "
      "fine-tuning every {} labels on all labels so far with a replay share of {} ({} epochs, lr {}). "
      "Starting model on the evaluation slice: {} ({} before the shift); the final model with feedback: {} "
      "({} before the shift).",
      f["stream_items"].get<int64_t>(), f["gate_items"].get<int64_t>(), f["eval_items"].get<int64_t>(),
      pct(f["budget"].get<double>(), 0), f["feedback_every"].get<int64_t>(), f["replay_share"].get<double>(),
      f["epochs_per_round"].get<int>(), f["lr"].get<double>(), pct(f["base_eval_accuracy"].get<double>()),
      pct(f["clean_eval_accuracy"].get<double>()), pct(f["with"]["rounds"].back()["eval_accuracy"].get<double>()),
      pct(f["with"]["final_clean_eval_accuracy"].get<double>())));
  if (!t.is_null())
    s += esc(fmt::format(" After {} reviewed labels: {} with feedback, {} without ({:+.2f} points).",
                         t["labels"].get<int64_t>(), pct(t["with"].get<double>()), pct(t["without"].get<double>()),
                         t["gain_points"].get<double>()));
  return s + "</p></section>";
}

constexpr const char* kStyle = R"css(
body{font:14px/1.45 sans-serif;color:#222;background:#f6f6f4;margin:0}
main{max-width:1180px;margin:0 auto;padding:16px 24px 40px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 18px 16px;margin:14px 0}
h1{font-size:24px;margin:8px 0 2px}h2{font-size:18px;margin:8px 0 10px}
table{border-collapse:collapse;margin:6px 0}
th,td{border-bottom:1px solid #e4e4e4;padding:3px 10px;text-align:left}
th{background:#f0f0ee}.charts{display:flex;flex-wrap:wrap;gap:12px}.note{color:#555;font-size:13px}
)css";

}  // namespace

std::map<std::string, std::string> review_charts(const json& r) {
  const std::vector<std::string> cap = capacity_charts(r["capacity_run"]);
  std::map<std::string, std::string> charts = {
      {"budget", budget_chart(r)}, {"risk_coverage", risk_coverage_chart(r)},
      {"capacity_inflow", cap[0]}, {"capacity_queue", cap[1]}, {"capacity_threshold", cap[2]}};
  if (r.contains("feedback")) {
    charts["feedback"] = feedback_chart(r["feedback"]);
    charts["feedback_rounds"] = feedback_rounds_chart(r["feedback"]);
  }
  return charts;
}

std::string review_page_html(const json& r, const std::string& reliability_svg) {
  std::string s =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
      "<link rel=\"icon\" href=\"data:,\"><title>focus review simulation</title><style>";
  s += kStyle;
  s += "</style></head><body><main><h1>Review simulation</h1><p class=\"note\">";
  s += esc(fmt::format("{} on the {} stream: {} items, model accuracy {}, reviewer accuracy {}, seed {}",
                       r["model"].get<std::string>(), r["stream"].get<std::string>(), r["items"].get<int64_t>(),
                       pct(r["model_accuracy"].get<double>()), r["reviewer_accuracy"].get<double>(),
                       r["seed"].get<uint64_t>()));
  s += "</p>";
  // Calibration.
  const json& cal = r["calibration"];
  s += "<section><h2>Calibration</h2><div class=\"charts\">" + reliability_svg + "</div>";
  s += table({"", "temperature", "ECE (15 bins)", "NLL", "accuracy"},
             {{"before", "1", pct(cal["before"]["ece"].get<double>()), fmt::format("{:.4f}", cal["before"]["nll"].get<double>()),
               pct(cal["before"]["accuracy"].get<double>())},
              {"after", fmt::format("{:.4f}", r["temperature"].get<double>()), pct(cal["after"]["ece"].get<double>()),
               fmt::format("{:.4f}", cal["after"]["nll"].get<double>()), pct(cal["after"]["accuracy"].get<double>())}});
  s += "</section>";
  // Budget.
  std::vector<std::vector<std::string>> rows;
  for (const auto& [name, acc] : r["at_budget"].items()) rows.push_back({name, pct(acc.get<double>())});
  s += "<section><h2>System accuracy against review budget</h2><div class=\"charts\">" + budget_chart(r) +
       risk_coverage_chart(r) + "</div><p class=\"note\">Score policies defer the budget's share of "
       "highest scores over the whole stream (offline); the capacity policies route online (Poisson "
       "arrivals, reviewers at budget x rate per hour, queue cap " +
       esc(std::to_string(r["budget_curve"]["queue_cap"].get<int64_t>())) + "). The risk-target points "
       "are measured on the stream after its calibration part.</p>";
  s += "<h3>At a " + pct(r["budget"].get<double>(), 0) + " budget</h3>" + table({"policy", "system accuracy"}, rows);
  rows.clear();
  for (const json& p : r["risk_policy"]["points"])
    rows.push_back({pct(p["epsilon"].get<double>(), 1), fmt::format("{:.5f}", p["threshold"].get<double>()),
                    pct(p["calibration_coverage"].get<double>()), pct(p["deferred_share"].get<double>()),
                    pct(p["accepted_error"].get<double>()), pct(p["system_accuracy"].get<double>())});
  s += "<h3>Risk target (thresholds from the first " +
       std::to_string(r["risk_policy"]["calibration_items"].get<int64_t>()) + " items)</h3>" +
       table({"epsilon", "threshold", "coverage (calibration)", "deferred (rest)", "error among accepted (rest)",
              "system accuracy (rest)"}, rows);
  const json& rt = r["risk_target"];
  s += "<h3>Guarantee check</h3>" +
       table({"epsilon", "delta", "splits", "test error <= epsilon in", "mean coverage", "mean test error",
              "max test error", "naive threshold: within in"},
             {{pct(rt["epsilon"].get<double>(), 1), fmt::format("{}", rt["delta"].get<double>()),
               std::to_string(rt["splits"].get<int64_t>()), pct(rt["within_share"].get<double>(), 0),
               pct(rt["mean_coverage"].get<double>()), pct(rt["mean_test_error"].get<double>()),
               pct(rt["max_test_error"].get<double>()), pct(rt["naive_within_share"].get<double>(), 0)}}) +
       "<p class=\"note\">" + esc(rt["method"].get<std::string>()) + "</p></section>";
  // Capacity run.
  const json& c = r["capacity_run"];
  s += "<section><h2>Capacity controller, traffic doubling</h2><div class=\"charts\">";
  for (const std::string& chart : capacity_charts(c)) s += chart;
  s += "</div>";
  const json& au = c["audit"];
  s += table({"capacity / h", "arrivals / h", "inflow / h (after 1 h to settle)", "max queue (cap)", "items",
              "accepted", "deferred", "audited", "reviewed", "overflow (model, flagged)", "pending at end",
              "nothing lost"},
             {{fmt::format("{:.0f}", c["capacity_per_hour"].get<double>()),
               fmt::format("{:.0f} then {:.0f}", c["arrival_per_hour"][0].get<double>(), c["arrival_per_hour"][1].get<double>()),
               fmt::format("{:.1f} then {:.1f}", c["inflow_per_hour"][0].get<double>(), c["inflow_per_hour"][1].get<double>()),
               fmt::format("{} ({})", c["max_queue"].get<int64_t>(), c["queue_cap"].get<int64_t>()),
               std::to_string(c["items"].get<int64_t>()), std::to_string(c["accepted"].get<int64_t>()),
               std::to_string(c["deferred"].get<int64_t>()), std::to_string(c["audited"].get<int64_t>()),
               std::to_string(c["reviewed"].get<int64_t>()),
               std::to_string(c["overflow_model_answered_flagged"].get<int64_t>()),
               std::to_string(c["pending_at_end"].get<int64_t>()), c["nothing_lost"].get<bool>() ? "yes" : "NO"}});
  s += "<p class=\"note\">" + esc(fmt::format(
      "Audits: {} of {} audited answers wrong: estimate {} (95% CI {} to {}); the true error of the "
      "would-be-accepted items: {}. System accuracy of the run: {}.",
      au["errors"].get<int64_t>(), au["audited"].get<int64_t>(), pct(au["estimate"].get<double>()),
      pct(au["ci95"][0].get<double>()), pct(au["ci95"][1].get<double>()),
      pct(au["true_would_be_accepted_error"].get<double>()), pct(c["system_accuracy"].get<double>()))) +
       "</p></section>";
  if (r.contains("feedback")) s += feedback_section(r["feedback"]);
  return s + "</main></body></html>\n";
}

}  // namespace focus
