package store_test

import (
	"bytes"
	"testing"
	"time"

	"followupd/store"
	"followupd/store/storetest"
)

// TestPutIncomings: a batch writes each new verdict once, keeps the first
// of a message recorded twice, writes nothing when all are known, and is
// refused whole when one has no id.
func TestPutIncomings(t *testing.T) {
	db := storetest.New(t)
	a := store.Incoming{MessageID: "a@buyer", Account: "work", Kind: "reply", From: "A@Buyer.Example", Date: t0, ThreadIDs: []string{"offer-1@seller"}}
	b := store.Incoming{MessageID: "b@buyer", Account: "work", Kind: "autoreply", From: "b@buyer.example", Date: t0, ThreadIDs: []string{"offer-1@seller"}}
	if err := db.PutIncoming(a); err != nil {
		t.Fatal(err)
	}
	changed := a
	changed.Kind = "bounce"
	if err := db.PutIncomings([]store.Incoming{changed, b, b}); err != nil {
		t.Fatal(err)
	}
	got, err := db.IncomingByThread([]string{"offer-1@seller"})
	if err != nil || len(got) != 2 {
		t.Fatalf("by thread: %+v %v", got, err)
	}
	kinds := map[string]string{}
	for _, in := range got {
		kinds[in.MessageID] = in.Kind
	}
	if kinds["a@buyer"] != "reply" || kinds["b@buyer"] != "autoreply" {
		t.Errorf("kinds %v", kinds)
	}
	snap := snapshot(t, db)
	if err := db.PutIncomings([]store.Incoming{a, b}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snap, snapshot(t, db)) {
		t.Error("a batch of known verdicts wrote")
	}
	c := store.Incoming{MessageID: "c@buyer", Date: t0.Add(time.Hour)}
	if err := db.PutIncomings([]store.Incoming{c, {}}); err == nil {
		t.Error("batch with an id-less verdict accepted")
	}
	if got, _ := db.IncomingFrom("", t0); len(got) != 0 {
		t.Errorf("partial batch written: %+v", got)
	}
	if err := db.PutIncomings(nil); err != nil {
		t.Errorf("empty batch: %v", err)
	}
}
