package store

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"followupd/message"
)

var bt0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// seed tracks n waiting follow-ups with scattered due times, 10,000 per
// transaction (through trackTx, the code Track runs), without fsync.
func seed(tb testing.TB, n int) *DB {
	tb.Helper()
	db, err := Open(filepath.Join(tb.TempDir(), "followupd.db"), Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	db.bdb.NoSync = true
	for start := 0; start < n; start += 10000 {
		err := db.update(func(tx *bolt.Tx) error {
			for i := start; i < min(start+10000, n); i++ {
				f := &FollowUp{
					Account: "work", MessageID: fmt.Sprintf("offer-%d@seller.example", i), Rule: "offers",
					To:    []message.Address{{Addr: fmt.Sprintf("client%d@buyer%d.example", i%5000, i%700)}},
					State: StateWaiting, Step: 1, SentAt: bt0, LastSent: bt0,
					// Not in id order, so the index does the sorting.
					Due: bt0.Add(time.Duration((i*7919)%100000) * time.Minute),
				}
				if _, _, err := trackTx(tx, f, bt0, "seed"); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	db.bdb.NoSync = false
	return db
}

func pendingAll(tb testing.TB, db *DB) (n int) {
	var last time.Time
	err := db.PendingDue(func(id uint64, due time.Time) bool {
		if due.Before(last) {
			tb.Fatalf("out of order at %d", id)
		}
		last = due
		n++
		return true
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// TestPendingDue100k: rebuilding the wheel from 100,000 pending follow-ups
// stays well under a second.
func TestPendingDue100k(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 100,000 follow-ups")
	}
	db := seed(t, 100000)
	start := time.Now()
	n := pendingAll(t, db)
	d := time.Since(start)
	t.Logf("PendingDue over %d pending: %v", n, d)
	if n != 100000 {
		t.Fatalf("%d pending, want 100000", n)
	}
	if d > 500*time.Millisecond {
		t.Errorf("PendingDue took %v for 100k", d)
	}
	// Open walks every key (corruption guard): it must stay quick too.
	path := db.Path()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	db2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	t.Logf("Open with 100k follow-ups: %v", time.Since(start))
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Open took %v", d)
	}
	if n := pendingAll(t, db2); n != 100000 {
		t.Errorf("after reopen %d pending", n)
	}
}

func BenchmarkPendingDue100k(b *testing.B) {
	db := seed(b, 100000)
	b.ReportAllocs()
	for b.Loop() {
		if n := pendingAll(b, db); n != 100000 {
			b.Fatalf("%d pending", n)
		}
	}
}

// BenchmarkTransition measures one Snooze (load, mutate, check, history,
// due/state/recipient index moves, fsync'd commit) on a store of 10,000.
func BenchmarkTransition(b *testing.B) {
	db := seed(b, 10000)
	at := bt0
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		id := uint64(i%10000 + 1)
		at = at.Add(time.Second)
		_, err := db.Transition(id, EvSnooze, at, "bench", func(f *FollowUp) error {
			f.Due = at.Add(time.Hour)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
