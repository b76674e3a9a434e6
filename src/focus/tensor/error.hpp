// Typed exceptions thrown by every library entry point on a caller's mistake.
// A library call never aborts the process: it throws one of these, with the shapes or values
// involved in the message. Build messages with fmt (FOCUS_CHECK below does).
#pragma once
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace focus {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct ShapeError : Error { using Error::Error; };   // wrong shape, rank or broadcast
struct ValueError : Error { using Error::Error; };   // a bad argument value (negative size, p>1...)
struct DTypeError : Error { using Error::Error; };   // unsupported or mismatched dtype
struct IOError : Error { using Error::Error; };      // a missing, unreadable or unwritable file
struct FormatError : Error { using Error::Error; };  // a corrupt or truncated file, a missing tensor
struct StateError : Error { using Error::Error; };   // misuse of an object's state (graph freed...)

}  // namespace focus

// FOCUS_CHECK(cond, ErrorType, "fmt {}", args...) throws ErrorType with the formatted message.
#define FOCUS_CHECK(cond, Type, ...)                          \
  do {                                                        \
    if (!(cond)) throw ::focus::Type(::fmt::format(__VA_ARGS__)); \
  } while (0)
