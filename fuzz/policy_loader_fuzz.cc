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
#include "accord/lifecycle.h"

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
  // Compile fails only where calendar arithmetic leaves years 0001-9999 (the loader checked the
  // rest).
  auto engine = accord::Engine::Compile(std::move(*policy));
  if (!engine) return 0;
  using accord::AgreementState;
  for (int32_t g = 0; g < engine->agreement_count(); ++g) {
    // §2: pending until it enters into force, not pending from then on; ended at its end, by
    // the cause its lifetime gives.
    const accord::Instant in_force = engine->agreement(g).in_force;
    const auto at_start = engine->Status(g, in_force);
    if (at_start && at_start->state == AgreementState::kPending) __builtin_trap();
    if (in_force.micros > accord::Instant::Min().micros) {
      const auto before = engine->Status(g, accord::Instant{in_force.micros - 1});
      if (before && before->state != AgreementState::kPending) __builtin_trap();
    }
    const accord::Lifetime& life = engine->LifetimeOf(g);
    if (life.end != accord::Instant::Max()) {
      const auto at_end = engine->Status(g, life.end);
      if (at_end && (at_end->state != AgreementState::kEnded || at_end->ended_by != life.cause)) {
        __builtin_trap();
      }
    }
    // The timeline is in order of time.
    const auto timeline =
        accord::Timeline(engine->agreement(g), accord::Instant::FromSeconds(2'000'000'000), 50);
    if (timeline) {
      for (size_t i = 1; i < timeline->size(); ++i) {
        if ((*timeline)[i].at < (*timeline)[i - 1].at) __builtin_trap();
      }
    }
  }
  return 0;
}
