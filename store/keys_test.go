package store

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"followupd/message"
)

// TestDueKeyOrder: byte order of due keys is (time, id) order for any
// times, including before 1970, the zero time and other zones.
func TestDueKeyOrder(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(uint64(seed), 1))
	msk := time.FixedZone("MSK", 3*3600)
	times := []time.Time{{}, time.Unix(0, 0), time.Unix(-1, 999999999), time.Unix(-1, 0), bt0, bt0.In(msk), bt0.Add(time.Nanosecond), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)}
	for range 500 {
		times = append(times, time.Unix(r.Int64N(1<<40)-(1<<39), r.Int64N(1e9)))
	}
	type item struct {
		at time.Time
		id uint64
		k  []byte
	}
	var items []item
	for i, at := range times {
		id := uint64(r.IntN(4))
		k := dueKey(at, id)
		got, gid, err := parseDueKey(k)
		if err != nil || !got.Equal(at) || gid != id {
			t.Fatalf("round trip %d: %v %d %v, want %v %d", i, got, gid, err, at, id)
		}
		items = append(items, item{at, id, k})
	}
	slices.SortFunc(items, func(a, b item) int { return bytes.Compare(a.k, b.k) })
	for i := 1; i < len(items); i++ {
		a, b := items[i-1], items[i]
		if b.at.Before(a.at) || (b.at.Equal(a.at) && b.id < a.id) {
			t.Fatalf("byte order disagrees: %v/%d before %v/%d", a.at, a.id, b.at, b.id)
		}
	}
	if _, _, err := parseDueKey([]byte("short")); err == nil {
		t.Error("short due key accepted")
	}
}

func TestFolderKeyNoCollision(t *testing.T) {
	a, _ := locKey("ab", "c", 1, 2)
	b, _ := locKey("a", "bc", 1, 2)
	if bytes.Equal(a, b) {
		t.Fatal("account/mailbox boundary is ambiguous")
	}
	if _, err := folderKey(string(make([]byte, 70000)), "x"); err == nil {
		t.Error("overlong account accepted")
	}
}

// TestCheckFindsDamage: Check is what storetest relies on, so it must fail
// on each kind of broken index or ledger.
func TestCheckFindsDamage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(tx *bolt.Tx, f *FollowUp) error
	}{
		{"due entry missing", func(tx *bolt.Tx, f *FollowUp) error { return tx.Bucket(bucketFUDue).Delete(dueKey(f.Due, f.ID)) }},
		{"stale due entry", func(tx *bolt.Tx, f *FollowUp) error {
			return tx.Bucket(bucketFUDue).Put(dueKey(f.Due.Add(time.Hour), f.ID), nil)
		}},
		{"state entry wrong", func(tx *bolt.Tx, f *FollowUp) error {
			return tx.Bucket(bucketFUState).Put(stateKey(StateStopped, f.ID), nil)
		}},
		{"recipient missing", func(tx *bolt.Tx, f *FollowUp) error {
			return tx.Bucket(bucketFURcpt).Delete(addrKey("client@buyer.example", f.ID))
		}},
		{"recipient foreign", func(tx *bolt.Tx, f *FollowUp) error {
			return tx.Bucket(bucketFURcpt).Put(addrKey("x@y", f.ID), nil)
		}},
		{"message id index to nothing", func(tx *bolt.Tx, f *FollowUp) error {
			return tx.Bucket(bucketFUMsgID).Put([]byte("ghost@x"), u64(99))
		}},
		{"thread id missing", func(tx *bolt.Tx, f *FollowUp) error { return tx.Bucket(bucketFUThread).Delete([]byte(f.SendID)) }},
		{"ledger says sent while sending", func(tx *bolt.Tx, f *FollowUp) error {
			e, k, err := lastLedger(tx, f.ID, f.Step)
			if err != nil {
				return err
			}
			e.State = LedgerSent
			return putLedger(tx, k, e)
		}},
		{"follow-up without history", func(tx *bolt.Tx, f *FollowUp) error {
			f.History = nil
			_, err := putFU(tx, f)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := seed(t, 3)
			f, err := db.Get(2)
			if err != nil {
				t.Fatal(err)
			}
			f, err = db.Transition(f.ID, EvDue, bt0, "due", func(f *FollowUp) error {
				f.State, f.SendID = StateSending, message.NewOwnMessageID("seller.example", f.ID, 1)
				f.To = []message.Address{{Addr: "Client@Buyer.Example"}}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if tc.name == "due entry missing" || tc.name == "stale due entry" {
				f, _ = db.Get(1) // a waiting one
			}
			if err := db.Check(); err != nil {
				t.Fatalf("clean store: %v", err)
			}
			if err := db.update(func(tx *bolt.Tx) error { return tc.damage(tx, f) }); err != nil {
				t.Fatal(err)
			}
			err = db.Check()
			if err == nil {
				t.Fatal("Check found nothing")
			}
			t.Log(err)
		})
	}
}
