package store_test

import (
	"slices"
	"testing"
	"time"

	"followupd/store"
	"followupd/store/storetest"
)

// TestIncomingParties: a bounce is found by the address it reports failed
// (it may quote no Message-ID), and IncomingFromDomain finds a recipient's
// colleagues' messages; neither returns a verdict twice or before since.
func TestIncomingParties(t *testing.T) {
	db := storetest.New(t)
	for _, in := range []store.Incoming{
		{MessageID: "b1@mx", Kind: "bounce", From: "mailer-daemon@mx.example", Date: t0.Add(time.Hour), Failed: []string{"Anna@Buyer.example", "gone@other.example"}},
		{MessageID: "r1@buyer", Kind: "reply", From: "boris@buyer.example", Date: t0.Add(2 * time.Hour)},
		{MessageID: "r2@buyer", Kind: "reply", From: "anna@buyer.example", Date: t0.Add(3 * time.Hour)},
		{MessageID: "r3@sub", Kind: "reply", From: "x@sub.buyer.example", Date: t0.Add(3 * time.Hour)},
		{MessageID: "r4@old", Kind: "reply", From: "old@buyer.example", Date: t0.Add(-time.Hour)},
		{MessageID: "self@mx", Kind: "bounce", From: "loop@buyer.example", Date: t0.Add(time.Hour), Failed: []string{"loop@buyer.example"}},
	} {
		if err := db.PutIncoming(in); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(ins []store.Incoming, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, in := range ins {
			out = append(out, in.MessageID)
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		name string
		got  []string
		want []string
	}{
		{"from a failed address", ids(db.IncomingFrom("anna@buyer.example", t0)), []string{"b1@mx", "r2@buyer"}},
		{"other failed address", ids(db.IncomingFrom("gone@other.example", t0)), []string{"b1@mx"}},
		{"sender of a bounce", ids(db.IncomingFrom("mailer-daemon@mx.example", t0)), []string{"b1@mx"}},
		{"failed == sender once", ids(db.IncomingFrom("loop@buyer.example", t0)), []string{"self@mx"}},
		{"domain", ids(db.IncomingFromDomain("Buyer.Example", t0)), []string{"b1@mx", "r1@buyer", "r2@buyer", "self@mx"}},
		{"domain since", ids(db.IncomingFromDomain("buyer.example", t0.Add(150*time.Minute))), []string{"r2@buyer"}},
		{"no such domain", ids(db.IncomingFromDomain("nobody.example", t0)), nil},
	} {
		if !slices.Equal(tc.got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if err := db.Check(); err != nil {
		t.Errorf("Check after indexing failed addresses: %v", err)
	}
}
