#include "answer_budget.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <utility>
#include <vector>

namespace accord::server_internal {
namespace {

using std::chrono::milliseconds;

TEST(AnswerBudgetTest, ChargesAreRefundedOnceWhereverTheyEnd) {
  AnswerBudget budget(100);
  EXPECT_EQ(budget.Room(), 100u);
  {
    AnswerCharge a = budget.Charge(30);
    AnswerCharge b = budget.Charge(50);
    EXPECT_EQ(budget.Charged(), 80u);
    EXPECT_EQ(budget.Room(), 20u);
    AnswerCharge moved = std::move(a);  // the bytes go with the move, not twice
    a.Reset();                          // a moved-from charge refunds nothing
    EXPECT_EQ(budget.Charged(), 80u);
    b.Reset();
    b.Reset();
    EXPECT_EQ(budget.Charged(), 30u);
    AnswerCharge over = budget.Charge(200);  // the caller looked for room: charged anyway
    EXPECT_EQ(budget.Charged(), 230u);
    EXPECT_EQ(budget.Room(), 0u);
    over = budget.Charge(1);  // assigning refunds what it held
    EXPECT_EQ(budget.Charged(), 31u);
  }
  EXPECT_EQ(budget.Charged(), 0u);
  std::vector<AnswerCharge> many;
  for (int i = 0; i < 10; ++i) many.push_back(budget.Charge(10));
  EXPECT_EQ(budget.Room(), 0u);
  many.clear();
  EXPECT_EQ(budget.Room(), 100u);
}

TEST(AnswerBudgetTest, WaitingForRoomEndsWhenAnotherThreadRefunds) {
  AnswerBudget budget(100);
  EXPECT_TRUE(budget.WaitForRoom(milliseconds(0)));
  AnswerCharge full = budget.Charge(100);
  EXPECT_FALSE(budget.WaitForRoom(milliseconds(20)));  // exactly at the limit is full
  std::thread writer([charge = std::move(full)]() mutable {
    std::this_thread::sleep_for(milliseconds(50));
    charge.Reset();  // as the io thread does once an answer is written
  });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(budget.WaitForRoom(milliseconds(30'000)));
  // Woken by the refund, not by the end of the wait (which would also find the room).
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(15));
  EXPECT_EQ(budget.Charged(), 0u);
  writer.join();
}

}  // namespace
}  // namespace accord::server_internal
