package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// keyOldestSent (bucket kv) holds the earliest SentAt of any follow-up ever
// tracked, as 8 bytes of big-endian Unix nanoseconds. It only goes down
// (Track lowers it; nothing raises it, not even a follow-up's end), so it is
// a lower bound of every follow-up's SentAt at any time. The daemon uses it
// to know which history cannot concern any follow-up (OldestSent).
//
// A store written before this key existed has none: the first Track (or
// OldestSent) computes it from the follow-ups themselves.
var keyOldestSent = []byte("oldest_sent")

// noneTracked is keyOldestSent's value when no follow-up was ever tracked.
const noneTracked = int64(1<<63 - 1)

// OldestSent returns the earliest SentAt of any follow-up ever tracked in
// this store, and false when none was. Every follow-up the store holds, in
// any state, was sent at or after it.
//
// A store written before keyOldestSent existed has no key until its next
// Track: the value is then computed from the follow-ups once and kept in
// memory (Open never writes it: a damaged file must not be written to).
// Only Track adds follow-ups, and it writes the key, so the kept value
// cannot go stale.
func (db *DB) OldestSent() (time.Time, bool, error) {
	var ns int64
	err := db.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketKV).Get(keyOldestSent); len(v) == 8 {
			ns = int64(binary.BigEndian.Uint64(v))
			return nil
		}
		if db.oldestKept.Load() {
			ns = db.oldest.Load()
			return nil
		}
		var err error
		if ns, err = oldestSentTx(tx); err == nil {
			db.oldest.Store(ns)
			db.oldestKept.Store(true)
		}
		return err
	})
	if err != nil {
		return time.Time{}, false, err
	}
	if ns == noneTracked {
		return time.Time{}, false, nil
	}
	return time.Unix(0, ns), true, nil
}

// oldestSentTx reads keyOldestSent, computing it from the follow-ups when
// it is missing (in a read transaction that result is not kept).
func oldestSentTx(tx *bolt.Tx) (int64, error) {
	if v := tx.Bucket(bucketKV).Get(keyOldestSent); len(v) == 8 {
		return int64(binary.BigEndian.Uint64(v)), nil
	}
	ns := noneTracked
	err := tx.Bucket(bucketFU).ForEach(func(k, v []byte) error {
		var f struct {
			SentAt time.Time `json:"sent_at"`
		}
		if err := json.Unmarshal(v, &f); err != nil {
			return fmt.Errorf("store: oldest sent: decode follow-up %x: %w", k, err)
		}
		ns = min(ns, sentNanos(f.SentAt))
		return nil
	})
	return ns, err
}

// lowerOldestSentTx records that a follow-up sent at t exists.
func lowerOldestSentTx(tx *bolt.Tx, t time.Time) error {
	cur, err := oldestSentTx(tx)
	if err != nil {
		return err
	}
	v := tx.Bucket(bucketKV).Get(keyOldestSent)
	ns := min(cur, sentNanos(t))
	if ns == cur && len(v) == 8 {
		return nil
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(ns))
	if err := tx.Bucket(bucketKV).Put(keyOldestSent, b[:]); err != nil {
		return fmt.Errorf("store: put oldest sent: %w", err)
	}
	return nil
}

// sentNanos is t in Unix nanoseconds, clamped to what int64 holds (a zero
// SentAt counts as the earliest possible time).
func sentNanos(t time.Time) int64 {
	const minYear, maxYear = 1678, 2261 // UnixNano's range
	switch {
	case t.IsZero() || t.Year() <= minYear:
		return -1 << 63
	case t.Year() >= maxYear:
		return noneTracked - 1
	}
	return t.UnixNano()
}
