// libFuzzer target: the TOML policy loader, then the compiler and every agreement's lifecycle.
// The input is parties.toml and one agreement file, separated by a line "%%".
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "accord/config.h"
#include "accord/engine.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t cut = input.find("\n%%\n");
  accord::PolicySources sources;
  sources.parties = accord::PolicyFile{"parties.toml", std::string(input.substr(0, cut))};
  if (cut != std::string_view::npos) {
    sources.agreements.push_back(
        accord::PolicyFile{"agreements/a.toml", std::string(input.substr(cut + 4))});
  }
  auto policy = accord::LoadPolicy(sources);
  if (!policy) {
    for (const auto& d : policy.error()) {
      if (d.message.empty() || d.message.find('\n') != std::string::npos) __builtin_trap();
    }
    return 0;
  }
  auto engine = accord::Engine::Compile(std::move(*policy));
  if (!engine) return 0;
  for (int32_t g = 0; g < engine->agreement_count(); ++g) {
    (void)engine->Status(g, engine->agreement(g).in_force);
    (void)accord::Timeline(engine->agreement(g), accord::Instant::FromSeconds(2'000'000'000), 50);
  }
  return 0;
}
