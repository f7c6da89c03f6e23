// SPDX-License-Identifier: MIT
// lmdb://DIR: the store every process of one host shares by opening the same directory, built on
// LMDB (memory-mapped B-trees: readers never block, one writer at a time across processes, a
// commit is atomic, so a process killed mid-write leaves every committed entry intact).
//
// Layout (lmdb_record.hpp for the keys and records): `entries` (store key -> record with its
// expiry and stamp), and two indexes kept in the same transactions: `by_stamp` (stamp -> store
// key: oldest first) and `by_expiry` (expiry, store key). A stamp is a number that grows with
// every write.
//
// Bounded: what the entries and indexes occupy stays within max_bytes (LMDB's own page counts, so
// B-tree overhead counts too); the map is twice that plus slack, for copy-on-write and the pages
// readers still see. Each write first reclaims up to 16 expired entries, then, when over the
// limit, evicts the oldest stamps. Recency is approximate LRU: a hit on an entry whose stamp is in
// the older half of the store queues its key (up to 1024 per process, the check costs nothing:
// the stamp is in the record read), and the next write of that process stamps it anew (the
// record written again). A process that does not write learns the older half every 250 ms and
// writes its queue itself (64 queued, or the oldest queued 250 ms ago).
//
// The files: DIR/data.mdb, DIR/lock.mdb (mode 0600, DIR 0700 when created). Commits are not
// fsync'ed (MDB_NOSYNC): a process crash loses nothing committed, but after an OS crash the file
// may be torn, so DIR/boot_id records the boot that last opened the store and an opener from
// another boot starts it empty. Every process must open a store with the same max_bytes.
//
// Fork: LMDB forbids using an environment in a child; the child's first call closes its copy and
// opens the store again (one environment per directory per process, shared by its handles).
#pragma once

#include <memory>

#include "backend.hpp"
#include "url.hpp"

namespace httpcache {

// Opens (creating DIR when missing) or throws error(errc::invalid) for a max_bytes other than the
// store's, error(errc::backend) when the directory or its files cannot be opened.
std::unique_ptr<backend> make_lmdb_backend(const backend_url& url);

}  // namespace httpcache
