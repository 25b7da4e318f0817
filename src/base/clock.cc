#include "accord/clock.h"

#include <chrono>

namespace accord {

Instant SystemClock::Now() const {
  const auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  return Instant{std::chrono::duration_cast<std::chrono::microseconds>(since_epoch).count()};
}

}  // namespace accord
