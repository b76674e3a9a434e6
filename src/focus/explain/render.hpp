// Drawing explanations: a perceptual colormap (viridis), heatmaps overlaid on images (PNG-ready
// RGB images with a colour-bar legend), heatmaps with labelled axes as SVG (token alignments,
// report figures), and compact Unicode block heatmaps for a terminal.
// Limits: the PNG legend's labels use a built-in 3x5 digit font (digits and '.'); SVG text is
// escaped but not measured (labels longer than ~12 characters may overlap).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "focus/data/image.hpp"

namespace focus {

// t in [0, 1] (clamped) -> 8-bit RGB on the viridis colormap (dark blue -> yellow).
std::array<uint8_t, 3> viridis(double t);
std::string viridis_hex(double t);  // "#rrggbb"

// A gray (1, S, S) or RGB image with relevance (gh, gw) in [0, 1] laid over it: the image is
// upscaled `scale` times (nearest), the relevance bilinearly to the same size, blended with
// weight `alpha`; a colour bar labelled 0 and 1 on the right. -> RGB (3, S*scale, S*scale + bar).
Image heatmap_overlay(const Image& img, const Tensor& relevance, int64_t scale = 8,
                      double alpha = 0.55);

// A matrix (R, C) as an SVG heatmap: cells coloured on viridis from 0 to the matrix maximum,
// row labels on the left, column labels on top (rotated), an optional title and a colour bar.
std::string svg_heatmap(const Tensor& m, const std::vector<std::string>& row_labels,
                        const std::vector<std::string>& col_labels, const std::string& title = "",
                        int64_t cell = 22);

// A matrix (R, C) as Unicode block shades (" ░▒▓█", two characters per cell, scaled to the
// maximum), one line per row with its label; with `ansi`, cells are 24-bit coloured instead.
std::string unicode_heatmap(const Tensor& m, const std::vector<std::string>& row_labels = {},
                            const std::vector<std::string>& col_labels = {}, bool ansi = false);

std::string xml_escape(const std::string& s);

}  // namespace focus
