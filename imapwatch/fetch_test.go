package imapwatch

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"followupd/message"
)

func TestFetchSince(t *testing.T) {
	srv, acct := setup(t, "INBOX", "Sent")
	base := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 7; i++ {
		at := base.AddDate(0, 0, 10*i)
		raw := fmt.Sprintf("From: a@example.com\r\nTo: b@example.org\r\nSubject: msg %d\r\nMessage-ID: <m%d@example.com>\r\nDate: %s\r\n\r\nbody %d\r\n",
			i, i, at.Format(time.RFC1123Z), i)
		if _, err := srv.AppendAt(testUser, "Sent", []byte(raw), at); err != nil {
			t.Fatal(err)
		}
	}
	flags := func() []string {
		c, err := srv.Dial(testUser)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Select("Sent", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			t.Fatal(err)
		}
		msgs, err := c.Fetch(imap.UIDSetNum(1, 2, 3, 4, 5, 6, 7), &imap.FetchOptions{UID: true, Flags: true}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range msgs {
			out = append(out, fmt.Sprint(m.UID, m.Flags))
		}
		return out
	}
	before := flags()

	tests := []struct {
		name     string
		since    time.Time
		needBody bool
		want     []uint32
	}{
		{"all", time.Time{}, false, []uint32{1, 2, 3, 4, 5, 6, 7}},
		{"since", base.AddDate(0, 0, 30), false, []uint32{4, 5, 6, 7}},
		{"future", base.AddDate(1, 0, 0), false, nil},
		{"with bodies", base.AddDate(0, 0, 50), true, []uint32{6, 7}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Dial(context.Background(), acct, testPass, DialOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var need func(*message.Record) bool
			if tc.needBody {
				need = func(*message.Record) bool { return true }
			}
			var got []uint32
			var recs []*message.Record
			err = FetchSince(context.Background(), c, "Sent", tc.since, need, func(rs []*message.Record) error {
				for _, r := range rs {
					got = append(got, r.UID)
					recs = append(recs, r)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("uids = %v, want %v", got, tc.want)
			}
			for _, r := range recs {
				if r.Mailbox != "Sent" || r.UIDValidity == 0 || r.MessageID != fmt.Sprintf("m%d@example.com", r.UID-1) || r.Date.IsZero() {
					t.Errorf("record %+v: location, id or date missing", r)
				}
				if tc.needBody != strings.Contains(r.Body, "body") {
					t.Errorf("uid %d: body text %q, needBody %v", r.UID, r.Body, tc.needBody)
				}
			}
		})
	}
	if after := flags(); !slices.Equal(before, after) {
		t.Errorf("flags changed by FetchSince:\nbefore %v\nafter  %v", before, after)
	}
}
