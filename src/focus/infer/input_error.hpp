// InputError: a caller's input that a predictor refuses (empty text, symbols the tokenizer cannot
// encode, too many tokens, a wrong shape or dtype, non-finite pixels). A ValueError, so code that
// catches ValueError keeps working; it carries the item's position in the request and the reason
// alone, so a front end can word its own message ("line 3: ...", a JSON error field).
#pragma once
#include <cstddef>
#include <string>
#include <utility>

#include "focus/tensor/error.hpp"

namespace focus {

struct InputError : ValueError {
  // what(): "input <index>: <reason>".
  InputError(size_t index, std::string reason)
      : ValueError(fmt::format("input {}: {}", index, reason)), index_(index), reason_(std::move(reason)) {}
  size_t index() const { return index_; }
  const std::string& reason() const { return reason_; }

 private:
  size_t index_;
  std::string reason_;
};

}  // namespace focus
