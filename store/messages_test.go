package store_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"followupd/message"
	"followupd/store"
	"followupd/store/storetest"
)

func rec(id, mailbox string, role message.Role, uid uint32, flags ...string) *message.Record {
	return &message.Record{
		Account: "work", Mailbox: mailbox, Role: role, UIDValidity: 7, UID: uid,
		MessageID: id, Subject: "Offer", Date: t0, Flags: flags,
		From:    []message.Address{{Addr: "me@seller.example"}},
		Headers: map[string]string{"Subject": "Offer"},
		Body:    "secret body text", HasBody: true,
		Attachments: []message.Attachment{{Filename: "offer.pdf", ContentType: "application/pdf"}},
	}
}

func TestPutMessages(t *testing.T) {
	db := storetest.New(t)
	fresh, err := db.PutMessages([]*message.Record{
		rec("a@x", "Sent", message.RoleSent, 1),
		rec("b@x", "Sent", message.RoleSent, 2),
		rec("a@x", "Archive", message.RoleOther, 9), // same batch, second sighting
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, true, false}; !slices.Equal(fresh, want) {
		t.Errorf("fresh %v, want %v", fresh, want)
	}
	got, err := db.Message("a@x")
	if err != nil {
		t.Fatal(err)
	}
	if got.Body != "" || got.Mailbox != "Sent" || got.UID != 1 || len(got.Attachments) != 1 || got.Headers["Subject"] != "Offer" || !got.Date.Equal(t0) {
		t.Errorf("stored %+v", got)
	}
	for _, tc := range []struct {
		mailbox  string
		uid      uint32
		want     string
		notFound bool
	}{
		{"Sent", 1, "a@x", false},
		{"Archive", 9, "a@x", false},
		{"Sent", 2, "b@x", false},
		{"Sent", 3, "", true},
		{"Inbox", 1, "", true},
	} {
		id, err := db.MessageAt("work", tc.mailbox, 7, tc.uid)
		if tc.notFound != errors.Is(err, store.ErrNotFound) || id != tc.want {
			t.Errorf("MessageAt(%s, %d) = %q, %v", tc.mailbox, tc.uid, id, err)
		}
	}

	// Second sighting: only location and (from Sent) flags change.
	again := rec("a@x", "Sent", message.RoleSent, 1, `\Flagged`)
	again.Subject = "changed"
	fresh, err = db.PutMessages([]*message.Record{again, rec("a@x", "INBOX", message.RoleInbox, 5, `\Seen`)})
	if err != nil || !slices.Equal(fresh, []bool{false, false}) {
		t.Fatalf("again: %v %v", fresh, err)
	}
	got, _ = db.Message("a@x")
	if got.Subject != "Offer" || !slices.Equal(got.Flags, []string{`\Flagged`}) {
		t.Errorf("after second sighting: subject %q flags %q", got.Subject, got.Flags)
	}
	if _, err := db.PutMessages([]*message.Record{rec("c@x", "Sent", message.RoleSent, 3), rec("", "Sent", message.RoleSent, 4)}); err == nil {
		t.Error("record without id accepted")
	}
	if _, err := db.Message("c@x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("failed batch stored a record: %v", err)
	}
	if n, err := db.ForgetFolder("work", "Sent", 7); err != nil || n != 2 {
		t.Errorf("ForgetFolder: %d %v", n, err)
	}
	if _, err := db.MessageAt("work", "Sent", 7, 1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("forgotten location: %v", err)
	}
	if _, err := db.Message("a@x"); err != nil {
		t.Errorf("ForgetFolder dropped the message: %v", err)
	}
}

func TestSyncState(t *testing.T) {
	db := storetest.New(t)
	s, err := db.SyncState("work", "Sent")
	if err != nil || s != (store.SyncState{}) {
		t.Fatalf("unknown folder: %+v %v", s, err)
	}
	want := store.SyncState{UIDValidity: 42, LastUID: 1000, HighestModSeq: 1 << 40}
	if err := db.PutSyncState("work", "Sent", want); err != nil {
		t.Fatal(err)
	}
	// Names that would collide if keys were simply concatenated.
	if err := db.PutSyncState("wor", "kSent", store.SyncState{UIDValidity: 1}); err != nil {
		t.Fatal(err)
	}
	db.Reopen()
	if s, _ := db.SyncState("work", "Sent"); s != want {
		t.Errorf("after reopen %+v, want %+v", s, want)
	}
	if s, _ := db.SyncState("wor", "kSent"); s.UIDValidity != 1 {
		t.Errorf("colliding name: %+v", s)
	}
	_ = time.Second
}

func TestKnownMessages(t *testing.T) {
	db := storetest.New(t)
	if _, err := db.PutMessages([]*message.Record{
		rec("a@x", "Sent", message.RoleSent, 1),
		rec("b@x", "INBOX", message.RoleInbox, 2),
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ids  []string
		want map[string]string // id -> stored mailbox
	}{
		{"none asked", nil, map[string]string{}},
		{"none known", []string{"c@x", "d@x"}, map[string]string{}},
		{"some known", []string{"c@x", "a@x", "b@x"}, map[string]string{"a@x": "Sent", "b@x": "INBOX"}},
		{"asked twice", []string{"a@x", "a@x"}, map[string]string{"a@x": "Sent"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := db.KnownMessages(tc.ids)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Errorf("got %d records, want %d", len(got), len(tc.want))
			}
			for id, mbox := range tc.want {
				r := got[id]
				if r == nil || r.Mailbox != mbox || r.Body != "" || r.MessageID != id {
					t.Errorf("%s: got %+v, want mailbox %s", id, r, mbox)
				}
			}
		})
	}
}

func TestPutMessagesState(t *testing.T) {
	db := storetest.New(t)
	st := store.SyncState{UIDValidity: 7, LastUID: 2}
	fresh, err := db.PutMessagesState([]*message.Record{
		rec("a@x", "Sent", message.RoleSent, 1),
		rec("b@x", "Sent", message.RoleSent, 2),
	}, "work", "Sent", st)
	if err != nil || !slices.Equal(fresh, []bool{true, true}) {
		t.Fatalf("PutMessagesState = %v, %v", fresh, err)
	}
	if got, err := db.SyncState("work", "Sent"); err != nil || got != st {
		t.Errorf("sync state %+v, %v; want %+v", got, err, st)
	}
	if _, err := db.Message("b@x"); err != nil {
		t.Errorf("record of the batch: %v", err)
	}
	// An expunged batch: only the state moves.
	st.LastUID = 9
	if _, err := db.PutMessagesState(nil, "work", "Sent", st); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.SyncState("work", "Sent"); got != st {
		t.Errorf("sync state after an empty batch %+v, want %+v", got, st)
	}
	// A refused batch stores neither records nor state.
	bad := st
	bad.LastUID = 12
	if _, err := db.PutMessagesState([]*message.Record{rec("c@x", "Sent", message.RoleSent, 10), {}}, "work", "Sent", bad); err == nil {
		t.Fatal("a record without id was accepted")
	}
	if got, _ := db.SyncState("work", "Sent"); got != st {
		t.Errorf("sync state after a refused batch %+v, want %+v", got, st)
	}
	if _, err := db.Message("c@x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("record of a refused batch: %v", err)
	}
}

// Known answers which ids are stored, as KnownMessages does, without
// reading the records.
func TestKnown(t *testing.T) {
	db := storetest.New(t)
	if _, err := db.PutMessages([]*message.Record{{MessageID: "a@x"}, {MessageID: "b@x"}}); err != nil {
		t.Fatal(err)
	}
	got, err := db.Known([]string{"a@x", "c@x", "b@x", "a@x", ""})
	if err != nil || len(got) != 2 || !got["a@x"] || !got["b@x"] {
		t.Errorf("Known = %v, %v; want a@x and b@x", got, err)
	}
}
