package imapwatch

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/emersion/go-imap/v2"

	"followupd/imapwatch/imaptest"
)

// TestDeleteMessageID checks that removing a draft takes exactly the
// draft's copies: a message the user marked \Deleted (Thunderbird's "mark
// as deleted" model leaves them on purpose) must survive with its flags,
// with or without UIDPLUS, and also when EXPUNGE fails.
func TestDeleteMessageID(t *testing.T) {
	// Drafts as the user left it, in UID order; "draft" is ours, twice (a
	// mail client may save a copy while the person looks at it).
	mailbox := []struct {
		id    string
		flags []string
	}{
		{"user-deleted-1@x", []string{`\Deleted`}},
		{"draft@followupd", nil},
		{"kept-seen@x", []string{`\Seen`}},
		{"user-deleted-2@x", []string{`\Seen`, `\Deleted`, `\Draft`}},
		{"draft@followupd", []string{`\Draft`}},
		{"kept@x", nil},
	}
	user := map[string][]string{ // the user's messages and their flags, sorted
		"user-deleted-1@x": {`\Deleted`},
		"kept-seen@x":      {`\Seen`},
		"user-deleted-2@x": {`\Deleted`, `\Draft`, `\Seen`},
		"kept@x":           nil,
	}
	tests := []struct {
		name    string
		opt     imaptest.Options
		msgid   string
		want    int  // removed
		wantErr bool // then nothing is removed
		// draft is the merged flags of the draft's copies left behind
		// (nil: none left).
		draft []string
	}{
		{"uidplus", imaptest.Options{}, "<draft@followupd>", 2, false, nil},
		{"no uidplus", imaptest.Options{NoUIDPlus: true}, "<draft@followupd>", 2, false, nil},
		{"uidplus, other id", imaptest.Options{}, "gone@followupd", 0, false, []string{`\Draft`}},
		{"no uidplus, other id", imaptest.Options{NoUIDPlus: true}, "gone@followupd", 0, false, []string{`\Draft`}},
		// The drafts stay, flagged \Deleted as the failed EXPUNGE left
		// them; a retry finds them by Message-ID all the same.
		{"uidplus, expunge fails", imaptest.Options{FailExpunge: true}, "draft@followupd", 0, true, []string{`\Deleted`, `\Draft`}},
		{"no uidplus, expunge fails", imaptest.Options{NoUIDPlus: true, FailExpunge: true}, "draft@followupd", 0, true, []string{`\Deleted`, `\Draft`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := imaptest.NewServerOptions(t, tc.opt)
			if err := srv.AddUser(testUser, testPass, "Drafts"); err != nil {
				t.Fatal(err)
			}
			for i, m := range mailbox {
				raw := fmt.Appendf(nil, "Message-ID: <%s>\r\nSubject: %d\r\n\r\nbody %d\r\n", m.id, i, i)
				if err := srv.Append(testUser, "Drafts", raw, m.flags...); err != nil {
					t.Fatal(err)
				}
			}
			c, err := srv.Dial(testUser)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := c.Caps().Has(imap.CapUIDPlus); got == tc.opt.NoUIDPlus {
				t.Fatalf("server offers UIDPLUS: %v, want %v", got, !tc.opt.NoUIDPlus)
			}

			n, err := DeleteMessageID(context.Background(), c, "Drafts", tc.msgid)
			t.Logf("DeleteMessageID = %d, %v", n, err)
			if (err != nil) != tc.wantErr || n != tc.want {
				t.Fatalf("DeleteMessageID = %d, %v; want %d, error %v", n, err, tc.want, tc.wantErr)
			}

			want := map[string][]string{}
			for id, flags := range user {
				want[id] = flags
			}
			if tc.draft != nil {
				want["draft@followupd"] = tc.draft
			}
			got := draftsState(t, srv)
			for id, flags := range want {
				g, ok := got[id]
				if !ok {
					t.Errorf("%s was removed; want it kept with flags %v", id, flags)
					continue
				}
				if !slices.Equal(g, flags) {
					t.Errorf("%s has flags %v, want %v", id, g, flags)
				}
			}
			for id := range got {
				if _, ok := want[id]; !ok {
					t.Errorf("%s is still in Drafts", id)
				}
			}
		})
	}
}

// draftsState reads Drafts over a new connection: Message-ID → sorted
// flags (without \Recent). For a Message-ID held twice, the flags of both
// copies are merged.
func draftsState(t *testing.T, srv *imaptest.Server) map[string][]string {
	t.Helper()
	c, err := srv.Dial(testUser)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sel, err := c.Select("Drafts", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	if sel.NumMessages == 0 {
		return out
	}
	msgs, err := c.Fetch(imap.SeqSetNum(seq(1, sel.NumMessages)...), &imap.FetchOptions{Flags: true, Envelope: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		id := m.Envelope.MessageID
		for _, f := range m.Flags {
			if f != "\\Recent" && !slices.Contains(out[id], string(f)) {
				out[id] = append(out[id], string(f))
			}
		}
		if _, ok := out[id]; !ok {
			out[id] = nil
		}
		slices.Sort(out[id])
	}
	return out
}
