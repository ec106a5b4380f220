#pragma once
// A durable dedup store in a local LMDB database (config: type lmdb, path, map_size): ids
// survive a restart and a crash of the process or the machine, without a server to run.
//
// A BatchingStore (batching_store.h): each batch of requests is one write transaction,
// committed with LMDB's default sync, so that one fsync serves up to max_batch operations.
// An answer is given only after its transaction is committed.
//
// Layout, in the directory `path` (created, mode 0700, if missing):
//   ids:      key → expiry (big-endian wall-clock ms, so that it survives a restart), a state
//             byte ('R' reserved, 'D' done) and, when reserved, the owner;
//   expiries: (big-endian expiry ms, key) → nothing, so that expired ids are swept oldest first.
// Every write keeps the two consistent. An expired id counts as absent at once; the sweep, on
// the store's thread every 100 ms (between batches under load), deletes up to 10,000 expired
// ids per transaction: up to 100,000 a second.
//
// Keys are "namespace:id". LMDB keys are at most 511 bytes, and the expiries key adds 8, so a
// key longer than 480 bytes is stored as its first 464 bytes followed by the 32 hex digits of
// its 128-bit hash (hash.h): always 496 bytes, a length no key stored as is can have. Two long
// keys with the same first 464 bytes clash with probability n^2 / 2^129 for n of them.
//
// Errors: when a batch's transaction fails (MDB_MAP_FULL when the database has grown to
// map_size, an I/O error), nothing of the batch is written and every operation of it is
// answered with an error naming the path; the store keeps serving the batches that follow
// (when the map is full, a batch that writes nothing, such as duplicates, still succeeds, and
// the sweep makes room as ids expire). Each distinct error is logged once.
//
// Several processes may open the same path (LMDB locks it); they then share ids.

#include "daemon/config/spec.h"
#include "daemon/dedup/batching_store.h"
#include "daemon/observe/metrics.h"

#include <memory>
#include <string>
#include <variant>

namespace kpipe::dedup {

// The store, or why the database at spec.path cannot be opened. `metrics` may be null.
std::variant<std::unique_ptr<Store>, std::string> makeLmdbStore(const config::StoreSpec& spec,
                                                                observe::Metrics* metrics,
                                                                BatchingOptions options = {});

}  // namespace kpipe::dedup
