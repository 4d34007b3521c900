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

// BenchmarkPutMessagesState stores a first sync's 50,000 records (random
// Message-IDs, as real ones are) in batches, fsync on, one folder.
func BenchmarkPutMessagesState(b *testing.B) {
	for _, batch := range []int{1000, 5000, 10000, 25000, 50000} {
		b.Run(fmt.Sprint("batch", batch), func(b *testing.B) {
			const n = 50000
			recs := make([]*message.Record, n)
			for i := range recs {
				recs[i] = &message.Record{
					MessageID: fmt.Sprintf("%x.%d@mail.example", uint64(i)*0x9E3779B97F4A7C15, i),
					Account:   "work", Mailbox: "INBOX", Role: message.RoleInbox, UIDValidity: 1, UID: uint32(i + 1),
					From:    []message.Address{{Name: "Client", Addr: fmt.Sprintf("client%d@buyer%d.example", i%3000, i%400)}},
					To:      []message.Address{{Addr: "ivan@seller.example"}},
					Subject: fmt.Sprintf("Re: Коммерческое предложение %d", i), Date: bt0, Internal: bt0,
					InReplyTo: []string{fmt.Sprintf("offer-%d@seller.example", i)}, References: []string{fmt.Sprintf("offer-%d@seller.example", i)},
					ContentType: "text/plain",
				}
			}
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				db, err := Open(filepath.Join(b.TempDir(), "followupd.db"), Options{Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				for start := 0; start < n; start += batch {
					end := min(start+batch, n)
					if _, err := db.PutMessagesState(recs[start:end], "work", "INBOX", SyncState{UIDValidity: 1, LastUID: uint32(end)}); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				db.Close()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/msg")
		})
	}
}
