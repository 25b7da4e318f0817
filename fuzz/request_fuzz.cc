// libFuzzer target: one JSON Lines request through the decoder, the engine, the explanation and
// the response writer, on the GSOMIA example policy; and the input as a stream of lines through
// DecideLines, the loop of `accord decide` and `POST /v1/decide`.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "accord/config.h"
#include "accord/engine.h"
#include "accord/request_json.h"
#include "decide_lines.h"

namespace {

const accord::Engine& Example() {
  static const accord::Engine engine = [] {
    auto policy = accord::LoadPolicyDir(ACCORD_SOURCE_DIR "/examples/gsomia");
    if (!policy) std::abort();
    auto compiled = accord::Engine::Compile(std::move(*policy));
    if (!compiled) std::abort();
    return std::move(*compiled);
  }();
  return engine;
}

// The answer to `line` from `decoder` and `writer`.
std::string Answer(std::string_view line, accord::RequestDecoder& decoder,
                   accord::ResponseWriter& writer) {
  std::string out;
  auto request = decoder.Decode(line);
  if (!request) {
    writer.WriteInvalid(out, decoder.id_json(), request.error());
    return out;
  }
  const accord::Decision d = Example().Decide(**request);
  // A decision and its reason always agree.
  const bool allow_reason =
      d.reason == accord::Reason::kReleased || d.reason == accord::Reason::kReleasable ||
      d.reason == accord::Reason::kForwardable || d.reason == accord::Reason::kOriginatorCleared;
  if (d.allow != allow_reason) __builtin_trap();
  writer.Write(out, decoder.id_json(), **request, d);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // Used for every input, as `accord decide`'s workers use theirs for every line: nothing of an
  // earlier line may show in a later answer.
  static accord::RequestDecoder reused_decoder;
  static accord::ResponseWriter reused_writer(Example());
  const std::string out = Answer(input, reused_decoder, reused_writer);
  // One line: JSON escapes every newline in the strings it echoes.
  if (out.empty() || out.find('\n') != out.size() - 1) __builtin_trap();
  // Deterministic: a fresh decoder answers the same, byte for byte.
  accord::RequestDecoder fresh_decoder;
  accord::ResponseWriter fresh_writer(Example());
  if (Answer(input, fresh_decoder, fresh_writer) != out) __builtin_trap();

  // As a stream, with no bound and with one between the shortest requests that decode (about
  // 110 bytes) and most: one answer line per line with more than spaces and tabs, in order, each
  // the answer that line has alone, and a line over the bound answered as too long, not decoded.
  for (const size_t max_line : {std::string_view::npos, size_t{192}}) {
    std::string stream;
    accord::DecideLines(input, Example(), reused_decoder, reused_writer, stream, max_line);
    if (static_cast<size_t>(std::count(stream.begin(), stream.end(), '\n')) !=
        accord_fuzz::AnsweredLines(input)) {
      __builtin_trap();
    }
    std::string too_long;
    fresh_writer.WriteInvalid(too_long, "null", accord::LineTooLongError(max_line));
    std::string_view rest = input;
    std::string_view answers = stream;
    while (!rest.empty()) {
      const auto line = accord_fuzz::Answered(accord_fuzz::NextLine(rest));
      if (!line) continue;
      const std::string expected =
          line->size() > max_line ? too_long : Answer(*line, fresh_decoder, fresh_writer);
      if (expected != std::string(accord_fuzz::NextLine(answers)) + "\n") __builtin_trap();
    }
    if (!answers.empty()) __builtin_trap();
  }
  return 0;
}
