#pragma once
// The Redis dedup store: ids live in Redis under spec.prefix + "NAMESPACE:ID", so that every
// kpipe process pointing at the same Redis shares them and they survive restarts.
//
// A BatchingStore whose backend holds one synchronous hiredis connection on the store's
// thread and sends each batch as one pipelined round trip. Nothing connects at construction:
// a Redis that is down is a blocking failure answered per operation (with spec.redis.display
// and the reason, never the password), and the backend reconnects by itself, at most once per
// ~100 ms while Redis stays unreachable.
//
// Values: "r:OWNER" while reserved (expires after reservation_ttl), "d" once confirmed
// (expires after ttl). Reserve and release are Lua scripts, so each is atomic.

#include "daemon/config/spec.h"
#include "daemon/dedup/batching_store.h"
#include "daemon/observe/metrics.h"

#include <cstdint>
#include <memory>

namespace kpipe::dedup {

// `metrics` may be null.
std::unique_ptr<Store> makeRedisStore(const config::StoreSpec& spec, observe::Metrics* metrics,
                                      BatchingOptions options = {});

// Pipelined round trips made by every Redis store of this process (connection setup excluded),
// so that tests can tell batches from single operations.
uint64_t redisRoundTripsForTest();

}  // namespace kpipe::dedup
