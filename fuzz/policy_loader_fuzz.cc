// libFuzzer target: the TOML policy loader, then the compiler and every agreement's lifecycle.
// The input is parties.toml, one agreement file and subjects.toml, separated by lines "%%"
// (the agreement and the subjects optional).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "accord/config.h"
#include "accord/engine.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // Up to three parts; the last one takes the rest of the input.
  constexpr std::string_view kCut = "\n%%\n";
  std::vector<std::string> parts;
  std::string_view rest = input;
  for (size_t cut = rest.find(kCut); parts.size() < 2 && cut != std::string_view::npos;
       cut = rest.find(kCut)) {
    parts.emplace_back(rest.substr(0, cut));
    rest.remove_prefix(cut + kCut.size());
  }
  parts.emplace_back(rest);
  accord::PolicySources sources;
  sources.parties = accord::PolicyFile{"parties.toml", std::move(parts[0])};
  if (parts.size() > 1) {
    sources.agreements.push_back(accord::PolicyFile{"agreements/a.toml", std::move(parts[1])});
  }
  if (parts.size() > 2) {
    sources.subjects = accord::PolicyFile{"subjects.toml", std::move(parts[2])};
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
