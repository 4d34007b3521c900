package daemon

import (
	"context"
	"testing"

	"followupd/message"
	"followupd/store"
)

// TestStopFolderRacesSentFolder: each folder has its own goroutine, so the
// Sent copy can be tracked while a batch of the Stop folder is between
// looking for the follow-up and storing its records. The interleavings are
// played here by calling the sink from inside the Stop batch's put; every
// one must end with the follow-up stopped.
func TestStopFolderRacesSentFolder(t *testing.T) {
	const seller, id = "ivan@seller.test", "offer-race@seller.test"
	raw := []byte("Message-ID: <" + id + ">\r\nFrom: " + seller + "\r\nTo: anna@client.test\r\nCc: " + seller +
		"\r\nSubject: Offer R1\r\nDate: Mon, 23 Nov 2026 10:00:00 +0300\r\n\r\n")
	tests := []struct {
		name string
		// during runs inside the Stop batch's put, before its records
		// are stored; after runs once the Stop batch is done.
		during, after []message.Role
	}{
		{"Sent copy tracked before the Stop record is stored", []message.Role{message.RoleSent}, nil},
		{"INBOX copy stored first, Sent copy tracked after", []message.Role{message.RoleInbox}, []message.Role{message.RoleSent}},
		{"INBOX copy stored and Sent copy tracked meanwhile", []message.Role{message.RoleInbox, message.RoleSent}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, cfg, d := idleDaemon(t, seller, true)
			acct := cfg.Accounts[0].Name
			s := &sink{d: d, name: acct}
			ctx := context.Background()
			rec := func(role message.Role) *message.Record {
				t.Helper()
				rec, err := message.ParseHeader(raw)
				if err != nil {
					t.Fatal(err)
				}
				rec.Account, rec.Role, rec.UIDValidity, rec.UID, rec.Internal = acct, role, 1, 1, r.clk.Now()
				rec.Mailbox = map[message.Role]string{message.RoleSent: "Sent", message.RoleInbox: "INBOX", message.RoleStop: "Stop"}[role]
				return rec
			}
			feed := func(roles []message.Role) error {
				for _, role := range roles {
					if err := s.HandleMessages(ctx, []*message.Record{rec(role)}); err != nil {
						return err
					}
				}
				return nil
			}
			err := s.handle(ctx, []*message.Record{rec(message.RoleStop)}, func(db *store.DB, recs []*message.Record) ([]bool, error) {
				if err := feed(tc.during); err != nil {
					return nil, err
				}
				return db.PutMessages(recs)
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := feed(tc.after); err != nil {
				t.Fatal(err)
			}
			f, err := d.db.ByMessageID(id)
			if err != nil {
				t.Fatalf("not tracked: %v", err)
			}
			if f.State != store.StateStopped {
				t.Errorf("state %s (%s), want stopped: the Stop folder's copy was lost", f.State, f.Outcome)
			}
			if _, err := d.db.Meta(metaStopSeen + id); err == nil {
				t.Errorf("the Stop-folder sighting is kept after it stopped the follow-up")
			}
		})
	}
}

// A Stop-folder sighting of a message whose Sent copy is then judged and
// not tracked is dropped: nothing would ever read it.
func TestStopSightingForgottenWhenNotTracked(t *testing.T) {
	const seller, id = "ivan@seller.test", "lunch@seller.test"
	raw := []byte("Message-ID: <" + id + ">\r\nFrom: " + seller + "\r\nTo: anna@client.test\r\nCc: " + seller +
		"\r\nSubject: Lunch on Friday\r\nDate: Mon, 23 Nov 2026 10:00:00 +0300\r\n\r\n")
	r, cfg, d := idleDaemon(t, seller, true)
	acct := cfg.Accounts[0].Name
	s := &sink{d: d, name: acct}
	ctx := context.Background()
	for i, box := range []struct {
		role    message.Role
		mailbox string
	}{{message.RoleInbox, "INBOX"}, {message.RoleStop, "Stop"}, {message.RoleSent, "Sent"}} {
		rec, err := message.ParseHeader(raw)
		if err != nil {
			t.Fatal(err)
		}
		rec.Account, rec.Role, rec.Mailbox, rec.UIDValidity, rec.UID, rec.Internal = acct, box.role, box.mailbox, 1, uint32(i+1), r.clk.Now()
		if err := s.HandleMessages(ctx, []*message.Record{rec}); err != nil {
			t.Fatal(err)
		}
		_, err = d.db.Meta(metaStopSeen + id)
		switch box.role {
		case message.RoleStop:
			if err != nil {
				t.Fatalf("Stop copy after the INBOX copy: no sighting kept (%v)", err)
			}
		case message.RoleSent:
			if err == nil {
				t.Error("the sighting is kept after the Sent copy was judged and not tracked")
			}
		}
	}
	if _, err := d.db.ByMessageID(id); err == nil {
		t.Error("a lunch invitation was tracked")
	}
}
