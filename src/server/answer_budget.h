// AnswerBudget: the bytes of answers built and not yet sent, bounded.
#ifndef ACCORD_SRC_SERVER_ANSWER_BUDGET_H_
#define ACCORD_SRC_SERVER_ANSWER_BUDGET_H_

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <utility>

namespace accord::server_internal {

class AnswerBudget;

// Bytes charged to an AnswerBudget, refunded when the charge is reset or destroyed, on any
// thread: wherever the answer it pays for is freed. Move-only.
class AnswerCharge {
 public:
  AnswerCharge() = default;
  AnswerCharge(AnswerCharge&& other) noexcept
      : budget_(std::exchange(other.budget_, nullptr)), bytes_(other.bytes_) {}
  AnswerCharge& operator=(AnswerCharge&& other) noexcept {
    if (this != &other) {
      Reset();
      budget_ = std::exchange(other.budget_, nullptr);
      bytes_ = other.bytes_;
    }
    return *this;
  }
  AnswerCharge(const AnswerCharge&) = delete;
  AnswerCharge& operator=(const AnswerCharge&) = delete;
  ~AnswerCharge() { Reset(); }

  // Refunds the bytes now (once).
  inline void Reset();

 private:
  friend class AnswerBudget;
  AnswerCharge(AnswerBudget* budget, size_t bytes) : budget_(budget), bytes_(bytes) {}

  AnswerBudget* budget_ = nullptr;
  size_t bytes_ = 0;
};

// The server's answers in memory (ServerOptions::max_answer_bytes): the thread that builds them
// waits for room before it builds more, and stops a group once it has used the room there was,
// so that the bytes charged stay under the limit plus one answer. A charge may outlive nothing
// but its budget.
//
//   AnswerBudget budget(256 << 20);
//   if (budget.WaitForRoom(std::chrono::seconds(1))) {
//     AnswerCharge charge = budget.Charge(answer.size());  // refunded once the answer is sent
//   }
class AnswerBudget {
 public:
  explicit AnswerBudget(size_t limit) : limit_(limit) {}
  AnswerBudget(const AnswerBudget&) = delete;
  AnswerBudget& operator=(const AnswerBudget&) = delete;

  // Waits, at most `wait`, until fewer bytes than the limit are charged; false if they still
  // are not.
  bool WaitForRoom(std::chrono::milliseconds wait) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, wait, [this] { return charged_ < limit_; });
  }

  // The bytes that may still be charged before the limit (0 at or over it).
  size_t Room() const {
    std::lock_guard lock(mu_);
    return charged_ < limit_ ? limit_ - charged_ : 0;
  }

  // The bytes charged now.
  size_t Charged() const {
    std::lock_guard lock(mu_);
    return charged_;
  }

  // Charges `bytes`, over the limit or not: the caller looked for room first.
  AnswerCharge Charge(size_t bytes) {
    std::lock_guard lock(mu_);
    charged_ += bytes;
    return AnswerCharge(this, bytes);
  }

 private:
  friend class AnswerCharge;
  void Refund(size_t bytes) {
    {
      std::lock_guard lock(mu_);
      charged_ -= bytes;
    }
    cv_.notify_all();
  }

  const size_t limit_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  size_t charged_ = 0;  // GUARDED_BY(mu_)
};

inline void AnswerCharge::Reset() {
  if (budget_ != nullptr) std::exchange(budget_, nullptr)->Refund(bytes_);
}

}  // namespace accord::server_internal

#endif  // ACCORD_SRC_SERVER_ANSWER_BUDGET_H_
