package imaptest

import (
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

func TestServer(t *testing.T) {
	s := NewServer(t)
	if err := s.AddUser("u@example.com", "pw", "Sent"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUser("u@example.com", "pw", "Sent", "Drafts"); err != nil {
		t.Fatalf("re-adding a user: %v", err)
	}
	raw := []byte("Message-ID: <a@x>\r\nSubject: hi\r\n\r\nbody\r\n")
	uid, err := s.AppendAt("u@example.com", "Sent", raw, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), `\Seen`)
	if err != nil || uid != 1 {
		t.Fatalf("AppendAt = %d, %v; want 1, nil", uid, err)
	}
	if err := s.Append("u@example.com", "Nope", raw); err == nil {
		t.Fatal("append to a missing mailbox succeeded")
	}
	if err := s.Store("u@example.com", "Sent", uid, `\Flagged`); err != nil {
		t.Fatal(err)
	}
	c, err := s.Dial("u@example.com")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sel, err := c.Select("Sent", nil).Wait()
	if err != nil || sel.NumMessages != 1 {
		t.Fatalf("select = %+v, %v", sel, err)
	}
	msgs, err := c.Fetch(imap.UIDSetNum(1), &imap.FetchOptions{Flags: true}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch = %v, %v", msgs, err)
	}
	got := map[imap.Flag]bool{}
	for _, f := range msgs[0].Flags {
		got[f] = true
	}
	if !got[imap.FlagSeen] || !got[imap.FlagFlagged] {
		t.Fatalf("flags = %v, want \\Seen and \\Flagged", msgs[0].Flags)
	}
	if n := s.DropConnections(); n != 1 {
		t.Fatalf("DropConnections = %d, want 1", n)
	}
	select {
	case <-c.Closed():
	case <-time.After(2 * time.Second):
		t.Fatal("client not closed after DropConnections")
	}
	s.SetRefuse(true)
	if c2, err := s.Dial("u@example.com"); err == nil {
		c2.Close()
		t.Fatal("dial succeeded while refusing")
	}
	s.SetRefuse(false)
	c3, err := s.Dial("u@example.com")
	if err != nil {
		t.Fatal(err)
	}
	c3.Close()
}
