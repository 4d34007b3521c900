package daemon

import (
	"context"
	"errors"
	"testing"

	"followupd/message"
	"followupd/store"
)

// A message without Message-ID stored under the synthetic id of before
// (message.LegacySyntheticID) is known by it when seen again, e.g. after a
// UIDVALIDITY change: not taken for a new message, not stored twice.
func TestLegacySyntheticIDKnown(t *testing.T) {
	const seller = "ivan@seller.test"
	raw := []byte("From: MAILER-DAEMON@mx.client.test\r\nTo: " + seller + "\r\nCc: postmaster@seller.test\r\n" +
		"Subject: Undelivered Mail Returned to Sender\r\nDate: Mon, 23 Nov 2026 10:00:00 +0300\r\nX-Failed-Recipients: gone@client.test\r\n\r\n")
	r, cfg, d := idleDaemon(t, seller, false)
	acct := cfg.Accounts[0].Name
	rec := func(uidvalidity uint32) *message.Record {
		t.Helper()
		rec, err := message.ParseHeader(raw)
		if err != nil {
			t.Fatal(err)
		}
		rec.Account, rec.Mailbox, rec.Role, rec.UIDValidity, rec.UID, rec.Internal = acct, "INBOX", message.RoleInbox, uidvalidity, 7, r.clk.Now()
		return rec
	}
	old := rec(1)
	legacy := message.LegacySyntheticID(old)
	if !old.SyntheticID || legacy == old.MessageID {
		t.Fatalf("test message: synthetic %v, ids %s / %s", old.SyntheticID, old.MessageID, legacy)
	}
	old.MessageID = legacy // as a store written before keeps it
	if _, err := d.db.PutMessages([]*message.Record{old}); err != nil {
		t.Fatal(err)
	}
	again := rec(2) // after a UIDVALIDITY change
	newID := again.MessageID
	s := &sink{d: d, name: acct}
	if err := s.HandleMessages(context.Background(), []*message.Record{again}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.db.Message(newID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("stored again under the new synthetic id (%v): the old record was not recognised", err)
	}
	if got, err := d.db.MessageAt(acct, "INBOX", 2, 7); err != nil || got != legacy {
		t.Errorf("new location indexed to %q, %v; want the legacy id %s", got, err, legacy)
	}
}
