#include "accord/status.h"

#include <cctype>
#include <new>

namespace accord {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "ok";
    case Code::kInvalidArgument:
      return "invalid-argument";
    case Code::kNotFound:
      return "not-found";
    case Code::kAlreadyExists:
      return "already-exists";
    case Code::kFailedPrecondition:
      return "failed-precondition";
    case Code::kPermissionDenied:
      return "permission-denied";
    case Code::kOutOfRange:
      return "out-of-range";
    case Code::kUnimplemented:
      return "unimplemented";
    case Code::kInternal:
      return "internal";
    case Code::kUnavailable:
      return "unavailable";
    case Code::kDataLoss:
      return "data-loss";
  }
  return "unknown";
}

std::string Error::ToString() const {
  std::string out(CodeName(code));
  out += ": ";
  out += message;
  return out;
}

std::string ExceptionText(const std::exception& e) {
  if (dynamic_cast<const std::bad_alloc*>(&e) != nullptr) return "out of memory";
  std::string text = e.what();
  // Boost's "<what>: <message> [<category>:<value> at <file>:<line>:<column> in function '<f>']".
  const size_t open = text.rfind(" [");
  if (open == std::string::npos || text.back() != ']') return text;
  size_t i = open + 2;
  const size_t category = i;
  while (i < text.size() && (std::isalnum(static_cast<unsigned char>(text[i])) != 0 ||
                             text[i] == '_' || text[i] == '.')) {
    ++i;
  }
  if (i == category || i >= text.size() || text[i] != ':') return text;
  ++i;
  if (i < text.size() && text[i] == '-') ++i;
  const size_t value = i;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) != 0) ++i;
  if (i == value || text.compare(i, 4, " at ") != 0) return text;
  text.resize(open);
  return text;
}

}  // namespace accord
