#include "work_queue.h"

#include <gtest/gtest.h>

#include <numeric>
#include <thread>
#include <vector>

namespace accord::server_internal {
namespace {

std::vector<int> Range(int from, int to) {
  std::vector<int> v(static_cast<size_t>(to - from));
  std::iota(v.begin(), v.end(), from);
  return v;
}

TEST(WorkQueueTest, ACallTakesEverythingWaitingOldestFirst) {
  WorkQueue<int> queue;
  for (int i = 0; i < 70; ++i) queue.Push(i);
  queue.Stop();  // Run still takes everything pushed before it returns
  std::vector<std::vector<int>> calls;
  queue.Run([&](std::vector<int>& batch) {
    calls.push_back(batch);
    if (calls.size() == 1) {  // pushed during a call: the next call's
      queue.Push(100);
      queue.Push(101);
    }
  });
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0], Range(0, 70));
  EXPECT_EQ(calls[1], Range(100, 102));
}

TEST(WorkQueueTest, StopEndsRunOnlyOnceTheQueueIsEmpty) {
  WorkQueue<int> queue;
  std::vector<int> seen;
  std::thread consumer([&] {
    queue.Run(
        [&](std::vector<int>& batch) { seen.insert(seen.end(), batch.begin(), batch.end()); });
  });
  queue.Push(7);
  queue.Stop();
  consumer.join();  // returns only once 7 is taken
  EXPECT_EQ(seen, std::vector<int>{7});
}

TEST(WorkQueueTest, ItemsFromManyThreadsArriveOnceEachInTheirOrder) {
  constexpr int kProducers = 4, kEach = 5000;
  WorkQueue<int> queue;
  std::vector<int> seen;
  std::thread consumer([&] {
    queue.Run(
        [&](std::vector<int>& batch) { seen.insert(seen.end(), batch.begin(), batch.end()); });
  });
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < kEach; ++i) queue.Push(p * kEach + i);
    });
  }
  for (auto& t : producers) t.join();
  queue.Stop();
  consumer.join();
  ASSERT_EQ(seen.size(), static_cast<size_t>(kProducers * kEach));
  // Each producer's items in the order it pushed them, and every item once.
  std::vector<int> next(kProducers);
  for (int item : seen) {
    const int p = item / kEach;
    EXPECT_EQ(item, p * kEach + next[static_cast<size_t>(p)]);
    ++next[static_cast<size_t>(p)];
  }
  EXPECT_EQ(next, std::vector<int>(kProducers, kEach));
}

}  // namespace
}  // namespace accord::server_internal
