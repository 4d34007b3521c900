package store_test

import (
	"bytes"
	"testing"
	"time"

	"followupd/store"
	"followupd/store/storetest"
)

func TestIncoming(t *testing.T) {
	db := storetest.New(t)
	in := store.Incoming{MessageID: "r1@buyer", Account: "work", Kind: "reply", From: "Client@Buyer.Example",
		Date: t0.Add(time.Hour), ThreadIDs: []string{"offer-1@seller", "older@seller"}}
	if err := db.PutIncoming(in); err != nil {
		t.Fatal(err)
	}
	snap := snapshot(t, db)
	in.Kind = "bounce"
	if err := db.PutIncoming(in); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snap, snapshot(t, db)) {
		t.Error("second PutIncoming wrote")
	}
	got, err := db.IncomingByThread([]string{"nope", "older@seller", "offer-1@seller"})
	if err != nil || len(got) != 1 || got[0].Kind != "reply" || got[0].From != "client@buyer.example" {
		t.Errorf("by thread: %+v %v", got, err)
	}
	for _, tc := range []struct {
		since time.Time
		want  int
	}{{t0, 1}, {t0.Add(time.Hour), 1}, {t0.Add(2 * time.Hour), 0}} {
		got, err := db.IncomingFrom("CLIENT@buyer.example", tc.since)
		if err != nil || len(got) != tc.want {
			t.Errorf("from since %v: %d %v, want %d", tc.since, len(got), err, tc.want)
		}
	}
	if err := db.PutIncoming(store.Incoming{}); err == nil {
		t.Error("incoming without id accepted")
	}
}
