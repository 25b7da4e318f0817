// libFuzzer target: one JSON Lines request through the decoder, the engine, the explanation and
// the response writer, on the GSOMIA example policy.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "accord/config.h"
#include "accord/engine.h"
#include "accord/request_json.h"

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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const accord::Engine& engine = Example();
  static accord::RequestDecoder decoder;
  static accord::ResponseWriter writer(engine);
  std::string out;
  auto request = decoder.Decode(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!request) {
    writer.WriteInvalid(out, decoder.id_json(), request.error());
  } else {
    const accord::Decision d = engine.Decide(**request);
    // A decision and its reason always agree.
    const bool allow_reason =
        d.reason == accord::Reason::kReleased || d.reason == accord::Reason::kReleasable ||
        d.reason == accord::Reason::kForwardable || d.reason == accord::Reason::kOriginatorCleared;
    if (d.allow != allow_reason) __builtin_trap();
    writer.Write(out, decoder.id_json(), **request, d);
  }
  if (out.empty() || out.back() != '\n') __builtin_trap();
  return 0;
}
