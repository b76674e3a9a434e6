// The HTML page of `focus simulate-review` (review_page.cpp): one self-contained file (inline
// SVG charts, inline CSS, a CSP that allows nothing external) drawn from the simulation's JSON.
#pragma once
#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace focus {

// `r`: the JSON cmd_simulate_review.cpp builds; `reliability_svg`: its reliability diagram.
std::string review_page_html(const nlohmann::json& r, const std::string& reliability_svg);
// The page's charts by name (budget, risk_coverage, capacity_inflow, capacity_queue,
// capacity_threshold; with a feedback run: feedback, feedback_rounds), each an <svg> for HTML (no
// xmlns).
std::map<std::string, std::string> review_charts(const nlohmann::json& r);

}  // namespace focus
