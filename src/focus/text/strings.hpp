// Small string helpers shared by the text layer: ASCII-whitespace splitting and UTF-8 code point
// splitting / validation. Limits: only ASCII whitespace (space, \t, \n, \v, \f, \r) separates
// words; no Unicode normalisation.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace focus {

inline bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

// The runs of non-whitespace characters of `s`, in order.
std::vector<std::string> split_whitespace(std::string_view s);

// The words of `s` joined by single spaces (trims and collapses whitespace).
std::string normalize_whitespace(std::string_view s);

// Byte length of the well-formed UTF-8 sequence starting at s[i] (1..4), or 0 when the bytes
// there are not one (bad lead byte, truncated, overlong, surrogate or > U+10FFFF).
size_t utf8_sequence_length(std::string_view s, size_t i);

bool is_valid_utf8(std::string_view s);

// One string per code point; a byte that starts no well-formed sequence becomes a one-byte
// string of its own, so concatenating the pieces always gives `s` back.
std::vector<std::string> split_utf8(std::string_view s);

}  // namespace focus
