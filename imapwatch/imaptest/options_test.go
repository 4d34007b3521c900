package imaptest

import (
	"errors"
	"testing"

	"github.com/emersion/go-imap/v2"
)

func TestOptions(t *testing.T) {
	tests := []struct {
		name        string
		opt         Options
		wantUIDPlus bool
		wantNO      bool   // EXPUNGE answers NO
		wantLeft    uint32 // messages in Drafts after EXPUNGE
	}{
		{"default", Options{}, true, false, 0},
		{"no uidplus", Options{NoUIDPlus: true}, false, false, 0},
		{"fail expunge", Options{FailExpunge: true}, true, true, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewServerOptions(t, tc.opt)
			if err := s.AddUser("u@example.com", "pw", "Drafts"); err != nil {
				t.Fatal(err)
			}
			if err := s.Append("u@example.com", "Drafts", []byte("Message-ID: <a@x>\r\n\r\nbody\r\n"), `\Deleted`); err != nil {
				t.Fatal(err)
			}
			c, err := s.Dial("u@example.com")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			caps := c.Caps()
			if got := caps.Has(imap.CapUIDPlus); got != tc.wantUIDPlus {
				t.Errorf("Caps().Has(UIDPLUS) = %v, want %v (caps %v)", got, tc.wantUIDPlus, caps)
			}
			if !caps.Has(imap.CapMove) || !caps.Has(imap.CapIdle) {
				t.Errorf("caps %v lack MOVE or IDLE", caps)
			}
			if _, err := c.Select("Drafts", nil).Wait(); err != nil {
				t.Fatal(err)
			}
			err = c.Expunge().Close()
			var ie *imap.Error
			if gotNO := errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo; gotNO != tc.wantNO || (err != nil && !gotNO) {
				t.Fatalf("EXPUNGE = %v, want NO: %v", err, tc.wantNO)
			}
			sel, err := c.Select("Drafts", nil).Wait()
			if err != nil {
				t.Fatal(err)
			}
			if sel.NumMessages != tc.wantLeft {
				t.Errorf("after EXPUNGE Drafts holds %d messages, want %d", sel.NumMessages, tc.wantLeft)
			}
		})
	}
}
