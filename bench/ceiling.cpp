// ceiling: what this machine allows a queue, not a peer.  Two rings that do
// none of a dispatcher's work (no checks, no copy of strings, no routing
// beyond the harness's own deliver()), built on the peers' common.hpp so
// that B1 is measured exactly as for them.
//
//   ceiling-spsc  one producer stores its tail with a plain release store,
//                 as a queue can when only one thread ever enqueues.
//   ceiling-rmw   the same ring, but the producer moves its tail with a
//                 compare-and-swap, as a queue does that gives the tokens
//                 of many producers one order.
//
// Both take B1 with one producer only: scripts/bench.sh runs them beside
// dfm-bench so that the page can say how close the library comes.
#include "common.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>

#ifndef CEILING_NAME
#error "build with -DCEILING_NAME=\"ceiling-spsc\" or \"ceiling-rmw\""
#endif

struct Peer {
  static constexpr size_t kSize = size_t{1} << 16;  // 3 MiB of tokens

  token_t *ring = static_cast<token_t *>(
      std::aligned_alloc(64, kSize * sizeof(token_t)));
  alignas(64) std::atomic<size_t> tail{0};
  alignas(64) std::atomic<size_t> head{0};
  alignas(64) size_t position = 0;  // the consumer's own

  struct Producer {
    Peer &peer;
    size_t next = 0;
    size_t head_seen = 0;  // a stale head only underestimates the room

    explicit Producer(Peer &p) : peer(p) {}

    void enqueue(const token_t &token) {
      while (next - head_seen >= kSize)
        head_seen = peer.head.load(std::memory_order_acquire);
      peer.ring[next & (kSize - 1)] = token;
      // Release: the consumer's acquire load of tail sees the token.
#ifdef CEILING_RMW
      size_t expected = next;
      peer.tail.compare_exchange_strong(expected, next + 1,
                                        std::memory_order_acq_rel);
#else
      peer.tail.store(next + 1, std::memory_order_release);
#endif
      next++;
    }
  };

  void pump() {
    // Acquire: pairs with the producer's release of tail.
    size_t end = tail.load(std::memory_order_acquire);
    while (position < end) {
      deliver(ring[position & (kSize - 1)]);
      position++;
    }
    // Release: the slots are read before the producer may reuse them.
    head.store(position, std::memory_order_release);
  }

  void wait_and_pump() { pump(); }
};

int main(int argc, char **argv) {
  if (argc >= 3 && std::strcmp(argv[1], "B1") == 0 && std::atoi(argv[2]) != 1) {
    std::fprintf(stderr, "FAIL %s: one producer only\n", CEILING_NAME);
    return 1;
  }
  return bench_main<Peer>(CEILING_NAME, argc, argv);
}
