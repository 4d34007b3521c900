package store_test

import (
	"testing"
	"time"

	"followupd/store"
	"followupd/store/storetest"
)

func TestOldestSent(t *testing.T) {
	db := storetest.New(t)
	want := func(when string, at time.Time, ok bool) {
		t.Helper()
		got, gotOK, err := db.OldestSent()
		if err != nil || gotOK != ok || (ok && !got.Equal(at)) {
			t.Fatalf("%s: OldestSent = %v, %v, %v; want %v, %v", when, got, gotOK, err, at, ok)
		}
	}
	want("empty store", time.Time{}, false)

	track := func(msgid string, sent time.Time) *store.FollowUp {
		t.Helper()
		f := newFollowUp(msgid, sent.Add(72*time.Hour))
		f.SentAt, f.LastSent = sent, sent
		out, created, err := db.Track(f, t0, "test")
		if err != nil || !created {
			t.Fatalf("track %s: %v %v", msgid, created, err)
		}
		return out
	}
	track("b@seller.example", t0)
	want("one follow-up", t0, true)
	track("c@seller.example", t0.Add(48*time.Hour))
	want("a later one", t0, true)
	a := track("a@seller.example", t0.Add(-30*24*time.Hour))
	want("an earlier one", t0.Add(-30*24*time.Hour), true)

	// The bound never rises, not even when the earliest one ends.
	if _, err := db.Transition(a.ID, store.EvStop, t0, "test", func(f *store.FollowUp) error {
		f.State, f.Due = store.StateStopped, time.Time{}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	db.Reopen()
	want("after its end and a reopen", t0.Add(-30*24*time.Hour), true)

	// A store from before the key existed computes it from its follow-ups,
	// and the next Track keeps the true minimum, not its own SentAt.
	if err := db.PutMeta("oldest_sent", nil); err != nil {
		t.Fatal(err)
	}
	want("key missing", t0.Add(-30*24*time.Hour), true)
	track("d@seller.example", t0.Add(24*time.Hour))
	want("key missing, then a later Track", t0.Add(-30*24*time.Hour), true)
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
}

// A store that lacks the bound (written before it existed) gets its value
// from its follow-ups, and Open does not write it (a damaged file must not
// be written to; FuzzOpen found Open growing one to 2 TB when it did).
func TestOldestSentWithoutKey(t *testing.T) {
	db := storetest.New(t)
	f := newFollowUp("old@seller.example", t0.Add(72*time.Hour))
	f.SentAt = t0.Add(-9 * 24 * time.Hour)
	if _, _, err := db.Track(f, t0, "test"); err != nil {
		t.Fatal(err)
	}
	if err := db.PutMeta("oldest_sent", nil); err != nil {
		t.Fatal(err)
	}
	db.Reopen()
	if _, err := db.Meta("oldest_sent"); err == nil {
		t.Error("Open wrote the bound")
	}
	for range 2 { // computed, then kept
		if got, ok, err := db.OldestSent(); err != nil || !ok || !got.Equal(f.SentAt) {
			t.Errorf("OldestSent = %v %v %v, want %v", got, ok, err, f.SentAt)
		}
	}
}
