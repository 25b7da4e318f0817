// accord/clock.h — where "now" comes from.
//
// Every node operation is decided at the current instant. Production homes use `SystemClock`;
// homes created for simulation (`accord node init --simulate`) use a `FixedClock` set from `--at`,
// so demos and tests can replay history.
//
// Thread safety: implementations are safe to call concurrently.
#ifndef ACCORD_CLOCK_H_
#define ACCORD_CLOCK_H_

#include "accord/time.h"

namespace accord {

class Clock {
 public:
  virtual ~Clock() = default;
  [[nodiscard]] virtual Instant Now() const = 0;
};

// The system's real-time clock, to the microsecond.
class SystemClock final : public Clock {
 public:
  [[nodiscard]] Instant Now() const override;
};

// A clock that always answers the instant it was given.
class FixedClock final : public Clock {
 public:
  explicit FixedClock(Instant at) : at_(at) {}
  [[nodiscard]] Instant Now() const override { return at_; }

 private:
  const Instant at_;
};

}  // namespace accord

#endif  // ACCORD_CLOCK_H_
