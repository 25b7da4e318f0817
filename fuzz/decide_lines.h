// fuzz/decide_lines.h — the lines of a decide stream as the fuzz targets count them, written
// apart from DecideLines (accord/request_json.h) so that each checks the other.
#ifndef ACCORD_FUZZ_DECIDE_LINES_H_
#define ACCORD_FUZZ_DECIDE_LINES_H_

#include <cstddef>
#include <optional>
#include <string_view>

namespace accord_fuzz {

// The first line of `input` without its newline; `input` keeps what follows.
inline std::string_view NextLine(std::string_view& input) {
  const size_t nl = input.find('\n');
  const std::string_view line = input.substr(0, nl);
  input.remove_prefix(nl == std::string_view::npos ? input.size() : nl + 1);
  return line;
}

// The request DecideLines reads from `line` (a final CR dropped), or none for a blank line (only
// spaces and tabs), which it skips.
inline std::optional<std::string_view> Answered(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.find_first_not_of(" \t") == std::string_view::npos) return std::nullopt;
  return line;
}

// How many lines of `body` DecideLines answers.
inline size_t AnsweredLines(std::string_view body) {
  size_t answered = 0;
  while (!body.empty()) answered += Answered(NextLine(body)).has_value() ? 1 : 0;
  return answered;
}

}  // namespace accord_fuzz

#endif  // ACCORD_FUZZ_DECIDE_LINES_H_
