// The HTML page of `focus simulate-review` (review_page.cpp): one self-contained file (inline
// SVG charts, inline CSS, a CSP that allows nothing external) drawn from the simulation's JSON.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace focus {

// `r`: the JSON cmd_simulate_review.cpp builds; `reliability_svg`: its reliability diagram.
std::string review_page_html(const nlohmann::json& r, const std::string& reliability_svg);

}  // namespace focus
